"""Login/logout (session cookie + CSRF token, for staff pages and scripts), ``/auth/me`` and
the caller's own password change (``/auth/password``).

An account whose password was issued by staff may log in, but ``/me`` and the login answer
report ``must_change_password`` and every other API call is refused with 403
``password_change_required`` (:data:`service.api.deps.CurrentUser`) until
``POST /auth/password`` sets a new one (the rule of :func:`service.sessions.change_password`,
shared with the portal page).

``POST /auth/login`` is the one API route open to anonymous callers (besides ``/healthz``). It
accepts JSON only (a cross-site form cannot send JSON without a CORS preflight, which is never
granted), and throttles repeated failures per username and per client address through the
store (:mod:`service.sessions`, shared with the staff login page).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from service import auth, schemas, sessions
from service.api.deps import PASSWORD_CHANGE_REQUIRED, Caller, SessionDep, SettingsDep
from service.errors import ERROR_RESPONSES, ErrorBody, NotAuthenticated, error_response
from service.forms import FormErrors
from service.models import User
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
    return _me(user, settings, result.session_id)


def _me(user: User, settings: SettingsDep, session_id: str) -> schemas.Me:
    must = bool(user.must_change_password)
    return schemas.Me(
        user_id=user.id,
        username=user.username,
        role=user.role,
        org_external_id=user.org.external_id if user.org is not None else None,
        via="session",
        csrf_token=auth.csrf_token(settings.secret_key, session_id),
        must_change_password=must,
        notice=PASSWORD_CHANGE_REQUIRED if must else None,
    )


@router.post(
    "/logout",
    status_code=204,
    summary="Log out: ends the server-side session and clears the cookie",
    response_class=Response,
)
def logout(user: Caller, session: SessionDep) -> Response:
    if user.via == "session" and user.session_id:
        sessions.revoke_session(session, user.session_id)
        session.commit()
    response = Response(status_code=204)
    auth.clear_session_cookie(response)
    return response


@router.get("/me", response_model=schemas.Me, summary="Who am I (role, organisation)")
def me(user: Caller, settings: SettingsDep) -> schemas.Me:
    return schemas.Me(
        user_id=user.user_id,
        username=user.username,
        role=user.role,
        org_external_id=user.org_external_id,
        via=user.via,
        csrf_token=auth.csrf_token(settings.secret_key, user.session_id)
        if user.session_id
        else None,
        must_change_password=user.must_change_password,
        notice=PASSWORD_CHANGE_REQUIRED if user.must_change_password else None,
    )


@router.post(
    "/password",
    response_model=schemas.Me,
    summary="Change my password (required first when staff issued it); a new session starts",
    responses=ERROR_RESPONSES,
)
def change_password(
    body: schemas.PasswordChange,
    request: Request,
    response: Response,
    user: Caller,
    session: SessionDep,
    settings: SettingsDep,
) -> Any:
    """The portal's rule (:func:`service.sessions.change_password`): 422 ``invalid_form`` with
    one Chinese message per field; on success every session of the user ends and this call
    sets the cookie of a new one (API keys keep working)."""
    row = session.get(User, user.user_id)
    if row is None:
        raise NotAuthenticated("user no longer exists", code="invalid_credentials")
    try:
        cookie, sid = sessions.change_password(
            session,
            settings,
            user=row,
            current=body.current,
            new=body.new,
            again=body.again,
            client=client_address(request),
        )
    except FormErrors as exc:
        return error_response(
            422,
            exc.detail,
            exc.code,
            errors=[
                {"loc": ["body", k], "msg": v, "type": "value_error"} for k, v in exc.fields.items()
            ],
        )
    auth.set_session_cookie(response, cookie, secure=settings.environment == "prod")
    return _me(row, settings, sid)
