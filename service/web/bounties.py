"""Bounty pages (揭榜榜单): the list, and one bounty with its bids ranked and its respondents.

Bids are ranked by :func:`matcher.bids.rank_bids` (quality + price, budget cap). Without an
index the page says 索引未就绪 and ranks bids by price and budget only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from matcher.types import BidInfo, RankedOrgs
from service.api.deps import SessionDep
from service.models import Bid, Bounty, Organisation
from service.web.common import IdPath, StaffUserDep, error_page, page_router, render

log = logging.getLogger(__name__)

router = page_router("/staff")

BID_BREAKDOWN_LABELS: tuple[tuple[str, str], ...] = (
    ("affinity", "相对匹配度"),
    ("similarity", "方案相似度"),
    ("maturity", "成熟度"),
    ("price_score", "价格得分"),
)


@router.get("/bounties", name="staff_bounties", response_class=HTMLResponse)
def staff_bounties(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    """揭榜榜单 list."""
    bounties = db.scalars(
        select(Bounty).options(selectinload(Bounty.poster)).order_by(Bounty.created_at.desc())
    ).all()
    counted = db.execute(select(Bid.bounty_id, func.count()).group_by(Bid.bounty_id)).all()
    n_bids: dict[int, int] = {row[0]: row[1] for row in counted}
    rows = [{"bounty": b, "n_bids": n_bids.get(b.id, 0)} for b in bounties]
    return render(request, "staff/bounties.html", {"rows": rows}, user=user)


@router.get("/bounties/{bounty_id}", name="staff_bounty", response_class=HTMLResponse)
def staff_bounty(
    bounty_id: IdPath, request: Request, db: SessionDep, user: StaffUserDep
) -> Response:
    """揭榜榜单 detail: bids ranked with score breakdown, recommended and excluded respondents."""
    bounty = db.get(Bounty, bounty_id)
    if bounty is None:
        return error_page(request, 404, "未找到", "该榜单不存在。", user=user)
    context = bounty_context(request, db, bounty)
    from service.web.bounty_state import MOVED_FLASH, state_context

    context.update(state_context(db, bounty, user))
    flashes = [("ok", MOVED_FLASH)] if request.query_params.get("moved") else []
    return render(
        request, "staff/bounty.html", {"bounty": bounty, **context}, user=user, flashes=flashes
    )


def _current_recommender(request: Request) -> Any:
    """The app's recommender; raises IndexNotReady when no index build is loaded."""
    from matcher.errors import IndexNotReady

    handle = getattr(request.app.state, "recommender", None)
    if handle is None:
        raise IndexNotReady("no recommender configured")
    return handle.get()


def _label_exclusion(exc: Any, names: dict[str, str]) -> str:
    label = str(getattr(exc, "label", "") or getattr(exc, "code", ""))
    member = getattr(exc, "member_id", None)
    if member:
        label += f"(联合体成员 {names.get(member, member)})"
    return label


def _org_names(db: Session, external_ids: Any) -> dict[str, str]:
    rows = db.scalars(select(Organisation).where(Organisation.external_id.in_(external_ids)))
    return {o.external_id: o.name for o in rows}


def _bid_rows(
    bids: Sequence[Bid],
    infos: Sequence[BidInfo],
    names: dict[str, str],
    inputs: tuple[dict[str, float], dict[str, float], dict[str, list[str]]],
    budget: float | None,
    funding: Any = None,
    priority: Any = None,
) -> list[dict[str, Any]]:
    """The ranked bids (eligible first, then excluded with reasons) as template rows."""
    from matcher.bids import rank_bids, reason_label

    affinity, similarity, reasons = inputs
    ranking = rank_bids(
        infos, affinity=affinity, similarity=similarity, budget=budget, eligibility=reasons,
        funding=funding, priority=priority,
    )  # fmt: skip
    by_id = {b.external_id: b for b in bids}
    rows = []
    for sb in (*ranking.ranked, *ranking.excluded):
        bid = by_id[sb.bid_id]
        rows.append(
            {
                "rank": sb.rank if sb.eligible else None,
                "respondent": bid.respondent.name,
                "members": [names.get(m, m) for m in (bid.members or [])],
                "price": sb.price,
                "score": sb.total,
                "breakdown": [(label, getattr(sb, key)) for key, label in BID_BREAKDOWN_LABELS],
                "excluded": [reason_label(c) for c in sb.reasons],
                "priority": sb.priority,
                "academic_share": sb.academic_share,
                "status": bid.status,
            }
        )
    return rows


