"""A pairing campaign (结对子) on the demo data, end to end, and how many retrievals it makes.

Prepares a data directory once (``duijie demo`` + ``duijie reindex`` with the bundled model),
then runs ``--repeat`` campaigns, each in a fresh process (cold query cache) through the
service's ``CampaignRunner`` and pairing engine, the path ``duijie pair`` and the API take.
Times the campaign from start to its stored shortlist (the recommender is loaded before the
clock starts) and counts retrieval calls and queries, per enterprise and per shortlist item.

    python benchmarks/bench_campaign.py [--repeat 3] [--k 1] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def prepare(data_dir: Path) -> None:
    """``duijie demo`` and ``duijie reindex`` into ``data_dir`` (skipped when already built)."""
    if (data_dir / "index" / "current").exists() and any(data_dir.glob("*.sqlite3")):
        return
    env = {**os.environ, "DUIJIE_DATA_DIR": str(data_dir)}
    env.pop("DUIJIE_ENGLISH_MODEL", None)
    for cmd in (["demo"], ["reindex"]):
        subprocess.run(
            [sys.executable, "-m", "service.cli", *cmd],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )


class CountingRetriever:
    """Forwards to a retriever, counting ``retrieve`` calls and query texts."""

    def __init__(self, inner: Any, counts: dict[str, int]) -> None:
        self._inner = inner
        self._counts = counts

    def retrieve(self, texts: Any, k: int) -> Any:
        self._counts["calls"] += 1
        self._counts["queries"] += len(texts)
        return self._inner.retrieve(texts, k)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def one_campaign(data_dir: Path, k: int, name: str) -> dict[str, Any]:
    """Run one campaign in this process; its time, retrieval counts and size."""
    os.environ["DUIJIE_DATA_DIR"] = str(data_dir)
    from sqlalchemy import func, select

    from service.commands.match import open_handle
    from service.db import session_scope
    from service.jobs.campaign_runner import CampaignRunner
    from service.jobs.pairing import PairingParams, pairing_solve
    from service.models import Campaign, ShortlistItem
    from service.settings import load_settings

    handle = open_handle(load_settings(persist_queries=False))  # every run encodes its needs
    rec = handle.get()
    counts = {"calls": 0, "queries": 0}
    rec.retrievers = {n: CountingRetriever(r, counts) for n, r in rec.retrievers.items()}
    factory = handle.session_factory
    with session_scope(factory) as s:
        camp = Campaign(name=name, params=PairingParams(k=k).model_dump(exclude_none=True))
        s.add(camp)
        s.flush()
        cid = camp.id
    runner = CampaignRunner(session_factory=factory, recommender=handle.get, solve=pairing_solve)
    t0 = time.perf_counter()
    try:
        runner.start(cid)
        runner.wait(cid)
    finally:
        runner.shutdown()
    seconds = time.perf_counter() - t0
    with session_scope(factory) as s:
        camp = s.get_one(Campaign, cid)
        if camp.status != "done":
            raise SystemExit(f"campaign {camp.status}: {camp.error}")
        summary = dict(camp.summary or {})
        explained = s.scalar(
            select(func.count())
            .select_from(ShortlistItem)
            .where(ShortlistItem.campaign_id == cid, ShortlistItem.kind != "uncovered")
        )
    return {
        "seconds": seconds,
        "enterprises": summary["enterprises"],
        "institutes": summary["institutes"],
        "items": summary["items"],
        "explained": int(explained or 0),
        **counts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="campaigns, each in a fresh process")
    ap.add_argument("--k", type=int, default=1, help="partners per enterprise")
    ap.add_argument("--data-dir", type=Path, default=None, help="reuse/prepare this directory")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(one_campaign(args.data_dir, args.k, args.child)))  # noqa: T201
        return
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="duijie-bench-campaign-"))
    t0 = time.perf_counter()
    prepare(data_dir)
    setup_s = time.perf_counter() - t0
    runs = []
    for n in range(args.repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--data-dir", str(data_dir), "--k", str(args.k)]
            + ["--child", f"bench-{time.time_ns()}-{n}"],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r = runs[0]
    secs = [x["seconds"] for x in runs]
    print(  # noqa: T201
        f"bench_campaign: demo {r['enterprises']} enterprises x {r['institutes']} institutes, "
        f"k={args.k}, {r['items']} items ({r['explained']} explained) | campaign median "
        f"{statistics.median(secs):.2f}s (min {min(secs):.2f}s, {len(secs)} runs) | retrieval "
        f"{r['calls']} calls / {r['queries']} queries = {r['calls'] / max(r['enterprises'], 1):.2f}"
        f" per enterprise | setup {setup_s:.0f}s ({data_dir})"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
