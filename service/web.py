"""Server-rendered staff pages (工作人员页面) under ``/staff``.

This module owns the staff web UI: sign in / sign out, the campaign list (活动列表), the
pairing shortlist review (配对名单审核) with its XLSX export, and the bounty view (揭榜榜单).
Pages are plain HTML forms (POST → redirect → GET) and work without JavaScript.

Security
--------
* Only ``staff``/``admin`` callers see pages. Credentials are those of the API
  (:mod:`service.api.deps`): an API key header, else the signed ``duijie_session`` cookie
  (HttpOnly, SameSite=Lax; Secure in prod). Anonymous browsers are redirected to the login
  page; an authenticated enterprise user gets 403.
* Every POST form carries a CSRF token bound to the session (:func:`service.auth.csrf_token`);
  the login form uses a double-submit cookie because no session exists yet.
* Shortlist decisions quote the optimistic ``version`` they were made on. A stale version is
  answered with 409 and a Chinese conflict message, and never overwrites the newer decision.
  Every accepted decision writes an :class:`~service.models.AuditLog` row; approve/reject set
  ``status``/``decided_by``/``decided_at``, which the learned ranker trains on.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from service import auth, crud
from service.api.deps import (
    SessionDep,
    SettingsDep,
    authenticate_api_key,
    authenticate_session,
)
from service.errors import NotAuthenticated, ServiceError
from service.models import (
    AuditLog,
    Bid,
    Bounty,
    Campaign,
    Capability,
    Need,
    Organisation,
    ShortlistItem,
    User,
)
from service.settings import Settings
from service.snapshot import external_of

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")
PAGE_SIZE = 200
NOTE_MAX = 2000
CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
EXCEL_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

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
BOUNTY_STATUS_LABELS: dict[str, str] = {"open": "征集中", "awarded": "已揭榜", "closed": "已关闭"}
KIND_LABELS: dict[str, str] = {"assigned": "配对", "alternate": "备选", "uncovered": "未覆盖"}
ACTIONS = ("approve", "reject", "reset", "lock", "unlock", "note")

# Fixed success messages selected by a query parameter (never reflect user text in a page).
_MESSAGES: dict[str, str] = {
    "approve": "已通过该配对。",
    "reject": "已驳回该配对。",
    "reset": "已撤销审核结论,条目恢复为待审核。",
    "lock": "已锁定该配对,下次运行将保留。",
    "unlock": "已解锁该配对。",
    "note": "备注已保存。",
}

router = APIRouter(prefix="/staff", include_in_schema=False)

FormStr = Annotated[str, Form()]


@lru_cache(maxsize=1)
def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals.update(
        status_labels=STATUS_LABELS,
        campaign_status_labels=CAMPAIGN_STATUS_LABELS,
        role_labels=ROLE_LABELS,
        bounty_kind_labels=BOUNTY_KIND_LABELS,
        bounty_status_labels=BOUNTY_STATUS_LABELS,
    )
    return templates


# --- authentication ---------------------------------------------------------------------


@dataclass(slots=True)
class _Caller:
    """The outcome of authenticating a page request: a principal or the response to send."""

    principal: auth.Principal | None = None
    response: Response | None = None


def _has_api_key(request: Request) -> bool:
    return bool(request.headers.get("authorization") or request.headers.get("x-api-key"))


def _api_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""
    return (request.headers.get("x-api-key") or "").strip()


def _principal(request: Request, db: Session, settings: Settings) -> auth.Principal | None:
    """The caller, or None when anonymous or the cookie is invalid/expired."""
    if _has_api_key(request):
        return authenticate_api_key(db, _api_key(request))  # raises NotAuthenticated
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return authenticate_session(db, settings, cookie)
    except NotAuthenticated:
        return None


def _staff(request: Request, db: Session, settings: Settings) -> _Caller:
    """Admit staff/admin; redirect anonymous browsers to the login page; 403 everyone else."""
    try:
        principal = _principal(request, db, settings)
    except NotAuthenticated:
        return _Caller(response=_error_page(request, 401, "未通过认证", "API 密钥无效或已吊销。"))
    if principal is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        login = request.url_for("staff_login").path + "?" + urlencode({"next": target})
        resp = RedirectResponse(login, status_code=303)
        if request.cookies.get(auth.SESSION_COOKIE):
            resp.delete_cookie(auth.SESSION_COOKIE, path="/")
        return _Caller(response=resp)
    if not auth.role_allows(principal.role, auth.STAFF_ROLES):
        return _Caller(
            response=_error_page(
                request,
                403,
                "无权访问",
                "此页面仅限科技厅工作人员访问。企业用户请通过接口获取合作建议。",
                principal=principal,
                settings=settings,
            )
        )
    return _Caller(principal=principal)


def _csrf_for(principal: auth.Principal | None, settings: Settings) -> str:
    if principal is None or principal.session_id is None:
        return ""
    return auth.csrf_token(settings.secret_key, principal.session_id)


def _csrf_ok(principal: auth.Principal, settings: Settings, token: str | None) -> bool:
    # API-key callers carry no ambient credential, so cross-site forgery cannot use them.
    if principal.via == "api_key":
        return True
    return auth.check_csrf(settings.secret_key, principal.session_id, token)


def _render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    principal: auth.Principal | None = None,
    settings: Settings | None = None,
    status_code: int = 200,
    flashes: Sequence[tuple[str, str]] = (),
) -> HTMLResponse:
    ctx = {
        "user": principal,
        "csrf_token": _csrf_for(principal, settings) if settings is not None else "",
        "flashes": list(flashes),
        **context,
    }
    response = _templates().TemplateResponse(request, template, ctx, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    # Pages use no inline script or style: only our own stylesheet may load.
    response.headers["Content-Security-Policy"] = CSP
    return response


def _error_page(
    request: Request,
    status_code: int,
    heading: str,
    message: str,
    *,
    principal: auth.Principal | None = None,
    settings: Settings | None = None,
) -> HTMLResponse:
    return _render(
        request,
        "staff/error.html",
        {"heading": heading, "message": message},
        principal=principal,
        settings=settings,
        status_code=status_code,
    )


def _safe_next(value: str | None) -> str | None:
    """Only same-site staff paths are valid redirect targets (no open redirect)."""
    if not value or not value.startswith("/staff/") or value.startswith("//") or "\\" in value:
        return None
    return value


# --- static -----------------------------------------------------------------------------


@router.get("/static/{name}", name="staff_static")
def staff_static(name: str) -> Response:
    """Serve one file of ``service/static`` (flat directory; no path traversal)."""
    allowed = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
    path = allowed.get(name)
    if path is None:
        return Response("not found", status_code=404)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


# --- login / logout ---------------------------------------------------------------------


def _login_page(
    request: Request, *, next_url: str, username: str = "", error: str | None = None
) -> HTMLResponse:
    token = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or auth.new_login_csrf()
    resp = _render(
        request,
        "staff/login.html",
        {"next_url": next_url, "username": username, "csrf_token": token},
        status_code=401 if error else 200,
        flashes=[("error", error)] if error else (),
    )
    # No session yet: the form's token is a double-submit cookie, not a session token.
    resp.set_cookie(
        auth.LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/staff/",
    )
    return resp


def _secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.environment == "prod"


@router.get("/login", name="staff_login", response_class=HTMLResponse)
def staff_login(request: Request, next: str | None = None) -> HTMLResponse:
    """登录: the sign-in form."""
    return _login_page(request, next_url=_safe_next(next) or "")


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
    next_url = _safe_next(next) or ""
    if not auth.check_double_submit(request.cookies.get(auth.LOGIN_CSRF_COOKIE), csrf_token):
        resp = _login_page(
            request, next_url=next_url, username=username, error="表单已过期,请重新登录。"
        )
        resp.status_code = 403
        return resp
    username = username.strip()[:64]
    throttle = getattr(request.app.state, "login_throttle", None)
    if throttle is not None:
        try:
            throttle.check(username)
        except ServiceError:  # TooManyAttempts: shared with the API login
            resp = _login_page(
                request, next_url=next_url, username=username, error="登录失败次数过多,请稍后再试。"
            )
            resp.status_code = 429
            return resp
    user = crud.verify_login(db, username=username, password=password)
    if throttle is not None:
        throttle.record(username, user is not None)
    if user is None:
        log.info("failed staff login for %r", username)
        return _login_page(
            request, next_url=next_url, username=username, error="用户名或密码错误。"
        )
    cookie = auth.make_session_cookie(
        settings.secret_key, user_id=user.id, password_hash=user.password_hash
    )
    db.add(AuditLog(user_id=user.id, action="login", entity="user", entity_id=str(user.id)))
    db.commit()
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
        principal = _principal(request, db, settings)
    except NotAuthenticated:
        principal = None
    if principal is not None and not _csrf_ok(principal, settings, csrf_token):
        return _error_page(request, 403, "请求无效", "表单已过期,请刷新页面后重试。")
    resp = RedirectResponse(request.url_for("staff_login").path, status_code=303)
    resp.delete_cookie(auth.SESSION_COOKIE, path="/")
    return resp


@router.get("", include_in_schema=False)
@router.get("/", name="staff_home")
def staff_home(request: Request) -> RedirectResponse:
    return RedirectResponse(request.url_for("staff_campaigns").path, status_code=303)


# --- campaigns --------------------------------------------------------------------------


def _status_counts(db: Session, campaign_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    ids = list(campaign_ids)
    counts: dict[int, dict[str, int]] = {
        cid: {"pending": 0, "approved": 0, "rejected": 0, "uncovered": 0} for cid in ids
    }
    if not ids:
        return counts
    rows = db.execute(
        select(ShortlistItem.campaign_id, ShortlistItem.kind, ShortlistItem.status, func.count())
        .where(ShortlistItem.campaign_id.in_(ids))
        .group_by(ShortlistItem.campaign_id, ShortlistItem.kind, ShortlistItem.status)
    ).all()
    for cid, kind, status, n in rows:
        if kind == "uncovered":
            counts[cid]["uncovered"] += n
        elif status in counts[cid]:
            counts[cid][status] += n
    return counts


@router.get("/campaigns", name="staff_campaigns", response_class=HTMLResponse)
def staff_campaigns(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """活动列表: every pairing campaign with review progress."""
    caller = _staff(request, db, settings)
    if caller.response is not None:
        return caller.response
    campaigns = db.scalars(select(Campaign).order_by(Campaign.created_at.desc())).all()
    counts = _status_counts(db, (c.id for c in campaigns))
    rows = [{"campaign": c, "counts": counts[c.id]} for c in campaigns]
    any_running = any(c.status in ("created", "running") for c in campaigns)
    return _render(
        request,
        "staff/campaigns.html",
        {"rows": rows, "any_running": any_running},
        principal=caller.principal,
        settings=settings,
    )


# --- shortlist review -------------------------------------------------------------------


@dataclass(slots=True)
class ShortlistFilters:
    """The shortlist filters of the query string (also used by the export)."""

    status: str = ""
    field: str = ""
    min_score: float | None = None
    max_score: float | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Any) -> ShortlistFilters:
        """Read filters from query/form parameters, ignoring malformed values."""
        status = params.get("status") or ""
        return cls(
            status=status if status in STATUS_LABELS else "",
            field=(params.get("field") or "")[:64],
            min_score=_float_or_none(params.get("min_score")),
            max_score=_float_or_none(params.get("max_score")),
            page=max(1, _int_or(params.get("page"), 1)),
        )

    def query(self, *, page: bool = True) -> str:
        """The canonical query string of these filters."""
        params: dict[str, str] = {}
        if self.status:
            params["status"] = self.status
        if self.field:
            params["field"] = self.field
        if self.min_score is not None:
            params["min_score"] = f"{self.min_score:g}"
        if self.max_score is not None:
            params["max_score"] = f"{self.max_score:g}"
        if page and self.page > 1:
            params["page"] = str(self.page)
        return urlencode(params)


def _float_or_none(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(slots=True)
class EvidenceView:
    """One evidence entry prepared for display (HTML already escaped and highlighted)."""

    query_html: Markup | None
    doc_html: Markup | None
    doc_label: str
    keywords: list[str]
    doc_id: str | None = None
    query_snippet: str = ""
    doc_snippet: str = ""


@dataclass(slots=True)
class ItemView:
    """A shortlist row as the page and the export show it."""

    id: int
    rank: int
    kind: str
    status: str
    locked: bool
    version: int
    score: float | None
    enterprise_name: str
    institute_name: str
    need_title: str
    field: str
    problem: str
    note: str
    decided_by_name: str
    evidence: list[EvidenceView] = dataclasses.field(default_factory=list)


def _evidence_entries(raw: Any) -> list[dict[str, Any]]:
    """Normalise the stored evidence JSON to a list of dicts.

    Accepts a list of entries, or a dict holding one under ``documents`` (what the campaign
    runner writes), ``evidence``, ``items`` or ``snippets``, or a single entry dict (keys of
    :class:`matcher.types.Evidence`). Pair-level ``shared_keywords`` of the dict are given to
    entries that have none of their own.
    """
    shared: list[Any] = []
    if isinstance(raw, dict):
        shared = raw.get("shared_keywords") or []
        for key in ("documents", "evidence", "items", "snippets"):
            if isinstance(raw.get(key), list):
                raw = raw[key]
                break
        else:
            raw = [raw] if ("doc_snippet" in raw or "query_snippet" in raw) else []
    if not isinstance(raw, list):
        return []
    entries = [e for e in raw if isinstance(e, dict)]
    if shared and isinstance(shared, list):
        entries = [
            e if e.get("shared_keywords") else {**e, "shared_keywords": shared} for e in entries
        ]
    return entries


def highlight(text: str, snippet: str, *, window: int = 80) -> Markup:
    """Escape ``text`` and wrap the first occurrence of ``snippet`` in ``<mark>``.

    Only ``window`` characters either side of the snippet are kept (with ellipses), so a
    long description shows the matching sentence in context. When the snippet does not occur
    in the text, the snippet itself is shown highlighted.

    Parameters
    ----------
    text : str
        The full document text.
    snippet : str
        A verbatim substring of ``text`` (the best-matching sentence).
    window : int
        Context characters kept on each side.

    Returns
    -------
    Markup
        Safe HTML.
    """
    snippet = snippet.strip()
    if not snippet:
        return Markup(escape(_clip(text, 2 * window)))
    pos = text.find(snippet) if text else -1
    if pos < 0:
        return Markup("<mark>{}</mark>").format(snippet)
    start = max(0, pos - window)
    end = min(len(text), pos + len(snippet) + window)
    before = ("…" if start > 0 else "") + text[start:pos]
    after = text[pos + len(snippet) : end] + ("…" if end < len(text) else "")
    return Markup("{}<mark>{}</mark>{}").format(before, snippet, after)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _full_text(title: str, description: str) -> str:
    # Mirrors matcher.types.Document.full_text, so snippets taken from it are found verbatim.
    return f"{title}。{description}" if description else title


def _doc_ext(doc_id: Any) -> str:
    """External id of an evidence document id (index keys carry an ``N:``/``C:`` prefix)."""
    return external_of(str(doc_id or ""))


def _containing(snippet: str, texts: Iterable[tuple[Any, str]]) -> tuple[Any, str] | None:
    """The first ``(row, text)`` whose text contains ``snippet`` verbatim."""
    for row, text in texts:
        if snippet and snippet in text:
            return row, text
    return None


def _item_views(db: Session, items: Sequence[ShortlistItem]) -> list[ItemView]:
    """Build display rows, loading needs, capabilities and deciders in bulk.

    Each evidence snippet is shown inside the text it was taken from: the evidence's own
    query/candidate document when recorded, else the item's need, else whichever need of the
    enterprise (capability of the institute) contains the snippet verbatim.
    """
    user_ids = {i.decided_by for i in items if i.decided_by is not None}
    users = {u.id: u.username for u in db.scalars(select(User).where(User.id.in_(user_ids)))}
    entries = {i.id: _evidence_entries(i.evidence) for i in items}
    org_ids = {i.enterprise_id for i in items} | {
        i.institute_id for i in items if i.institute_id is not None
    }
    doc_ids = {_doc_ext(e.get("doc_id")) for es in entries.values() for e in es}
    q_ids = {_doc_ext(e.get("query_doc_id")) for es in entries.values() for e in es}
    need_ids = {i.need_id for i in items if i.need_id is not None}
    needs = db.scalars(
        select(Need).where(
            Need.org_id.in_(org_ids) | Need.id.in_(need_ids) | Need.external_id.in_(q_ids)
        )
    ).all()
    caps = db.scalars(
        select(Capability).where(
            Capability.org_id.in_(org_ids) | Capability.external_id.in_(doc_ids)
        )
    ).all()
    need_by_id = {n.id: n for n in needs}
    need_by_ext = {n.external_id: n for n in needs}
    cap_by_ext = {c.external_id: c for c in caps}
    needs_of: dict[int, list[Need]] = {}
    for n in needs:
        needs_of.setdefault(n.org_id, []).append(n)
    caps_of: dict[int, list[Capability]] = {}
    for c in caps:
        caps_of.setdefault(c.org_id, []).append(c)
    views: list[ItemView] = []
    for it in items:
        need = need_by_id.get(it.need_id) if it.need_id is not None else None
        evs: list[EvidenceView] = []
        for e in entries[it.id]:
            q_snip = str(e.get("query_snippet") or "").strip()
            d_snip = str(e.get("doc_snippet") or "").strip()
            q_first = need_by_ext.get(_doc_ext(e.get("query_doc_id")))
            q_rows = [r for r in (q_first, need) if r is not None]
            q_rows += needs_of.get(it.enterprise_id, [])
            q_hit = _containing(q_snip, ((r, _full_text(r.title, r.description)) for r in q_rows))
            d_first = cap_by_ext.get(_doc_ext(e.get("doc_id")))
            d_rows = [d_first] if d_first is not None else []
            d_rows += caps_of.get(it.institute_id, []) if it.institute_id is not None else []
            d_hit = _containing(d_snip, ((r, _full_text(r.title, r.description)) for r in d_rows))
            if need is None and q_hit is not None:
                need = q_hit[0]
            cap = d_hit[0] if d_hit is not None else d_first
            evs.append(
                EvidenceView(
                    query_html=highlight(q_hit[1] if q_hit else "", q_snip) if q_snip else None,
                    doc_html=highlight(d_hit[1] if d_hit else "", d_snip) if d_snip else None,
                    doc_label=f"成果《{_clip(cap.title, 30)}》" if cap is not None else "机构成果",
                    keywords=[str(k) for k in (e.get("shared_keywords") or [])][:10],
                    doc_id=_doc_ext(e.get("doc_id")) or None,
                    query_snippet=q_snip,
                    doc_snippet=d_snip,
                )
            )
        own_need = need_by_id.get(it.need_id) if it.need_id is not None else None
        views.append(
            ItemView(
                id=it.id,
                rank=it.rank,
                kind=it.kind,
                status=it.status,
                locked=it.locked,
                version=it.version,
                score=it.score,
                enterprise_name=it.enterprise.name if it.enterprise else str(it.enterprise_id),
                institute_name=it.institute.name if it.institute else "",
                need_title=need.title if need is not None else "",
                field=_item_field(it, own_need),
                problem=it.problem or "",
                note=it.note or "",
                decided_by_name=users.get(it.decided_by, "") if it.decided_by else "",
                evidence=evs,
            )
        )
    return views


def _field_of(need_field: str | None, org_fields: Sequence[Any] | None) -> str:
    """The field (领域) of a row: its need's, else the enterprise's first field."""
    if need_field:
        return need_field
    return str(org_fields[0]) if org_fields else ""


def _item_field(item: ShortlistItem, need: Need | None) -> str:
    return _field_of(
        need.field if need is not None else None,
        item.enterprise.fields if item.enterprise is not None else None,
    )


def _filtered_ids(db: Session, campaign_id: int, filters: ShortlistFilters) -> list[int]:
    """Ids of a campaign's rows matching ``filters``, in display order (enterprise, rank).

    Reads only the columns the filters need, so a large campaign pages quickly.
    """
    stmt = (
        select(ShortlistItem.id, Need.field, Organisation.fields)
        .join(Organisation, Organisation.id == ShortlistItem.enterprise_id)
        .outerjoin(Need, Need.id == ShortlistItem.need_id)
        .where(ShortlistItem.campaign_id == campaign_id)
        .order_by(
            Organisation.name, ShortlistItem.enterprise_id, ShortlistItem.rank, ShortlistItem.id
        )
    )
    if filters.status:
        stmt = stmt.where(ShortlistItem.status == filters.status)
    if filters.min_score is not None:
        stmt = stmt.where(ShortlistItem.score >= filters.min_score)
    if filters.max_score is not None:
        stmt = stmt.where(ShortlistItem.score <= filters.max_score)
    rows = db.execute(stmt).all()
    return [
        item_id
        for item_id, need_field, org_fields in rows
        if not filters.field or _field_of(need_field, org_fields) == filters.field
    ]


def _load_items(db: Session, ids: Sequence[int], *, chunk: int = 5000) -> list[ShortlistItem]:
    """The rows ``ids`` (with enterprise and institute), in the order given."""
    found: dict[int, ShortlistItem] = {}
    for start in range(0, len(ids), chunk):
        stmt = (
            select(ShortlistItem)
            .where(ShortlistItem.id.in_(ids[start : start + chunk]))
            .options(selectinload(ShortlistItem.enterprise), selectinload(ShortlistItem.institute))
        )
        found.update({i.id: i for i in db.scalars(stmt)})
    return [found[i] for i in ids if i in found]


def _filtered_views(db: Session, campaign_id: int, filters: ShortlistFilters) -> list[ItemView]:
    """Display rows of every item matching ``filters`` (the export: no pagination)."""
    return _item_views(db, _load_items(db, _filtered_ids(db, campaign_id, filters)))


def _campaign_fields(db: Session, campaign_id: int) -> list[str]:
    need_fields = db.scalars(
        select(Need.field)
        .join(ShortlistItem, ShortlistItem.need_id == Need.id)
        .where(ShortlistItem.campaign_id == campaign_id, Need.field.is_not(None))
        .distinct()
    ).all()
    org_fields = db.scalars(
        select(Organisation.fields)
        .join(ShortlistItem, ShortlistItem.enterprise_id == Organisation.id)
        .where(ShortlistItem.campaign_id == campaign_id, ShortlistItem.need_id.is_(None))
        .distinct()
    ).all()
    out = {f for f in need_fields if f}
    out.update(fs[0] for fs in org_fields if fs)
    return sorted(out)


def _shortlist_page(
    request: Request,
    db: Session,
    settings: Settings,
    principal: auth.Principal,
    campaign: Campaign,
    filters: ShortlistFilters,
    *,
    status_code: int = 200,
    flashes: Sequence[tuple[str, str]] = (),
) -> HTMLResponse:
    # Evidence and context are built for the shown page only (campaigns can be large).
    ids = _filtered_ids(db, campaign.id, filters)
    pages = max(1, math.ceil(len(ids) / PAGE_SIZE))
    page = min(filters.page, pages)
    shown = _item_views(db, _load_items(db, ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]))
    export_url = request.url_for("staff_export", campaign_id=campaign.id).path
    q = filters.query(page=False)
    return _render(
        request,
        "staff/shortlist.html",
        {
            "campaign": campaign,
            "items": shown,
            "counts": _status_counts(db, [campaign.id])[campaign.id],
            "filters": filters,
            "fields": _campaign_fields(db, campaign.id),
            "export_url": export_url + (f"?{q}" if q else ""),
            "return_query": filters.query(),
            "page_query": q,
            "page": page,
            "pages": pages,
            "total": len(ids),
        },
        principal=principal,
        settings=settings,
        status_code=status_code,
        flashes=flashes,
    )


@router.get("/campaigns/{campaign_id}", name="staff_shortlist", response_class=HTMLResponse)
def staff_shortlist(
    campaign_id: int,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """配对名单审核: the shortlist of one campaign, with filters and decision forms."""
    caller = _staff(request, db, settings)
    if caller.response is not None:
        return caller.response
    assert caller.principal is not None  # narrowed by _staff
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        return _error_page(
            request,
            404,
            "未找到",
            "该配对活动不存在。",
            principal=caller.principal,
            settings=settings,
        )
    done = request.query_params.get("done")
    flashes = [("ok", _MESSAGES[done])] if done in _MESSAGES else []
    filters = ShortlistFilters.parse(request.query_params)
    return _shortlist_page(
        request, db, settings, caller.principal, campaign, filters, flashes=flashes
    )


class _DecisionRefused(Exception):
    """A decision that is valid as a request but not for the item's current state."""


