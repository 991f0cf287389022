"""The audit log (staff and admin read): every decision and admin action, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service import crud, schemas
from service.api.deps import Pagination, SessionDep, StaffUser

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=schemas.Page[schemas.AuditPublic], summary="Audit log entries")
def list_audit(
    session: SessionDep,
    _user: StaffUser,
    page: Pagination,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    user_id: Annotated[int | None, Query(ge=1, le=2**31)] = None,
) -> schemas.Page[schemas.AuditPublic]:
    rows, total = crud.list_audit(
        session, limit=page.limit, offset=page.offset, entity=entity, action=action, user_id=user_id
    )
    return schemas.Page(
        items=[schemas.AuditPublic.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