def _respondent_rows(
    db: Session, ranked: RankedOrgs, names: dict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The recommended respondents and the excluded high scorers as template rows."""
    ids = [s.org_id for s in ranked.suggestions] + [e.org_id for e in ranked.excluded]
    names.update(_org_names(db, ids))
    eligible = [
        {
            "rank": s.rank,
            "name": names.get(s.org_id, s.org_id),
            "score": s.score,
            "evidence": [e.doc_snippet for e in s.evidence[:2] if e.doc_snippet],
        }
        for s in ranked.suggestions
    ]
    excluded = [
        {
            "name": names.get(e.org_id, e.org_id),
            "label": _label_exclusion(e, names),
            "detail": e.detail,
            "score": e.score,
        }
        for e in ranked.excluded
    ]
    return eligible, excluded


def bounty_context(request: Request, db: Session, bounty: Bounty) -> dict[str, Any]:
    """Template context of the bounty page.

    With the recommender available, each bidder's affinity is its score from
    ``Recommender.respondents_for_bounty`` restricted to the bidders, divided by the best score
    among bidders and recommended respondents (ranker scores are unbounded; consortium members
    checked by the group rule; excluded bidders are ineligible with their reasons), proposal
    similarity comes from the recommender's sentence encoder when it has one, and the best
    eligible respondents and excluded high scorers are listed.
    """
    from matcher.errors import IndexNotReady, MatcherError
    from matcher.pipeline import bid_inputs
    from service.snapshot import bounty_info

    bids = db.scalars(
        select(Bid)
        .where(Bid.bounty_id == bounty.id)
        .options(selectinload(Bid.respondent))
        .order_by(Bid.submitted_at, Bid.id)
    ).all()
    names = _org_names(db, {m for b in bids for m in (b.members or [])})
    names.update({b.respondent.external_id: b.respondent.name for b in bids})
    infos = [
        BidInfo(
            id=b.external_id,
            bounty_id=bounty.external_id,
            respondent_org_id=b.respondent.external_id,
            price=b.price,
            proposal=b.proposal or "",
            members=tuple(b.members or ()),
        )
        for b in bids
    ]
    ctx: dict[str, Any] = {
        "bids": [],
        "eligible": [],
        "excluded": [],
        "index_not_ready": False,
        "recommend_error": None,
        "ranking_note": None,
    }
    inputs: tuple[dict[str, float], dict[str, float], dict[str, list[str]]] = (
        dict.fromkeys((i.id for i in infos), 0.0),
        dict.fromkeys((i.id for i in infos), 0.0),
        {},
    )
    ranked = None
    try:
        rec = _current_recommender(request)
        info = bounty_info(db, bounty)
        ranked = rec.respondents_for_bounty(info, k=10)
        if infos:
            got = bid_inputs(rec, info, infos)
            inputs = (got.affinity, got.similarity, got.reasons)
    except IndexNotReady:
        ctx["index_not_ready"] = True
        ctx["ranking_note"] = "索引未就绪:申报暂仅按报价与预算上限排序,匹配度未计入。"
    except (MatcherError, ValueError) as exc:
        log.warning("bounty %s: recommender failed: %s", bounty.external_id, exc)
        ctx["recommend_error"] = "推荐暂不可用:该榜单信息不完整或匹配出错,请联系管理员。"
        ctx["ranking_note"] = "申报暂仅按报价与预算上限排序,匹配度未计入。"
        ranked = None
    if infos:
        from service.funding import funding_splits, priority_rule

        ctx["bids"] = _bid_rows(
            bids, infos, names, inputs, bounty.budget, funding_splits(db, bounty),
            priority_rule(request.app.state.settings),
        )  # fmt: skip
    if ranked is not None:
        ctx["eligible"], ctx["excluded"] = _respondent_rows(db, ranked, names)
    return ctx
