"""Shortlist review (staff): items with evidence; decisions with optimistic locking."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from service import crud, decisions, schemas
from service.api import convert
from service.api.deps import Pagination, SessionDep, StaffUser
from service.errors import ERROR_RESPONSES, ErrorBody

router = APIRouter(prefix="/shortlists", tags=["shortlists"])

ItemId = Annotated[int, Path(ge=1, le=2**31)]


@router.get(
    "",
    response_model=schemas.Page[schemas.ShortlistItemPublic],
    summary="Shortlist items (filter by campaign, status, enterprise)",
)
def list_items(
    session: SessionDep,
    _user: StaffUser,
    page: Pagination,
    campaign_id: Annotated[int | None, Query(ge=1, le=2**31)] = None,
    status: Annotated[Literal["pending", "approved", "rejected"] | None, Query()] = None,
    enterprise: Annotated[str | None, Query(max_length=64)] = None,
) -> schemas.Page[schemas.ShortlistItemPublic]:
    rows, total = crud.list_shortlist(
        session,
        campaign_id=campaign_id,
        limit=page.limit,
        offset=page.offset,
        status=status,
        enterprise_external_id=enterprise,
    )
    return schemas.Page(
        items=convert.shortlist_items(session, rows),
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{item_id}", response_model=schemas.ShortlistItemPublic, summary="One shortlist item")
def get_item(item_id: ItemId, session: SessionDep, _user: StaffUser) -> schemas.ShortlistItemPublic:
    return convert.shortlist_items(session, [crud.get_shortlist_item(session, item_id=item_id)])[0]


@router.post(
    "/{item_id}/decision",
    response_model=schemas.ShortlistItemPublic,
    summary="Approve / reject / reset / lock / unlock / annotate an item (quote its version)",
    responses={
        409: {
            "model": ErrorBody,
            "description": "version conflict, or refused in the item's state "
            "(locked, rejected, uncovered)",
        },
        **ERROR_RESPONSES,
    },
)
def decide(
    item_id: ItemId, body: schemas.DecisionRequest, session: SessionDep, user: StaffUser
) -> schemas.ShortlistItemPublic:
    """Apply one decision under the rules of :mod:`service.decisions` (shared with the staff
    pages)."""
    item = decisions.decide(
        session,
        user=user,
        item_id=item_id,
        action=body.action,
        version=body.version,
        note=body.note,
    )
    return convert.shortlist_items(session, [item])[0]
