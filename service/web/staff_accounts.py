"""Staff: create an institute account (院所账号) from a page.

The department vets who is on the platform, so institute accounts are made by staff: a user
name and the university/institute/company it is bound to. The page generates the initial
password and shows it once; the first sign-in must change it
(``User.must_change_password``, enforced by the portal's page dependency).
"""

from __future__ import annotations

import re
import secrets

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import auth, crud
from service import models as m
from service.api.deps import SessionDep
from service.forms import FormErrors
from service.validation import normalise_text
from service.web.common import FormStr, StaffFormUserDep, StaffUserDep, page_router, render

router = page_router("/staff")

USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{3,64}$")
SHOWN_ORGS = 200


def _orgs(db: Session, q: str) -> dict[str, str]:
    kinds = auth.ORG_KINDS_OF_ROLE["institute"]
    stmt = select(m.Organisation).where(
        m.Organisation.kind.in_(kinds), m.Organisation.status == "active"
    )
    if q:
        stmt = stmt.where(m.Organisation.name.contains(q[:50]))
    rows = db.scalars(stmt.order_by(m.Organisation.name).limit(SHOWN_ORGS))
    return {o.external_id: o.name for o in rows}


def _page(
    request: Request,
    db: Session,
    user: auth.Principal,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    created: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "values": values,
        "errors": errors or {},
        "orgs": _orgs(db, values.get("q", "")),
        "created": created,
    }
    return render(request, "staff/account_new.html", context, user=user, status_code=status_code)


@router.get("/accounts/new", name="staff_account_new", response_class=HTMLResponse)
def new_account(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    q = normalise_text(request.query_params.get("q"))[:50]
    return _page(request, db, user, values={"q": q})


def _validate(db: Session, username: str, org: str) -> FormErrors:
    errors = FormErrors()
    if not USERNAME.match(username):
        errors.add("username", "用户名为 3–64 位字母、数字或 _ . @ -")
    elif db.scalar(select(m.User.id).where(m.User.username == username)):
        errors.add("username", "该用户名已被使用")
    kinds = auth.ORG_KINDS_OF_ROLE["institute"]
    row = db.scalar(select(m.Organisation).where(m.Organisation.external_id == org[:64]))
    if not org:
        errors.add("org", "请选择账号所属单位")
    elif row is None or row.kind not in kinds or row.status != "active":
        errors.add("org", "只能选择在用的高校、院所或科技型企业")
    return errors


@router.post("/accounts/new", name="staff_account_create", response_class=HTMLResponse)
def create_account(
    request: Request,
    db: SessionDep,
    user: StaffFormUserDep,
    username: FormStr = "",
    org: FormStr = "",
    q: FormStr = "",
) -> Response:
    username, org = normalise_text(username), normalise_text(org)
    values = {"username": username, "org": org, "q": normalise_text(q)[:50]}
    errors = _validate(db, username, org)
    if errors:
        return _page(request, db, user, values=values, errors=errors.fields, status_code=422)
    password = secrets.token_urlsafe(9)
    account, _key = crud.create_user(
        db,
        username=username,
        role="institute",
        org_external_id=org,
        password=password,
        with_api_key=False,
        must_change_password=True,
    )
    crud.audit(
        db,
        user=user,
        action="user.create",
        entity="user",
        entity_id=account.id,
        detail={"role": "institute", "org": org},
    )
    db.commit()
    org_name = account.org.name if account.org is not None else org
    created = {"username": username, "password": password, "org": org_name}
    return _page(request, db, user, values={}, created=created)
