"""Staff: create a pairing campaign from a form (新建配对活动) and follow its run.

The form (name, k, capacity, fair mode, previous campaign; :mod:`service.campaign_forms`)
creates the campaign and starts the app's background
:class:`~service.jobs.campaign_runner.CampaignRunner` (the same runner as
``POST /api/v1/campaigns``). The progress page reloads itself every few seconds with
``<meta http-equiv="refresh">`` (no JavaScript) until the run has finished, then links to the
shortlist review.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from service import auth, campaign_forms, crud
from service.api.deps import SessionDep
from service.errors import NotFound
from service.forms import FormErrors
from service.web.common import (
    FormStr,
    StaffFormUserDep,
    StaffUserDep,
    error_page,
    page_router,
    render,
)

router = page_router("/staff")

REFRESH_SECONDS = 2


def _form(
    request: Request,
    db: Session,
    user: auth.Principal,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "values": values,
        "errors": errors or {},
        "previous": {
            str(c.id): c.name for c in campaign_forms.recent_campaigns(db) if c.status == "done"
        },
        "fair_modes": campaign_forms.FAIR_MODES,
        "k_max": campaign_forms.K_MAX,
        "capacity_max": campaign_forms.CAPACITY_MAX,
    }
    return render(request, "staff/campaign_new.html", context, user=user, status_code=status_code)


@router.get("/campaigns/new", name="staff_campaign_new", response_class=HTMLResponse)
def new_campaign(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    return _form(request, db, user, values={"k": "1", "capacity": "5", "fair": "0"})


@router.post("/campaigns/new", name="staff_campaign_create", response_class=HTMLResponse)
def create_campaign(
    request: Request,
    db: SessionDep,
    user: StaffFormUserDep,
    name: FormStr = "",
    k: FormStr = "",
    capacity: FormStr = "",
    fair: FormStr = "0",
    previous_id: FormStr = "",
) -> Response:
    values = {"name": name, "k": k, "capacity": capacity, "fair": fair, "previous_id": previous_id}
    try:
        form = campaign_forms.parse_campaign_form(db, values)
    except FormErrors as exc:
        return _form(request, db, user, values=values, errors=exc.fields, status_code=422)
    campaign = campaign_forms.create_and_start(
        db, request.app.state.campaign_runner, user=user, form=form
    )
    url = request.url_for("staff_campaign_progress", campaign_id=campaign.id).path
    return RedirectResponse(url, status_code=303)


@router.get(
    "/campaigns/{campaign_id}/progress",
    name="staff_campaign_progress",
    response_class=HTMLResponse,
)
def progress(campaign_id: int, request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    """运行进度: refreshes itself while the run is created/running."""
    try:
        campaign = crud.get_campaign(db, campaign_id=campaign_id)
    except NotFound:
        return error_page(request, 404, "未找到", "该活动不存在。", user=user)
    running = campaign.status in ("created", "running")
    previous = (
        db.get(type(campaign), campaign.previous_id) if campaign.previous_id is not None else None
    )
    context = {
        "campaign": campaign,
        "running": running,
        "refresh": REFRESH_SECONDS,
        "percent": round((campaign.progress or 0.0) * 100),
        "previous": previous,
        "fair_modes": campaign_forms.FAIR_MODES,
    }
    return render(request, "staff/campaign_progress.html", context, user=user)
