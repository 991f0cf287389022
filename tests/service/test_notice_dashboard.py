"""The lifecycle panel, the public notice page (公示) and the KPI dashboard through the real app
(TestClient, real SQLite): moves by form, what anonymous visitors may see, chart numbers."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select

from service import bounty_lifecycle as bl
from service.models import AuditLog, Bid, Bounty, Need, ShortlistItem
from service.web import charts
from service.web.dashboard import dashboard_tables
from tests.service._webseed import NEED_DESC, STAFF_PASSWORD, STAFF_USER, World, build_app, seed
from tests.service.test_web import login

# What the public must never see: proposals, the losing bidder and its price, need texts,
# the bounty's description, account names.
PRIVATE = (
    "甘蔗渣制备可降解包装材料",
    "联合攻关",
    "桂林电子科技大学机电学院",
    "150.0",
    "180.0",
    NEED_DESC[:12],
    "征集甘蔗渣制备可降解材料的技术方案",
    "BID1",
    "BID2",
    STAFF_USER,
    "qiye_user",
)


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return seed(f"sqlite:///{tmp_path / 'web.sqlite3'}", tmp_path)


@pytest.fixture()
def client(world: World) -> Iterator[TestClient]:
    with TestClient(build_app(world.settings), follow_redirects=False) as c:
        yield c


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert m is not None
    return m.group(1)


def _move(client: TestClient, world: World, to: str, **fields: str) -> tuple[int, str]:
    page = client.get(f"/staff/bounties/{world.bounty_id}")
    assert page.status_code == 200
    r = client.post(
        f"/staff/bounties/{world.bounty_id}/transition",
        data={"to": to, "csrf_token": _csrf(page.text), **fields},
    )
    return r.status_code, r.text


def _walk_to_notice(client: TestClient, world: World) -> None:
    with world.factory() as db:  # the seeded bounty is open (申报中) with two bids
        bounty = db.get(Bounty, world.bounty_id)
        assert bounty is not None and bounty.status == bl.OPEN
    assert _move(client, world, bl.SCREENING)[0] == 303
    assert _move(client, world, bl.REVIEWING)[0] == 303
    assert _move(client, world, bl.NEGOTIATING)[0] == 303
    code, _ = _move(
        client, world, bl.AWARDED, bid="BID1", price="175.5",
        funding_enterprise="120", funding_academic="55.5",
    )  # fmt: skip
    assert code == 303
    assert _move(client, world, bl.NOTICE)[0] == 303


def test_staff_move_a_bounty_by_form_and_every_move_is_audited(
    client: TestClient, world: World
) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    page = client.get(f"/staff/bounties/{world.bounty_id}").text
    assert 'id="bounty-state">申报中<' in page
    assert "截止申报，资格审查" in page and "撤榜" in page
    # an illegal move is refused with the reason, nothing changes
    code, html = _move(client, world, bl.AWARDED, bid="BID1", price="10")
    assert code == 422
    assert "不能从“申报中”直接变更为“已立项”" in html
    # withdrawing without a reason is refused too
    code, html = _move(client, world, bl.WITHDRAWN, reason=" ")
    assert code == 422 and "撤榜须说明原因" in html
    _walk_to_notice(client, world)
    page = client.get(f"/staff/bounties/{world.bounty_id}?moved=1").text
    assert "榜单状态已更新" in page and 'id="bounty-state">公示<' in page
    assert "广西大学轻工与食品工程学院" in page[page.index("揭榜方") :]
    with world.factory() as db:
        bounty = db.get(Bounty, world.bounty_id)
        assert bounty is not None
        assert (bounty.status, bounty.awarded_price) == (bl.NOTICE, 175.5)
        bid = db.get(Bid, bounty.awarded_bid_id)
        assert bid is not None and bid.external_id == "BID1"
        assert (bid.funding_enterprise, bid.funding_academic) == (120.0, 55.5)
        moves = db.scalars(
            select(AuditLog.detail).where(AuditLog.action == "bounty.transition")
        ).all()
        assert [d["to"] for d in moves] == [
            bl.SCREENING, bl.REVIEWING, bl.NEGOTIATING, bl.AWARDED, bl.NOTICE,
        ]  # fmt: skip


def test_a_forged_form_is_refused(client: TestClient, world: World) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    r = client.post(
        f"/staff/bounties/{world.bounty_id}/transition",
        data={"to": bl.SCREENING, "csrf_token": "forged"},
    )
    assert r.status_code == 403
    with world.factory() as db:
        bounty = db.get(Bounty, world.bounty_id)
        assert bounty is not None and bounty.status == bl.OPEN


def test_opening_applications_sets_the_closing_date(client: TestClient, world: World) -> None:
    with world.factory() as db:
        bounty = db.get(Bounty, world.bounty_id)
        assert bounty is not None
        bounty.status = bl.PUBLISHED
        db.commit()
    login(client, STAFF_USER, STAFF_PASSWORD)
    code, html = _move(client, world, bl.OPEN, deadline="2020-01-01")
    assert code == 422 and "2020-01-01 已过" in html
    later = (date.today() + timedelta(days=30)).isoformat()
    assert _move(client, world, bl.OPEN, deadline=later)[0] == 303
    with world.factory() as db:
        bounty = db.get(Bounty, world.bounty_id)
        assert bounty is not None and bounty.deadline == date.fromisoformat(later)


def test_the_notice_page_shows_the_winner_and_nothing_private(
    client: TestClient, world: World
) -> None:
    assert "暂无公示项目" in client.get("/notice").text
    assert client.get(f"/notice/{world.bounty_id}").status_code == 404  # not public yet
    login(client, STAFF_USER, STAFF_PASSWORD)
    _walk_to_notice(client, world)
    client.cookies.clear()  # anonymous from here
    listing = client.get("/notice")
    one = client.get(f"/notice/{world.bounty_id}")
    for r in (listing, one):
        assert r.status_code == 200
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
        html = r.text
        for text in ("甘蔗渣可降解材料攻关", "广西大学轻工与食品工程学院", "175.5", "公示"):
            assert text in html
        leaked = [p for p in PRIVATE if p in html]
        assert not leaked, leaked
        assert "<form" not in html and "csrf" not in html  # read-only
    assert client.get("/notice/999999").status_code == 404


def test_staff_revoke_a_mistaken_award_and_it_leaves_the_notice_page(
    client: TestClient, world: World
) -> None:
    login(client, STAFF_USER, STAFF_PASSWORD)
    _walk_to_notice(client, world)
    page = client.get(f"/staff/bounties/{world.bounty_id}").text
    assert bl.REVOKE_LABEL in page and "撤销原因" in page
    code, html = _move(client, world, bl.NEGOTIATING, reason="")
    assert code == 422 and "撤销立项须说明原因" in html
    assert client.get(f"/notice/{world.bounty_id}").status_code == 200  # still public
    assert _move(client, world, bl.NEGOTIATING, reason="公示期异议成立")[0] == 303
    page = client.get(f"/staff/bounties/{world.bounty_id}").text
    assert 'id="bounty-state">洽谈<' in page and "公示期异议成立" in page  # in the history
    assert 'class="winner"' not in page and "确定揭榜方，立项" in page
    assert client.get(f"/notice/{world.bounty_id}").status_code == 404
    with world.factory() as db:
        statuses = set(db.scalars(select(Bid.status).where(Bid.bounty_id == world.bounty_id)))
        assert not statuses & {"awarded", "not_awarded"}


def test_dashboard_numbers_match_the_database(client: TestClient, world: World) -> None:
    with world.factory() as db:
        item = db.get(ShortlistItem, world.item_ids[0])
        assert item is not None
        item.status = "approved"
        db.commit()
        n_needs = db.scalar(select(func.count()).select_from(Need))
    login(client, STAFF_USER, STAFF_PASSWORD)
    _walk_to_notice(client, world)
    html = client.get("/staff/dashboard").text
    for key in ("coverage", "coverage_city", "coverage_field", "needs_field", "needs_month",
                "funnel", "bounty_state", "awards"):  # fmt: skip
        assert f'id="chart-{key}"' in html and f'id="table-{key}"' in html, key
    assert 'data-value="1" data-target="1,000"' in html  # one paired enterprise of 1,000
    assert re.search(r'data-label="轻工" data-value="1"', html)  # by field (the need's)
    assert re.search(r'data-label="公示" data-value="1"', html)  # bounties by state
    assert "合计 175.5 万元" in html
    assert f'data-label="轻工" data-value="{n_needs}"' in html  # needs by field
    assert "数据看板" in html and "<script" not in html
    # the XLSX holds the same tables
    r = client.get("/staff/dashboard.xlsx")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.content))
    with world.factory() as db:
        tables = dashboard_tables(db, world.settings.pairing_target)
    assert wb.sheetnames == [t.title for t in tables]
    for t in tables:
        rows = [tuple(row) for row in wb[t.title].iter_rows(values_only=True)]
        assert rows[0] == t.headers and rows[1:] == list(t.rows), t.key


def test_charts_escape_text_and_refuse_ragged_input() -> None:
    svg = str(charts.bar_chart(['<script>"x"&'], [3], title="<t>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;t&gt;" in svg
    with pytest.raises(ValueError):
        charts.bar_chart(["a"], [1, 2], title="t")
    with pytest.raises(ValueError):
        charts.line_chart(["1", "2"], [("s", [1])], title="t")
    assert "暂无数据" in str(charts.funnel_chart([], [], title="t"))
    funnel = str(charts.funnel_chart(["已提交", "已签约"], [4, 1], title="漏斗"))
    assert "已签约 1（25%）" in funnel
