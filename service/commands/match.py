"""``duijie suggest``, ``duijie score`` and ``duijie train-ranker``: the matcher from the shell.

All three go through :class:`service.recommender.RecommenderHandle`, the same object the API
uses, so a score printed here equals the score the service shows for the same pair.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select

from matcher.encoding import cap_key, external_of, need_key
from matcher.errors import MatcherError
from matcher.features import FEATURE_LABELS
from matcher.types import RankedOrgs, StaffDecision, Suggestion
from service.db import open_store
from service.recommender import RANKER_DIR, RecommenderHandle
from service.settings import Settings, load_settings

log = logging.getLogger(__name__)


def open_handle(settings: Settings) -> RecommenderHandle:
    """A recommender handle over the configured store and index.

    Query vectors are kept in the index directory's embedding cache (``DUIJIE_PERSIST_QUERIES``),
    so a command run again (``duijie score --pairs``, ``duijie pair`` on the same needs)
    encodes nothing it has encoded before; each distinct text is encoded once per run anyway
    (in-memory memo of ``DUIJIE_QUERY_CACHE_SIZE`` queries, as in the service).
    """
    _engine, factory = open_store(settings.resolved_database_url)
    return RecommenderHandle(settings, factory)


def _clip(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def format_suggestion(s: Suggestion, rec: Any, out: TextIO) -> None:
    """One ranked organisation in readable Chinese, with its evidence and score breakdown."""
    org = rec.orgs[s.org_id]
    region = "区内" if org.in_region else "区外"
    out.write(f"{s.rank:>2}. {org.name}（{s.org_id}，{region}）  综合得分 {s.score:.3f}\n")
    for ev in s.evidence:
        doc = rec.documents.get(ev.doc_id)
        title = doc.title if doc else ev.doc_id
        out.write(
            f"    依据 {external_of(ev.doc_id)}「{_clip(title, 40)}」 相似度 {ev.score:.3f}\n"
        )
        if ev.query_snippet:
            out.write(f"      需求原文：{_clip(ev.query_snippet)}\n")
        out.write(f"      成果原文：{_clip(ev.doc_snippet)}\n")
    if s.shared_keywords:
        out.write(f"    共同关键词：{'、'.join(s.shared_keywords[:8])}\n")
    parts = [
        f"{FEATURE_LABELS.get(name, name)} {value:+.3f}"
        for name, value in sorted(s.contributions.items(), key=lambda kv: -abs(kv[1]))
        if abs(value) >= 0.0005
    ]
    if parts:
        out.write(f"    得分构成：{' · '.join(parts)}\n")


def print_ranked(ranked: RankedOrgs, rec: Any, out: TextIO) -> None:
    if not ranked.suggestions:
        out.write("没有符合条件的推荐单位。\n")
    for s in ranked.suggestions:
        format_suggestion(s, rec, out)
    if ranked.excluded:
        out.write("\n已排除的高分单位：\n")
        for e in ranked.excluded:
            name = rec.orgs[e.org_id].name if e.org_id in rec.orgs else e.org_id
            member = f"（成员 {e.member_id}）" if e.member_id else ""
            detail = f"：{e.detail}" if e.detail else ""
            out.write(f"  - {name}{member} —— {e.label}{detail}\n")


def cmd_suggest(args: argparse.Namespace) -> int:
    settings = load_settings()
    rec = open_handle(settings).get()
    t0 = time.perf_counter()
    out = sys.stdout
    try:
        if args.need:
            key = need_key(args.need)
            ranked = rec.rank_for_need(key, args.k)
            need = rec.documents[key]
            owner = rec.orgs[need.org_id].name
            out.write(
                f"需求 {args.need}「{need.title}」（{owner}）\n推荐合作单位（前 {args.k}）：\n"
            )
            print_ranked(ranked, rec, out)
        elif args.capability:
            key = cap_key(args.capability)
            cap = rec.documents[key]
            out.write(f"成果 {args.capability}「{cap.title}」\n可能承接的区内企业：\n")
            for s in rec.enterprises_for_capability(key, args.k, require_in_region=True):
                format_suggestion(s, rec, out)
        elif args.enterprise:
            out.write(f"企业 {rec.orgs[args.enterprise].name} 的推荐合作单位：\n")
            for s in rec.suggest_for_enterprise(args.enterprise, args.k):
                format_suggestion(s, rec, out)
        else:
            out.write(f"检索文本：{_clip(args.text)}\n")
            for s in rec.suggest_for_text(args.text, args.k):
                format_suggestion(s, rec, out)
    except KeyError as exc:
        sys.stderr.write(f"未找到：{exc.args[0]}\n")
        return 1
    except MatcherError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    log.info("suggestion took %.0f ms", (time.perf_counter() - t0) * 1000)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score (need_id, org_id) pairs from a CSV (external ids) → CSV need_id,org_id,score.

    One retrieval per distinct need (``score_pairs`` groups the pairs by need); query
    vectors come from the persistent embedding cache when the need was scored before."""
    settings = load_settings()
    t0 = time.perf_counter()
    rec = open_handle(settings).get()
    pairs: list[tuple[str, str]] = []
    with open(args.pairs, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"need_id", "org_id"} - set(reader.fieldnames or ())
        if missing:
            sys.stderr.write(f"{args.pairs}: missing column(s) {sorted(missing)}\n")
            return 2
        for row_no, row in enumerate(reader, start=2):
            need, org = row["need_id"].strip(), row["org_id"].strip()
            if need_key(need) not in rec.documents or org not in rec.orgs:
                sys.stderr.write(f"{args.pairs}:{row_no}: unknown need {need!r} or org {org!r}\n")
                return 1
            pairs.append((need, org))
    t1 = time.perf_counter()
    scores = rec.score_pairs([(need_key(n), o) for n, o in pairs])
    log.info(
        "scored %d pairs of %d needs in %.1fs (load %.1fs)",
        len(pairs),
        len({n for n, _ in pairs}),
        time.perf_counter() - t1,
        t1 - t0,
    )
    out = open(args.out, "w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(["need_id", "org_id", "score"])
        for (need, org), score in zip(pairs, scores, strict=True):
            writer.writerow([need, org, f"{score:.6f}"])
    finally:
        if args.out:
            out.close()
    return 0


def staff_decisions(session: Any) -> list[StaffDecision]:
    """Training labels: approved/rejected shortlist items with a need, and finished
    introductions (对接申请: signed = positive, not reached = negative)."""
    from service import models as m
    from service.portal_crud import introduction_decisions

    rows = session.execute(
        select(m.Need.external_id, m.Organisation.external_id, m.ShortlistItem.status)
        .join(m.Need, m.Need.id == m.ShortlistItem.need_id)
        .join(m.Organisation, m.Organisation.id == m.ShortlistItem.institute_id)
        .where(m.ShortlistItem.status.in_(("approved", "rejected")))
    ).all()
    shortlist = [StaffDecision(need_key(n), o, status == "approved") for n, o, status in rows]
    return shortlist + introduction_decisions(session)


def cmd_train_ranker(args: argparse.Namespace) -> int:
    from matcher.rankers.learned import train_with_holdout

    settings = load_settings()
    handle = open_handle(settings)
    rec = handle.get()
    with handle.session_factory() as session:
        decisions = staff_decisions(session)
    n_pos = sum(d.approved for d in decisions)
    if n_pos < args.min_labels or len(decisions) - n_pos < args.min_labels:
        sys.stderr.write(
            f"not enough staff decisions to train: {n_pos} approved, "
            f"{len(decisions) - n_pos} rejected (need ≥ {args.min_labels} of each)\n"
        )
        return 1
    X, y, groups = rec.training_data(decisions)
    ranker, metrics = train_with_holdout(X, y, groups, random_state=args.seed)
    out_dir = settings.resolved_index_dir / RANKER_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"ranker-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    ranker.save(path)
    sys.stdout.write(
        json.dumps({"saved": str(path), "labels": len(decisions), **metrics}, ensure_ascii=False)
        + "\n"
    )
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("suggest", help="推荐合作单位: ranked partners with evidence")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--need", metavar="ID", help="need external id → institutes")
    target.add_argument("--capability", metavar="ID", help="capability id → in-region enterprises")
    target.add_argument("--enterprise", metavar="ORG_ID", help="enterprise → partners, all needs")
    target.add_argument("--text", help="free text → institutes")
    p.add_argument("-k", type=int, default=10, help="how many (default 10)")
    p.set_defaults(func=cmd_suggest)

    p = subparsers.add_parser("score", help="score explicit (need, organisation) pairs")
    p.add_argument("--pairs", type=Path, required=True, help="CSV with columns need_id,org_id")
    p.add_argument("--out", type=Path, help="output CSV (default: stdout)")
    p.set_defaults(func=cmd_score)

    p = subparsers.add_parser("train-ranker", help="learn ranking weights from staff decisions")
    p.add_argument("--min-labels", type=int, default=5, help="minimum approved and rejected")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train_ranker)
