"""VectorIndex: exact (IndexFlatIP) vs HNSW on seeded random unit vectors.

Per size: build time, single-query search latency p50/p99, recall@k of HNSW against exact
search, and the resident memory each index adds. Random 384-d vectors are the hard case for
HNSW (no cluster structure); real embeddings give higher recall at the same settings.

    python benchmarks/bench_index.py [--sizes 100000 1000000] [--dim 384] [--queries 200]
        [--k 10] [--hnsw-m 32] [--ef-construction 80] [--ef-search 128]
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import gc
import os
import time

import faiss
import numpy as np

from embeddings.index import VectorIndex


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def unit_rows(rng: np.random.Generator, n: int, d: int, block: int = 100_000) -> np.ndarray:
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, block):
        x = rng.standard_normal((min(block, n - s), d), dtype=np.float32)
        out[s : s + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def clustered_rows(
    rng: np.random.Generator, centres: np.ndarray, n: int, spread: float, block: int = 100_000
) -> np.ndarray:
    """Unit vectors around random cluster centres (cosine to the centre ~ 1/sqrt(1+spread^2)),
    closer to the anisotropic, clustered geometry of real sentence embeddings."""
    d = centres.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, block):
        m = min(block, n - s)
        c = centres[rng.integers(0, len(centres), m)]
        x = c + spread * rng.standard_normal((m, d), dtype=np.float32) / np.sqrt(d)
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def index_mb(index: VectorIndex) -> float:
    """Size of the FAISS index as written to disk (vectors + graph + id map)."""
    return faiss.serialize_index(index.index_).nbytes / 2**20


def latencies(index: VectorIndex, q: np.ndarray, k: int) -> np.ndarray:
    lat = []
    for row in q:
        t = time.perf_counter()
        index.search(row[None, :], k)
        lat.append(time.perf_counter() - t)
    return np.array(lat) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--ef-construction", type=int, default=80)
    p.add_argument("--ef-search", type=int, nargs="+", default=[128])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--data",
        choices=["uniform", "clustered"],
        default="uniform",
        help="uniform on the sphere (worst case for HNSW) or clustered (embedding-like)",
    )
    p.add_argument("--spread", type=float, default=1.0, help="clustered: noise/centre ratio")
    p.add_argument(
        "--hnsw-max", type=int, default=None, help="skip HNSW for sizes above this (build time)"
    )
    args = p.parse_args()

    summary = []
    for n in args.sizes:
        rng = np.random.default_rng(args.seed)
        if args.data == "uniform":
            x = unit_rows(rng, n, args.dim)
            q = unit_rows(rng, args.queries, args.dim)
        else:
            centres = unit_rows(rng, max(1, n // 100), args.dim)
            x = clustered_rows(rng, centres, n, args.spread)
            q = clustered_rows(rng, centres, args.queries, args.spread)
        ids = [str(i) for i in range(n)]
        gc.collect()
        base = rss_mb()
        t = time.perf_counter()
        flat = VectorIndex(args.dim, exact_max=n).add(x, ids)
        flat_build = time.perf_counter() - t
        flat_mem = rss_mb() - base
        flat_size = index_mb(flat)
        _, truth = flat.search(q, args.k)
        flat_lat = latencies(flat, q, args.k)
        print(
            f"n={n} flat: build {flat_build:.1f}s, index {flat_size:.0f} MB (RSS +{flat_mem:.0f} MB), "
            f"p50 {np.percentile(flat_lat, 50):.2f} ms, p99 {np.percentile(flat_lat, 99):.2f} ms",
            flush=True,
        )
        del flat
        gc.collect()
        if args.hnsw_max is not None and n > args.hnsw_max:
            summary.append(f"n={n}:flat_p50={np.percentile(flat_lat, 50):.1f}ms,hnsw=skipped")
            del x
            continue
        base = rss_mb()
        t = time.perf_counter()
        hnsw = VectorIndex(
            args.dim,
            exact_max=0,
            hnsw_m=args.hnsw_m,
            ef_construction=args.ef_construction,
            ef_search=args.ef_search[0],
        ).add(x, ids)
        hnsw_build = time.perf_counter() - t
        hnsw_mem = rss_mb() - base
        hnsw_size = index_mb(hnsw)
        for ef in args.ef_search:
            faiss.downcast_index(hnsw.index_.index).hnsw.efSearch = ef
            _, got = hnsw.search(q, args.k)
            recall = np.mean(
                [len(set(a) & set(b)) / args.k for a, b in zip(truth, got, strict=True)]
            )
            lat = latencies(hnsw, q, args.k)
            print(
                f"n={n} hnsw M={args.hnsw_m} efC={args.ef_construction} efS={ef}: "
                f"build {hnsw_build:.1f}s, index {hnsw_size:.0f} MB (RSS +{hnsw_mem:.0f} MB), "
                f"recall@{args.k} {recall:.3f}, "
                f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms",
                flush=True,
            )
            summary.append(
                f"n={n}:flat_p50={np.percentile(flat_lat, 50):.1f}ms,"
                f"hnsw(efS={ef})_p50={np.percentile(lat, 50):.2f}ms,recall@{args.k}={recall:.3f}"
            )
        del hnsw, x
        gc.collect()
    print(
        f"SUMMARY bench_index data={args.data} d={args.dim} threads={faiss.omp_get_max_threads()} "
        f"load={os.getloadavg()[0]:.1f} " + " ".join(summary)
    )


if __name__ == "__main__":
    main()
