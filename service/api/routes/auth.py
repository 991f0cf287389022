"""Login/logout (session cookie + CSRF token, for staff pages and scripts) and ``/auth/me``.

``POST /auth/login`` is the one API route open to anonymous callers (besides ``/healthz``). It
accepts JSON only (a cross-site form cannot send JSON without a CORS preflight, which is never
granted), and throttles repeated failures per username.
"""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Request, Response

from service import auth, crud, schemas
from service.api.deps import CurrentUser, SessionDep, SettingsDep
from service.errors import ERROR_RESPONSES, ErrorBody, NotAuthenticated, ServiceError

router = APIRouter(prefix="/auth", tags=["auth"])

MAX_FAILURES = 10
LOCKOUT_S = 300.0


class TooManyAttempts(ServiceError):
    status = 429
    code = "too_many_attempts"


class LoginThrottle:
    """In-process failure counter: after MAX_FAILURES failures a username waits LOCKOUT_S."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fails: dict[str, tuple[int, float]] = {}

    def check(self, username: str) -> None:
        with self._lock:
            n, since = self._fails.get(username, (0, 0.0))
            if n >= MAX_FAILURES and time.monotonic() - since < LOCKOUT_S:
                raise TooManyAttempts("too many failed logins; try again later")

    def record(self, username: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._fails.pop(username, None)
            else:
                n, _ = self._fails.get(username, (0, 0.0))
                self._fails[username] = (n + 1, time.monotonic())


@router.post(
    "/login",
    response_model=schemas.Me,
    summary="Log in with username and password; sets the session cookie, returns the CSRF token",
    responses={
        429: {"model": ErrorBody, "description": "too many failed attempts"},
        **ERROR_RESPONSES,
    },
)
def login(
    body: schemas.LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> schemas.Me:
    throttle: LoginThrottle = request.app.state.login_throttle
    throttle.check(body.username)
    user = crud.verify_login(session, username=body.username, password=body.password)
    throttle.record(body.username, user is not None)
    if user is None:
        crud.audit(
            session, user=None, action="auth.login_failed", entity="user", entity_id=body.username
        )
        session.commit()
        raise NotAuthenticated("invalid username or password", code="invalid_credentials")
    cookie = auth.make_session_cookie(
        settings.secret_key, user_id=user.id, password_hash=user.password_hash
    )
    data = auth.read_session_cookie(settings.secret_key, cookie)
    auth.set_session_cookie(response, cookie, secure=settings.environment == "prod")
    crud.audit(
        session, user=None, user_id=user.id, action="auth.login", entity="user", entity_id=user.id
    )
    session.commit()
    return schemas.Me(
        user_id=user.id,
        username=user.username,
        role=user.role,
        org_external_id=user.org.external_id if user.org is not None else None,
        via="session",
        csrf_token=auth.csrf_token(settings.secret_key, data.session_id) if data else None,
    )


@router.post(
    "/logout",
    status_code=204,
    summary="Log out (clears the session cookie)",
    response_class=Response,
)
def logout(_user: CurrentUser) -> Response:
    response = Response(status_code=204)
    auth.clear_session_cookie(response)
    return response


@router.get("/me", response_model=schemas.Me, summary="Who am I (role, organisation)")
def me(user: CurrentUser, settings: SettingsDep) -> schemas.Me:
    return schemas.Me(
        user_id=user.user_id,
        username=user.username,
        role=user.role,
        org_external_id=user.org_external_id,
        via=user.via,
        csrf_token=auth.csrf_token(settings.secret_key, user.session_id)
        if user.session_id
        else None,
    )
