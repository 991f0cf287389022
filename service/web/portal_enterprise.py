"""Enterprise pages (企业): my needs (list, create, edit, withdraw), suggestions for one of my
approved needs with a button to request an introduction (对接申请), and my introductions with
their status and outcome.

Every page is bound to the signed-in enterprise's own organisation: another enterprise's need
or introduction answers 404. Writes go through :mod:`service.portal_crud` (the API's rules);
suggestions take the API's path (``rank_for_need`` then the API's evidence filter).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.encoding import need_key
from matcher.errors import IndexNotReady, UnknownEntity
from service import auth
from service import portal_crud as pc
from service.api.deps import SessionDep, release_connection
from service.api.routes.suggestions import _visible_suggestions
from service.errors import ServiceError
from service.models import Capability, Introduction, Need
from service.web.common import FormStr, page_router
from service.web.portal_common import (
    EnterpriseForm,
    EnterpriseOrStaffForm,
    EnterprisePage,
    add_nav,
    portal_error,
    render_portal,
)
from service.web.portal_forms import need_values, parse_need_form

log = logging.getLogger(__name__)

router = page_router("/portal")
add_nav(("enterprise",), "我的需求", "portal_needs", order=10)
add_nav(("enterprise",), "对接申请", "portal_introductions", order=20)

SUGGESTIONS_K = 10
NEED_FORM_FIELDS = ("title", "description", "field", "keywords", "budget", "deadline")
CONFIDENTIAL_EXPLAINED = (
    "勾选后，这项需求只有本单位和科技厅工作人员能看到：系统照常为您推荐合作院所，"
    "但院所浏览需求时看不到它，它也不会作为依据出现在其他单位的推荐结果里。"
    "您申请对接时，院所只看到您在申请说明里写的内容和贵单位名称。"
)


def _labels() -> dict[str, Any]:
    return {
        "review_labels": pc.REVIEW_LABELS,
        "need_status_labels": pc.NEED_STATUS_LABELS,
        "intro_labels": pc.INTRO_LABELS,
    }


def own_need(db: Session, user: auth.Principal, external_id: str) -> Need | None:
    """The caller's organisation's need ``external_id`` (None for anyone else's)."""
    if len(external_id) > 64:
        return None
    return db.scalar(
        select(Need).where(Need.external_id == external_id, Need.org_id == user.org_id)
    )


def _not_found(request: Request, user: auth.Principal) -> HTMLResponse:
    return portal_error(request, 404, "未找到", "该需求不存在，或不属于贵单位。", user=user)


def _redirect(request: Request, route: str, done: str, **params: str) -> RedirectResponse:
    path = request.url_for(route, **params).path
    return RedirectResponse(f"{path}?done={done}", status_code=303)


@router.get("/needs", name="portal_needs", response_class=HTMLResponse)
def portal_needs(request: Request, db: SessionDep, user: EnterprisePage) -> Response:
    """我的需求: every need of my organisation with its vetting status."""
    needs, total = pc.list_own_needs(db, user=user, limit=200, offset=0)
    intro_counts: dict[int, int] = {}
    for (need_id,) in db.execute(
        select(Introduction.need_id).where(Introduction.enterprise_id == user.org_id)
    ):
        intro_counts[need_id] = intro_counts.get(need_id, 0) + 1
    return render_portal(
        request,
        "portal/needs.html",
        {"needs": needs, "total": total, "intro_counts": intro_counts, **_labels()},
        user=user,
    )


def _need_form(
    request: Request,
    user: auth.Principal,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    need: Need | None = None,
) -> HTMLResponse:
    return render_portal(
        request,
        "portal/need_form.html",
        {
            "values": values,
            "errors": errors or {},
            "need": need,
            "confidential_explained": CONFIDENTIAL_EXPLAINED,
        },
        user=user,
        status_code=422 if errors else 200,
        flashes=[("error", "表单有误，请按提示修改后重新提交。")] if errors else (),
    )


@router.get("/needs/new", name="portal_need_new", response_class=HTMLResponse)
def portal_need_new(request: Request, user: EnterprisePage) -> Response:
    """发布需求: the empty need form."""
    return _need_form(request, user, values={})


async def _form_dict(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/needs/new", name="portal_need_create")
async def portal_need_create(request: Request, db: SessionDep, user: EnterpriseForm) -> Response:
    """Create the need (pending vetting) or re-show the form with the errors."""
    parsed = parse_need_form(await _form_dict(request))
    if not parsed.ok:
        return _need_form(request, user, values=parsed.values, errors=parsed.errors)
    need = pc.create_need(db, user=user, data=parsed.data)
    db.commit()
    return _redirect(request, "portal_need", "need_created", external_id=need.external_id)


@router.get("/needs/{external_id}", name="portal_need", response_class=HTMLResponse)
def portal_need(
    external_id: str, request: Request, db: SessionDep, user: EnterprisePage
) -> Response:
    """One need: its fields, vetting status (and the reason when returned), introductions."""
    need = own_need(db, user, external_id)
    if need is None:
        return _not_found(request, user)
    intros, _ = pc.list_introductions(db, viewer=user, limit=100, offset=0, need_id=need.id)
    return render_portal(
        request,
        "portal/need.html",
        {"need": need, "intros": intros, **_labels()},
        user=user,
    )


@router.get("/needs/{external_id}/edit", name="portal_need_edit", response_class=HTMLResponse)
def portal_need_edit(
    external_id: str, request: Request, db: SessionDep, user: EnterprisePage
) -> Response:
    """修改需求: the need form filled with the stored values."""
    need = own_need(db, user, external_id)
    if need is None:
        return _not_found(request, user)
    if need.status in ("withdrawn", "closed"):
        return portal_error(request, 409, "不能修改", "已撤回或已关闭的需求不能修改。", user=user)
    return _need_form(request, user, values=need_values(need), need=need)


@router.post("/needs/{external_id}/edit", name="portal_need_update")
async def portal_need_update(
    external_id: str, request: Request, db: SessionDep, user: EnterpriseForm
) -> Response:
    """Save the edit; a changed need goes back to vetting (待审核)."""
    need = own_need(db, user, external_id)
    if need is None:
        return _not_found(request, user)
    parsed = parse_need_form(await _form_dict(request))
    if not parsed.ok:
        return _need_form(request, user, values=parsed.values, errors=parsed.errors, need=need)
    try:
        changed = pc.edit_need(db, user=user, need=need, data=parsed.data)
    except ServiceError as exc:
        return portal_error(request, exc.status, "不能修改", str(exc.detail), user=user)
    db.commit()
    done = "need_saved" if changed else "need_unchanged"
    return _redirect(request, "portal_need", done, external_id=need.external_id)


@router.post("/needs/{external_id}/withdraw", name="portal_need_withdraw")
def portal_need_withdraw(
    external_id: str, request: Request, db: SessionDep, user: EnterpriseForm
) -> Response:
    """撤回需求: it leaves matching for good."""
    need = own_need(db, user, external_id)
    if need is None:
        return _not_found(request, user)
    pc.withdraw_need(db, user=user, need=need)
    db.commit()
    return _redirect(request, "portal_need", "need_withdrawn", external_id=need.external_id)


def _suggestion_rows(
    request: Request, db: Session, user: auth.Principal, need: Need
) -> tuple[list[dict[str, Any]], str | None]:
    """The ranked institutes for ``need`` as display rows, or an explanation why none."""
    handle = getattr(request.app.state, "recommender", None)
    external_id = need.external_id
    release_connection(db)
    try:
        if handle is None:
            raise IndexNotReady("no recommender configured")
        ranked = handle.get().rank_for_need(need_key(external_id), SUGGESTIONS_K)
    except IndexNotReady:
        return [], "匹配索引正在准备中，请稍后再来查看推荐结果。"
    except UnknownEntity:
        return [], "这项需求刚通过审核，推荐结果将在数据更新后（通常几分钟内）出现。"
    found = _visible_suggestions(db, user, list(ranked.suggestions))
    doc_ids = {e.doc_id for s in found for e in s.evidence}
    titles = {
        str(e): str(t)
        for e, t in db.execute(
            select(Capability.external_id, Capability.title).where(
                Capability.external_id.in_(doc_ids)
            )
        )
    }
    asked = {
        i.institute.external_id: i
        for i in db.scalars(select(Introduction).where(Introduction.need_id == need.id))
    }
    rows = [{"s": s, "titles": titles, "intro": asked.get(s.org_id)} for s in found]
    return rows, None if rows else "暂时没有找到合适的合作单位。可补充需求描述和关键词后再试。"


def _suggestions_page(
    request: Request,
    db: Session,
    user: auth.Principal,
    need: Need,
    *,
    form_error: tuple[str, str, str] | None = None,
) -> HTMLResponse:
    """``form_error``: (institute id, message typed, error) to re-show a refused request."""
    if need.review_status != "approved" or need.status != "open":
        rows: list[dict[str, Any]] = []
        why: str | None = (
            "需求通过审核后才能查看推荐的合作单位。"
            if need.review_status != "approved"
            else "该需求已不在征集中，不再推荐合作单位。"
        )
    else:
        rows, why = _suggestion_rows(request, db, user, need)
    return render_portal(
        request,
        "portal/suggestions.html",
        {"need": need, "rows": rows, "why": why, "form_error": form_error, **_labels()},
        user=user,
        status_code=422 if form_error else 200,
        flashes=[("error", form_error[2])] if form_error else (),
    )


@router.get(
    "/needs/{external_id}/suggestions", name="portal_suggestions", response_class=HTMLResponse
)
def portal_suggestions(
    external_id: str, request: Request, db: SessionDep, user: EnterprisePage
) -> Response:
    """推荐合作单位: ranked institutes with evidence, each with a request button."""
    need = own_need(db, user, external_id)
    if need is None:
        return _not_found(request, user)
    return _suggestions_page(request, db, user, need)


@router.post("/needs/{external_id}/introductions", name="portal_intro_request")
def portal_intro_request(
    external_id: str,
    request: Request,
    db: SessionDep,
    user: EnterpriseForm,
    institute: FormStr = "",
    message: FormStr = "",
    score: FormStr = "",
) -> Response:
    """申请对接: ask staff to introduce us to ``institute`` about this need."""
    need = own_need(db, user, external_id)
    if need is None:
        return _not_found(request, user)
    institute = institute.strip()[:64]
    try:
        value = float(score) if score else None
    except ValueError:
        value = None
    try:
        pc.request_introduction(
            db,
            user=user,
            need=need,
            institute_external_id=institute,
            message=message,
            score=value,
        )
    except ServiceError as exc:
        db.rollback()
        text = "所选单位不存在或不能接受对接申请。" if exc.status == 404 else str(exc.detail)
        return _suggestions_page(
            request, db, user, need, form_error=(institute, message[:2000], text)
        )
    db.commit()
    return _redirect(request, "portal_introductions", "intro_requested")


@router.get("/introductions", name="portal_introductions", response_class=HTMLResponse)
def portal_introductions(request: Request, db: SessionDep, user: EnterprisePage) -> Response:
    """我的对接申请: status of every request, the institute's answer, the outcome form."""
    intros, total = pc.list_introductions(db, viewer=user, limit=200, offset=0)
    return render_portal(
        request,
        "portal/introductions.html",
        {"intros": intros, "total": total, "steps": list(pc.INTRO_LABELS), **_labels()},
        user=user,
    )


@router.post("/introductions/{intro_id}/outcome", name="portal_intro_outcome")
def portal_intro_outcome(
    intro_id: int,
    request: Request,
    db: SessionDep,
    user: EnterpriseOrStaffForm,
    outcome: FormStr = "",
    reason: FormStr = "",
) -> Response:
    """记录对接结果: 已签约 or 未达成 (with a reason), by the enterprise or staff."""
    if outcome not in ("signed", "failed"):
        return portal_error(request, 422, "请求无效", "请选择对接结果。", user=user)
    try:
        intro = pc.get_introduction(db, viewer=user, intro_id=intro_id)
        pc.advance_introduction(db, user=user, intro=intro, action=outcome, note=reason)
    except ServiceError as exc:
        db.rollback()
        return portal_error(request, exc.status, "无法记录结果", str(exc.detail), user=user)
    db.commit()
    route = "portal_staff_intros" if user.is_staff else "portal_introductions"
    return _redirect(request, route, "intro_done")
