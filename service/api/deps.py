"""FastAPI dependencies as ``Annotated`` aliases: database session, settings, caller, roles,
and the recommender.

Credentials are read, in order, from ``Authorization: Bearer <key>``, ``X-API-Key: <key>`` and
the staff-page session cookie. A session-cookie caller must also send the session's CSRF token
(``X-CSRF-Token`` header) on unsafe methods; API-key callers need not (no ambient credential).

An account whose password was issued by staff (``must_change_password``) is refused by
:data:`CurrentUser` with 403 ``password_change_required`` until it changes the password; only
``/auth/me``, ``/auth/logout`` and ``/auth/password`` admit it (:data:`Caller`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.pipeline import Recommender
from service import auth, sessions
from service.errors import Forbidden, NotAuthenticated
from service.models import ApiKey, User
from service.settings import Settings

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_TOUCH_EVERY = timedelta(minutes=5)  # last_used_at granularity: avoid a write per request


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """A database session per request; routes commit their own writes."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def release_connection(session: Session) -> None:
    """End the session's transaction so its connection returns to the pool.

    Called before long recommender calls: a request must not hold one of the pool's
    connections while the model runs (16 concurrent suggestion requests would otherwise
    exhaust a 5 + 10 pool and time out other requests). The session reconnects on next use.
    """
    session.commit()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def _extract_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise NotAuthenticated("unsupported Authorization scheme (use Bearer)")
    key = request.headers.get("x-api-key")
    return key.strip() if key else None


def _principal_for(user: User, **kw: Any) -> auth.Principal:
    return auth.Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,  # type: ignore[arg-type]
        org_id=user.org_id,
        org_external_id=user.org.external_id if user.org is not None else None,
        must_change_password=bool(user.must_change_password),
        **kw,
    )


def authenticate_api_key(session: Session, key: str) -> auth.Principal:
    """The principal owning ``key``; raises NotAuthenticated for unknown/revoked keys."""
    prefix = auth.parse_api_key(key)
    row = None
    if prefix is not None:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    # Compare even when no row was found so timing does not reveal valid prefixes.
    stored = row.key_hash if row is not None else "0" * 64
    if not auth.api_key_matches(key, stored) or row is None or row.revoked:
        raise NotAuthenticated("invalid API key", code="invalid_credentials")
    user = row.user
    if not user.active:
        raise NotAuthenticated("user is inactive", code="invalid_credentials")
    now = datetime.now(UTC)
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    if last is None or now - last > _TOUCH_EVERY:
        row.last_used_at = now
        session.commit()
    return _principal_for(user, via="api_key")


def authenticate_session(session: Session, settings: Settings, cookie: str) -> auth.Principal:
    """The principal of a session cookie; raises NotAuthenticated when invalid or stale.

    The signature, the user's fingerprint and the server-side session row must all hold: a
    cookie signed with the right key still fails once its session was logged out or revoked.
    """
    data = auth.read_session_cookie(settings.secret_key, cookie)
    if data is None:
        raise NotAuthenticated("invalid or expired session", code="invalid_credentials")
    user = session.get(User, data.user_id)
    if (
        user is None
        or not user.active
        or not hmac.compare_digest(
            auth.session_fingerprint(settings.secret_key, user.id, user.password_hash),
            data.password_fp,
        )
        or not sessions.is_live(session, session_id=data.session_id, user_id=user.id)
    ):
        raise NotAuthenticated("invalid or expired session", code="invalid_credentials")
    return _principal_for(user, via="session", session_id=data.session_id)


# Declared only so OpenAPI documents the two header schemes; parsing is ours (_extract_key).
_bearer_scheme = HTTPBearer(auto_error=False, description="API key: `Bearer dj_<prefix>_<secret>`")
_header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


PASSWORD_CHANGE_REQUIRED = (
    "首次登录须先修改初始密码：请调用 POST /api/v1/auth/password"
    "（或在门户的“修改密码”页面）设置新密码后再使用接口。"
)


def get_caller(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)] = None,
    _header: Annotated[str | None, Depends(_header_scheme)] = None,
) -> auth.Principal:
    """The authenticated caller; 401 without valid credentials."""
    key = _extract_key(request)
    if key:
        principal = authenticate_api_key(session, key)
    else:
        cookie = request.cookies.get(auth.SESSION_COOKIE)
        if not cookie:
            raise NotAuthenticated("authentication required")
        principal = authenticate_session(session, settings, cookie)
        if request.method in _UNSAFE and not auth.check_csrf(
            settings.secret_key, principal.session_id, request.headers.get(auth.CSRF_HEADER)
        ):
            raise Forbidden("missing or invalid CSRF token", code="csrf_failed")
    request.state.principal = principal
    return principal


Caller = Annotated[auth.Principal, Depends(get_caller)]
"""The authenticated caller, even one that must still change a staff-issued password."""


def get_current_user(caller: Caller) -> auth.Principal:
    """The authenticated caller; 401 without valid credentials, 403
    ``password_change_required`` while a staff-issued password is unchanged."""
    if caller.must_change_password:
        raise Forbidden(PASSWORD_CHANGE_REQUIRED, code="password_change_required")
    return caller


CurrentUser = Annotated[auth.Principal, Depends(get_current_user)]


def require_role(*roles: auth.Role) -> Callable[..., auth.Principal]:
    """A dependency that admits only ``roles`` (admin is admitted wherever staff is)."""

    def _check(user: CurrentUser) -> auth.Principal:
        if not auth.role_allows(user.role, roles):
            raise Forbidden(f"requires role: {' or '.join(roles)}")
        return user

    return _check


StaffUser = Annotated[auth.Principal, Depends(require_role("staff"))]
AdminUser = Annotated[auth.Principal, Depends(require_role("admin"))]
EnterpriseUser = Annotated[auth.Principal, Depends(require_role("enterprise"))]
InstituteUser = Annotated[auth.Principal, Depends(require_role("institute"))]
# An enterprise acting on its own organisation's records, or staff acting on anyone's.
EnterpriseOrStaff = Annotated[auth.Principal, Depends(require_role("enterprise", "staff"))]


def get_recommender(request: Request) -> Recommender:
    """The current recommender (hot-reloaded by the handle); IndexNotReady → 503."""
    handle = request.app.state.recommender
    recommender: Recommender = handle.get()
    return recommender


RecommenderDep = Annotated[Recommender, Depends(get_recommender)]


class PageParams:
    """``limit`` (1..200, default 50) and ``offset`` query parameters."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=200, description="page size (max 200)")] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


Pagination = Annotated[PageParams, Depends()]
