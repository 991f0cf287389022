"""User and API-key management (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel

from service import auth, crud, schemas, sessions
from service.api import convert
from service.api.deps import AdminUser, Pagination, SessionDep

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=2**31)]


class SessionsRevoked(BaseModel):
    """How many live login sessions of the user were ended."""

    user_id: int
    sessions_revoked: int


def _public(session: SessionDep, user_ids: list[int], rows: list) -> list[schemas.UserPublic]:  # type: ignore[type-arg]
    return convert.users(session, rows, crud.active_key_prefixes(session, user_ids=user_ids))


@router.get("", response_model=schemas.Page[schemas.UserPublic], summary="List users")
def list_users(
    session: SessionDep, _user: AdminUser, page: Pagination
) -> schemas.Page[schemas.UserPublic]:
    rows, total = crud.list_users(session, limit=page.limit, offset=page.offset)
    return schemas.Page(
        items=_public(session, [u.id for u in rows], rows),
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "",
    response_model=schemas.UserCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user (and an API key, shown once)",
)
def create_user(
    body: schemas.UserCreate, session: SessionDep, admin: AdminUser
) -> schemas.UserCreated:
    user, key = crud.create_user(
        session,
        username=body.username,
        role=body.role,
        org_external_id=body.org_external_id,
        password=body.password,
        with_api_key=body.with_api_key,
        must_change_password=body.role in auth.ORG_ROLES,
    )
    crud.audit(
        session,
        user=admin,
        action="user.create",
        entity="user",
        entity_id=user.id,
        detail={"username": user.username, "role": user.role},
    )
    session.commit()
    return schemas.UserCreated(user=_public(session, [user.id], [user])[0], api_key=key)


@router.post(
    "/{user_id}/keys",
    response_model=schemas.UserCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Issue an additional API key",
)
def issue_key(user_id: UserId, session: SessionDep, admin: AdminUser) -> schemas.UserCreated:
    user = crud.get_user(session, user_id=user_id)
    key = crud.issue_api_key(session, user=user)
    crud.audit(session, user=admin, action="user.key", entity="user", entity_id=user.id)
    session.commit()
    return schemas.UserCreated(user=_public(session, [user.id], [user])[0], api_key=key)


@router.post(
    "/{user_id}/revoke",
    response_model=schemas.UserPublic,
    summary="Deactivate a user and revoke all their keys",
)
def revoke(user_id: UserId, session: SessionDep, admin: AdminUser) -> schemas.UserPublic:
    user = crud.get_user(session, user_id=user_id)
    n = crud.revoke_user(session, user=user)
    ended = sessions.revoke_user_sessions(session, user.id)
    crud.audit(
        session,
        user=admin,
        action="user.revoke",
        entity="user",
        entity_id=user.id,
        detail={"keys_revoked": n, "sessions_revoked": ended},
    )
    session.commit()
    return _public(session, [user.id], [user])[0]


@router.post(
    "/{user_id}/sessions/revoke",
    response_model=SessionsRevoked,
    summary="End every login session of a user (keys and the account stay)",
)
def revoke_sessions(user_id: UserId, session: SessionDep, admin: AdminUser) -> SessionsRevoked:
    user = crud.get_user(session, user_id=user_id)
    ended = sessions.revoke_user_sessions(session, user.id)
    crud.audit(
        session,
        user=admin,
        action="user.sessions_revoke",
        entity="user",
        entity_id=user.id,
        detail={"sessions_revoked": ended},
    )
    session.commit()
    return SessionsRevoked(user_id=user.id, sessions_revoked=ended)
