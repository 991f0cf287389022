"""Technology needs (技术需求): enterprises read their own; staff read all and create/update."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status

from service import crud, schemas
from service.api import convert
from service.api.deps import CurrentUser, Pagination, SessionDep, StaffUser

router = APIRouter(prefix="/needs", tags=["needs"])

ExtId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=schemas.Page[schemas.NeedPublic], summary="List needs")
def list_needs(
    session: SessionDep,
    user: CurrentUser,
    page: Pagination,
    org: Annotated[str | None, Query(max_length=64, description="organisation external id")] = None,
    status_: Annotated[Literal["open", "matched", "closed"] | None, Query(alias="status")] = None,
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
    summary="Create a need (staff)",
)
def create_need(
    body: schemas.NeedCreate, session: SessionDep, user: StaffUser
) -> schemas.NeedPublic:
    need = crud.create_need(session, data=body.model_dump())
    crud.audit(session, user=user, action="need.create", entity="need", entity_id=need.external_id)
    session.commit()
    return convert.needs(session, [need])[0]


@router.patch("/{external_id}", response_model=schemas.NeedPublic, summary="Update a need (staff)")
def update_need(
    external_id: ExtId, body: schemas.NeedUpdate, session: SessionDep, user: StaffUser
) -> schemas.NeedPublic:
    need = crud.get_need(session, viewer=user, external_id=external_id)
    changed = crud.update_fields(need, body.model_dump(exclude_unset=True))
    crud.audit(
        session,
        user=user,
        action="need.update",
        entity="need",
        entity_id=external_id,
        detail={"changed": sorted(changed)},
    )
    session.commit()
    return convert.needs(session, [need])[0]
