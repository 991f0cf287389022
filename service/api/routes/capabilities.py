"""Capabilities (能力/成果): read for every role (enterprises: the partner directory and their
own), create/update for staff, and for institute users on their own organisation (validated
by :func:`service.institute.parse_capability`, the portal form's rules)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status

from service import auth, crud, institute, schemas
from service.api import convert
from service.api.deps import CurrentUser, Pagination, SessionDep, require_role
from service.errors import Forbidden
from service.forms import FormErrors
from service.models import Capability
from service.validation import normalise_text

router = APIRouter(prefix="/capabilities", tags=["capabilities"])

ExtId = Annotated[str, Path(min_length=1, max_length=64)]
EditorUser = Annotated[auth.Principal, Depends(require_role("staff", "institute"))]

_FORM_FIELDS = ("kind", "title", "description", "field", "keywords", "trl", "year")


def _portal_rules(cap: Capability | None, changes: dict[str, Any]) -> dict[str, Any]:
    """An institute's write goes through the portal form's validation (normalised text,
    Chinese messages); raises FormErrors (422)."""
    if cap is None:
        data = institute.parse_capability(changes)
        return {k: data[k] for k in _FORM_FIELDS}
    # An update is judged on the fields it changes (older records may predate the rules).
    current = {f: getattr(cap, f) for f in _FORM_FIELDS}
    merged = {**current, **{k: v for k, v in changes.items() if k in _FORM_FIELDS}}
    try:
        data = institute.parse_capability(merged)
    except FormErrors as exc:
        kept = {k: v for k, v in exc.fields.items() if k in changes}
        if kept:
            exc.fields = kept
            exc.raise_if_any()
        data = {
            k: normalise_text(v) if isinstance(v, str) else v
            for k, v in merged.items()
            if k not in exc.fields
        }
    return {k: data[k] for k in _FORM_FIELDS if k in changes}


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
    summary="Create a capability (staff; institute users for their own organisation)",
)
def create_capability(
    body: schemas.CapabilityCreate, session: SessionDep, user: EditorUser
) -> schemas.CapabilityPublic:
    data = body.model_dump()
    if not user.is_staff:
        if body.org_external_id != user.org_external_id:
            raise Forbidden("institute users create capabilities of their own organisation")
        data.update(_portal_rules(None, data))
    cap = crud.create_capability(session, data=data)
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
    "/{external_id}",
    response_model=schemas.CapabilityPublic,
    summary="Update a capability (staff; institute users: their own)",
)
def update_capability(
    external_id: ExtId, body: schemas.CapabilityUpdate, session: SessionDep, user: EditorUser
) -> schemas.CapabilityPublic:
    cap = institute.own_capability(session, user=user, external_id=external_id)
    changes = body.model_dump(exclude_unset=True)
    if not user.is_staff:
        changes.update(_portal_rules(cap, changes))
    changed = crud.update_fields(cap, changes)
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
