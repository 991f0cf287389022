"""Login/logout (session cookie + CSRF token, for staff pages and scripts) and ``/auth/me``.

``POST /auth/login`` is the one API route open to anonymous callers (besides ``/healthz``). It
accepts JSON only (a cross-site form cannot send JSON without a CORS preflight, which is never
granted), and throttles repeated failures per username and per client address through the
store (:mod:`service.sessions`, shared with the staff login page).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service import auth, schemas, sessions
from service.api.deps import CurrentUser, SessionDep, SettingsDep
from service.errors import ERROR_RESPONSES, ErrorBody, NotAuthenticated
from service.sessions import LoginThrottle, TooManyAttempts

__all__ = ["LoginThrottle", "TooManyAttempts", "client_address", "router"]

router = APIRouter(prefix="/auth", tags=["auth"])


def client_address(request: Request) -> str:
    """The client's address as the server sees it (uvicorn applies trusted proxy headers)."""
    return request.client.host if request.client is not None else ""


@router.post(
    "/login",
    response_model=schemas.Me,
    summary="Log in with username and password; sets the session cookie, returns the CSRF token",
    responses={
        429: {"model": ErrorBody, "description": "too many failed attempts (see Retry-After)"},
        503: {"model": ErrorBody, "description": "the store is busy (see Retry-After)"},
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
    result = sessions.attempt_login(
        session,
        settings,
        request.app.state.login_throttle,
        username=body.username,
        password=body.password,
        client=client_address(request),
    )
    if result is None:
        raise NotAuthenticated("invalid username or password", code="invalid_credentials")
    user = result.user
    auth.set_session_cookie(response, result.cookie, secure=settings.environment == "prod")
    return schemas.Me(
        user_id=user.id,
        username=user.username,
        role=user.role,
        org_external_id=user.org.external_id if user.org is not None else None,
        via="session",
        csrf_token=auth.csrf_token(settings.secret_key, result.session_id),
    )


@router.post(
    "/logout",
    status_code=204,
    summary="Log out: ends the server-side session and clears the cookie",
    response_class=Response,
)
def logout(user: CurrentUser, session: SessionDep) -> Response:
    if user.via == "session" and user.session_id:
        sessions.revoke_session(session, user.session_id)
        session.commit()
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
