"""The enterprise side of bounties (企业发榜) and the staff steps that publish them.

Enterprise pages under ``/portal/bounties``:

* 我的榜单: the bounties the organisation posted or proposed, with their application counts;
* 从需求发榜: propose a tackle bounty (技术攻关类) from one of our needs
  (:func:`service.applications.propose_bounty`); it waits as 待发布 until staff publish it;
* one bounty: the applications to it (respondent, consortium, price, proposal, status; no
  bid ids) and, once staff opened it, their ranking (:func:`matcher.bids.rank_bids` through
  the API's :func:`~service.api.routes.bounties.rank_bounty_bids`).

Staff page ``/staff/bounty-proposals``: proposals to publish, published bounties whose ranking
can be opened to the poster.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from matcher.errors import IndexNotReady
from service import applications, auth
from service import bounty_lifecycle as bl
from service import models as m
from service.api.deps import SessionDep
from service.errors import Conflict, InvalidRequest, NotFound
from service.forms import FormErrors, parse_date_field
from service.web.common import (
    FormStr,
    StaffFormUserDep,
    StaffUserDep,
    error_page,
    page_router,
    render,
)
from service.web.portal_common import EnterpriseForm, EnterprisePage, add_nav, portal_error
from service.web.portal_common import render_portal as render_page

log = logging.getLogger(__name__)

portal = page_router("/portal")
staff = page_router("/staff")
router = APIRouter()

EnterpriseDep = EnterprisePage
add_nav(("enterprise",), "我的榜单", "portal_ent_bounties", order=30)
BOUNTY_STATUS: dict[str, str] = {**bl.STATE_LABELS, "proposed": "待发布", "closed": "结项"}
_MESSAGES: dict[str, str] = {
    "proposed": "榜单已提交，工作人员审核发布后开始征集揭榜方。",
    "published": "榜单已发布，开始接受揭榜申报。",
    "ranking": "已向发榜企业开放申报排名。",
}


def _flashes(request: Request) -> list[tuple[str, str]]:
    key = request.query_params.get("done", "")
    return [("ok", _MESSAGES[key])] if key in _MESSAGES else []


EnterpriseFormDep = EnterpriseForm


def _counts(db: Any, bounty_ids: list[int]) -> dict[int, int]:
    if not bounty_ids:
        return {}
    rows = db.execute(
        select(m.Bid.bounty_id, func.count())
        .where(m.Bid.bounty_id.in_(bounty_ids))
        .group_by(m.Bid.bounty_id)
    )
    return {int(b): int(n) for b, n in rows}


# --- enterprise pages ---------------------------------------------------------------------


@portal.get("/bounties", name="portal_ent_bounties", response_class=HTMLResponse)
def my_bounties(request: Request, db: SessionDep, user: EnterpriseDep) -> Response:
    """我的榜单."""
    assert user.org_id is not None
    rows = applications.posted_bounties(db, org_id=user.org_id)
    context = {
        "rows": rows,
        "counts": _counts(db, [b.id for b in rows]),
        "status_labels_bounty": BOUNTY_STATUS,
        "kind_labels": applications.BOUNTY_KIND_LABELS,
    }
    return render_page(
        request, "portal/ent_bounties.html", context, user=user, flashes=_flashes(request)
    )


def _own_needs(db: Any, user: auth.Principal) -> list[m.Need]:
    return list(
        db.scalars(
            select(m.Need)
            .where(m.Need.org_id == user.org_id, m.Need.status.not_in(("closed", "withdrawn")))
            .order_by(m.Need.id.desc())
        )
    )


def _propose_page(
    request: Request,
    db: Any,
    user: auth.Principal,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    needs = _own_needs(db, user)
    context = {
        "values": values,
        "errors": errors or {},
        "needs": {n.external_id: n.title for n in needs},
        "price_max": applications.PRICE_MAX,
    }
    return render_page(
        request, "portal/ent_bounty_propose.html", context, user=user, status_code=status_code
    )


@portal.get("/bounties/propose", name="portal_ent_bounty_propose", response_class=HTMLResponse)
def propose_form(request: Request, db: SessionDep, user: EnterpriseDep) -> Response:
    need_ext = (request.query_params.get("need") or "")[:64]
    values: dict[str, Any] = {"need": need_ext}
    need = db.scalar(
        select(m.Need).where(m.Need.external_id == need_ext, m.Need.org_id == user.org_id)
    )
    if need is not None:  # start from the need's own words
        values.update(title=need.title, description=need.description or "")
        if need.budget is not None:
            values["budget"] = f"{need.budget:g}"
    return _propose_page(request, db, user, values=values)


@portal.post("/bounties/propose", name="portal_ent_bounty_submit", response_class=HTMLResponse)
def propose_submit(
    request: Request,
    db: SessionDep,
    user: EnterpriseFormDep,
    need: FormStr = "",
    title: FormStr = "",
    description: FormStr = "",
    budget: FormStr = "",
    deadline: FormStr = "",
) -> Response:
    values = {
        "need": need[:64],
        "title": title,
        "description": description,
        "budget": budget,
        "deadline": deadline,
    }
    try:
        if not need:
            raise _need_error("请选择据以发榜的需求")
        fields = applications.parse_bounty_proposal(
            title=title, description=description, budget=budget, deadline=deadline
        )
        applications.propose_bounty(db, user=user, need_external_id=need[:64], fields=fields)
    except FormErrors as exc:
        db.rollback()
        return _propose_page(request, db, user, values=values, errors=exc.fields, status_code=422)
    except (NotFound, InvalidRequest):
        db.rollback()
        err = _need_error("只能选择本单位征集中的需求")
        return _propose_page(request, db, user, values=values, errors=err.fields, status_code=422)
    db.commit()
    url = request.url_for("portal_ent_bounties").path + "?done=proposed"
    return RedirectResponse(url, status_code=303)


def _need_error(message: str) -> FormErrors:
    err = FormErrors()
    err.add("need", message)
    return err


@portal.get("/bounties/{external_id}", name="portal_ent_bounty", response_class=HTMLResponse)
def bounty_page(
    external_id: str, request: Request, db: SessionDep, user: EnterpriseDep
) -> Response:
    """One of our bounties: its applications and, once opened by staff, their ranking."""
    try:
        bounty = applications.poster_bounty(db, user=user, bounty_external_id=external_id[:64])
    except NotFound:
        return portal_error(
            request, 404, "未找到", "没有这个榜单，或它不是本单位发布的。", user=user
        )
    bids = applications.applications_of(db, bounty=bounty)
    numbers = {b.external_id: n for n, b in enumerate(bids, start=1)}
    ranking, index_ready = None, True
    if bounty.ranking_open and bids:
        from service.api.routes.bounties import rank_bounty_bids

        try:
            rec = request.app.state.recommender.get()
            ranking = rank_bounty_bids(request, db, rec, bounty, "lowest").ranking
        except IndexNotReady:
            index_ready = False
    names = dict(db.execute(select(m.Organisation.external_id, m.Organisation.name)).all())
    context = {
        "bounty": bounty,
        "bids": bids,
        "numbers": numbers,
        "ranking": ranking,
        "index_ready": index_ready,
        "names": names,
        "status_labels_bounty": BOUNTY_STATUS,
        "status_labels_app": applications.APPLICATION_STATUSES,
        "kind_labels": applications.BOUNTY_KIND_LABELS,
    }
    return render_page(request, "portal/ent_bounty.html", context, user=user)


# --- staff: publish proposals, open rankings ----------------------------------------------


def _proposals_page(
    request: Request,
    db: Any,
    user: auth.Principal,
    *,
    form_error: dict[str, str] | None = None,
) -> HTMLResponse:
    rows = list(db.scalars(select(m.Bounty).order_by(m.Bounty.id.desc())))
    context = {
        "proposed": [b for b in rows if b.status == applications.PROPOSED],
        "published": [b for b in rows if b.status != applications.PROPOSED],
        "counts": _counts(db, [b.id for b in rows]),
        "status_labels_bounty": BOUNTY_STATUS,
        "kind_labels": applications.BOUNTY_KIND_LABELS,
        "form_error": form_error or {},
    }
    return render(
        request,
        "staff/bounty_proposals.html",
        context,
        user=user,
        status_code=422 if form_error else 200,
        flashes=[("error", form_error["message"])] if form_error else _flashes(request),
    )


@staff.get("/bounty-proposals", name="staff_bounty_proposals", response_class=HTMLResponse)
def staff_proposals(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    """Proposals waiting to be published, and published bounties with bids."""
    return _proposals_page(request, db, user)


def _publish(db: Any, user: auth.Principal, external_id: str, deadline: str) -> dict[str, str]:
    """Publish one proposal; the form error (``id``, ``deadline`` typed, ``message``) if the
    closing date or a lifecycle step refuses it."""
    errors = FormErrors()
    day = parse_date_field(errors, "deadline", deadline, "申报截止日期", required=False)
    if errors.fields:
        return {"id": external_id, "deadline": deadline, "message": errors.fields["deadline"]}
    try:
        applications.publish_bounty(db, user=user, bounty_external_id=external_id, deadline=day)
    except bl.TransitionRefused as exc:
        db.rollback()
        return {"id": external_id, "deadline": deadline, "message": "；".join(exc.reasons)}
    return {}


@staff.post(
    "/bounty-proposals/{external_id}/{action}",
    name="staff_bounty_proposal_action",
    response_class=HTMLResponse,
)
def staff_proposal_action(
    external_id: str,
    action: str,
    request: Request,
    db: SessionDep,
    user: StaffFormUserDep,
    deadline: FormStr = "",
) -> Response:
    """发布 (征集 → … → 申报中 through the lifecycle, with the closing date) or 开放排名."""
    external_id = external_id[:64]
    try:
        if action == "publish":
            problem = _publish(db, user, external_id, deadline[:40])
            if problem:
                return _proposals_page(request, db, user, form_error=problem)
            done = "published"
        elif action == "open-ranking":
            applications.open_ranking(db, user=user, bounty_external_id=external_id)
            done = "ranking"
        else:
            return error_page(request, 404, "未找到", "未知的操作。", user=user)
    except NotFound:
        return error_page(request, 404, "未找到", "没有这个榜单。", user=user)
    except Conflict:
        db.rollback()
        return error_page(request, 409, "无法发布", "该榜单已经发布过了。", user=user)
    db.commit()
    url = request.url_for("staff_bounty_proposals").path + f"?done={done}"
    return RedirectResponse(url, status_code=303)


router.include_router(portal)
router.include_router(staff)
