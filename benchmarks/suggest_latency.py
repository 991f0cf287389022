"""Latency of one suggestion (need → institutes, k=10, with evidence) on a store and index.

Runs in-process through :class:`service.recommender.RecommenderHandle`, the object the API
uses, over the configured data directory (``DUIJIE_DATA_DIR``; build it with ``duijie demo``
and ``duijie reindex``). Prints load time, then p50/p99 over ``--needs`` distinct needs, each
asked once (cold: query not seen before) and then again (warm), and the warm path's floor:
the memoised query encoding + one raw FAISS search of ``depth`` chunks + one BM25 search
(with tokenising) of the same query text, timed right before each warm suggestion, and the
ratio of the two p50s. The warm phase and its floor run once on the main thread (the CLI,
benchmarks) and once on a fresh worker thread (as the service's request threads run them),
each with the FAISS thread count it sees.

    python benchmarks/suggest_latency.py --needs 100
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import os
import time
from typing import Any

import numpy as np
from warm_path import floor_seconds, on_thread

from embeddings.runtime import faiss_thread_count
from matcher.content import technical_text
from matcher.pipeline import Recommender
from service.commands.match import open_handle
from service.settings import load_settings


def warm_phase(rec: Recommender, need_ids: list[str], k: int) -> tuple[list[float], list[float]]:
    """Warm suggestion and floor times (ms) of every need, in the calling thread."""
    retriever: Any = rec.retrievers["capabilities"]
    warm: list[float] = []
    floor: list[float] = []
    for nid in need_ids:
        text = technical_text(rec.documents[nid].full_text)
        floor.append(floor_seconds(retriever, text) * 1000)
        t = time.perf_counter()
        rec.rank_for_need(nid, k)
        warm.append((time.perf_counter() - t) * 1000)
    return warm, floor


def measured(
    rec: Recommender, need_ids: list[str], k: int, where: str
) -> tuple[int, tuple[list[float], list[float]]]:
    """FAISS threads and :func:`warm_phase` on the main thread or on a worker thread."""
    got: list[tuple[int, tuple[list[float], list[float]]]] = []

    def run() -> None:
        got.append((faiss_thread_count(), warm_phase(rec, need_ids, k)))

    if where == "thread":
        on_thread(run)
    else:
        run()
    return got[0]


def p(ms: list[float], q: float) -> float:
    return float(np.percentile(np.array(ms), q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--needs", type=int, default=100)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()

    # cold = encoded in this run: query vectors of earlier runs are not read back
    handle = open_handle(load_settings(persist_queries=False))
    t0 = time.perf_counter()
    rec = handle.get()
    load_s = time.perf_counter() - t0
    need_ids = sorted(d for d, doc in rec.documents.items() if doc.kind == "need")[: args.needs]
    cold: list[float] = []
    for nid in need_ids:
        t = time.perf_counter()
        rec.rank_for_need(nid, args.k)
        cold.append((time.perf_counter() - t) * 1000)
    parts = [f"load {load_s:.1f}s", f"needs {len(need_ids)}", f"docs {len(rec.documents)}"]
    parts.append(f"cold p50 {p(cold, 50):.0f} ms p99 {p(cold, 99):.0f} ms")
    for where in ("main", "thread"):
        threads, (warm, floor) = measured(rec, need_ids, args.k, where)
        parts.append(
            f"{where} (FAISS threads {threads}): warm p50 {p(warm, 50):.1f} ms "
            f"p99 {p(warm, 99):.1f} ms, floor p50 {p(floor, 50):.1f} ms, "
            f"warm / floor {p(warm, 50) / p(floor, 50):.2f}"
        )
    parts.append("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("suggest_latency: " + " | ".join(parts))


if __name__ == "__main__":
    main()
