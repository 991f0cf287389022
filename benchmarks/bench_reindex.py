"""Full vs incremental re-index on a synthetic store built from CSL abstracts.

1. Raw encoder throughput on a sample of the documents (measured before and after the full
   run and averaged, because the 2 cores are shared).
2. Full build of ``--docs`` documents (~``--doc-chars`` chars each; beyond the 12,169 CSL
   abstracts, documents are spliced from two abstracts so every text is distinct) into an
   empty index directory: its throughput must be >= 0.9x the raw encoder. Because the CPU is
   shared, the pass/fail uses the same-run ratio (time inside encoder calls / total time);
   the separately measured raw throughput is printed too.
3. ``--changed`` (default 1%) of the documents are edited, then an incremental build runs:
   it must take <= 5% of the full build and encode exactly the edited documents.

    python benchmarks/bench_reindex.py [--docs 2000] [--changed 0.01] [--doc-chars 200]
        [--raw-sample 128] [--backend e5]
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from embeddings import DocRecord, Encoder, build, make_encoder
from matcher.textutil import TOKENIZER_ID, tokenize

# ../shared/eval/csl beside the repository (as in CI).
CSL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "csl" / "corpus.jsonl"


def synthetic_docs(path: Path, n: int, max_chars: int) -> list[DocRecord]:
    with path.open(encoding="utf-8") as f:
        abstracts = [json.loads(line)["text"] for line in f]
    m = len(abstracts)
    docs = []
    for i in range(n):
        a = abstracts[i % m]
        if i >= m:  # splice two abstracts: distinct text, same style
            b = abstracts[(i * 7919 + 13) % m]
            a = a[: len(a) // 2] + b[len(b) // 2 :]
        docs.append(DocRecord(f"cap-{i:06d}", a[:max_chars]))
    return docs


class TimedEncoder(Encoder):
    """Forwards to an encoder and accumulates the seconds spent inside encode calls, so the
    builder's own overhead can be measured on the same run (robust to a shared, noisy CPU)."""

    def __init__(self, enc) -> None:  # type: ignore[no-untyped-def]
        self.enc = enc
        self.seconds = 0.0

    @property
    def dim(self) -> int:
        return int(self.enc.dim)

    @property
    def model_id(self) -> str:
        return str(self.enc.model_id)

    def encode_queries(self, texts):  # type: ignore[no-untyped-def]
        return self.enc.encode_queries(texts)

    def encode_documents(self, texts):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return self.enc.encode_documents(texts)
        finally:
            self.seconds += time.perf_counter() - t


def raw_throughput(enc, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    enc.encode_documents(texts)
    return len(texts) / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=2000)
    p.add_argument("--changed", type=float, default=0.01)
    p.add_argument("--doc-chars", type=int, default=200)
    p.add_argument("--raw-sample", type=int, default=128)
    p.add_argument("--backend", default="e5")
    p.add_argument("--model-path", default=None)
    p.add_argument("--corpus", type=Path, default=CSL)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    docs = synthetic_docs(args.corpus, args.docs, args.doc_chars)
    enc = make_encoder(args.backend, args.model_path)
    rng = np.random.default_rng(args.seed)
    sample = [docs[int(i)].text for i in rng.choice(len(docs), args.raw_sample, replace=False)]
    enc.encode_documents(sample[:16])  # warm-up / load
    raw_before = raw_throughput(enc, sample)
    print(f"raw encoder: {raw_before:.1f} docs/s (before)", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-reindex-") as tmp:
        index_dir = Path(tmp)
        timed = TimedEncoder(enc)
        full = build(
            index_dir,
            {"capabilities": docs},
            timed,
            tokenizer=tokenize,
            tokenizer_id=TOKENIZER_ID,
            full=True,
        )
        in_encoder = timed.seconds / full.seconds
        full_rate = len(docs) / full.seconds
        print(
            f"full: {len(docs)} docs, {full.encoded_chunks} chunks encoded in "
            f"{full.seconds:.1f}s = {full_rate:.1f} docs/s; {in_encoder:.1%} of it inside the "
            "encoder (same-run ratio: builder throughput / raw encoder throughput)",
            flush=True,
        )
        raw_after = raw_throughput(enc, sample)
        raw = (raw_before + raw_after) / 2
        print(f"raw encoder: {raw_after:.1f} docs/s (after), mean {raw:.1f}", flush=True)

        n_changed = max(1, round(args.changed * len(docs)))
        picks = set(rng.choice(len(docs), n_changed, replace=False).tolist())
        edited = [
            DocRecord(d.doc_id, d.text + "（2026年更新：新增中试验证。）") if i in picks else d
            for i, d in enumerate(docs)
        ]
        inc = build(
            index_dir, {"capabilities": edited}, enc, tokenizer=tokenize, tokenizer_id=TOKENIZER_ID
        )
        print(
            f"incremental: changed {inc.changed}, unchanged {inc.unchanged}, encoded "
            f"{inc.encoded_chunks} chunks in {inc.seconds:.2f}s",
            flush=True,
        )
        size_mb = sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file()) / 2**20

    ratio_inc = inc.seconds / full.seconds
    ratio_rate = full_rate / raw
    ok_inc = ratio_inc <= 0.05 and inc.encoded_chunks == n_changed
    ok_rate = in_encoder >= 0.9
    print(
        f"SUMMARY bench_reindex docs={len(docs)} changed={n_changed} full={full.seconds:.1f}s "
        f"incremental={inc.seconds:.2f}s ({ratio_inc:.1%} of full, {'PASS' if ok_inc else 'FAIL'} "
        f"<=5%) full_rate={full_rate:.1f}/s vs raw (same run) {in_encoder:.2f}x "
        f"{'PASS' if ok_rate else 'FAIL'} >=0.9x (separate raw runs: {raw:.1f}/s, "
        f"{ratio_rate:.2f}x) index_dir={size_mb:.0f}MB "
        f"load={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
