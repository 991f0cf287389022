"""``duijie guideline``: condense a collection round (or a date range) into directions.

The run is stored for staff (merge, split, rename, drop on the staff pages) and can be
written at once as the draft 指南建议 table (``--xlsx``); see :mod:`service.guideline`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from matcher.errors import IndexNotReady, MatcherError
from service.db import open_store, session_scope
from service.guideline import guideline_workbook, run_guideline
from service.models import GuidelineRun
from service.recommender import need_vectors_by_key
from service.settings import Settings, load_settings

log = logging.getLogger(__name__)


def _recommender(settings: Settings) -> Any | None:
    from service.commands.match import open_handle

    try:
        return open_handle(settings).get()
    except (IndexNotReady, MatcherError) as exc:
        log.warning("no recommender (%s): directions get no institutes", exc)
        return None


def cmd_guideline(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.round is None and args.date_from is None and args.date_to is None:
        sys.stderr.write("请用 --round 指定征集批次，或用 --from/--to 指定日期范围\n")
        return 2
    name = args.name or args.round or f"{args.date_from or ''}~{args.date_to or ''}"
    try:
        vectors = need_vectors_by_key(settings)
    except Exception as exc:  # no build yet: a readable message, not a traceback
        sys.stderr.write(f"索引未就绪（{exc}）：请先运行 duijie reindex\n")
        return 1
    rec = _recommender(settings) if args.institutes > 0 else None
    _engine, factory = open_store(settings.resolved_database_url)
    try:
        with session_scope(factory) as s:
            run = run_guideline(
                s, vectors, name=name, round_name=args.round, date_from=args.date_from,
                date_to=args.date_to, threshold=args.threshold, recommender=rec,
                n_institutes=args.institutes, dedup=not args.no_dedup,
            )  # fmt: skip
            summary, run_id = dict(run.summary), run.id
    except MatcherError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    out = sys.stdout
    out.write(
        f"凝练批次「{name}」：{summary['needs']} 项需求（建立索引 {summary['condensed']} 项），"
        f"{summary['fields']} 个领域，{summary['directions']} 个方向，疑似重复 "
        f"{summary['duplicate_pairs']} 对\n"
    )
    with factory() as s:
        run = s.get_one(GuidelineRun, run_id)
        for d in run.directions[: args.show]:
            out.write(f"  [{d.field}] {d.label}（{d.size} 项，{len(d.org_ids)} 家企业）\n")
        if args.xlsx:
            args.xlsx.write_bytes(guideline_workbook(s, run))
            out.write(f"已导出指南建议表：{args.xlsx}\n")
    return 0


def cmd_guideline_export(args: argparse.Namespace) -> int:
    settings = load_settings()
    _engine, factory = open_store(settings.resolved_database_url)
    with factory() as s:
        run = s.scalar(select(GuidelineRun).where(GuidelineRun.name == args.name))
        if run is None:
            sys.stderr.write(f"未找到凝练批次 {args.name!r}\n")
            return 1
        args.xlsx.write_bytes(guideline_workbook(s, run))
    sys.stdout.write(f"已导出指南建议表：{args.xlsx}\n")
    return 0


def register(subparsers: Any) -> None:
    g = subparsers.add_parser("guideline", help="指南凝练: condense a round into directions")
    g.add_argument("--round", metavar="NAME", help="collection round (征集批次) of the needs")
    g.add_argument("--from", dest="date_from", type=date.fromisoformat, metavar="YYYY-MM-DD")
    g.add_argument("--to", dest="date_to", type=date.fromisoformat, metavar="YYYY-MM-DD")
    g.add_argument("--name", help="name of the stored run (default: the round)")
    g.add_argument("--threshold", type=float, default=None, help="Ward cut (granularity)")
    g.add_argument("--institutes", type=int, default=5, help="institutes per direction (5)")
    g.add_argument("--no-dedup", action="store_true", help="skip near-duplicate detection")
    g.add_argument("--xlsx", type=Path, default=None, help="also write the 指南建议 table")
    g.add_argument("--show", type=int, default=20, help="directions to print")
    g.set_defaults(func=cmd_guideline)
    ge = subparsers.add_parser("guideline-export", help="export a stored run as XLSX")
    ge.add_argument("name")
    ge.add_argument("--xlsx", type=Path, required=True)
    ge.set_defaults(func=cmd_guideline_export)
