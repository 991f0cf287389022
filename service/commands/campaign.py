"""``duijie pair`` (结对子 campaigns) and ``duijie bounty respondents|rank-bids`` (揭榜).

``pair`` validates its options as :class:`service.jobs.pairing.PairingParams` and runs the
campaign through :class:`service.jobs.campaign_runner.CampaignRunner` with the pairing engine
(:func:`service.jobs.pairing.pairing_solve`), the same path as the API, so the shortlist the
CLI writes is the one staff review.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.errors import MatcherError
from service.commands.match import open_handle
from service.db import session_scope
from service.jobs.pairing import PairingParams
from service.models import Bounty, Campaign, Organisation, ShortlistItem
from service.settings import load_settings
from service.snapshot import bid_infos, bounty_info

log = logging.getLogger(__name__)


def _split_pair(text: str) -> list[str]:
    e, sep, i = text.partition(":")
    if not sep or not e or not i:
        raise argparse.ArgumentTypeError(f"expected ENTERPRISE:INSTITUTE, got {text!r}")
    return [e, i]


def _override(text: str) -> tuple[str, int]:
    org, sep, n = text.partition("=")
    if not sep or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected INSTITUTE=N, got {text!r}")
    return org, int(n)


def pairing_params(args: argparse.Namespace) -> PairingParams:
    """The campaign parameters of ``duijie pair``'s options (ValidationError when invalid)."""
    values: dict[str, Any] = {
        "k": args.k,
        "capacity": args.capacity,
        "fair": args.fair,
        "top": args.top,
        "alternates": args.alternates,
    }
    if args.solver:
        values["solver"] = args.solver
    if args.capacity_override:
        values["capacity_overrides"] = dict(args.capacity_override)
    if args.floor is not None:
        values["floor"] = args.floor
    if args.previous:
        values["previous"] = args.previous
        values["stability_bonus"] = args.stability_bonus
    if args.lock:
        values["locked"] = args.lock
    if args.forbid:
        values["forbidden"] = args.forbid
    if args.max_enterprises is not None:
        values["max_enterprises"] = args.max_enterprises
    return PairingParams.model_validate(values)


def _invalid(exc: ValidationError) -> str:
    parts = [
        f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" if e["loc"] else str(e["msg"])
        for e in exc.errors()
    ]
    return "参数无效：" + "；".join(parts)


def cmd_pair(args: argparse.Namespace) -> int:
    from service.jobs.campaign_runner import CampaignRunner

    try:
        params = pairing_params(args)
    except ValidationError as exc:
        sys.stderr.write(_invalid(exc) + "\n")
        return 2
    settings = load_settings()
    # Need vectors persist in the index's embedding cache: a rerun encodes no need again.
    handle = open_handle(settings)
    factory = handle.session_factory
    with session_scope(factory) as s:
        camp = s.scalar(select(Campaign).where(Campaign.name == args.campaign))
        if camp is None:
            prev_id = None
            if args.previous:
                prev_id = s.scalar(select(Campaign.id).where(Campaign.name == args.previous))
                if prev_id is None:
                    sys.stderr.write(f"未找到上一轮活动 {args.previous!r}\n")
                    return 1
            camp = Campaign(name=args.campaign, params=params.stored(), previous_id=prev_id)
            s.add(camp)
        elif camp.status not in ("created", "failed", "cancelled"):
            sys.stderr.write(
                f"活动 {args.campaign!r} 状态为 {camp.status}，不能重新运行（请新建活动）\n"
            )
            return 1
        else:
            camp.params = params.stored()
        s.flush()
        campaign_id = camp.id
    runner = CampaignRunner(session_factory=factory, recommender=handle.get)
    try:
        runner.start(campaign_id)
        runner.wait(campaign_id)
    finally:
        runner.shutdown()
    with session_scope(factory) as s:
        camp = s.get_one(Campaign, campaign_id)
        status, summary, error = camp.status, dict(camp.summary or {}), camp.error
        uncovered = s.execute(
            select(Organisation.name, ShortlistItem.problem)
            .join(Organisation, Organisation.id == ShortlistItem.enterprise_id)
            .where(ShortlistItem.campaign_id == campaign_id, ShortlistItem.kind == "uncovered")
            .order_by(ShortlistItem.id)
        ).all()
    if status != "done":
        sys.stderr.write(f"活动 {args.campaign} 运行失败（{status}）：{error}\n")
        return 1
    out = sys.stdout
    out.write(
        f"活动 {args.campaign}：{summary['enterprises']} 家企业，{summary['institutes']} 家机构，"
        f"k={summary['k']}，名额 {summary['capacity']}，求解器 {summary['solver']}\n"
        f"状态 {summary['status']}：配对 {summary['pairs']} 对，总匹配度 {summary['objective']:.3f}"
    )
    if summary.get("min_affinity") is not None:
        out.write(f"，最低匹配度 {summary['min_affinity']:.3f}")
    out.write("\n")
    if summary.get("churn"):
        c = summary["churn"]
        out.write(
            f"与上一轮相比：保留 {c['kept']}，更换 {c['changed']}，新增 {c['new']}，"
            f"取消 {c['dropped']}\n"
        )
    if uncovered:
        out.write(f"未满足的企业 {len(uncovered)} 家：\n")
        for name, problem in uncovered[: args.show]:
            out.write(f"  - {name}：{problem}\n")
        if len(uncovered) > args.show:
            out.write(f"  … 另有 {len(uncovered) - args.show} 家\n")
    return 0


