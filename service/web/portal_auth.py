"""The portal's sign-in (登录, one page for every role, routed by role), sign-out and the
password change page (修改密码) that a staff-issued password leads to at first login.

The login form uses a double-submit CSRF cookie (no session exists yet) and shares the API
login's throttle, like the staff login (:mod:`service.web.auth`).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service import auth, sessions
from service.api.deps import SessionDep, SettingsDep
from service.api.routes.auth import client_address
from service.errors import NotAuthenticated
from service.forms import FormErrors
from service.models import User
from service.sessions import TooManyAttempts
from service.web.common import (
    FormStr,
    csrf_ok,
    login_form,
    page_principal,
    page_router,
    safe_next,
    secure_cookies,
)
from service.web.portal_common import (
    AnyPortalPage,
    PortalAuth,
    PortalForm,
    home_route,
    portal_error,
    render_portal,
)

log = logging.getLogger(__name__)

router = page_router("/portal")

PASSWORD_MIN = sessions.PASSWORD_MIN
PASSWORD_MAX = sessions.PASSWORD_MAX
_LOGIN_COOKIE_PATH = "/portal/"

_EVERYONE: tuple[auth.Role, ...] = ("enterprise", "institute", "staff")
PasswordPage = Annotated[auth.Principal, Depends(PortalAuth(_EVERYONE, password_page=True))]
PasswordForm = Annotated[auth.Principal, Depends(PortalForm(_EVERYONE, password_page=True))]


def _login_page(request: Request, **form: Any) -> HTMLResponse:
    return login_form(request, render_portal, "portal/login.html", _LOGIN_COOKIE_PATH, **form)


@router.get("/login", name="portal_login", response_class=HTMLResponse)
def portal_login(request: Request, next: str | None = None) -> HTMLResponse:
    """登录: one sign-in form for enterprises, institutes and staff."""
    return _login_page(request, next_url=safe_next(next, prefix="/portal/") or "")


def _session_redirect(target: str, cookie: str, *, secure: bool) -> RedirectResponse:
    redirect = RedirectResponse(target, status_code=303)
    redirect.set_cookie(
        auth.SESSION_COOKIE,
        cookie,
        max_age=auth.SESSION_TTL_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    return redirect


@router.post("/login", name="portal_login_submit")
def portal_login_submit(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    username: FormStr = "",
    password: FormStr = "",
    csrf_token: FormStr = "",
    next: FormStr = "",
) -> Response:
    """Check the password, set the session cookie and go to the role's home (or ``next``)."""
    next_url = safe_next(next, prefix="/portal/") or ""
    username = username.strip()[:64]
    if not auth.check_double_submit(request.cookies.get(auth.LOGIN_CSRF_COOKIE), csrf_token):
        return _login_page(
            request,
            next_url=next_url,
            username=username,
            error="表单已过期，请重新登录。",
            status_code=403,
        )
    try:  # one throttle, session table and audit trail with the API and staff logins
        result = sessions.attempt_login(
            db,
            settings,
            request.app.state.login_throttle,
            username=username,
            password=password[: PASSWORD_MAX * 4],
            client=client_address(request),
        )
    except TooManyAttempts as exc:
        resp = _login_page(
            request,
            next_url=next_url,
            username=username,
            error="登录失败次数过多，请稍后再试。",
            status_code=429,
        )
        resp.headers.update(exc.headers)
        return resp
    if result is None:
        log.info("failed portal login for %r", username)
        return _login_page(
            request, next_url=next_url, username=username, error="用户名或密码错误。"
        )
    user, cookie = result.user, result.cookie
    if user.must_change_password:
        target = request.url_for("portal_password").path
    else:
        target = next_url or request.url_for(home_route(user.role)).path
    redirect = _session_redirect(target, cookie, secure=secure_cookies(settings))
    redirect.delete_cookie(auth.LOGIN_CSRF_COOKIE, path=_LOGIN_COOKIE_PATH)
    return redirect


@router.post("/logout", name="portal_logout")
def portal_logout(
    request: Request, db: SessionDep, settings: SettingsDep, csrf_token: FormStr = ""
) -> Response:
    """退出登录 (CSRF-checked so other sites cannot sign a user out)."""
    try:
        principal = page_principal(request, db, settings)
    except NotAuthenticated:
        principal = None
    if principal is not None and not csrf_ok(principal, settings, csrf_token):
        return portal_error(request, 403, "请求无效", "表单已过期，请刷新页面后重试。")
    if principal is not None and principal.via == "session" and principal.session_id:
        sessions.revoke_session(db, principal.session_id)  # the cookie is dead server-side too
        db.commit()
    resp = RedirectResponse(request.url_for("portal_login").path, status_code=303)
    resp.delete_cookie(auth.SESSION_COOKIE, path="/")
    return resp


@router.get("", include_in_schema=False)
@router.get("/", name="portal_home")
def portal_home(request: Request, user: AnyPortalPage) -> RedirectResponse:
    """``/portal`` → the signed-in user's home page."""
    return RedirectResponse(request.url_for(home_route(user.role)).path, status_code=303)


def _password_page(
    request: Request, user: auth.Principal, *, errors: dict[str, str] | None = None
) -> HTMLResponse:
    return render_portal(
        request,
        "portal/password.html",
        {"errors": errors or {}, "forced": user.must_change_password, "min_len": PASSWORD_MIN},
        user=user,
        status_code=422 if errors else 200,
    )


@router.get("/password", name="portal_password", response_class=HTMLResponse)
def portal_password(request: Request, user: PasswordPage) -> Response:
    """修改密码 (required before anything else when staff set the password)."""
    return _password_page(request, user)


@router.post("/password", name="portal_password_submit")
def portal_password_submit(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    user: PasswordForm,
    current: FormStr = "",
    new: FormStr = "",
    again: FormStr = "",
) -> Response:
    """Set the new password; the old sessions end and this browser gets a fresh one."""
    row = db.get(User, user.user_id)
    if row is None:
        return portal_error(request, 404, "未找到", "账号不存在。")
    try:
        cookie, _sid = sessions.change_password(
            db,
            settings,
            user=row,
            current=current,
            new=new,
            again=again,
            client=client_address(request),
        )
    except FormErrors as exc:
        return _password_page(request, user, errors=exc.fields)
    target = request.url_for(home_route(row.role)).path + "?done=password"
    return _session_redirect(target, cookie, secure=secure_cookies(settings))
