"""Technology needs (技术需求): enterprises read, create and edit their own; staff read all,
create and update any, and vet (审核) what enterprises entered.

An enterprise's new or edited need is ``pending`` (待审核) until staff approve it; only
approved needs take part in matching. Another enterprise's need answers 404.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status

from service import crud, schemas
from service import portal_crud as pc
from service.api import convert
from service.api.deps import CurrentUser, EnterpriseOrStaff, Pagination, SessionDep, StaffUser

router = APIRouter(prefix="/needs", tags=["needs"])

ExtId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=schemas.Page[schemas.NeedPublic], summary="List needs")
def list_needs(
    session: SessionDep,
    user: CurrentUser,
    page: Pagination,
    org: Annotated[str | None, Query(max_length=64, description="organisation external id")] = None,
    status_: Annotated[
        Literal["open", "matched", "closed", "withdrawn"] | None, Query(alias="status")
    ] = None,
) -> schemas.Page[schemas.NeedPublic]:
    rows, total = crud.list_needs(
        session,
        viewer=user,
        limit=page.limit,
        offset=page.offset,
        org_external_id=org,
        status=status_,
    )
    return schemas.Page(
        items=convert.needs(session, rows), total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{external_id}", response_model=schemas.NeedPublic, summary="One need")
def get_need(external_id: ExtId, session: SessionDep, user: CurrentUser) -> schemas.NeedPublic:
    return convert.needs(session, [crud.get_need(session, viewer=user, external_id=external_id)])[0]


@router.post(
    "",
    response_model=schemas.NeedPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a need (an enterprise: its own, waiting for vetting; staff: any)",
)
def create_need(
    body: schemas.NeedCreate, session: SessionDep, user: EnterpriseOrStaff
) -> schemas.NeedPublic:
    data = body.model_dump()
    if not user.is_staff:
        data.pop("status", None)
    need = pc.create_need(session, user=user, data=data)
    session.commit()
    return convert.needs(session, [need])[0]


@router.patch(
    "/{external_id}",
    response_model=schemas.NeedPublic,
    summary="Update a need (an enterprise: its own, back to vetting; staff: any)",
)
def update_need(
    external_id: ExtId, body: schemas.NeedUpdate, session: SessionDep, user: EnterpriseOrStaff
) -> schemas.NeedPublic:
    need = crud.get_need(session, viewer=user, external_id=external_id)
    pc.edit_need(session, user=user, need=need, data=body.model_dump(exclude_unset=True))
    session.commit()
    return convert.needs(session, [need])[0]


@router.post(
    "/{external_id}/review",
    response_model=schemas.NeedPublic,
    summary="Vet a pending need: approve, or return it with a reason (staff)",
)
def review_need(
    external_id: ExtId, body: schemas.NeedReview, session: SessionDep, user: StaffUser
) -> schemas.NeedPublic:
    need = crud.get_need(session, viewer=user, external_id=external_id)
    pc.review_need(
        session, user=user, need=need, approve=body.action == "approve", reason=body.reason
    )
    session.commit()
    return convert.needs(session, [need])[0]