def _bounty(session: Session, external_id: str) -> Bounty | None:
    return session.scalar(select(Bounty).where(Bounty.external_id == external_id))


def cmd_bounty_respondents(args: argparse.Namespace) -> int:
    from service.commands.match import print_ranked

    settings = load_settings()
    handle = open_handle(settings)
    with session_scope(handle.session_factory) as s:
        bounty = _bounty(s, args.id)
        if bounty is None:
            sys.stderr.write(f"未找到榜单 {args.id}\n")
            return 1
        info = bounty_info(s, bounty)
    rec = handle.get()
    try:
        ranked = rec.respondents_for_bounty(info, k=args.k)
    except MatcherError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(f"榜单 {info.id}「{info.title}」推荐揭榜单位（前 {args.k}）：\n")
    print_ranked(ranked, rec, sys.stdout)
    if info.kind == "tackle":
        print_consortia(rec.consortia_for_bounty(info), rec, sys.stdout)
    return 0


def print_consortia(result: Any, rec: Any, out: Any) -> None:
    """Consortium suggestions: who leads, who joins, which member covers which aspect."""
    if not result.teams:
        return

    def name(o: str) -> str:
        return str(rec.orgs[o].name) if o in rec.orgs else o

    out.write("\n建议组建联合体揭榜：\n")
    for n, team in enumerate(result.teams, start=1):
        partners = "、".join(name(p) for p in team.partners)
        out.write(
            f"{n}. 牵头 {name(team.lead)}，联合 {partners}  "
            f"覆盖度 {team.coverage:.2f}（单独揭榜最高 {team.coverage - team.gain:.2f}）\n"
        )
        for c in team.covers:
            out.write(f"    「{c.label[:40]}」→ {name(c.org_id)}（{c.similarity:.2f}）\n")


def cmd_bounty_rank_bids(args: argparse.Namespace) -> int:
    from matcher.bids import BidWeights, rank_bids
    from matcher.pipeline import bid_inputs

    weights = BidWeights(*args.weights) if args.weights else BidWeights()
    settings = load_settings()
    handle = open_handle(settings)
    with session_scope(handle.session_factory) as s:
        bounty = _bounty(s, args.id)
        if bounty is None:
            sys.stderr.write(f"未找到榜单 {args.id}\n")
            return 1
        info = bounty_info(s, bounty)
        infos = bid_infos(s, bounty)
        from service.funding import funding_splits, priority_rule

        funding = funding_splits(s, bounty)
    if not infos:
        sys.stdout.write(f"榜单 {info.id} 暂无申报。\n")
        return 0
    rec = handle.get()
    try:
        inputs = bid_inputs(rec, info, infos)
    except MatcherError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    try:
        ranking = rank_bids(
            infos,
            affinity=inputs.affinity,
            similarity=inputs.similarity,
            budget=info.budget,
            weights=weights,
            method=args.method,
            eligibility=inputs.reasons,
            ineligible="exclude" if args.exclude_ineligible else "rank_last",
            funding=funding,
            priority=priority_rule(settings),
        )
    except MatcherError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    out = sys.stdout
    out.write(
        f"榜单 {info.id}「{info.title}」申报排序（{args.method}，基准价 "
        f"{ranking.benchmark_price if ranking.benchmark_price is not None else '-'}）：\n"
    )
    out.write("名次  申报        报价      匹配度  方案相似  成熟度  价格得分  综合    说明\n")
    for b in (*ranking.ranked, *ranking.excluded):
        rank = str(b.rank) if b.rank is not None and b.eligible else "-"
        out.write(
            f"{rank:>4}  {b.bid_id:<10}  {b.price:>8.2f}  {b.affinity:6.3f}  {b.similarity:8.3f}"
            f"  {b.maturity:6.3f}  {b.price_score:8.3f}  {b.total:6.3f}  {'优先支持 ' if b.priority else ''}{b.reason_text}\n"
        )
    if args.xlsx:
        args.xlsx.write_bytes(bid_ranking_workbook(info.id, ranking))
        out.write(f"已导出申报排名：{args.xlsx}\n")
    return 0


