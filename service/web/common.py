"""What every server-rendered page shares: templates, rendering, page authentication, CSRF.

A page module (``service/web/<area>.py``) builds its router with :func:`page_router`, declares
its caller with a role dependency and renders with :func:`render`::

    router = page_router("/portal")
    PortalUserDep = Annotated[auth.Principal, Depends(PageAuth(("enterprise",)))]

    @router.get("/needs", name="portal_needs")
    def needs(request: Request, user: PortalUserDep) -> Response:
        return render(request, "portal/needs.html", {...}, user=user)

Page authentication
-------------------
:class:`PageAuth` is a FastAPI dependency parametrised by the admitted roles (admin is
admitted wherever staff is, :func:`service.auth.role_allows`). Credentials are those of the
API (:mod:`service.api.deps`): an API key header, else the signed session cookie. It returns the
:class:`~service.auth.Principal`, or ends the request with a page:

* anonymous browser (or an invalid/expired cookie) → 303 to the login page with ``?next=``;
* an invalid API key → 401 page;
* an authenticated caller of another role → 403 page with the configured Chinese message.

The dependency ends a request by raising :class:`PageExit`, which the route class of
:func:`page_router` (:class:`PageRoute`) turns into its response; request validation errors on
page routes (an id beyond 64 bits, a malformed form) become a 422 page the same way.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Coroutine, Sequence
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute, APIRouter
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from service import auth
from service.api.deps import SessionDep, SettingsDep, authenticate_api_key, authenticate_session
from service.bounty_lifecycle import BID_STATUS_LABELS, STATE_LABELS
from service.errors import NotAuthenticated
from service.settings import Settings

TEMPLATES_DIR = pathlib.Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = pathlib.Path(__file__).resolve().parent.parent / "static"
CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

STATUS_LABELS: dict[str, str] = {"pending": "待审核", "approved": "已通过", "rejected": "已驳回"}
CAMPAIGN_STATUS_LABELS: dict[str, str] = {
    "created": "已创建",
    "running": "运行中",
    "done": "已完成",
    "failed": "失败",
    "cancelled": "已取消",
}
ROLE_LABELS: dict[str, str] = {"staff": "工作人员", "admin": "管理员", "enterprise": "企业用户"}
BOUNTY_KIND_LABELS: dict[str, str] = {"tackle": "技术攻关类", "transfer": "成果转化类"}
BOUNTY_STATUS_LABELS: dict[str, str] = {**STATE_LABELS, "closed": "结项"}
KIND_LABELS: dict[str, str] = {"assigned": "配对", "alternate": "备选", "uncovered": "未覆盖"}

#: The staff navigation (both the /staff and the /portal layouts): a few sections, each a
#: disclosure (<details>) with its pages, so it stays one short row on a 375 px phone and
#: works without JavaScript. ``(section, ((label, route name), ...))``.
STAFF_MENU: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "待办",
        (
            ("需求审核", "portal_staff_needs"),
            ("对接申请", "portal_staff_intros"),
            ("申报审核", "portal_staff_applications"),
            ("发榜审核", "staff_bounty_proposals"),
        ),
    ),
    ("结对", (("活动列表", "staff_campaigns"), ("新建活动", "staff_campaign_new"))),
    ("揭榜", (("揭榜榜单", "staff_bounties"), ("公示", "public_notice"))),
    (
        "资源",
        (
            ("需求库", "staff_needs"),
            ("单位库", "staff_organisations"),
            ("指南凝练", "staff_guideline_runs"),
            ("账号管理", "portal_staff_accounts"),
        ),
    ),
    ("数据看板", (("数据看板", "staff_dashboard"),)),
)

FormStr = Annotated[str, Form()]

MAX_ID = 2**31
"""Largest id or version a page accepts (as the API): larger values are a 422, never a
database overflow."""
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
"""A row id in a page path."""


class PageExit(Exception):
    """End a page request early with ``response`` (raised by page dependencies)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class PageRoute(APIRoute):
    """An ``APIRoute`` that answers :class:`PageExit` with its response and validation
    errors with a 422 page (not the API's JSON body)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except PageExit as exc:
                return exc.response
            except RequestValidationError:
                return error_page(request, 422, "请求无效", "请求参数不正确,请返回上一页重试。")

        return page_handler


def page_router(prefix: str) -> APIRouter:
    """A router for server-rendered pages under ``prefix`` (hidden from the OpenAPI schema)."""
    return APIRouter(prefix=prefix, include_in_schema=False, route_class=PageRoute)


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    """The Jinja2 environment of ``service/templates`` (label tables as globals)."""
    env = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env.env.globals.update(
        status_labels=STATUS_LABELS,
        campaign_status_labels=CAMPAIGN_STATUS_LABELS,
        role_labels=ROLE_LABELS,
        bounty_kind_labels=BOUNTY_KIND_LABELS,
        bounty_status_labels=BOUNTY_STATUS_LABELS,
        staff_menu=STAFF_MENU,
        bid_status_labels=BID_STATUS_LABELS,
    )
    return env


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def csrf_for(principal: auth.Principal | None, settings: Settings) -> str:
    """The CSRF token a page's forms carry for ``principal`` ('' without a session)."""
    if principal is None or principal.session_id is None:
        return ""
    return auth.csrf_token(settings.secret_key, principal.session_id)


