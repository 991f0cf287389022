"""Organisations: read for every role (enterprises see their own and the partner directory),
create/update for staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from service import crud, schemas
from service.api import convert
from service.api.deps import CurrentUser, Pagination, SessionDep, StaffUser

router = APIRouter(prefix="/organisations", tags=["organisations"])

ExtId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get(
    "", response_model=schemas.Page[schemas.OrganisationPublic], summary="List organisations"
)
def list_organisations(
    session: SessionDep,
    user: CurrentUser,
    page: Pagination,
    kind: Annotated[schemas.OrgKind | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=100, description="name contains")] = None,
) -> schemas.Page[schemas.OrganisationPublic]:
    rows, total = crud.list_organisations(
        session, viewer=user, limit=page.limit, offset=page.offset, kind=kind, q=q
    )
    return schemas.Page(
        items=convert.organisations(session, rows),
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{external_id}", response_model=schemas.OrganisationPublic, summary="One organisation")
def get_organisation(
    external_id: ExtId, session: SessionDep, user: CurrentUser
) -> schemas.OrganisationPublic:
    org = crud.get_organisation(session, viewer=user, external_id=external_id)
    return convert.organisations(session, [org])[0]


@router.post(
    "",
    response_model=schemas.OrganisationPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Create an organisation (staff)",
)
def create_organisation(
    body: schemas.OrganisationCreate, session: SessionDep, user: StaffUser
) -> schemas.OrganisationPublic:
    org = crud.create_organisation(session, data=body.model_dump())
    crud.audit(
        session,
        user=user,
        action="organisation.create",
        entity="organisation",
        entity_id=org.external_id,
    )
    session.commit()
    return convert.organisations(session, [org])[0]


@router.patch(
    "/{external_id}",
    response_model=schemas.OrganisationPublic,
    summary="Update an organisation (staff)",
)
def update_organisation(
    external_id: ExtId, body: schemas.OrganisationUpdate, session: SessionDep, user: StaffUser
) -> schemas.OrganisationPublic:
    org = crud.get_organisation(session, viewer=user, external_id=external_id)
    changed = crud.update_fields(org, body.model_dump(exclude_unset=True))
    crud.audit(
        session,
        user=user,
        action="organisation.update",
        entity="organisation",
        entity_id=external_id,
        detail={"changed": changed},
    )
    session.commit()
    return convert.organisations(session, [org])[0]
