"""Staff sign in / sign out (登录 / 退出登录), the ``/staff`` home redirect and the stylesheet.

The login form uses a double-submit CSRF cookie because no session exists yet; logout is
CSRF-checked against the session so other sites cannot sign a user out and ends the server-side
session. Logins go through :func:`service.sessions.attempt_login`, like the API's (one
throttle per username and client address, one session table).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from service import auth, sessions
from service.api.deps import SessionDep, SettingsDep
from service.api.routes.auth import client_address
from service.errors import NotAuthenticated
from service.sessions import TooManyAttempts
from service.web.common import (
    STATIC_DIR,
    FormStr,
    csrf_ok,
    error_page,
    login_form,
    page_principal,
    page_router,
    render,
    safe_next,
)

log = logging.getLogger(__name__)

router = page_router("/staff")


@router.get("/static/{name}", name="staff_static")
def staff_static(name: str) -> Response:
    """Serve one file of ``service/static`` (flat directory; no path traversal)."""
    allowed = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
    path = allowed.get(name)
    if path is None:
        return Response("not found", status_code=404)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


def _login_page(request: Request, **form: Any) -> HTMLResponse:
    return login_form(request, render, "staff/login.html", "/staff/", **form)


@router.get("/login", name="staff_login", response_class=HTMLResponse)
def staff_login(request: Request, next: str | None = None) -> HTMLResponse:
    """登录: the sign-in form."""
    return _login_page(request, next_url=safe_next(next) or "")


@router.post("/login", name="staff_login_submit")
def staff_login_submit(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    username: FormStr = "",
    password: FormStr = "",
    csrf_token: FormStr = "",
    next: FormStr = "",
) -> Response:
    """Check the password and set the signed session cookie."""
    next_url = safe_next(next) or ""
    if not auth.check_double_submit(request.cookies.get(auth.LOGIN_CSRF_COOKIE), csrf_token):
        return _login_page(
            request,
            next_url=next_url,
            username=username,
            error="表单已过期,请重新登录。",
            status_code=403,
        )
    username = username.strip()[:64]
    try:  # the throttle, the session row and the audit entry are shared with the API login
        result = sessions.attempt_login(
            db,
            settings,
            request.app.state.login_throttle,
            username=username,
            password=password,
            client=client_address(request),
        )
    except TooManyAttempts as exc:
        resp = _login_page(
            request,
            next_url=next_url,
            username=username,
            error="登录失败次数过多,请稍后再试。",
            status_code=429,
        )
        resp.headers.update(exc.headers)
        return resp
    if result is None:
        log.info("failed staff login for %r", username)
        return _login_page(
            request, next_url=next_url, username=username, error="用户名或密码错误。"
        )
    cookie = result.cookie
    target = next_url or request.url_for("staff_campaigns").path
    redirect = RedirectResponse(target, status_code=303)
    redirect.set_cookie(
        auth.SESSION_COOKIE,
        cookie,
        max_age=auth.SESSION_TTL_S,
        httponly=True,
        samesite="lax",
        secure=settings.environment == "prod",
        path="/",
    )
    redirect.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/staff/")
    return redirect


@router.post("/logout", name="staff_logout")
def staff_logout(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    csrf_token: FormStr = "",
) -> Response:
    """退出登录: drop the session cookie (CSRF-checked so other sites cannot log you out)."""
    try:
        principal = page_principal(request, db, settings)
    except NotAuthenticated:
        principal = None
    if principal is not None and not csrf_ok(principal, settings, csrf_token):
        return error_page(request, 403, "请求无效", "表单已过期,请刷新页面后重试。")
    if principal is not None and principal.via == "session" and principal.session_id:
        sessions.revoke_session(db, principal.session_id)  # the cookie is dead server-side too
        db.commit()
    resp = RedirectResponse(request.url_for("staff_login").path, status_code=303)
    resp.delete_cookie(auth.SESSION_COOKIE, path="/")
    return resp


@router.get("", include_in_schema=False)
@router.get("/", name="staff_home")
def staff_home(request: Request) -> RedirectResponse:
    """``/staff`` → the campaign list."""
    return RedirectResponse(request.url_for("staff_campaigns").path, status_code=303)
