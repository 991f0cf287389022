"""What the portal pages (``/portal``: enterprises, institutes, staff queues) share.

* :class:`PortalAuth`: the page dependency of the portal. Like
  :class:`service.web.common.PageAuth` (same credentials, same outcomes: 303 to the sign-in
  page for anonymous browsers, 401 for a bad API key, 403 for another role) but with the
  portal's sign-in page and layout, and a session whose password was handed out by staff is
  sent to the password change page first (``Principal.must_change_password``).
* :class:`PortalForm`: the same for form POSTs, with the session's CSRF token checked.
* :data:`NAV` / :func:`add_nav`: the header navigation per role. A page module registers its
  entries at import; the first entry of a role is that role's home after sign-in.
* :func:`render_portal`: :func:`service.web.common.render` with the portal's globals.

A page module::

    router = page_router("/portal")
    add_nav(("institute",), "我的成果", "portal_capabilities", order=10)

    @router.get("/capabilities", name="portal_capabilities")
    def capabilities(request: Request, user: InstitutePage) -> Response:
        return render_portal(request, "portal/capabilities.html", {...}, user=user)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from service import auth
from service.api.deps import SessionDep, SettingsDep
from service.errors import NotAuthenticated
from service.settings import Settings
from service.web.common import PageExit, csrf_ok, page_principal, render

ROLE_LABELS: dict[str, str] = {
    "enterprise": "企业用户",
    "institute": "院所用户",
    "staff": "工作人员",
    "admin": "管理员",
}

# role → [(order, label, route name)]; sorted by order when rendered.
NAV: dict[str, list[tuple[int, str, str]]] = {r: [] for r in auth.ROLES}


def add_nav(roles: Sequence[str], label: str, route: str, *, order: int = 50) -> None:
    """Show a link to ``route`` in the portal header of ``roles`` (admin sees staff's)."""
    for role in roles:
        entries = NAV.setdefault(role, [])
        if all(r != route for _o, _l, r in entries):
            entries.append((order, label, route))
            entries.sort()
        if role == "staff":
            add_nav(("admin",), label, route, order=order)


def nav_for(role: str) -> list[tuple[str, str]]:
    """``(label, route name)`` header links of ``role``."""
    return [(label, route) for _o, label, route in NAV.get(role, [])]


def home_route(role: str) -> str:
    """The route a user of ``role`` lands on after signing in."""
    entries = NAV.get(role) or []
    return entries[0][2] if entries else "portal_messages"


# Confirmations after a POST → redirect → GET: ``?done=<code>`` shows one of these fixed texts.
DONE_MESSAGES: dict[str, str] = {
    "password": "密码已修改。",
    "need_created": "需求已提交，等待工作人员审核（待审核）。审核通过后才会出现在匹配中。",
    "need_saved": "修改已保存，需求重新进入审核（待审核）。",
    "need_unchanged": "没有修改任何内容。",
    "need_withdrawn": "需求已撤回，不再参与匹配。",
    "intro_requested": "对接申请已提交，工作人员转交后院所即可看到。",
    "intro_done": "已更新对接申请。",
    "review_done": "审核结果已保存，并已通知企业。",
    "application_checked": "审查结果已保存，并已通知申报单位。",
    "messages_read": "已全部标为已读。",
}


def render_portal(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    user: auth.Principal | None = None,
    status_code: int = 200,
    flashes: Sequence[tuple[str, str]] = (),
) -> HTMLResponse:
    """Render a portal template (the header's links and role names come with it)."""
    done = DONE_MESSAGES.get(request.query_params.get("done") or "")
    ctx = {
        "nav": nav_for(user.role) if user is not None else [],
        "portal_role_labels": ROLE_LABELS,
        **context,
    }
    if done and not flashes:
        flashes = [("ok", done)]
    return render(request, template, ctx, user=user, status_code=status_code, flashes=flashes)


def portal_error(
    request: Request,
    status_code: int,
    heading: str,
    message: str,
    *,
    user: auth.Principal | None = None,
) -> HTMLResponse:
    """A portal page with one heading and one message (fixed Chinese texts)."""
    return render_portal(
        request,
        "portal/error.html",
        {"heading": heading, "message": message},
        user=user,
        status_code=status_code,
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class PortalAuth:
    """A portal page dependency admitting ``roles`` (``("staff",)`` admits admin too).

    ``password_page`` is True only for the password change page itself, which a user with a
    staff-issued password must be able to reach.
    """

    def __init__(
        self,
        roles: Sequence[auth.Role],
        *,
        denied: str = "您的账号无权访问此页面。",
        password_page: bool = False,
    ) -> None:
        self.roles = tuple(roles)
        self.denied = denied
        self.password_page = password_page

    def __call__(self, request: Request, db: SessionDep, settings: SettingsDep) -> auth.Principal:
        try:
            principal = page_principal(request, db, settings)
        except NotAuthenticated:
            raise PageExit(
                portal_error(request, 401, "未通过认证", "API 密钥无效或已吊销。")
            ) from None
        if principal is None:
            raise PageExit(_to_login(request))
        if principal.must_change_password and principal.via == "session" and not self.password_page:
            target = request.url_for("portal_password").path
            raise PageExit(RedirectResponse(target, status_code=303))
        if not auth.role_allows(principal.role, self.roles):
            raise PageExit(portal_error(request, 403, "无权访问", self.denied, user=principal))
        return principal


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    login = request.url_for("portal_login").path + "?" + urlencode({"next": target})
    resp = RedirectResponse(login, status_code=303)
    if request.cookies.get(auth.SESSION_COOKIE):
        resp.delete_cookie(auth.SESSION_COOKIE, path="/")
    return resp


class PortalForm(PortalAuth):
    """:class:`PortalAuth` for a form POST: the form's ``csrf_token`` must match the session."""

    def __call__(
        self,
        request: Request,
        db: SessionDep,
        settings: SettingsDep,
        csrf_token: Annotated[str, Form()] = "",
    ) -> auth.Principal:
        principal = super().__call__(request, db, settings)
        if not csrf_ok(principal, settings, csrf_token):
            raise PageExit(
                portal_error(
                    request,
                    403,
                    "请求无效",
                    "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。",
                    user=principal,
                )
            )
        return principal


_ENT = ("enterprise",)
_INST = ("institute",)
_ALL = ("enterprise", "institute", "staff")
_ENT_DENIED = "此页面仅限企业用户使用。"
_INST_DENIED = "此页面仅限高校、院所等科技服务单位用户使用。"

EnterprisePage = Annotated[auth.Principal, Depends(PortalAuth(_ENT, denied=_ENT_DENIED))]
EnterpriseForm = Annotated[auth.Principal, Depends(PortalForm(_ENT, denied=_ENT_DENIED))]
InstitutePage = Annotated[auth.Principal, Depends(PortalAuth(_INST, denied=_INST_DENIED))]
InstituteForm = Annotated[auth.Principal, Depends(PortalForm(_INST, denied=_INST_DENIED))]
StaffPage = Annotated[
    auth.Principal, Depends(PortalAuth(("staff",), denied="此页面仅限工作人员。"))
]
StaffForm = Annotated[
    auth.Principal, Depends(PortalForm(("staff",), denied="此页面仅限工作人员。"))
]
AnyPortalPage = Annotated[auth.Principal, Depends(PortalAuth(_ALL))]
AnyPortalForm = Annotated[auth.Principal, Depends(PortalForm(_ALL))]
# Staff and enterprises (an outcome may be recorded by either).
EnterpriseOrStaffForm = Annotated[auth.Principal, Depends(PortalForm(("enterprise", "staff")))]
