"""账号管理 (staff): the department vets who is on the platform, so enterprise and institute
accounts are opened by staff. Creating one (or resetting its password) issues a random initial
password, shown once, that the user must change at the first sign-in (pages and API alike).

This is the one account page: the old ``/staff/accounts/new`` redirects here
(:mod:`service.web.staff_accounts`). A name search (``?q=``) lists matching organisations and
their ids for the 单位编号 field.
"""

from __future__ import annotations

import re
import secrets

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service import auth, crud
from service.api.deps import SessionDep
from service.applications import ORG_KIND_LABELS
from service.errors import ServiceError
from service.models import Organisation, User
from service.validation import normalise_text
from service.web.common import FormStr, page_router
from service.web.portal_common import StaffForm, StaffPage, add_nav, render_portal

router = page_router("/portal")
add_nav(("staff",), "账号管理", "portal_staff_accounts", order=40)

USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{3,64}$")
ORG_ROLE_LABELS = {"enterprise": "企业用户", "institute": "院所用户"}
QUERY_MAX = 50
SHOWN_ORGS = 30


def find_orgs(db: Session, q: str) -> list[Organisation]:
    """Active organisations whose name or id contains ``q`` (at most SHOWN_ORGS)."""
    if not q:
        return []
    stmt = (
        select(Organisation)
        .where(
            Organisation.status == "active",
            Organisation.name.contains(q, autoescape=True)
            | Organisation.external_id.contains(q, autoescape=True),
        )
        .order_by(Organisation.name)
        .limit(SHOWN_ORGS)
    )
    return list(db.scalars(stmt))


def initial_password() -> str:
    """A random initial password (letters and digits, 12 characters)."""
    return secrets.token_urlsafe(9).replace("-", "x").replace("_", "y") + "1a"


def _page(
    request: Request,
    db: Session,
    user: auth.Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    issued: tuple[str, str] | None = None,
    q: str = "",
) -> HTMLResponse:
    accounts = db.scalars(
        select(User)
        .where(User.role.in_(auth.ORG_ROLES))
        .options(selectinload(User.org))
        .order_by(User.id.desc())
        .limit(500)
    ).all()
    return render_portal(
        request,
        "portal/staff_accounts.html",
        {
            "accounts": accounts,
            "values": values or {},
            "errors": errors or {},
            "issued": issued,
            "org_role_labels": ORG_ROLE_LABELS,
            "q": q,
            "found": find_orgs(db, q),
            "org_kind_labels": ORG_KIND_LABELS,
        },
        user=user,
        status_code=422 if errors else 200,
    )


@router.get("/staff/accounts", name="portal_staff_accounts", response_class=HTMLResponse)
def portal_staff_accounts(
    request: Request, db: SessionDep, user: StaffPage, q: str = ""
) -> Response:
    """Accounts of enterprises and institutes, the form to open one, and an organisation
    search (``q``: part of a name or id) for its 单位编号 field."""
    return _page(request, db, user, q=normalise_text(q[: QUERY_MAX * 4]).strip()[:QUERY_MAX])


def account_errors(db: Session, username: str, role: str, org: str) -> dict[str, str]:
    """Field → message for the new-account form (empty when acceptable)."""
    errors: dict[str, str] = {}
    if not USERNAME.match(username):
        errors["username"] = "用户名为 3–64 位字母、数字或 _ . @ -"
    elif db.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = "该用户名已被使用"
    if role not in ORG_ROLE_LABELS:
        errors["role"] = "请选择账号类型"
    found = db.scalar(select(Organisation).where(Organisation.external_id == org[:64]))
    if not org:
        errors["org"] = "请填写单位编号"
    elif found is None:
        errors["org"] = "找不到该单位编号"
    elif found.status != "active":
        errors["org"] = f"「{found.name}」已停用，不能开通账号"
    elif role in ORG_ROLE_LABELS and found.kind not in auth.ORG_KINDS_OF_ROLE[role]:
        want = "企业" if role == "enterprise" else "高校、院所或科技服务机构"
        errors["org"] = f"「{found.name}」不是{want}，不能开通{ORG_ROLE_LABELS[role]}账号"
    return errors


@router.post("/staff/accounts", name="portal_staff_account_create")
def portal_staff_account_create(
    request: Request,
    db: SessionDep,
    user: StaffForm,
    username: FormStr = "",
    role: FormStr = "",
    org: FormStr = "",
) -> Response:
    """Open an account bound to one organisation; the initial password is shown once."""
    values = {
        "username": normalise_text(username[:200]).strip(),
        "role": role,
        "org": normalise_text(org[:200]).strip(),
    }
    errors = account_errors(db, values["username"], role, values["org"])
    if errors:
        return _page(request, db, user, values=values, errors=errors)
    password = initial_password()
    try:
        created, _key = crud.create_user(
            db,
            username=values["username"],
            role=role,
            org_external_id=values["org"],
            password=password,
            with_api_key=False,
            must_change_password=True,
        )
    except ServiceError as exc:
        db.rollback()
        return _page(request, db, user, values=values, errors={"username": str(exc.detail)})
    crud.audit(
        db,
        user=user,
        action="user.create",
        entity="user",
        entity_id=created.id,
        detail={"username": created.username, "role": role, "via": "portal"},
    )
    db.commit()
    return _page(request, db, user, issued=(created.username, password))


@router.post("/staff/accounts/{user_id}/reset", name="portal_staff_account_reset")
def portal_staff_account_reset(
    user_id: int, request: Request, db: SessionDep, user: StaffForm
) -> Response:
    """Issue a new initial password for an enterprise or institute account."""
    row = db.get(User, user_id)
    if row is None or row.role not in auth.ORG_ROLES:
        return render_portal(
            request,
            "portal/error.html",
            {"heading": "未找到", "message": "该账号不存在。"},
            user=user,
            status_code=404,
        )
    password = initial_password()
    crud.set_password(db, user=row, password=password, must_change=True)
    crud.audit(db, user=user, action="user.passwd", entity="user", entity_id=row.id)
    db.commit()
    return _page(request, db, user, issued=(row.username, password))