RANKING_HEADERS: tuple[tuple[str, str], ...] = (
    ("rank", "名次"), ("bid", "申报编号"), ("respondent", "揭榜单位"), ("price", "报价(万元)"),
    ("affinity", "匹配度"), ("similarity", "方案相似度"), ("maturity", "成熟度"),
    ("price_score", "价格得分"), ("total", "综合得分"), ("academic_share", "高校院所经费占比"),
    ("priority", "优先支持"), ("reasons", "说明"),
)  # fmt: skip


def bid_ranking_workbook(bounty_id: str, ranking: Any) -> bytes:
    """The ranked bids of one bounty as XLSX (one row per bid, 优先支持 flagged)."""
    import io

    from openpyxl import Workbook

    from service.formats import neutralise_cell

    wb = Workbook()
    ws = wb.active
    ws.title = "申报排名"
    ws.append([neutralise_cell(f"榜单 {bounty_id} 申报排名")])
    ws.append([label for _, label in RANKING_HEADERS])
    for row in ranking.table():
        ws.append([neutralise_cell(row.get(key)) for key, _ in RANKING_HEADERS])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("pair", help="结对子: pair enterprises with institutes")
    p.add_argument("--campaign", required=True, metavar="NAME", help="campaign name (created)")
    p.add_argument("--k", type=int, default=1, help="partners per enterprise (default 1)")
    p.add_argument("--capacity", type=int, default=5, help="enterprises per institute (5)")
    p.add_argument("--capacity-override", type=_override, action="append", metavar="INSTITUTE=N")
    p.add_argument("--fair", action="store_true", help="max-min affinity first, then total")
    p.add_argument("--solver", default=None, help="solver name (mincostflow, fair, lp)")
    p.add_argument("--previous", metavar="NAME", help="last campaign: keep its pairs if good")
    p.add_argument("--stability-bonus", type=float, default=0.05, help="bonus on kept pairs")
    p.add_argument("--floor", type=float, default=None, help="minimum affinity of a pair")
    p.add_argument("--top", type=int, default=50, help="candidates per enterprise (50)")
    p.add_argument("--alternates", type=int, default=3, help="alternates per enterprise (3)")
    p.add_argument("--lock", type=_split_pair, action="append", metavar="ENT:INST")
    p.add_argument("--forbid", type=_split_pair, action="append", metavar="ENT:INST")
    p.add_argument("--max-enterprises", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--show", type=int, default=20, help="uncovered enterprises to print")
    p.set_defaults(func=cmd_pair)

    b = subparsers.add_parser("bounty", help="揭榜: respondents and bid ranking")
    bsub = b.add_subparsers(dest="bounty_command", metavar="ACTION", required=True)
    r = bsub.add_parser("respondents", help="recommended respondents of a bounty")
    r.add_argument("id", help="bounty external id")
    r.add_argument("--k", type=int, default=10)
    r.set_defaults(func=cmd_bounty_respondents)
    rb = bsub.add_parser("rank-bids", help="rank a bounty's bids (docs/bid_scoring.md)")
    rb.add_argument("id", help="bounty external id")
    rb.add_argument("--method", choices=("lowest", "budget"), default="lowest")
    rb.add_argument(
        "--weights",
        type=float,
        nargs=4,
        metavar=("AFF", "SIM", "MAT", "PRICE"),
        help="weights summing to 1 (default 0.25 0.25 0.10 0.40)",
    )
    rb.add_argument("--exclude-ineligible", action="store_true")
    rb.add_argument("--xlsx", type=Path, default=None, help="also write the ranking as XLSX")
    rb.set_defaults(func=cmd_bounty_rank_bids)
