"""Capabilities (能力/成果): read for every role (enterprises: the partner directory and their
own), create/update for staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from service import crud, schemas
from service.api import convert
from service.api.deps import CurrentUser, Pagination, SessionDep, StaffUser

router = APIRouter(prefix="/capabilities", tags=["capabilities"])

ExtId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=schemas.Page[schemas.CapabilityPublic], summary="List capabilities")
def list_capabilities(
    session: SessionDep,
    user: CurrentUser,
    page: Pagination,
    org: Annotated[str | None, Query(max_length=64, description="organisation external id")] = None,
    kind: Annotated[schemas.CapabilityKind | None, Query()] = None,
) -> schemas.Page[schemas.CapabilityPublic]:
    rows, total = crud.list_capabilities(
        session, viewer=user, limit=page.limit, offset=page.offset, org_external_id=org, kind=kind
    )
    return schemas.Page(
        items=convert.capabilities(session, rows), total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{external_id}", response_model=schemas.CapabilityPublic, summary="One capability")
def get_capability(
    external_id: ExtId, session: SessionDep, user: CurrentUser
) -> schemas.CapabilityPublic:
    cap = crud.get_capability(session, viewer=user, external_id=external_id)
    return convert.capabilities(session, [cap])[0]


@router.post(
    "",
    response_model=schemas.CapabilityPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create a capability (staff)",
)
def create_capability(
    body: schemas.CapabilityCreate, session: SessionDep, user: StaffUser
) -> schemas.CapabilityPublic:
    cap = crud.create_capability(session, data=body.model_dump())
    crud.audit(
        session,
        user=user,
        action="capability.create",
        entity="capability",
        entity_id=cap.external_id,
    )
    session.commit()
    return convert.capabilities(session, [cap])[0]


@router.patch(
    "/{external_id}", response_model=schemas.CapabilityPublic, summary="Update a capability (staff)"
)
def update_capability(
    external_id: ExtId, body: schemas.CapabilityUpdate, session: SessionDep, user: StaffUser
) -> schemas.CapabilityPublic:
    cap = crud.get_capability(session, viewer=user, external_id=external_id)
    changed = crud.update_fields(cap, body.model_dump(exclude_unset=True))
    crud.audit(
        session,
        user=user,
        action="capability.update",
        entity="capability",
        entity_id=external_id,
        detail={"changed": sorted(changed)},
    )
    session.commit()
    return convert.capabilities(session, [cap])[0]
