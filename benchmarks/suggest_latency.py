"""Latency of one suggestion (need → institutes, k=10, with evidence) on a store and index.

Runs in-process through :class:`service.recommender.RecommenderHandle`, the object the API
uses, over the configured data directory (``DUIJIE_DATA_DIR``; build it with ``duijie demo``
and ``duijie reindex``). Prints load time, then p50/p99 over ``--needs`` distinct needs, each
asked once (cold: query not seen before) and then again (warm), and the warm path's floor:
the memoised query encoding + one raw FAISS search of ``depth`` chunks + one BM25 search
(with tokenising) of the same query text, timed right before each warm suggestion, and the
ratio of the two p50s.

    python benchmarks/suggest_latency.py --needs 100
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import time

import numpy as np

from matcher.content import technical_text
from matcher.textutil import tokenize
from service.commands.match import open_handle
from service.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--needs", type=int, default=100)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()

    handle = open_handle(load_settings())
    t0 = time.perf_counter()
    rec = handle.get()
    load_s = time.perf_counter() - t0
    need_ids = sorted(d for d, doc in rec.documents.items() if doc.kind == "need")[: args.needs]
    timings: dict[str, list[float]] = {"cold": [], "warm": [], "floor": []}
    retriever = rec.retrievers["capabilities"]
    for phase in ("cold", "warm"):
        for nid in need_ids:
            if phase == "warm":
                text = technical_text(rec.documents[nid].full_text)
                t = time.perf_counter()
                q = retriever.encoder.encode_queries([text])
                retriever.dense.vectors.index_.search(q, retriever.depth)
                retriever.lexical.search_tokens([tokenize(text)], retriever.depth)
                timings["floor"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            rec.rank_for_need(nid, args.k)
            timings[phase].append((time.perf_counter() - t) * 1000)
    parts = [f"load {load_s:.1f}s", f"needs {len(need_ids)}", f"docs {len(rec.documents)}"]
    for phase, ms in timings.items():
        a = np.array(ms)
        parts.append(f"{phase} p50 {np.percentile(a, 50):.0f} ms p99 {np.percentile(a, 99):.0f} ms")
    ratio = np.percentile(timings["warm"], 50) / np.percentile(timings["floor"], 50)
    parts.append(f"warm / floor {ratio:.2f}")
    print("suggest_latency: " + " | ".join(parts))


if __name__ == "__main__":
    main()