def _apply(item: ShortlistItem, action: str, note: str, user_id: int) -> dict[str, Any]:
    """The column values ``action`` sets on ``item`` (without ``version``)."""
    now = datetime.now(UTC)
    if action in ("approve", "reject", "reset", "lock", "unlock") and item.kind == "uncovered":
        raise _DecisionRefused("未覆盖企业没有建议机构,只能填写备注。")
    if action == "approve":
        return {"status": "approved", "decided_by": user_id, "decided_at": now}
    if action == "reject":
        if item.locked:
            raise _DecisionRefused("该配对已锁定,请先解锁再驳回。")
        return {"status": "rejected", "decided_by": user_id, "decided_at": now}
    if action == "reset":
        return {"status": "pending", "decided_by": None, "decided_at": None}
    if action == "lock":
        if item.status == "rejected":
            raise _DecisionRefused("已驳回的配对不能锁定。")
        return {"locked": True}
    if action == "unlock":
        return {"locked": False}
    return {"note": note}


@router.post("/campaigns/{campaign_id}/items/{item_id}", name="staff_decide")
def staff_decide(
    campaign_id: int,
    item_id: int,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    action: FormStr = "",
    version: FormStr = "",
    note: FormStr = "",
    csrf_token: FormStr = "",
    return_query: FormStr = "",
) -> Response:
    """Approve / reject / reset / lock / unlock / annotate one shortlist item.

    The form quotes the ``version`` it was rendered with; the update only applies when the row
    still has that version (compare-and-set in one UPDATE), else 409 with the current state.
    """
    caller = _staff(request, db, settings)
    if caller.response is not None:
        return caller.response
    principal = caller.principal
    assert principal is not None  # narrowed by _staff
    if not _csrf_ok(principal, settings, csrf_token):
        return _error_page(
            request,
            403,
            "请求无效",
            "表单已过期或来源不明(CSRF 校验失败),请刷新页面后重试。",
            principal=principal,
            settings=settings,
        )
    campaign = db.get(Campaign, campaign_id)
    item = db.get(ShortlistItem, item_id)
    if campaign is None or item is None or item.campaign_id != campaign_id:
        return _error_page(
            request, 404, "未找到", "该条目不存在。", principal=principal, settings=settings
        )
    filters = ShortlistFilters.parse(_parse_qs(return_query))
    seen_version = _int_or(version, -1)
    if action not in ACTIONS or seen_version < 1 or len(note) > NOTE_MAX:
        return _shortlist_page(
            request, db, settings, principal, campaign, filters,
            status_code=422,
            flashes=[("error", "请求无效:操作或版本号不正确,或备注过长。")],
        )  # fmt: skip
    note = note.strip()
    try:
        values = _apply(item, action, note, principal.user_id)
    except _DecisionRefused as exc:
        return _shortlist_page(
            request, db, settings, principal, campaign, filters,
            status_code=409, flashes=[("error", str(exc))],
        )  # fmt: skip
    before = {"status": item.status, "locked": item.locked, "note": item.note}
    result = db.execute(
        update(ShortlistItem)
        .where(ShortlistItem.id == item_id, ShortlistItem.version == seen_version)
        .values(**values, version=seen_version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        db.expire_all()
        current = db.get(ShortlistItem, item_id)
        now_v = current.version if current is not None else "?"
        return _shortlist_page(
            request, db, settings, principal, campaign, filters,
            status_code=409,
            flashes=[(
                "error",
                f"冲突:该条目已被他人修改(您看到的是第 {seen_version} 版,当前为第 {now_v} 版)。"
                "您的操作未保存,请核对下方最新内容后重试。",
            )],
        )  # fmt: skip
    db.add(
        AuditLog(
            user_id=principal.user_id,
            action=f"shortlist.{action}",
            entity="shortlist_item",
            entity_id=str(item_id),
            detail={
                "campaign_id": campaign_id,
                "before": before,
                "after": {k: v for k, v in values.items() if k != "decided_at"},
                "version": seen_version + 1,
                "via": principal.via,
            },
        )
    )
    db.commit()
    target = request.url_for("staff_shortlist", campaign_id=campaign_id).path
    query = filters.query()
    query = f"{query}&done={action}" if query else f"done={action}"
    return RedirectResponse(f"{target}?{query}#item-{item_id}", status_code=303)


def _parse_qs(query: str) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(query[:1000]))


# --- export -----------------------------------------------------------------------------


def excel_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas: text starting with ``= + - @`` (or tab/CR) gets a ``'``.

    Numbers, None and booleans are returned unchanged.
    """
    if isinstance(value, str) and value.startswith(EXCEL_FORMULA_PREFIXES):
        return "'" + value
    return value


EXPORT_COLUMNS: tuple[str, ...] = (
    "条目ID",
    "企业",
    "需求",
    "领域",
    "建议机构",
    "类型",
    "名次",
    "得分",
    "状态",
    "锁定",
    "审核人",
    "备注",
    "覆盖问题",
    "依据",
    "版本",
)


def shortlist_workbook(campaign: Campaign, views: Sequence[ItemView]) -> bytes:
    """An XLSX file of shortlist rows (formula-neutralised strings).

    Returns
    -------
    bytes
        The workbook, ready to send as
        ``application/vnd.openxmlformats-officedocument.spreadsheetml.sheet``.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    # Write-only mode streams rows: several times faster for campaigns of 10k+ rows.
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("配对名单")
    widths = (8, 28, 28, 12, 28, 8, 6, 8, 8, 6, 10, 24, 30, 60, 6)
    for idx, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(idx)].width = width
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in EXPORT_COLUMNS:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for v in views:
        evidence = "\n".join(
            " / ".join(p for p in (e.query_snippet, e.doc_snippet) if p) for e in v.evidence
        )
        row = [
            v.id,
            v.enterprise_name,
            v.need_title,
            v.field,
            v.institute_name,
            KIND_LABELS.get(v.kind, v.kind),
            v.rank,
            v.score,
            STATUS_LABELS.get(v.status, v.status),
            "是" if v.locked else "否",
            v.decided_by_name,
            v.note,
            v.problem,
            evidence,
            v.version,
        ]
        ws.append([excel_safe(x) for x in row])
    meta = wb.create_sheet("说明")
    meta.append(["活动", excel_safe(campaign.name)])
    meta.append(["导出时间(UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@router.get("/campaigns/{campaign_id}/export.xlsx", name="staff_export")
def staff_export(
    campaign_id: int,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """导出 Excel: the filtered shortlist as XLSX."""
    caller = _staff(request, db, settings)
    if caller.response is not None:
        return caller.response
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        return _error_page(
            request,
            404,
            "未找到",
            "该配对活动不存在。",
            principal=caller.principal,
            settings=settings,
        )
    filters = ShortlistFilters.parse(request.query_params)
    views = _filtered_views(db, campaign_id, filters)
    data = shortlist_workbook(campaign, views)
    assert caller.principal is not None  # narrowed by _staff
    db.add(
        AuditLog(
            user_id=caller.principal.user_id,
            action="shortlist.export",
            entity="campaign",
            entity_id=str(campaign_id),
            detail={"filters": filters.query(page=False), "rows": len(views)},
        )
    )
    db.commit()
    filename = f"shortlist-{campaign_id}.xlsx"
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- bounties ---------------------------------------------------------------------------


@router.get("/bounties", name="staff_bounties", response_class=HTMLResponse)
def staff_bounties(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """揭榜榜单 list."""
    caller = _staff(request, db, settings)
    if caller.response is not None:
        return caller.response
    bounties = db.scalars(
        select(Bounty).options(selectinload(Bounty.poster)).order_by(Bounty.created_at.desc())
    ).all()
    counted = db.execute(select(Bid.bounty_id, func.count()).group_by(Bid.bounty_id)).all()
    n_bids: dict[int, int] = {row[0]: row[1] for row in counted}
    rows = [{"bounty": b, "n_bids": n_bids.get(b.id, 0)} for b in bounties]
    return _render(
        request,
        "staff/bounties.html",
        {"rows": rows},
        principal=caller.principal,
        settings=settings,
    )


@router.get("/bounties/{bounty_id}", name="staff_bounty", response_class=HTMLResponse)
def staff_bounty(
    bounty_id: int,
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """揭榜榜单 detail: bids ranked with score breakdown, recommended and excluded respondents."""
    caller = _staff(request, db, settings)
    if caller.response is not None:
        return caller.response
    bounty = db.get(Bounty, bounty_id)
    if bounty is None:
        return _error_page(
            request, 404, "未找到", "该榜单不存在。", principal=caller.principal, settings=settings
        )
    context = bounty_context(request, db, bounty)
    return _render(
        request,
        "staff/bounty.html",
        {"bounty": bounty, **context},
        principal=caller.principal,
        settings=settings,
    )


def _current_recommender(request: Request) -> Any:
    """The app's recommender; raises IndexNotReady when no index build is loaded."""
    from matcher.errors import IndexNotReady

    handle = getattr(request.app.state, "recommender", None)
    if handle is None:
        raise IndexNotReady("no recommender configured")
    return handle.get()


def _label_exclusion(exc: Any, names: dict[str, str]) -> str:
    label = str(getattr(exc, "label", "") or getattr(exc, "code", ""))
    member = getattr(exc, "member_id", None)
    if member:
        label += f"(联合体成员 {names.get(member, member)})"
    return label


BID_BREAKDOWN_LABELS: tuple[tuple[str, str], ...] = (
    ("affinity", "相对匹配度"),
    ("similarity", "方案相似度"),
    ("maturity", "成熟度"),
    ("price_score", "价格得分"),
)


def bounty_context(request: Request, db: Session, bounty: Bounty) -> dict[str, Any]:
    """Template context of the bounty page.

    Bids are ranked by :func:`matcher.bids.rank_bids` (quality + price, budget cap). With the
    recommender available, each bidder's affinity is its score from
    ``Recommender.respondents_for_bounty`` restricted to the bidders, divided by the best score
    among bidders and recommended respondents (ranker scores are unbounded; consortium members
    checked by the group rule; excluded bidders are ineligible with their reasons), proposal
    similarity comes from the recommender's sentence encoder when it has one, and the best
    eligible respondents and excluded high scorers are listed. Without an index the page says
    索引未就绪 and ranks bids by price and budget only.
    """
    from matcher.bids import rank_bids, reason_label
    from matcher.errors import IndexNotReady, MatcherError
    from matcher.pipeline import bid_inputs
    from matcher.types import BidInfo
    from service.snapshot import bounty_info

    bids = db.scalars(
        select(Bid)
        .where(Bid.bounty_id == bounty.id)
        .options(selectinload(Bid.respondent))
        .order_by(Bid.submitted_at, Bid.id)
    ).all()
    member_ids = {m for b in bids for m in (b.members or [])}
    names = {
        o.external_id: o.name
        for o in db.scalars(select(Organisation).where(Organisation.external_id.in_(member_ids)))
    }
    names.update({b.respondent.external_id: b.respondent.name for b in bids})
    infos = [
        BidInfo(
            id=b.external_id,
            bounty_id=bounty.external_id,
            respondent_org_id=b.respondent.external_id,
            price=b.price,
            proposal=b.proposal or "",
            members=tuple(b.members or ()),
        )
        for b in bids
    ]
    ctx: dict[str, Any] = {
        "bids": [],
        "eligible": [],
        "excluded": [],
        "index_not_ready": False,
        "recommend_error": None,
        "ranking_note": None,
    }
    affinity = dict.fromkeys((i.id for i in infos), 0.0)
    similarity = dict.fromkeys((i.id for i in infos), 0.0)
    reasons: dict[str, list[str]] = {}
    ranked = None
    try:
        rec = _current_recommender(request)
        info = bounty_info(db, bounty)
        ranked = rec.respondents_for_bounty(info, k=10)
        if infos:
            inputs = bid_inputs(rec, info, infos)
            affinity, similarity, reasons = inputs.affinity, inputs.similarity, inputs.reasons
    except IndexNotReady:
        ctx["index_not_ready"] = True
        ctx["ranking_note"] = "索引未就绪:申报暂仅按报价与预算上限排序,匹配度未计入。"
    except (MatcherError, ValueError) as exc:
        log.warning("bounty %s: recommender failed: %s", bounty.external_id, exc)
        ctx["recommend_error"] = "推荐暂不可用:该榜单信息不完整或匹配出错,请联系管理员。"
        ctx["ranking_note"] = "申报暂仅按报价与预算上限排序,匹配度未计入。"
        ranked = None

    if infos:
        ranking = rank_bids(
            infos, affinity=affinity, similarity=similarity, budget=bounty.budget,
            eligibility=reasons,
        )  # fmt: skip
        by_id = {b.external_id: b for b in bids}
        for sb in (*ranking.ranked, *ranking.excluded):
            bid = by_id[sb.bid_id]
            ctx["bids"].append(
                {
                    "rank": sb.rank if sb.eligible else None,
                    "respondent": bid.respondent.name,
                    "members": [names.get(m, m) for m in (bid.members or [])],
                    "price": sb.price,
                    "score": sb.total,
                    "breakdown": [(label, getattr(sb, key)) for key, label in BID_BREAKDOWN_LABELS],
                    "excluded": [reason_label(c) for c in sb.reasons],
                }
            )
    if ranked is not None:
        ids = [s.org_id for s in ranked.suggestions] + [e.org_id for e in ranked.excluded]
        names.update(
            {
                o.external_id: o.name
                for o in db.scalars(select(Organisation).where(Organisation.external_id.in_(ids)))
            }
        )
        ctx["eligible"] = [
            {
                "rank": s.rank,
                "name": names.get(s.org_id, s.org_id),
                "score": s.score,
                "evidence": [e.doc_snippet for e in s.evidence[:2] if e.doc_snippet],
            }
            for s in ranked.suggestions
        ]
        ctx["excluded"] = [
            {
                "name": names.get(e.org_id, e.org_id),
                "label": _label_exclusion(e, names),
                "detail": e.detail,
                "score": e.score,
            }
            for e in ranked.excluded
        ]
    return ctx
