"""Encoder throughput: documents/s for ~200-char Chinese abstracts, queries/s for short
queries (one query per call, as the service does), and peak RSS.

Texts come from the CSL dev set at run time (never copied into the repo).

    python benchmarks/bench_encoder.py [--backend e5] [--docs 256] [--queries 100]
        [--doc-chars 200] [--batch-size 32] [--corpus ../shared/eval/csl/corpus.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np

from embeddings import make_encoder

# ../shared/eval/csl beside the repository (as in CI).
CSL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "csl"


def read_texts(path: Path, n: int, max_chars: int) -> list[str]:
    out = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line)["text"][:max_chars])
            if len(out) == n:
                break
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", default="e5")
    p.add_argument("--model-path", default=None)
    p.add_argument("--docs", type=int, default=256)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--doc-chars", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--corpus", type=Path, default=CSL / "corpus.jsonl")
    p.add_argument("--query-file", type=Path, default=CSL / "kw2abs.queries.jsonl")
    args = p.parse_args()

    enc = make_encoder(args.backend, args.model_path, batch_size=args.batch_size)
    t = time.perf_counter()
    dim = enc.dim
    load_s = time.perf_counter() - t
    docs = read_texts(args.corpus, args.docs, args.doc_chars)
    queries = read_texts(args.query_file, args.queries, 64)
    enc.encode_documents(docs[: args.batch_size])  # warm-up

    t = time.perf_counter()
    d = enc.encode_documents(docs)
    doc_s = time.perf_counter() - t
    lat = []
    for q in queries:
        t = time.perf_counter()
        enc.encode_queries([q])
        lat.append(time.perf_counter() - t)
    lat_ms = np.array(lat) * 1000
    assert d.shape == (len(docs), dim)
    mean_chars = np.mean([len(x) for x in docs])
    mean_q = np.mean([len(x) for x in queries])
    print(f"model: {enc.model_id} dim={dim} load={load_s:.2f}s cpus={os.cpu_count()}")
    print(
        f"documents: {len(docs)} x {mean_chars:.0f} chars in {doc_s:.2f}s (batch {args.batch_size})"
    )
    print(
        f"queries: {len(queries)} x {mean_q:.0f} chars, one per call: "
        f"p50 {np.percentile(lat_ms, 50):.1f} ms, p99 {np.percentile(lat_ms, 99):.1f} ms"
    )
    print(
        f"SUMMARY bench_encoder backend={args.backend} docs/s={len(docs) / doc_s:.1f} "
        f"queries/s={len(queries) / (lat_ms.sum() / 1000):.1f} peak_rss_mb={peak_rss_mb():.0f} "
        f"omp_threads={os.environ.get('OMP_NUM_THREADS', 'default')} load={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
