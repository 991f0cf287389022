"""The lifecycle panel of the staff bounty page: the state, its history and the next moves.

``POST /staff/bounties/{id}/transition`` makes one move of :mod:`service.bounty_lifecycle`
(CSRF-checked form, POST → redirect → GET); a refused move re-renders the page with the
reasons (status 422).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service import auth
from service import bounty_lifecycle as bl
from service.api.deps import SessionDep
from service.errors import Forbidden
from service.models import AuditLog, Bid, Bounty, User
from service.validation import normalise_text
from service.web.common import FormStr, IdPath, StaffFormUserDep, error_page, page_router, render

log = logging.getLogger(__name__)

router = page_router("/staff")

MOVED_FLASH = "榜单状态已更新。"


def _history(db: Session, bounty: Bounty) -> list[dict[str, Any]]:
    rows = db.execute(
        select(AuditLog, User.username)
        .outerjoin(User, User.id == AuditLog.user_id)
        .where(
            AuditLog.entity == "bounty",
            AuditLog.entity_id == bounty.external_id,
            AuditLog.action == "bounty.transition",
        )
        .order_by(AuditLog.at, AuditLog.id)
    ).all()
    return [
        {
            "at": a.at,
            "who": name or "—",
            "from": bl.label(str(a.detail.get("from", ""))),
            "to": bl.label(str(a.detail.get("to", ""))),
            "reason": a.detail.get("reason", ""),
        }
        for a, name in rows
    ]


def state_context(db: Session, bounty: Bounty, user: auth.Principal) -> dict[str, Any]:
    """Template context of the lifecycle panel (``lifecycle`` key)."""
    facts = bl.facts_of(db, bounty)
    current = bl.state_of(bounty.status)
    bids = db.scalars(
        select(Bid).where(Bid.bounty_id == bounty.id).options(selectinload(Bid.respondent))
    ).all()
    eligible = [b for b in bids if b.external_id in facts.eligible_bid_ids]
    winner = db.get(Bid, bounty.awarded_bid_id) if bounty.awarded_bid_id else None
    return {
        "lifecycle": {
            "state": current,
            "label": bl.label(current),
            "steps": [(s, bl.STATE_LABELS[s]) for s in bl.FORWARD],
            "done": bl.FORWARD[: bl.FORWARD.index(current)] if current in bl.FORWARD else (),
            "moves": [
                (t, bl.action_label(current, t), bl.is_revocation(current, t))
                for t in bl.allowed_moves(facts, bl.actor_of(user))
            ],
            "eligible": eligible,
            "winner": winner,
            "history": _history(db, bounty),
        }
    }


def _number(raw: str, what: str, reasons: list[str]) -> float | None:
    text = normalise_text(raw).replace(",", "")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        reasons.append(f"{what}须为数字（万元）")
        return None


def _parse_move(form: dict[str, str]) -> tuple[bl.Move | None, list[str]]:
    """The move a panel form asks for, or the reasons its fields are invalid."""
    reasons: list[str] = []
    target = normalise_text(form["to"])
    deadline = None
    if form["deadline"].strip():
        try:
            deadline = date.fromisoformat(normalise_text(form["deadline"]))
        except ValueError:
            reasons.append("截止日期格式应为 年-月-日，例如 2027-03-31")
    award = None
    if target == bl.AWARDED:
        price = _number(form["price"], "约定金额", reasons)
        ent = _number(form["funding_enterprise"], "企业经费", reasons)
        aca = _number(form["funding_academic"], "高校院所经费", reasons)
        bid = normalise_text(form["bid"])
        if not bid or price is None:
            reasons.append("立项须选定揭榜方并填写约定金额")
        else:
            award = bl.Award(bid_id=bid, price=price, funding_enterprise=ent, funding_academic=aca)
    reason = normalise_text(form["reason"])[: bl.REASON_MAX]
    if reasons:
        return None, reasons
    return bl.Move(target=target, reason=reason, award=award, deadline=deadline), []


@router.post("/bounties/{bounty_id}/transition", name="staff_bounty_transition")
def staff_bounty_transition(
    bounty_id: IdPath,
    request: Request,
    db: SessionDep,
    user: StaffFormUserDep,
    to: FormStr = "",
    reason: FormStr = "",
    deadline: FormStr = "",
    bid: FormStr = "",
    price: FormStr = "",
    funding_enterprise: FormStr = "",
    funding_academic: FormStr = "",
) -> Response:
    """One lifecycle move from the panel's forms."""
    bounty = db.get(Bounty, bounty_id)
    if bounty is None:
        return error_page(request, 404, "未找到", "该榜单不存在。", user=user)
    move, reasons = _parse_move(
        {
            "to": to,
            "reason": reason,
            "deadline": deadline,
            "bid": bid,
            "price": price,
            "funding_enterprise": funding_enterprise,
            "funding_academic": funding_academic,
        }
    )
    if move is not None:
        try:
            bl.transition(db, user=user, bounty=bounty, move=move)
            db.commit()
            url = request.url_for("staff_bounty", bounty_id=bounty.id).path + "?moved=1"
            return RedirectResponse(url + "#lifecycle", status_code=303)
        except (bl.TransitionRefused, Forbidden) as exc:
            db.rollback()
            reasons = getattr(exc, "reasons", None) or [exc.detail]
    return _refused_page(request, db, bounty, user, reasons)


def _refused_page(
    request: Request, db: Session, bounty: Bounty, user: auth.Principal, reasons: list[str]
) -> Response:
    from service.web.bounties import bounty_context

    db.refresh(bounty)
    context = {"bounty": bounty, **bounty_context(request, db, bounty)}
    context.update(state_context(db, bounty, user))
    flash = "未能变更榜单状态：" + "；".join(reasons)
    return render(
        request,
        "staff/bounty.html",
        context,
        user=user,
        status_code=422,
        flashes=[("error", flash)],
    )
