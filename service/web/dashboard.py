"""The KPI dashboard for staff (``/staff/dashboard``): charts with their numbers one click away.

Each panel is a :class:`Table` computed from the store and drawn from that same table by
:mod:`service.web.charts`, so a chart and the ``<details>`` table under it always agree; the
XLSX download (``/staff/dashboard.xlsx``) writes every table, one sheet each, through the
formula guard (:func:`service.web.export.excel_safe`).

Panels:

* pairing coverage (结对子): distinct enterprises with an approved pair in a pairing campaign,
  against ``DUIJIE_PAIRING_TARGET`` (default 1,000), overall, by city and by field (the
  pair's need field, else the enterprise's first field);
* needs by field, and by month of entry and status;
* the introduction funnel: 已提交 → 已转交 → 洽谈中 → 已签约 (each stage counts the
  introductions that reached it, including those that ended later as 未达成);
* bounties by lifecycle state; awarded amounts (约定金额) by month of award.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import bounty_lifecycle as bl
from service.api.deps import SessionDep
from service.models import AuditLog, Bounty, Campaign, Introduction, Need, Organisation
from service.models import ShortlistItem as Item
from service.portal_crud import INTRO_LABELS, NEED_STATUS_LABELS
from service.web import charts
from service.web.common import StaffUserDep, page_router, render

router = page_router("/staff")

UNKNOWN = "未填写"
FUNNEL = ("submitted", "forwarded", "negotiating", "signed")


@dataclass(frozen=True, slots=True)
class Table:
    """One panel's numbers: a title, column headers and rows (first column the label)."""

    key: str
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def column(self, i: int) -> list[Any]:
        return [r[i] for r in self.rows]


@dataclass(frozen=True, slots=True)
class Panel:
    table: Table
    svg: Markup
    note: str = ""


def _month(value: datetime | None) -> str:
    return value.strftime("%Y-%m") if value is not None else UNKNOWN


