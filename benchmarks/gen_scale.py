"""Scale data generator (and optional import benchmark) built on the demo vocabulary.

Writes importable files with the same formats as ``data/demo`` (organisations.csv in GB18030,
needs.csv UTF-8 with BOM, capabilities.jsonl), reproducible by seed, streaming so memory
stays flat::

    python benchmarks/gen_scale.py --capabilities 100000 --needs 20000 --seed 1 --out /tmp/scale
    python benchmarks/gen_scale.py --capabilities 20000 --needs 5000 --out /tmp/s --import

With ``--import`` the files are imported into a fresh SQLite store ``OUT/duijie.sqlite3``
(then re-imported to time the idempotent no-change path); the summary line reports rows/s and
the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import resource
import sys
import time
from pathlib import Path
from types import ModuleType

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


def import_files(out: Path) -> tuple[float, float, int]:
    """Import ``out`` into a fresh store twice; returns (first s, second s, rows)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from service.db import open_store
    from service.importing import Importer

    db = out / "duijie.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    _engine, factory = open_store(f"sqlite:///{db}")
    files = [out / "organisations.csv", out / "needs.csv", out / "capabilities.jsonl"]
    importer = Importer(factory, progress=lambda items, _desc: items)
    t0 = time.perf_counter()
    report = importer.import_paths(files)
    first = time.perf_counter() - t0
    if not report.ok:
        raise SystemExit("import failed: " + "; ".join(i.format() for i in report.issues[:5]))
    t0 = time.perf_counter()
    again = importer.import_paths(files)
    second = time.perf_counter() - t0
    if again.totals()["created"] or again.totals()["updated"]:
        raise SystemExit(f"re-import was not a no-op: {again.totals()}")
    return first, second, report.totals()["rows"]


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
        first, second, rows = import_files(args.out)
        summary += (
            f"; import {rows} rows in {first:.1f}s ({rows / first:.0f} rows/s), "
            f"no-change re-import {second:.1f}s; peak RSS {_peak_rss_mb():.0f} MB"
        )
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
