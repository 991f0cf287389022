"""Institute pages (院所/高校门户) under ``/portal/institute``.

* 我的能力: the organisation's capabilities (achievements, patents, teams, labs): list, create,
  edit, retire/restore (:mod:`service.institute`); each edit is picked up by the next
  ``duijie reindex`` and the list says which records are still waiting for it;
* 匹配需求: open needs ranked for our capabilities, with evidence
  (:func:`service.institute.matching_needs`; confidential and unvetted needs never appear);
* 揭榜: open bounties, the application form (揭榜申报) and my applications with their status.
  Submission goes through :func:`service.applications.submit_application`, which checks
  eligibility; a refusal is shown with its reasons and nothing is stored.

Forms are POST → redirect → GET; a rejected form is re-rendered (422) with what the user
typed and a Chinese message next to each bad field.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from matcher.errors import IndexNotReady
from service import applications, auth, institute
from service import models as m
from service.api.deps import SessionDep
from service.errors import Conflict, NotFound
from service.forms import FormErrors
from service.web.common import FormStr, page_router
from service.web.portal_common import InstituteForm, InstitutePage, add_nav, portal_error
from service.web.portal_common import render_portal as render

log = logging.getLogger(__name__)

router = page_router("/portal/institute")

InstituteDep = InstitutePage
add_nav(("institute",), "我的能力", "portal_inst_capabilities", order=60)
add_nav(("institute",), "匹配需求", "portal_inst_needs", order=70)
add_nav(("institute",), "揭榜", "portal_inst_bounties", order=80)
add_nav(("institute",), "我的申报", "portal_inst_applications", order=90)
DIRECTORY_SHOWN = 30

_MESSAGES: dict[str, str] = {
    "created": "已新增能力。下次夜间索引(duijie reindex)后参与匹配。",
    "saved": "已保存修改。下次夜间索引(duijie reindex)后按新内容匹配。",
    "retired": "已下架该能力,不再参与匹配。",
    "restored": "已恢复该能力。",
    "applied": "揭榜申报已提交,请等待工作人员资格审查。",
}


InstituteFormDep = InstituteForm


def _flashes(request: Request) -> list[tuple[str, str]]:
    key = request.query_params.get("done", "")
    return [("ok", _MESSAGES[key])] if key in _MESSAGES else []


def _org(db: Session, user: auth.Principal) -> m.Organisation:
    org = db.get(m.Organisation, user.org_id) if user.org_id is not None else None
    if org is None:
        raise NotFound("no organisation")
    return org


def _see_other(request: Request, route: str, done: str, **params: Any) -> RedirectResponse:
    url = request.url_for(route, **params).path + f"?done={done}"
    return RedirectResponse(url, status_code=303)


# --- capabilities -------------------------------------------------------------------------


@router.get("/capabilities", name="portal_inst_capabilities", response_class=HTMLResponse)
def capabilities(request: Request, db: SessionDep, user: InstituteDep) -> Response:
    """我的能力: every capability of the organisation, with its re-index state."""
    org = _org(db, user)
    caps = institute.list_own_capabilities(db, org_id=org.id)
    state = institute.indexed_state(request.app.state.settings.resolved_index_dir)
    context = {
        "org": org,
        "caps": caps,
        "pending": institute.pending_reindex(caps, state),
        "built_at": state.built_at,
        "kind_labels": institute.CAPABILITY_KIND_LABELS,
    }
    return render(
        request, "portal/inst_capabilities.html", context, user=user, flashes=_flashes(request)
    )


def _capability_form(
    request: Request,
    user: auth.Principal,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    cap: m.Capability | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "values": values,
        "errors": errors or {},
        "cap": cap,
        "kind_labels": {
            k: institute.CAPABILITY_KIND_LABELS[k] for k in institute.PORTAL_CAPABILITY_KINDS
        },
        "year_max": institute._year_max(),
        "year_min": institute.YEAR_MIN,
        "description_max": institute.DESCRIPTION_MAX,
    }
    return render(
        request, "portal/inst_capability_form.html", context, user=user, status_code=status_code
    )


def _cap_values(cap: m.Capability) -> dict[str, Any]:
    return {
        "kind": cap.kind,
        "title": cap.title,
        "description": cap.description,
        "field": cap.field or "",
        "keywords": "、".join(cap.keywords or []),
        "trl": "" if cap.trl is None else str(cap.trl),
        "year": "" if cap.year is None else str(cap.year),
    }


CapFields = tuple[str, str, str, str, str, str, str]


def _typed(
    kind: str, title: str, description: str, field: str, keywords: str, trl: str, year: str
) -> dict[str, str]:
    return {
        "kind": kind,
        "title": title,
        "description": description,
        "field": field,
        "keywords": keywords,
        "trl": trl,
        "year": year,
    }


@router.get("/capabilities/new", name="portal_inst_capability_new", response_class=HTMLResponse)
def capability_new(request: Request, user: InstituteDep) -> Response:
    return _capability_form(request, user, values={"kind": "achievement"})


@router.post("/capabilities/new", name="portal_inst_capability_create", response_class=HTMLResponse)
def capability_create(
    request: Request,
    db: SessionDep,
    user: InstituteFormDep,
    kind: FormStr = "",
    title: FormStr = "",
    description: FormStr = "",
    field: FormStr = "",
    keywords: FormStr = "",
    trl: FormStr = "",
    year: FormStr = "",
) -> Response:
    typed = _typed(kind, title, description, field, keywords, trl, year)
    try:
        institute.save_capability(db, user=user, data=institute.parse_capability(typed))
    except FormErrors as exc:
        db.rollback()
        return _capability_form(request, user, values=typed, errors=exc.fields, status_code=422)
    db.commit()
    return _see_other(request, "portal_inst_capabilities", "created")


@router.get(
    "/capabilities/{external_id}/edit",
    name="portal_inst_capability_edit",
    response_class=HTMLResponse,
)
def capability_edit(
    external_id: str, request: Request, db: SessionDep, user: InstituteDep
) -> Response:
    try:
        cap = institute.own_capability(db, user=user, external_id=external_id[:64])
    except NotFound:
        return portal_error(request, 404, "未找到", "没有这条能力记录。", user=user)
    return _capability_form(request, user, values=_cap_values(cap), cap=cap)


@router.post(
    "/capabilities/{external_id}/edit",
    name="portal_inst_capability_update",
    response_class=HTMLResponse,
)
def capability_update(
    external_id: str,
    request: Request,
    db: SessionDep,
    user: InstituteFormDep,
    kind: FormStr = "",
    title: FormStr = "",
    description: FormStr = "",
    field: FormStr = "",
    keywords: FormStr = "",
    trl: FormStr = "",
    year: FormStr = "",
) -> Response:
    typed = _typed(kind, title, description, field, keywords, trl, year)
    try:
        cap = institute.own_capability(db, user=user, external_id=external_id[:64])
    except NotFound:
        return portal_error(request, 404, "未找到", "没有这条能力记录。", user=user)
    try:
        institute.save_capability(
            db, user=user, external_id=cap.external_id, data=institute.parse_capability(typed)
        )
    except FormErrors as exc:
        db.rollback()
        return _capability_form(
            request, user, values=typed, errors=exc.fields, cap=cap, status_code=422
        )
    except Conflict:
        db.rollback()
        return portal_error(request, 409, "无法编辑", "已下架的能力请先恢复再编辑。", user=user)
    db.commit()
    return _see_other(request, "portal_inst_capabilities", "saved")


@router.post(
    "/capabilities/{external_id}/status",
    name="portal_inst_capability_status",
    response_class=HTMLResponse,
)
def capability_status(
    external_id: str,
    request: Request,
    db: SessionDep,
    user: InstituteFormDep,
    action: FormStr = "",
) -> Response:
    if action not in ("retire", "restore"):
        return portal_error(request, 422, "请求无效", "未知的操作。", user=user)
    try:
        institute.set_capability_status(
            db, user=user, external_id=external_id[:64], active=action == "restore"
        )
    except NotFound:
        return portal_error(request, 404, "未找到", "没有这条能力记录。", user=user)
    db.commit()
    return _see_other(
        request, "portal_inst_capabilities", "retired" if action == "retire" else "restored"
    )


# --- needs that match us ------------------------------------------------------------------


@router.get("/needs", name="portal_inst_needs", response_class=HTMLResponse)
def matching(request: Request, db: SessionDep, user: InstituteDep) -> Response:
    """匹配需求: open needs ranked for our capabilities, with evidence."""
    org = _org(db, user)
    matches: list[institute.NeedMatch] = []
    index_ready = True
    try:
        rec = request.app.state.recommender.get()
        matches = institute.matching_needs(db, rec, org_ext=org.external_id)
    except IndexNotReady:
        index_ready = False
    has_caps = bool(institute.list_own_capabilities(db, org_id=org.id, include_retired=False))
    context = {"org": org, "matches": matches, "index_ready": index_ready, "has_caps": has_caps}
    return render(request, "portal/inst_needs.html", context, user=user)


# --- bounties and applications ------------------------------------------------------------


@router.get("/bounties", name="portal_inst_bounties", response_class=HTMLResponse)
def bounties(request: Request, db: SessionDep, user: InstituteDep) -> Response:
    """Open bounties (揭榜榜单) to apply to, and whether we already did."""
    rows = db.scalars(
        select(m.Bounty).where(m.Bounty.status == applications.OPEN).order_by(m.Bounty.id.desc())
    ).all()
    mine = {
        int(b)
        for b in db.scalars(
            select(m.Bid.bounty_id).where(
                m.Bid.respondent_org_id == user.org_id, m.Bid.status != "withdrawn"
            )
        )
    }
    context = {"bounties": rows, "mine": mine, "kind_labels": applications.BOUNTY_KIND_LABELS}
    return render(request, "portal/inst_bounties.html", context, user=user)


def _directory(db: Any, user: auth.Principal, q: str, selected: list[str]) -> list[m.Organisation]:
    """Organisations to pick consortium members from: the selected ones plus up to
    DIRECTORY_SHOWN matches of ``q`` (name), never the applicant itself."""
    stmt = select(m.Organisation).where(
        m.Organisation.status == "active", m.Organisation.id != user.org_id
    )
    if q:
        stmt = stmt.where(m.Organisation.name.contains(q[:50]))
    else:
        stmt = stmt.where(m.Organisation.kind != "enterprise")
    found = list(db.scalars(stmt.order_by(m.Organisation.name).limit(DIRECTORY_SHOWN)))
    chosen = list(
        db.scalars(select(m.Organisation).where(m.Organisation.external_id.in_(selected)))
    )
    seen = {o.id for o in chosen}
    return chosen + [o for o in found if o.id not in seen]


def _apply_page(
    request: Request,
    db: Any,
    user: auth.Principal,
    bounty: m.Bounty,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    refusal: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    selected = list(values.get("members") or [])
    context = {
        "bounty": bounty,
        "values": values,
        "selected": set(selected),
        "errors": errors or {},
        "refusal": refusal or [],
        "directory": _directory(db, user, str(values.get("member_q") or ""), selected),
        "kind_labels": applications.BOUNTY_KIND_LABELS,
        "org_kind_labels": applications.ORG_KIND_LABELS,
        "price_max": applications.PRICE_MAX,
        "proposal_max": applications.PROPOSAL_MAX,
    }
    return render(request, "portal/inst_apply.html", context, user=user, status_code=status_code)


def _open_bounty(db: Any, external_id: str) -> m.Bounty | None:
    bounty = db.scalar(select(m.Bounty).where(m.Bounty.external_id == external_id[:64]))
    if bounty is None or bounty.status == applications.PROPOSED:
        return None
    return bounty  # type: ignore[no-any-return]


@router.get("/bounties/{external_id}/apply", name="portal_inst_apply", response_class=HTMLResponse)
def apply_form(external_id: str, request: Request, db: SessionDep, user: InstituteDep) -> Response:
    bounty = _open_bounty(db, external_id)
    if bounty is None:
        return portal_error(request, 404, "未找到", "该榜单不存在或尚未发布。", user=user)
    return _apply_page(request, db, user, bounty, values={})


@router.post(
    "/bounties/{external_id}/apply", name="portal_inst_apply_submit", response_class=HTMLResponse
)
def apply_submit(
    external_id: str,
    request: Request,
    db: SessionDep,
    user: InstituteFormDep,
    proposal: FormStr = "",
    price: FormStr = "",
    member_q: FormStr = "",
    action: FormStr = "submit",
    members: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Submit the application (``action=submit``) or search the directory (``search``)."""
    bounty = _open_bounty(db, external_id)
    if bounty is None:
        return portal_error(request, 404, "未找到", "该榜单不存在或尚未发布。", user=user)
    chosen = [x[:64] for x in (members or [])][: applications.MAX_MEMBERS + 1]
    values = {"proposal": proposal, "price": price, "member_q": member_q, "members": chosen}
    if action == "search":
        return _apply_page(request, db, user, bounty, values=values)
    try:
        applications.submit_application(
            db,
            applicant=user,
            bounty_external_id=bounty.external_id,
            proposal=proposal,
            price=price,
            members=chosen,
        )
    except FormErrors as exc:
        db.rollback()
        return _apply_page(
            request, db, user, bounty, values=values, errors=exc.fields, status_code=422
        )
    except applications.ApplicationRefused as exc:
        db.rollback()
        return _apply_page(
            request, db, user, bounty, values=values, refusal=exc.reasons, status_code=422
        )
    except Conflict:
        db.rollback()
        return _apply_page(
            request,
            db,
            user,
            bounty,
            values=values,
            refusal=["本单位已经申报过该榜单。"],
            status_code=409,
        )
    db.commit()
    return _see_other(request, "portal_inst_applications", "applied")


@router.get("/applications", name="portal_inst_applications", response_class=HTMLResponse)
def my_applications(request: Request, db: SessionDep, user: InstituteDep) -> Response:
    """我的申报: every application of the organisation with its status."""
    assert user.org_id is not None
    rows, _total = applications.list_applications(db, org_id=user.org_id, limit=200)
    names = dict(
        db.execute(
            select(m.Organisation.external_id, m.Organisation.name).where(
                m.Organisation.external_id.in_({x for b in rows for x in (b.members or [])})
            )
        ).all()
    )
    context = {
        "rows": rows,
        "names": names,
        "status_labels_app": applications.APPLICATION_STATUSES,
        "kind_labels": applications.BOUNTY_KIND_LABELS,
    }
    return render(
        request, "portal/inst_applications.html", context, user=user, flashes=_flashes(request)
    )


__all__ = ["router", "func", "or_"]
