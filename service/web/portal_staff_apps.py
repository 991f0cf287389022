"""申报审核 (staff): the third staff queue of the portal, applications (揭榜申报) to check.

Staff see the applications waiting for the qualification check (已提交), those that passed and
those finished, and move one to 资格审查通过 or 资格审查未通过 (a reason is required, the
applicant reads it). Every change goes through
:func:`service.applications.set_application_status`, the rule the API's
``POST /api/v1/applications/{bid}/status`` uses too, which messages the applicant. 中榜 /
未中榜 are set by the award on the bounty page (:mod:`service.bounty_lifecycle`), not here.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from service import applications
from service import models as m
from service.api.deps import SessionDep
from service.errors import NotFound
from service.forms import FormErrors
from service.web.common import FormStr, page_router
from service.web.portal_common import StaffForm, StaffPage, add_nav, portal_error, render_portal

router = page_router("/portal")
add_nav(("staff",), "申报审核", "portal_staff_applications", order=30)

FILTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "queue": ("待审查", ("submitted",)),
    "qualified": ("已通过", ("qualified",)),
    "done": ("已结束", ("disqualified", "awarded", "not_awarded", "withdrawn")),
}
#: The moves this page offers (the qualification check).
PAGE_STATUSES: dict[str, str] = {
    "qualified": "资格审查通过",
    "disqualified": "资格审查未通过",
}
NOTE_MAX = applications.STATUS_NOTE_MAX


def _page(
    request: Request,
    db: SessionDep,
    user: StaffPage,
    *,
    show: str,
    form_error: dict[str, str] | None = None,
) -> HTMLResponse:
    show = show if show in FILTERS else "queue"
    bids, total = applications.applications_queue(db, statuses=FILTERS[show][1])
    ids = {x for b in bids for x in (b.members or [])}
    names = dict(
        db.execute(
            select(m.Organisation.external_id, m.Organisation.name).where(
                m.Organisation.external_id.in_(ids)
            )
        ).all()
    )
    return render_portal(
        request,
        "portal/staff_applications.html",
        {
            "bids": bids,
            "total": total,
            "show": show,
            "filters": FILTERS,
            "page_statuses": PAGE_STATUSES,
            "status_labels_app": applications.APPLICATION_STATUSES,
            "kind_labels": applications.BOUNTY_KIND_LABELS,
            "names": names,
            "form_error": form_error or {},
            "note_max": NOTE_MAX,
        },
        user=user,
        status_code=422 if form_error else 200,
        flashes=[("error", "没有保存：" + form_error["message"])] if form_error else (),
    )


@router.get("/staff/applications", name="portal_staff_applications", response_class=HTMLResponse)
def portal_staff_applications(
    request: Request, db: SessionDep, user: StaffPage, show: str = "queue"
) -> Response:
    """申报审核: applications to check (已提交, the longest-waiting first), passed, finished."""
    return _page(request, db, user, show=show[:20])


@router.post("/staff/applications/{bid_external_id}", name="portal_staff_application_status")
def portal_staff_application_status(
    bid_external_id: str,
    request: Request,
    db: SessionDep,
    user: StaffForm,
    status: FormStr = "",
    note: FormStr = "",
    show: FormStr = "queue",
) -> Response:
    """资格审查通过 / 未通过 (with a reason); a refused form comes back with the typed note."""
    bid_external_id, show = bid_external_id[:64], show[:20]
    typed = note[: NOTE_MAX * 2]
    if status not in PAGE_STATUSES:
        problem = {"id": bid_external_id, "note": typed, "status": status}
        problem["message"] = problem["field"] = "请选择审查结果：资格审查通过或未通过"
        return _page(request, db, user, show=show, form_error=problem)
    try:
        applications.set_application_status(
            db, user=user, bid_external_id=bid_external_id, status=status, note=typed
        )
    except NotFound:
        return portal_error(request, 404, "未找到", "该申报不存在。", user=user)
    except FormErrors as exc:
        db.rollback()
        message = exc.fields.get("note", exc.detail)
        problem = {"id": bid_external_id, "note": typed, "status": status, "message": message}
        problem["note_error"] = message
        return _page(request, db, user, show=show, form_error=problem)
    db.commit()
    target = request.url_for("portal_staff_applications").path
    return RedirectResponse(f"{target}?show={show}&done=application_checked", status_code=303)