def csrf_ok(principal: auth.Principal, settings: Settings, token: str | None) -> bool:
    """Whether a form's ``token`` is valid for ``principal``'s session."""
    # API-key callers carry no ambient credential, so cross-site forgery cannot use them.
    if principal.via == "api_key":
        return True
    return auth.check_csrf(settings.secret_key, principal.session_id, token)


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    user: auth.Principal | None = None,
    status_code: int = 200,
    flashes: Sequence[tuple[str, str]] = (),
) -> HTMLResponse:
    """Render ``template`` with the page globals and the security headers of every page.

    The context always holds ``user`` (the principal or None), ``csrf_token`` (for the
    user's session; ``context`` may override it), ``unread_messages`` (the header's 站内信
    count, for a signed-in user) and ``flashes`` (``(kind, text)`` pairs,
    ``kind`` in ``ok``/``error``; fixed texts only, never user input).
    """
    ctx = {
        "user": user,
        "csrf_token": csrf_for(user, _settings(request)),
        "flashes": list(flashes),
        **context,
    }
    if user is not None and "unread_messages" not in ctx:
        ctx["unread_messages"] = unread_messages(request, user)
    response = templates().TemplateResponse(request, template, ctx, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    # Pages use no inline script or style: only our own stylesheet may load.
    response.headers["Content-Security-Policy"] = CSP
    return response


def unread_messages(request: Request, user: auth.Principal) -> int:
    """How many in-app messages (站内信) ``user`` has not read, for the page header."""
    from service.portal_crud import unread_count

    factory = getattr(request.app.state, "session_factory", None)
    if factory is None:
        return 0
    with factory() as db:
        return unread_count(db, user_id=user.user_id)


def error_page(
    request: Request,
    status_code: int,
    heading: str,
    message: str,
    *,
    user: auth.Principal | None = None,
) -> HTMLResponse:
    """A page with one heading and one message (fixed Chinese texts)."""
    return render(
        request,
        "staff/error.html",
        {"heading": heading, "message": message},
        user=user,
        status_code=status_code,
    )


def safe_next(value: str | None, *, prefix: str = "/staff/") -> str | None:
    """Only same-site paths under ``prefix`` are valid redirect targets (no open redirect)."""
    if not value or not value.startswith(prefix) or value.startswith("//") or "\\" in value:
        return None
    return value


def _api_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""
    return (request.headers.get("x-api-key") or "").strip()


def page_principal(request: Request, db: Session, settings: Settings) -> auth.Principal | None:
    """The caller, or None when anonymous or the cookie is invalid/expired.

    Raises
    ------
    NotAuthenticated
        An API key header was sent and is invalid or revoked.
    """
    if request.headers.get("authorization") or request.headers.get("x-api-key"):
        return authenticate_api_key(db, _api_key(request))
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return authenticate_session(db, settings, cookie)
    except NotAuthenticated:
        return None


class PageAuth:
    """A page dependency admitting ``roles``; see the module docstring for the outcomes.

    Parameters
    ----------
    roles : roles admitted (``("staff",)`` admits admin too).
    login_route : route name of the login page anonymous browsers are sent to.
    denied : the 403 page's message for callers of another role.
    """

    def __init__(
        self,
        roles: Sequence[auth.Role],
        *,
        login_route: str = "staff_login",
        denied: str = "此页面仅限科技厅工作人员访问。企业用户请通过接口获取合作建议。",
    ) -> None:
        self.roles = tuple(roles)
        self.login_route = login_route
        self.denied = denied

    def __call__(self, request: Request, db: SessionDep, settings: SettingsDep) -> auth.Principal:
        try:
            principal = page_principal(request, db, settings)
        except NotAuthenticated:
            raise PageExit(
                error_page(request, 401, "未通过认证", "API 密钥无效或已吊销。")
            ) from None
        if principal is None:
            raise PageExit(self._to_login(request))
        if not auth.role_allows(principal.role, self.roles):
            raise PageExit(error_page(request, 403, "无权访问", self.denied, user=principal))
        return principal

    def _to_login(self, request: Request) -> RedirectResponse:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        login = request.url_for(self.login_route).path + "?" + urlencode({"next": target})
        resp = RedirectResponse(login, status_code=303)
        if request.cookies.get(auth.SESSION_COOKIE):
            resp.delete_cookie(auth.SESSION_COOKIE, path="/")
        return resp


StaffUserDep = Annotated[auth.Principal, Depends(PageAuth(auth.STAFF_ROLES))]
"""The staff/admin caller of a staff page."""


def staff_form_user(
    request: Request, user: StaffUserDep, csrf_token: FormStr = ""
) -> auth.Principal:
    """The staff caller of a form POST whose CSRF token is valid (else a 403 page)."""
    if not csrf_ok(user, _settings(request), csrf_token):
        raise PageExit(
            error_page(
                request,
                403,
                "请求无效",
                "表单已过期或来源不明(CSRF 校验失败),请刷新页面后重试。",
                user=user,
            )
        )
    return user


StaffFormUserDep = Annotated[auth.Principal, Depends(staff_form_user)]
"""The staff/admin caller of a staff form POST, CSRF-checked."""


def secure_cookies(settings: object) -> bool:
    """Cookies carry ``Secure`` in production (served over HTTPS)."""
    return getattr(settings, "environment", "") == "prod"


def login_form(
    request: Request,
    renderer: Callable[..., HTMLResponse],
    template: str,
    cookie_path: str,
    *,
    next_url: str,
    username: str = "",
    error: str | None = None,
    status_code: int | None = None,
) -> HTMLResponse:
    """A sign-in form with its login CSRF token (staff and portal sign-in share it)."""
    token = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or auth.new_login_csrf()
    resp = renderer(
        request,
        template,
        {"next_url": next_url, "username": username, "csrf_token": token},
        status_code=status_code or (401 if error else 200),
        flashes=[("error", error)] if error else (),
    )
    # No session yet: the form's token is a double-submit cookie, not a session token.
    resp.set_cookie(
        auth.LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request.app.state.settings),
        path=cookie_path,
    )
    return resp
