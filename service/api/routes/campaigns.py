"""Pairing campaigns (结对子, staff): create, run in the background, progress, cancel, result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from service import crud, schemas
from service.api import convert
from service.api.deps import Pagination, SessionDep, StaffUser
from service.errors import Conflict
from service.models import Campaign

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

CampaignId = Annotated[int, Path(ge=1, le=2**31)]


def _public(c: Campaign) -> schemas.CampaignPublic:
    return schemas.CampaignPublic.model_validate(c)


@router.get("", response_model=schemas.Page[schemas.CampaignPublic], summary="List campaigns")
def list_campaigns(
    session: SessionDep, _user: StaffUser, page: Pagination
) -> schemas.Page[schemas.CampaignPublic]:
    from sqlalchemy import select

    rows, total = crud.paginate(
        session, select(Campaign).order_by(Campaign.id.desc()), limit=page.limit, offset=page.offset
    )
    return schemas.Page(
        items=[_public(c) for c in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "",
    response_model=schemas.CampaignPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a campaign (optionally start its run)",
)
def create_campaign(
    body: schemas.CampaignCreate, request: Request, session: SessionDep, user: StaffUser
) -> schemas.CampaignPublic:
    campaign = crud.create_campaign(
        session, name=body.name, params=body.params.stored(), previous_id=body.previous_id
    )
    crud.audit(
        session,
        user=user,
        action="campaign.create",
        entity="campaign",
        entity_id=campaign.id,
        detail={"name": body.name},
    )
    session.commit()
    if body.run:
        request.app.state.campaign_runner.start(campaign.id)
        crud.audit(
            session, user=user, action="campaign.run", entity="campaign", entity_id=campaign.id
        )
        session.commit()
        session.refresh(campaign)
    return _public(campaign)


@router.get(
    "/{campaign_id}",
    response_model=schemas.CampaignPublic,
    summary="A campaign with its run status and progress",
)
def get_campaign(
    campaign_id: CampaignId, session: SessionDep, _user: StaffUser
) -> schemas.CampaignPublic:
    return _public(crud.get_campaign(session, campaign_id=campaign_id))


@router.post(
    "/{campaign_id}/run",
    response_model=schemas.CampaignPublic,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start the campaign's run (background)",
)
def run_campaign(
    campaign_id: CampaignId, request: Request, session: SessionDep, user: StaffUser
) -> schemas.CampaignPublic:
    campaign = crud.get_campaign(session, campaign_id=campaign_id)
    if not request.app.state.campaign_runner.start(campaign_id):
        raise Conflict(
            f"campaign {campaign_id} is {campaign.status}; cannot start", code="not_runnable"
        )
    crud.audit(session, user=user, action="campaign.run", entity="campaign", entity_id=campaign_id)
    session.commit()
    session.refresh(campaign)
    return _public(campaign)


@router.post(
    "/{campaign_id}/cancel",
    response_model=schemas.CampaignPublic,
    summary="Cancel a created or running campaign",
)
def cancel_campaign(
    campaign_id: CampaignId, request: Request, session: SessionDep, user: StaffUser
) -> schemas.CampaignPublic:
    campaign = crud.get_campaign(session, campaign_id=campaign_id)
    if request.app.state.campaign_runner.cancel(campaign_id) is None:
        raise Conflict(
            f"campaign {campaign_id} is {campaign.status}; cannot cancel", code="not_cancellable"
        )
    crud.audit(
        session, user=user, action="campaign.cancel", entity="campaign", entity_id=campaign_id
    )
    session.commit()
    session.refresh(campaign)
    return _public(campaign)


@router.get(
    "/{campaign_id}/result",
    response_model=schemas.CampaignResult,
    summary="The campaign and a page of its shortlist",
)
def campaign_result(
    campaign_id: CampaignId, session: SessionDep, _user: StaffUser, page: Pagination
) -> schemas.CampaignResult:
    campaign = crud.get_campaign(session, campaign_id=campaign_id)
    rows, total = crud.list_shortlist(
        session, campaign_id=campaign_id, limit=page.limit, offset=page.offset
    )
    return schemas.CampaignResult(
        campaign=_public(campaign),
        items=schemas.Page(
            items=convert.shortlist_items(session, rows),
            total=total,
            limit=page.limit,
            offset=page.offset,
        ),
    )
