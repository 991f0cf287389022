"""Staff browsers of needs and organisations: text search, filters, pagination.

Queries only (the pages live in ``service.web.staff_browse``). Text search is a
case-insensitive substring match (``LIKE``, wildcards in the user's text escaped) on the
title/description of needs and the name/credit code of organisations; filters are exact.
Every value is bounded before it reaches SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import String, cast, func, or_, select
from sqlalchemy.orm import Session, selectinload

from service import crud
from service import models as m
from service.validation import normalise_text

T = TypeVar("T")

PAGE_SIZE = 50
MAX_PAGE = 10_000
Q_MAX = 100
FILTER_MAX = 64

NEED_STATUSES: dict[str, str] = {
    "open": "征集中",
    "matched": "已对接",
    "closed": "已关闭",
    "withdrawn": "已撤回",
}
REVIEW_STATUSES: dict[str, str] = {"pending": "待审核", "approved": "已通过", "returned": "已退回"}
ORG_KINDS: dict[str, str] = {
    "enterprise": "企业",
    "university": "高校",
    "institute": "科研院所",
    "company": "科技型企业",
    "other": "其他",
}
ORG_STATUSES: dict[str, str] = {"active": "正常", "inactive": "已停用"}


@dataclass(frozen=True, slots=True)
class Filters:
    """Bounded, normalised browser filters (empty string = no filter)."""

    q: str = ""
    field: str = ""
    city: str = ""
    status: str = ""
    kind: str = ""
    review: str = ""
    page: int = 1

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Filters:
        """From query parameters: unknown choices and overlong values are dropped."""

        def text(name: str, limit: int = FILTER_MAX) -> str:
            return normalise_text(raw.get(name))[:limit]

        try:
            page = int(str(raw.get("page") or 1))
        except ValueError:
            page = 1
        return cls(
            q=text("q", Q_MAX),
            field=text("field"),
            city=text("city"),
            status=text("status"),
            kind=text("kind"),
            review=text("review"),
            page=min(max(page, 1), MAX_PAGE),
        )

    def query(self, **change: Any) -> dict[str, str]:
        """Non-empty filters as query parameters (for pagination links)."""
        values = {
            "q": self.q,
            "field": self.field,
            "city": self.city,
            "status": self.status,
            "kind": self.kind,
            "review": self.review,
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in change.items()})
        return {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows and the total count."""

    rows: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _json_contains(column: Any, value: str) -> Any:
    # JSON lists are stored as text ("[\"轻工\", ...]"); match the quoted element.
    return cast(column, String).like(_like(f'"{value}"'), escape="\\")


def browse_needs(session: Session, f: Filters, *, size: int = PAGE_SIZE) -> Page[m.Need]:
    """Needs (staff see all, confidential included) matching ``f``, newest first."""
    stmt = (
        select(m.Need)
        .join(m.Organisation, m.Need.org_id == m.Organisation.id)
        .options(selectinload(m.Need.org))
        .order_by(m.Need.id.desc())
    )
    if f.q:
        pattern = _like(f.q)
        stmt = stmt.where(
            or_(
                m.Need.title.like(pattern, escape="\\"),
                m.Need.description.like(pattern, escape="\\"),
                m.Need.external_id == f.q,
                m.Organisation.name.like(pattern, escape="\\"),
            )
        )
    if f.field:
        stmt = stmt.where(m.Need.field == f.field)
    if f.city:
        stmt = stmt.where(m.Organisation.city == f.city)
    if f.status in NEED_STATUSES:
        stmt = stmt.where(m.Need.status == f.status)
    if f.review in REVIEW_STATUSES:
        stmt = stmt.where(m.Need.review_status == f.review)
    rows, total = crud.paginate(session, stmt, limit=size, offset=(f.page - 1) * size)
    return Page(rows, total, f.page, size)


def browse_organisations(
    session: Session, f: Filters, *, size: int = PAGE_SIZE
) -> Page[m.Organisation]:
    """Organisations matching ``f``, by name."""
    stmt = select(m.Organisation).order_by(m.Organisation.name, m.Organisation.id)
    if f.q:
        pattern = _like(f.q)
        stmt = stmt.where(
            or_(
                m.Organisation.name.like(pattern, escape="\\"),
                m.Organisation.credit_code == f.q.upper(),
                m.Organisation.external_id == f.q,
            )
        )
    if f.kind in ORG_KINDS:
        stmt = stmt.where(m.Organisation.kind == f.kind)
    if f.city:
        stmt = stmt.where(m.Organisation.city == f.city)
    if f.status in ORG_STATUSES:
        stmt = stmt.where(m.Organisation.status == f.status)
    if f.field:
        stmt = stmt.where(_json_contains(m.Organisation.fields, f.field))
    rows, total = crud.paginate(session, stmt, limit=size, offset=(f.page - 1) * size)
    return Page(rows, total, f.page, size)


def need_counts(session: Session, org_ids: list[int]) -> dict[int, int]:
    """Number of needs per organisation id (for the organisation browser)."""
    if not org_ids:
        return {}
    rows = session.execute(
        select(m.Need.org_id, func.count())
        .where(m.Need.org_id.in_(org_ids))
        .group_by(m.Need.org_id)
    )
    return {int(o): int(n) for o, n in rows}


def capability_counts(session: Session, org_ids: list[int]) -> dict[int, int]:
    """Number of active capabilities per organisation id."""
    if not org_ids:
        return {}
    rows = session.execute(
        select(m.Capability.org_id, func.count())
        .where(m.Capability.org_id.in_(org_ids), m.Capability.status == "active")
        .group_by(m.Capability.org_id)
    )
    return {int(o): int(n) for o, n in rows}


def facet_values(session: Session) -> dict[str, list[str]]:
    """Distinct fields and cities for the filter drop-downs (bounded)."""
    fields = session.scalars(
        select(m.Need.field).where(m.Need.field.is_not(None)).distinct().order_by(m.Need.field)
    ).all()
    cities = session.scalars(
        select(m.Organisation.city)
        .where(m.Organisation.city.is_not(None))
        .distinct()
        .order_by(m.Organisation.city)
    ).all()
    return {"fields": [str(x) for x in fields][:300], "cities": [str(x) for x in cities][:300]}
