"""Scale data generator (and optional import benchmark) built on the demo vocabulary.

Writes importable files with the same formats as ``data/demo`` (organisations.csv in GB18030,
needs.csv UTF-8 with BOM, capabilities.jsonl), reproducible by seed, streaming so memory
stays flat::

    python benchmarks/gen_scale.py --capabilities 100000 --needs 20000 --seed 1 --out /tmp/scale
    python benchmarks/gen_scale.py --capabilities 20000 --needs 5000 --out /tmp/s --import

With ``--import`` the files are imported into a fresh SQLite store ``OUT/duijie.sqlite3``
(then re-imported to time the idempotent no-change path) while another writer makes a tiny
write every 100 ms; the summary line reports rows/s, the longest write transaction of the
import, the other writer's worst latency and failures, and the peak resident memory.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import resource
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def load_gen_demo() -> ModuleType:
    """``scripts/gen_demo.py`` as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_demo", REPO / "scripts" / "gen_demo.py")
    if spec is None or spec.loader is None:
        raise ImportError("scripts/gen_demo.py not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_demo"] = module
    spec.loader.exec_module(module)
    return module


def generate(out: Path, *, capabilities: int, needs: int, seed: int) -> dict[str, int]:
    """Write organisations, needs and capabilities for the requested sizes into ``out``."""
    gen = load_gen_demo()
    rng = random.Random(seed)
    # ~1.7 needs per in-region enterprise and ~150 capabilities per research organisation.
    enterprise_scale = max(1, round(needs / 330))
    extra_academia = max(0, capabilities // 150 - len(gen.ACADEMIA))
    orgs = gen.generate_organisations(
        rng, enterprise_scale=enterprise_scale, extra_academia=extra_academia
    )
    enterprises = [o for o in orgs if o.kind == "enterprise" and o.in_region]
    research = [o for o in orgs if o.kind in ("university", "institute", "company")]
    out.mkdir(parents=True, exist_ok=True)
    return {
        "organisations": gen.write_csv(
            out / "organisations.csv", gen.ORG_HEADERS, gen.org_rows(orgs), "gb18030"
        ),
        "needs": gen.write_csv(
            out / "needs.csv",
            gen.NEED_HEADERS,
            gen.need_rows(gen.iter_needs(rng, enterprises, needs)),
            "utf-8-sig",
        ),
        "capabilities": gen.write_jsonl(
            out / "capabilities.jsonl", gen.iter_capabilities(rng, research, capabilities)
        ),
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _Probe:
    """Another writer during the import: one tiny write transaction every 100 ms.

    Records its worst latency and any failure (``database is locked``), i.e. how long the
    import ever kept the store's write lock from others.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.worst = 0.0
        self.failures = 0
        self.writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from sqlalchemy import text

        from service.db import make_engine

        engine = make_engine(self.url, lock_timeout_s=5.0)
        while not self._stop.wait(0.1):
            t0 = time.perf_counter()
            try:
                with engine.begin() as conn:
                    conn.execute(text("UPDATE organisations SET city = city WHERE id = 1"))
                self.writes += 1
            except Exception:  # noqa: BLE001 - counted, the benchmark reports it
                self.failures += 1
            self.worst = max(self.worst, time.perf_counter() - t0)
        engine.dispose()

    def __enter__(self) -> _Probe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def import_files(out: Path) -> dict[str, float]:
    """Import ``out`` into a fresh store twice (a concurrent writer probing the lock)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from service.db import open_store
    from service.importing import Importer
    from service.importing import write as import_write

    db = out / "duijie.sqlite3"
    for suffix in ("", "-wal", "-shm", ".import-lock"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    _engine, factory = open_store(url)
    files = [out / "organisations.csv", out / "needs.csv", out / "capabilities.jsonl"]
    longest = [0.0]
    original = import_write.Writer.transaction

    def timed(self: Any, work: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(self, work)
        finally:
            longest[0] = max(longest[0], time.perf_counter() - t0)

    importer = Importer(factory, progress=lambda items, *_a, **_k: items)
    import_write.Writer.transaction = timed  # type: ignore[method-assign]
    try:
        with _Probe(url) as probe:
            t0 = time.perf_counter()
            report = importer.import_paths(files)
            first = time.perf_counter() - t0
    finally:
        import_write.Writer.transaction = original  # type: ignore[method-assign]
    if not report.ok:
        raise SystemExit("import failed: " + "; ".join(i.format() for i in report.issues[:5]))
    t0 = time.perf_counter()
    again = importer.import_paths(files)
    second = time.perf_counter() - t0
    if again.totals()["created"] or again.totals()["updated"]:
        raise SystemExit(f"re-import was not a no-op: {again.totals()}")
    return {
        "first": first,
        "second": second,
        "rows": report.totals()["rows"],
        "longest_tx": longest[0],
        "probe_worst": probe.worst,
        "probe_failures": probe.failures,
        "probe_writes": probe.writes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="scale data generator for duijie")
    parser.add_argument("--capabilities", type=int, default=100_000)
    parser.add_argument("--needs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--import", dest="do_import", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    counts = generate(args.out, capabilities=args.capabilities, needs=args.needs, seed=args.seed)
    gen_s = time.perf_counter() - t0
    names = ("organisations.csv", "needs.csv", "capabilities.jsonl")
    size_mb = sum((args.out / n).stat().st_size for n in names) / 2**20
    summary = f"gen_scale: {counts} in {gen_s:.1f}s ({size_mb:.1f} MB) -> {args.out}"
    if args.do_import:
        m = import_files(args.out)
        summary += (
            f"; import {m['rows']:.0f} rows in {m['first']:.1f}s ({m['rows'] / m['first']:.0f} "
            f"rows/s), no-change re-import {m['second']:.1f}s; longest write transaction "
            f"{m['longest_tx'] * 1000:.0f} ms; concurrent writer: {m['probe_writes']:.0f} writes, "
            f"worst {m['probe_worst'] * 1000:.0f} ms, {m['probe_failures']:.0f} failed; "
            f"peak RSS {_peak_rss_mb():.0f} MB"
        )
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
