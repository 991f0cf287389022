"""Introductions addressed to an institute (院所: accept / decline with a message) and the staff
queues of the portal: needs waiting for vetting (approve / return with a reason) and
introduction requests (forward to the institute, close, or record the outcome).

An institute sees only the requests addressed to its own organisation, and only once staff
have forwarded them; the need's text is withheld when the need is confidential.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from service import portal_crud as pc
from service.api.deps import SessionDep
from service.errors import ServiceError
from service.models import Need
from service.web.common import FormStr, page_router
from service.web.portal_common import (
    InstituteForm,
    InstitutePage,
    StaffForm,
    StaffPage,
    add_nav,
    portal_error,
    render_portal,
)

router = page_router("/portal")
add_nav(("institute",), "对接申请", "portal_inst_intros", order=50)
add_nav(("staff",), "需求审核", "portal_staff_needs", order=10)
add_nav(("staff",), "对接申请", "portal_staff_intros", order=20)

_LABELS = {
    "review_labels": pc.REVIEW_LABELS,
    "need_status_labels": pc.NEED_STATUS_LABELS,
    "intro_labels": pc.INTRO_LABELS,
}
STAFF_INTRO_FILTERS = {
    "queue": ("submitted",),
    "open": ("forwarded", "negotiating"),
    "done": ("signed", "failed"),
}


def _done(request: Request, route: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{request.url_for(route).path}?done={done}", status_code=303)


# --- institute ------------------------------------------------------------------------------


def _inst_page(
    request: Request,
    db: SessionDep,
    user: InstitutePage,
    *,
    form_error: tuple[int, str, str] | None = None,
) -> HTMLResponse:
    intros, total = pc.list_introductions(db, viewer=user, limit=200, offset=0)
    return render_portal(
        request,
        "portal/inst_introductions.html",
        {"intros": intros, "total": total, "form_error": form_error, **_LABELS},
        user=user,
        status_code=422 if form_error else 200,
        flashes=[("error", form_error[2])] if form_error else (),
    )


@router.get("/institute/introductions", name="portal_inst_intros", response_class=HTMLResponse)
def portal_inst_intros(request: Request, db: SessionDep, user: InstitutePage) -> Response:
    """对接申请: requests forwarded to my organisation, newest first."""
    return _inst_page(request, db, user)


@router.post("/institute/introductions/{intro_id}", name="portal_inst_answer")
def portal_inst_answer(
    intro_id: int,
    request: Request,
    db: SessionDep,
    user: InstituteForm,
    action: FormStr = "",
    message: FormStr = "",
) -> Response:
    """Accept (→ 洽谈中) or decline (→ 未达成, a reason is required) a forwarded request."""
    if action not in ("accept", "decline"):
        return portal_error(request, 422, "请求无效", "请选择接受或婉拒。", user=user)
    try:
        intro = pc.get_introduction(db, viewer=user, intro_id=intro_id)
    except ServiceError:
        return portal_error(request, 404, "未找到", "该对接申请不存在。", user=user)
    try:
        pc.advance_introduction(db, user=user, intro=intro, action=action, note=message)
    except ServiceError as exc:
        db.rollback()
        return _inst_page(request, db, user, form_error=(intro_id, message[:2000], exc.detail))
    db.commit()
    return _done(request, "portal_inst_intros", "intro_done")


# --- staff queues ---------------------------------------------------------------------------


def _needs_queue(
    request: Request,
    db: SessionDep,
    user: StaffPage,
    *,
    form_error: tuple[str, str, str] | None = None,
) -> HTMLResponse:
    needs, total = pc.review_queue(db, limit=100, offset=0)
    return render_portal(
        request,
        "portal/staff_needs.html",
        {"needs": needs, "total": total, "form_error": form_error, **_LABELS},
        user=user,
        status_code=422 if form_error else 200,
        flashes=[("error", form_error[2])] if form_error else (),
    )


@router.get("/staff/needs", name="portal_staff_needs", response_class=HTMLResponse)
def portal_staff_needs(request: Request, db: SessionDep, user: StaffPage) -> Response:
    """需求审核: needs waiting for vetting, the longest-waiting first."""
    return _needs_queue(request, db, user)


@router.post("/staff/needs/{external_id}", name="portal_staff_review")
def portal_staff_review(
    external_id: str,
    request: Request,
    db: SessionDep,
    user: StaffForm,
    action: FormStr = "",
    reason: FormStr = "",
) -> Response:
    """通过 (approve) or 退回 (return, with a reason the enterprise will read)."""
    if action not in ("approve", "return"):
        return portal_error(request, 422, "请求无效", "请选择通过或退回。", user=user)
    need = db.scalar(select(Need).where(Need.external_id == external_id[:64]))
    if need is None:
        return portal_error(request, 404, "未找到", "该需求不存在。", user=user)
    try:
        pc.review_need(db, user=user, need=need, approve=action == "approve", reason=reason)
    except ServiceError as exc:
        db.rollback()
        return _needs_queue(request, db, user, form_error=(external_id, reason[:2000], exc.detail))
    db.commit()
    return _done(request, "portal_staff_needs", "review_done")


@router.get("/staff/introductions", name="portal_staff_intros", response_class=HTMLResponse)
def portal_staff_intros(
    request: Request, db: SessionDep, user: StaffPage, show: str = "queue"
) -> Response:
    """对接申请: to forward (已提交), in progress, finished."""
    statuses = STAFF_INTRO_FILTERS.get(show, STAFF_INTRO_FILTERS["queue"])
    intros, total = pc.list_introductions(db, viewer=user, limit=200, offset=0, status=statuses)
    return render_portal(
        request,
        "portal/staff_intros.html",
        {
            "intros": intros,
            "total": total,
            "show": show if show in STAFF_INTRO_FILTERS else "queue",
            **_LABELS,
        },
        user=user,
    )


@router.post("/staff/introductions/{intro_id}", name="portal_staff_intro_action")
def portal_staff_intro_action(
    intro_id: int,
    request: Request,
    db: SessionDep,
    user: StaffForm,
    action: FormStr = "",
    note: FormStr = "",
) -> Response:
    """转交 (forward to the institute) or 关闭 (close as 未达成, with a reason)."""
    if action not in ("forward", "close"):
        return portal_error(request, 422, "请求无效", "请选择转交或关闭。", user=user)
    try:
        intro = pc.get_introduction(db, viewer=user, intro_id=intro_id)
        pc.advance_introduction(db, user=user, intro=intro, action=action, note=note)
    except ServiceError as exc:
        db.rollback()
        return portal_error(request, exc.status, "无法处理", str(exc.detail), user=user)
    db.commit()
    return _done(request, "portal_staff_intros", "intro_done")
