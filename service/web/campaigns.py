"""Campaign pages: the list (活动列表) and the pairing shortlist review (配对名单审核).

Shortlist decisions quote the optimistic ``version`` they were made on. A stale version is
answered with 409 and a Chinese conflict message, and never overwrites the newer decision.
Every accepted decision writes an :class:`~service.models.AuditLog` row; approve/reject set
``status``/``decided_by``/``decided_at``, which the learned ranker trains on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import auth, decisions
from service.api.deps import SessionDep
from service.errors import InvalidRequest, NotFound
from service.models import Campaign
from service.web import views
from service.web.common import (
    MAX_ID,
    FormStr,
    IdPath,
    StaffFormUserDep,
    StaffUserDep,
    error_page,
    page_router,
    render,
)
from service.web.views import ShortlistFilters

router = page_router("/staff")

PAGE_SIZE = 200

# Fixed success messages selected by a query parameter (never reflect user text in a page).
_MESSAGES: dict[str, str] = {
    "approve": "已通过该配对。",
    "reject": "已驳回该配对。",
    "reset": "已撤销审核结论,条目恢复为待审核。",
    "lock": "已锁定该配对,下次运行将保留。",
    "unlock": "已解锁该配对。",
    "note": "备注已保存。",
}


@router.get("/campaigns", name="staff_campaigns", response_class=HTMLResponse)
def staff_campaigns(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    """活动列表: every pairing campaign with review progress."""
    campaigns = db.scalars(select(Campaign).order_by(Campaign.created_at.desc())).all()
    counts = views.status_counts(db, (c.id for c in campaigns))
    rows = [{"campaign": c, "counts": counts[c.id]} for c in campaigns]
    any_running = any(c.status in ("created", "running") for c in campaigns)
    return render(
        request, "staff/campaigns.html", {"rows": rows, "any_running": any_running}, user=user
    )


def _shortlist_page(
    request: Request,
    db: Session,
    user: auth.Principal,
    campaign: Campaign,
    filters: ShortlistFilters,
    *,
    status_code: int = 200,
    flashes: Sequence[tuple[str, str]] = (),
) -> HTMLResponse:
    # Evidence and context are built for the shown page only (campaigns can be large).
    ids = views.filtered_ids(db, campaign.id, filters)
    pages = max(1, math.ceil(len(ids) / PAGE_SIZE))
    page = min(filters.page, pages)
    shown = views.item_views(
        db, views.load_items(db, ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
    )
    export_url = request.url_for("staff_export", campaign_id=campaign.id).path
    q = filters.query(page=False)
    return render(
        request,
        "staff/shortlist.html",
        {
            "campaign": campaign,
            "items": shown,
            "counts": views.status_counts(db, [campaign.id])[campaign.id],
            "filters": filters,
            "fields": views.campaign_fields(db, campaign.id),
            "export_url": export_url + (f"?{q}" if q else ""),
            "return_query": filters.query(),
            "page_query": q,
            "page": page,
            "pages": pages,
            "total": len(ids),
        },
        user=user,
        status_code=status_code,
        flashes=flashes,
    )


@router.get("/campaigns/{campaign_id}", name="staff_shortlist", response_class=HTMLResponse)
def staff_shortlist(
    campaign_id: IdPath, request: Request, db: SessionDep, user: StaffUserDep
) -> Response:
    """配对名单审核: the shortlist of one campaign, with filters and decision forms."""
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        return error_page(request, 404, "未找到", "该配对活动不存在。", user=user)
    done = request.query_params.get("done")
    flashes = [("ok", _MESSAGES[done])] if done in _MESSAGES else []
    filters = ShortlistFilters.parse(request.query_params)
    return _shortlist_page(request, db, user, campaign, filters, flashes=flashes)


def _parse_qs(query: str) -> dict[str, str]:
    return dict(parse_qsl(query[:1000]))


@router.post("/campaigns/{campaign_id}/items/{item_id}", name="staff_decide")
def staff_decide(
    campaign_id: IdPath,
    item_id: IdPath,
    request: Request,
    db: SessionDep,
    user: StaffFormUserDep,
    action: FormStr = "",
    version: FormStr = "",
    note: Annotated[str | None, Form()] = None,
    return_query: FormStr = "",
) -> Response:
    """Approve / reject / reset / lock / unlock / annotate one shortlist item.

    The rules are :mod:`service.decisions` (the API's too). The form quotes the ``version``
    it was rendered with; a stale version is a 409 with the current state, never an overwrite.
    """
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        return error_page(request, 404, "未找到", "该条目不存在。", user=user)
    filters = ShortlistFilters.parse(_parse_qs(return_query))

    def again(status_code: int, message: str) -> HTMLResponse:
        flashes = [("error", message)]
        return _shortlist_page(
            request, db, user, campaign, filters, status_code=status_code, flashes=flashes
        )

    seen_version = views.int_or(version, -1)
    if action not in decisions.ACTIONS or not 1 <= seen_version <= MAX_ID:
        return again(422, "请求无效:操作或版本号不正确,或备注过长。")
    try:
        decisions.decide(
            db, user=user, item_id=item_id, action=action, version=seen_version, note=note,
            campaign_id=campaign_id,
        )  # fmt: skip
    except NotFound:
        return error_page(request, 404, "未找到", "该条目不存在。", user=user)
    except decisions.StaleVersion as exc:
        now_v = exc.current if exc.current is not None else "?"
        return again(
            409,
            f"冲突:该条目已被他人修改(您看到的是第 {exc.seen} 版,当前为第 {now_v} 版)。"
            "您的操作未保存,请核对下方最新内容后重试。",
        )
    except decisions.DecisionRefused as exc:
        return again(409, exc.message)
    except InvalidRequest:
        return again(422, "请求无效:操作或版本号不正确,或备注过长。")
    target = request.url_for("staff_shortlist", campaign_id=campaign_id).path
    query = filters.query()
    query = f"{query}&done={action}" if query else f"done={action}"
    return RedirectResponse(f"{target}?{query}#item-{item_id}", status_code=303)
