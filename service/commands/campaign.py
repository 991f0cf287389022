"""``duijie pair`` (结对子 campaigns) and ``duijie bounty respondents|rank-bids`` (揭榜).

``pair`` runs a campaign through :class:`service.jobs.campaign_runner.CampaignRunner` with
:func:`pairing_solve` — the same solve function the API can plug in with
``create_app(campaign_solve=pairing_solve)`` — so the shortlist the CLI writes is the one staff
review. Scores come from ``Recommender.enterprise_matrix`` (the score the suggestion pages
show); the pairing itself is :mod:`matcher.solvers` (min-cost flow, or fair mode).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from matcher.constraints import CAPABILITY_ORG_KINDS
from matcher.encoding import external_of
from matcher.errors import MatcherError, NoFeasibleAssignment
from matcher.solvers import PairingEncoder, SolveStatus, get_solver
from matcher.solvers.problem import top_candidates
from service.commands.match import open_handle
from service.db import session_scope
from service.models import Bounty, Campaign, Need, Organisation, ShortlistItem
from service.settings import load_settings
from service.snapshot import bid_infos, bounty_info

log = logging.getLogger(__name__)

# Rows of the score matrix computed per recommender call (progress and cancel granularity).
CHUNK = 200
INELIGIBLE = "INELIGIBLE"


def _pairs(values: Any) -> list[tuple[str, str]]:
    return [(str(e), str(i)) for e, i in (values or [])]


def pairing_solve(ctx: Any) -> dict[str, Any]:
    """Solve a campaign with :mod:`matcher.solvers` and write its shortlist.

    ``ctx.params``: ``k`` (1), ``capacity`` (5), ``capacity_overrides`` {org: n}, ``fair``
    (False), ``floor`` (none), ``top`` (50 candidates per enterprise), ``previous`` (campaign
    name; default: the row's ``previous_id``), ``stability_bonus`` (0.05 when there is a
    previous campaign), ``alternates`` (3), ``locked``
    and ``forbidden`` ([[enterprise, institute], ...] external ids), ``max_enterprises``.

    Items: ``assigned`` (rank 1..k by score, ``locked`` set for locks), ``alternate``
    (rank after them), ``uncovered`` (``problem`` = the Chinese diagnosis). Raises
    :class:`~matcher.errors.NoFeasibleAssignment` listing the locks that cannot be honoured.
    """
    p = ctx.params
    k = int(p.get("k", 1))
    capacity = int(p.get("capacity", 5))
    top = int(p.get("top", 50))
    fair = bool(p.get("fair", False))
    previous_name = p.get("previous")
    floor = p.get("floor")
    rec = ctx.recommender()
    with session_scope(ctx.session_factory) as s:
        stmt = (
            select(Organisation.external_id)
            .where(
                Organisation.kind == "enterprise",
                Organisation.status == "active",
                Organisation.id.in_(select(Need.org_id).where(Need.status == "open")),
            )
            .order_by(Organisation.id)
        )
        enterprises = [str(e) for e in s.scalars(stmt) if str(e) in rec.orgs]
        org_pk = {
            str(e): int(i) for i, e in s.execute(select(Organisation.id, Organisation.external_id))
        }
        need_pk = {str(e): int(i) for i, e in s.execute(select(Need.id, Need.external_id))}
        # The previous campaign: by name in params (CLI) or the row's previous_id (API).
        prev_id = (
            _campaign_id(s, str(previous_name))
            if previous_name
            else s.scalar(select(Campaign.previous_id).where(Campaign.id == ctx.campaign_id))
        )
        previous = _previous_pairs(s, prev_id) if prev_id is not None else []
    bonus = float(p.get("stability_bonus", 0.05 if prev_id is not None else 0.0))
    if p.get("max_enterprises") is not None:
        enterprises = enterprises[: int(p["max_enterprises"])]
    institutes = sorted(
        o.id for o in rec.orgs.values() if o.kind in CAPABILITY_ORG_KINDS and o.active
    )
    names = {o.id: o.name for o in rec.orgs.values()}

    # Dense scores chunk by chunk, then the sparse top-N the solver works on.
    rows, cols, vals, excluded, best_need = [], [], [], [], {}
    for lo in range(0, len(enterprises), CHUNK):
        ctx.report(0.8 * lo / max(len(enterprises), 1))
        chunk = enterprises[lo : lo + CHUNK]
        pm = rec.enterprise_matrix(chunk, institutes) if institutes else None
        if pm is None:
            continue
        r, c, v, ex = top_candidates(pm.scores, top, forbidden=pm.forbidden)
        rows.append(r + lo)
        cols.append(c)
        vals.append(v)
        excluded.append(ex + np.array([lo, 0]))
        for i, j in zip(r.tolist(), c.tolist(), strict=True):
            q = pm.best_query[i, j]
            if q is not None:
                best_need[(lo + i, j)] = str(q)
    ctx.report(0.85)
    enc = PairingEncoder(enterprises, institutes, institute_names=names)
    ex_all = np.concatenate(excluded) if excluded else np.zeros((0, 2), np.int64)
    ineligible = {(enterprises[i], institutes[j]): INELIGIBLE for i, j in ex_all.tolist()}
    rr = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cc = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    vv = np.concatenate(vals) if vals else np.zeros(0)
    problem = enc.encode(
        [(enterprises[i], institutes[j], s_) for i, j, s_ in zip(rr.tolist(), cc.tolist(), vv.tolist(), strict=True)],
        k=k,
        capacity=capacity,
        capacity_overrides={str(a): int(b) for a, b in (p.get("capacity_overrides") or {}).items()},
        floor=float(floor) if floor is not None else float("-inf"),
        locked=_pairs(p.get("locked")),
        forbidden=_pairs(p.get("forbidden")),
        ineligible=ineligible,
        previous=previous,
        stability_bonus=bonus,
        unknown="skip",
    )  # fmt: skip
    solver = get_solver("fair" if fair else "mincostflow", n_alternates=int(p.get("alternates", 3)))
    solution = solver.solve(problem)
    result = enc.decode(solution)
    if result.status is SolveStatus.INFEASIBLE:
        raise NoFeasibleAssignment(
            "锁定配对无法满足: "
            + "; ".join(f"{c.enterprise}–{c.institute}: {c.message}" for c in result.lock_conflicts)
        )
    ctx.report(0.95)
    e_row = {e: n for n, e in enumerate(enterprises)}
    i_col = {x: n for n, x in enumerate(institutes)}

    def need_of(e: str, i: str) -> int | None:
        key = best_need.get((e_row[e], i_col[i]))
        return need_pk.get(external_of(key)) if key else None

    def evidence(e: str, i: str, extra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
        """The same evidence format as the greedy runner (documents, keywords, reasons)."""
        key = best_need.get((e_row[e], i_col[i]))
        if key is None:
            return extra, {}
        try:
            sg = rec.explain_pair(key, i)
        except (MatcherError, KeyError):
            return extra, {}
        docs = [
            {
                "doc_id": external_of(ev.doc_id),
                "score": float(ev.score),
                "query_snippet": ev.query_snippet,
                "doc_snippet": ev.doc_snippet,
            }
            for ev in sg.evidence
        ]
        ev_dict = {
            "documents": docs,
            "shared_keywords": list(sg.shared_keywords),
            "reasons": list(sg.reasons),
            **extra,
        }
        return ev_dict, {name: float(v) for name, v in sg.features.items()}

    items: list[ShortlistItem] = []
    rank: dict[str, int] = {}
    for pr in result.pairs:
        rank[pr.enterprise] = rank.get(pr.enterprise, 0) + 1
        ev, feats = evidence(pr.enterprise, pr.institute, {"solver": solution.solver})
        items.append(
            ShortlistItem(
                campaign_id=ctx.campaign_id,
                enterprise_id=org_pk[pr.enterprise],
                institute_id=org_pk.get(pr.institute),
                need_id=need_of(pr.enterprise, pr.institute),
                score=pr.score,
                rank=rank[pr.enterprise],
                kind="assigned",
                locked=pr.locked,
                evidence=ev,
                features=feats,
            )
        )
    for e, alts in result.alternates.items():
        for a in alts:
            rank[e] = rank.get(e, 0) + 1
            ev, feats = evidence(e, a.institute, {"spare_capacity": a.spare})
            items.append(
                ShortlistItem(
                    campaign_id=ctx.campaign_id,
                    enterprise_id=org_pk[e],
                    institute_id=org_pk.get(a.institute),
                    need_id=need_of(e, a.institute),
                    score=a.score,
                    rank=rank[e],
                    kind="alternate",
                    evidence=ev,
                    features=feats,
                )
            )
    for u in result.uncovered:
        items.append(
            ShortlistItem(
                campaign_id=ctx.campaign_id,
                enterprise_id=org_pk[str(u.enterprise)],
                kind="uncovered",
                rank=rank.get(str(u.enterprise), 0) + 1,
                problem=u.message,
                evidence={
                    "reason_code": str(u.code),
                    "institutes": list(u.institutes),
                    "reasons": list(u.reasons),
                    "wanted": u.wanted,
                    "got": u.got,
                },
            )
        )
    with session_scope(ctx.session_factory) as s:
        s.add_all(items)
    churn = result.churn
    by_code: dict[str, int] = {}
    for u in result.uncovered:
        by_code[str(u.code)] = by_code.get(str(u.code), 0) + 1
    return {
        "solver": solution.solver,
        "status": str(result.status),
        "enterprises": len(enterprises),
        "institutes": len(institutes),
        "k": k,
        "capacity": capacity,
        "pairs": len(result.pairs),
        "uncovered": len(result.uncovered),
        "uncovered_by_reason": by_code,
        "objective": round(result.objective, 6),
        "min_affinity": result.min_affinity,
        "threshold": result.threshold,
        "churn": None
        if churn is None
        else {
            "kept": churn.kept,
            "changed": churn.changed,
            "new": churn.new,
            "dropped": churn.dropped,
        },
        "items": len(items),
    }


def _campaign_id(session: Session, name: str) -> int:
    cid = session.scalar(select(Campaign.id).where(Campaign.name == name))
    if cid is None:
        raise MatcherError(f"previous campaign {name!r} not found")
    return int(cid)


def _previous_pairs(session: Session, campaign_id: int) -> list[tuple[str, str]]:
    """Assigned, not rejected pairs of a campaign, as (enterprise, institute) external ids."""
    ent = aliased(Organisation)
    inst = aliased(Organisation)
    rows = session.execute(
        select(ent.external_id, inst.external_id)
        .select_from(ShortlistItem)
        .join(ent, ent.id == ShortlistItem.enterprise_id)
        .join(inst, inst.id == ShortlistItem.institute_id)
        .where(
            ShortlistItem.campaign_id == campaign_id,
            ShortlistItem.kind == "assigned",
            ShortlistItem.status != "rejected",
        )
    ).all()
    return [(str(e), str(i)) for e, i in rows]


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


def cmd_pair(args: argparse.Namespace) -> int:
    from service.jobs.campaign_runner import CampaignRunner

    settings = load_settings()
    handle = open_handle(settings)
    factory = handle.session_factory
    params: dict[str, Any] = {
        "k": args.k,
        "capacity": args.capacity,
        "fair": args.fair,
        "top": args.top,
        "alternates": args.alternates,
    }
    if args.capacity_override:
        params["capacity_overrides"] = dict(args.capacity_override)
    if args.floor is not None:
        params["floor"] = args.floor
    if args.previous:
        params["previous"] = args.previous
        params["stability_bonus"] = args.stability_bonus
    if args.lock:
        params["locked"] = args.lock
    if args.forbid:
        params["forbidden"] = args.forbid
    if args.max_enterprises is not None:
        params["max_enterprises"] = args.max_enterprises
    with session_scope(factory) as s:
        camp = s.scalar(select(Campaign).where(Campaign.name == args.campaign))
        if camp is None:
            prev_id = None
            if args.previous:
                prev_id = s.scalar(select(Campaign.id).where(Campaign.name == args.previous))
                if prev_id is None:
                    sys.stderr.write(f"未找到上一轮活动 {args.previous!r}\n")
                    return 1
            camp = Campaign(name=args.campaign, params=params, previous_id=prev_id)
            s.add(camp)
        elif camp.status not in ("created", "failed", "cancelled"):
            sys.stderr.write(
                f"活动 {args.campaign!r} 状态为 {camp.status}，不能重新运行（请新建活动）\n"
            )
            return 1
        else:
            camp.params = params
        s.flush()
        campaign_id = camp.id
    runner = CampaignRunner(session_factory=factory, recommender=handle.get, solve=pairing_solve)
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
