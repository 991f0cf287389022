"""The public notice page (公示): awarded bounties and their winners, open to anyone.

``/notice`` lists the bounties in 已立项, 公示 and 结项 (newest award first) and
``/notice/{id}`` shows one. These and the health check are the only pages open to anonymous
visitors. They are read-only and carry only public facts: the bounty's title and kind, the
poster's and the winner's organisation names, the agreed price and the dates. Never proposals,
contacts, other bidders or their prices: the rows are built field by field here, the templates
never see a model object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from service import bounty_lifecycle as bl
from service.api.deps import SessionDep
from service.models import Bid, Bounty, Organisation
from service.web.common import BOUNTY_KIND_LABELS, IdPath, page_router, render

router = page_router("")

NOTICE_LIMIT = 500


def _day(value: datetime | None) -> str:
    return value.date().isoformat() if value is not None else "—"


def notice_rows(db: Session, *, bounty_id: int | None = None) -> list[dict[str, Any]]:
    """The public rows: one per bounty in a public state (optionally only ``bounty_id``)."""
    poster = aliased(Organisation)
    winner = aliased(Organisation)
    stmt = (
        select(Bounty, poster.name, winner.name)
        .join(poster, poster.id == Bounty.poster_org_id)
        .outerjoin(Bid, Bid.id == Bounty.awarded_bid_id)
        .outerjoin(winner, winner.id == Bid.respondent_org_id)
        .where(Bounty.status.in_(sorted(bl.PUBLIC_STATES)))
        .order_by(Bounty.awarded_at.desc(), Bounty.id.desc())
        .limit(NOTICE_LIMIT)
    )
    if bounty_id is not None:
        stmt = stmt.where(Bounty.id == bounty_id)
    return [
        {
            "id": b.id,
            "title": b.title,
            "kind": BOUNTY_KIND_LABELS.get(b.kind, b.kind),
            "poster": poster_name,
            "winner": winner_name or "—",
            "price": b.awarded_price,
            "state": bl.label(b.status),
            "awarded_on": _day(b.awarded_at),
            "noticed_on": _day(b.noticed_at),
        }
        for b, poster_name, winner_name in db.execute(stmt).all()
    ]


@router.get("/notice", name="public_notice", response_class=HTMLResponse)
def public_notice(request: Request, db: SessionDep) -> Response:
    """公示: every awarded bounty with its winner (anonymous, read-only)."""
    return render(request, "notice/list.html", {"rows": notice_rows(db)})


@router.get("/notice/{bounty_id}", name="public_notice_one", response_class=HTMLResponse)
def public_notice_one(bounty_id: IdPath, request: Request, db: SessionDep) -> Response:
    """公示 of one bounty; 404 for a bounty that is not (yet) public."""
    rows = notice_rows(db, bounty_id=bounty_id)
    if not rows:
        return render(request, "notice/missing.html", {}, status_code=404)
    return render(request, "notice/one.html", {"row": rows[0]})