def _sorted_counts(counter: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def coverage_tables(db: Session, target: int) -> tuple[Table, Table, Table]:
    """Paired enterprises overall (vs ``target``), by city and by field."""
    rows = db.execute(
        select(Item.enterprise_id, Organisation.city, Organisation.fields, Need.field)
        .join(Campaign, Campaign.id == Item.campaign_id)
        .join(Organisation, Organisation.id == Item.enterprise_id)
        .outerjoin(Need, Need.id == Item.need_id)
        .where(
            Campaign.kind == "pairing",
            Item.status == "approved",
            Item.kind != "uncovered",
            Item.institute_id.is_not(None),
        )
        .order_by(Item.id)
    ).all()
    city: dict[int, str] = {}
    field: dict[int, str] = {}
    for ent, ent_city, ent_fields, need_field in rows:
        city.setdefault(ent, ent_city or UNKNOWN)
        field.setdefault(ent, need_field or (ent_fields[0] if ent_fields else UNKNOWN))
    paired = len(city)
    overall = Table(
        "coverage",
        "结对覆盖进度",
        ("指标", "企业数"),
        (("已结对企业", paired), ("目标", target)),
    )
    by_city = Table(
        "coverage_city",
        "结对企业·按城市",
        ("城市", "企业数"),
        _sorted_counts(Counter(city.values())),
    )
    by_field = Table(
        "coverage_field",
        "结对企业·按领域",
        ("领域", "企业数"),
        _sorted_counts(Counter(field.values())),
    )
    return overall, by_city, by_field


def need_tables(db: Session) -> tuple[Table, Table]:
    """Approved needs by field; needs by month of entry × status."""
    by_field = Counter(
        f or UNKNOWN
        for (f,) in db.execute(select(Need.field).where(Need.review_status == "approved"))
    )
    grid: dict[str, Counter[str]] = defaultdict(Counter)
    for created, status in db.execute(select(Need.created_at, Need.status)):
        grid[_month(created)][status] += 1
    statuses = [s for s in NEED_STATUS_LABELS if any(c[s] for c in grid.values())]
    statuses += sorted({s for c in grid.values() for s in c} - set(statuses))
    months = sorted(grid)
    return (
        Table("needs_field", "需求·按领域", ("领域", "需求数"), _sorted_counts(by_field)),
        Table(
            "needs_month",
            "需求·按月份与状态",
            ("月份", *(NEED_STATUS_LABELS.get(s, s) for s in statuses)),
            tuple((m, *(grid[m][s] for s in statuses)) for m in months),
        ),
    )


def funnel_table(db: Session) -> Table:
    """Introductions that reached each stage (a later 未达成 still counts where it got to)."""
    accepted = {
        int(x)
        for (x,) in db.execute(
            select(AuditLog.entity_id).where(
                AuditLog.entity == "introduction", AuditLog.action == "intro.accept"
            )
        )
        if str(x).isdigit()
    }
    reached = Counter[str]()
    for iid, status, forwarded_at in db.execute(
        select(Introduction.id, Introduction.status, Introduction.forwarded_at)
    ):
        reached["submitted"] += 1
        if forwarded_at is not None or status in ("forwarded", "negotiating", "signed"):
            reached["forwarded"] += 1
        if status in ("negotiating", "signed") or iid in accepted:
            reached["negotiating"] += 1
        if status == "signed":
            reached["signed"] += 1
    rows = tuple((INTRO_LABELS[s], reached[s]) for s in FUNNEL)
    return Table("funnel", "对接申请漏斗", ("阶段", "数量"), rows)


def bounty_tables(db: Session) -> tuple[Table, Table]:
    """Bounties by lifecycle state; agreed amounts (万元) of awards by month."""
    counts = Counter(bl.state_of(s) for (s,) in db.execute(select(Bounty.status)))
    by_state = tuple(
        (bl.STATE_LABELS[s], counts[s]) for s in bl.STATES if counts[s] or s in bl.FORWARD
    )
    amounts: dict[str, list[float]] = defaultdict(list)
    for at, price in db.execute(
        select(Bounty.awarded_at, Bounty.awarded_price).where(Bounty.awarded_price.is_not(None))
    ):
        amounts[_month(at)].append(float(price or 0.0))
    money = tuple((m, len(v), round(sum(v), 2)) for m, v in sorted(amounts.items()))
    return (
        Table("bounty_state", "榜单·按流程状态", ("状态", "榜单数"), by_state),
        Table("awards", "立项金额·按月份", ("月份", "立项数", "约定金额(万元)"), money),
    )


def dashboard_tables(db: Session, target: int) -> list[Table]:
    """Every table of the dashboard, in page order."""
    return [*coverage_tables(db, target), *need_tables(db), funnel_table(db), *bounty_tables(db)]


def _panel(t: Table) -> Panel:
    cid = f"chart-{t.key}"
    labels = [str(x) for x in t.column(0)]
    if t.key == "coverage":
        paired, target = t.rows[0][1], t.rows[1][1]
        return Panel(t, charts.progress_chart(paired, target, title=t.title, chart_id=cid))
    if t.key == "funnel":
        return Panel(t, charts.funnel_chart(labels, t.column(1), title=t.title, chart_id=cid))
    if t.key == "needs_month":
        series = [(h, t.column(i + 1)) for i, h in enumerate(t.headers[1:])]
        return Panel(t, charts.line_chart(labels, series, title=t.title, chart_id=cid))
    if t.key == "awards":
        total = sum(t.column(2))
        svg = charts.bar_chart(labels, t.column(2), title=t.title, chart_id=cid, color="#1e7b34")
        return Panel(t, svg, note=f"合计 {charts.fmt(total)} 万元")
    return Panel(t, charts.bar_chart(labels, t.column(1), title=t.title, chart_id=cid))


def dashboard_workbook(tables: Sequence[Table]) -> bytes:
    """All tables as one XLSX workbook (one sheet per table, text cells formula-guarded)."""
    from openpyxl import Workbook

    from service.web.export import excel_safe

    wb = Workbook()
    wb.remove(wb.active)
    for t in tables:
        ws = wb.create_sheet(t.title[:31])
        ws.append([excel_safe(h) for h in t.headers])
        for row in t.rows:
            ws.append([excel_safe(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@router.get("/dashboard", name="staff_dashboard", response_class=HTMLResponse)
def staff_dashboard(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    """KPI dashboard: coverage, needs, introductions, bounties."""
    target = request.app.state.settings.pairing_target
    panels = [_panel(t) for t in dashboard_tables(db, target)]
    return render(request, "staff/dashboard.html", {"panels": panels}, user=user)


@router.get("/dashboard.xlsx", name="staff_dashboard_xlsx")
def staff_dashboard_xlsx(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    """Every dashboard table as XLSX."""
    target = request.app.state.settings.pairing_target
    body = dashboard_workbook(dashboard_tables(db, target))
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": 'attachment; filename="dashboard.xlsx"',
            "Cache-Control": "no-store",
        },
    )
