# ruff: noqa: F811  (pytest fixtures imported from tests.service.test_browser)
"""In a real browser (Debian Chromium, JavaScript off): staff move a bounty through its
lifecycle to the public notice page, an anonymous visitor sees the winner there, and staff
open the KPI dashboard (chart SVGs present, numbers equal to the database's).

Set ``DUIJIE_WORKFLOW_SHOTS=DIR`` to keep 1366 px and 375 px screenshots of the bounty page,
the notice page and the dashboard (docs/browser_tests.md).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service import bounty_lifecycle as bl
from service.models import AuditLog, Bid, Bounty, ShortlistItem
from tests.service._webseed import STAFF_PASSWORD, STAFF_USER, World
from tests.service.browser_support import zh_context
from tests.service.test_browser import (  # noqa: F401 (fixtures)
    _sign_in,
    base_url,
    browser,
    world,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (1366, 375)
WINNER = "广西大学轻工与食品工程学院"
LOSER = "桂林电子科技大学机电学院"


def _shots(page: Any, name: str) -> None:
    target = os.environ.get("DUIJIE_WORKFLOW_SHOTS")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(Path(target) / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def _context(browser: Any) -> Any:
    return zh_context(browser, width=WIDTHS[0])


def _click_move(page: Any, target: str) -> None:
    page.locator(f"form.move-{target} button[type=submit]").click()
    page.wait_for_load_state()
    assert "榜单状态已更新" in page.locator(".flash.ok").inner_text()


def test_staff_move_a_bounty_to_the_public_notice(
    browser: Any, base_url: str, world: World
) -> None:
    ctx = _context(browser)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, base_url, STAFF_USER, STAFF_PASSWORD)
    page.goto(f"{base_url}/staff/bounties/{world.bounty_id}")
    assert page.locator("#bounty-state").inner_text() == "申报中"
    for target in (bl.SCREENING, bl.REVIEWING, bl.NEGOTIATING):
        _click_move(page, target)
        assert page.locator("#bounty-state").inner_text() == bl.STATE_LABELS[target]
    form = page.locator(f"form.move-{bl.AWARDED}")
    form.locator("select[name=bid]").select_option("BID1")
    form.locator("input[name=price]").fill("176")
    form.locator("input[name=funding_enterprise]").fill("120")
    form.locator("input[name=funding_academic]").fill("56")
    _click_move(page, bl.AWARDED)
    assert WINNER in page.locator(".winner").inner_text()
    statuses = page.locator("#bids").inner_text()
    assert "中榜" in statuses and "未中榜" in statuses  # the losing bid is marked
    _click_move(page, bl.NOTICE)
    assert page.locator("#bounty-state").inner_text() == "公示"
    page.locator("details.history summary").click()
    _shots(page, "bounty-lifecycle")
    ctx.close()
    with world.factory() as db:
        bounty = db.get(Bounty, world.bounty_id)
        assert bounty is not None and bounty.status == bl.NOTICE
        bid = db.get(Bid, bounty.awarded_bid_id)
        assert bid is not None and bid.external_id == "BID1"
        assert (bounty.awarded_price, bid.funding_academic) == (176.0, 56.0)
        others = db.scalars(select(Bid).where(Bid.bounty_id == bounty.id, Bid.id != bid.id)).all()
        assert bid.status == "awarded" and others
        assert all(o.status == "not_awarded" for o in others)
        n_moves = len(
            db.scalars(select(AuditLog.id).where(AuditLog.action == "bounty.transition")).all()
        )
        assert n_moves == 5

    anon = _context(browser)  # no cookies: an anonymous visitor
    page = anon.new_page()
    response = page.goto(f"{base_url}/notice")
    assert response is not None and response.status == 200
    row = page.locator(f"#notice-{world.bounty_id}")
    assert WINNER in row.locator(".winner-name").inner_text()
    assert "176.0" in row.inner_text()
    assert LOSER not in page.content() and "甘蔗渣制备可降解包装材料" not in page.content()
    _shots(page, "notice")
    row.locator("a").click()
    page.wait_for_load_state()
    assert WINNER in page.locator("#notice-one .winner-name").inner_text()
    staff_page = page.goto(f"{base_url}/staff/dashboard")  # staff pages stay closed
    assert staff_page is not None and "/staff/login" in page.url
    anon.close()


def test_staff_open_the_dashboard(browser: Any, base_url: str, world: World) -> None:
    with world.factory() as db:
        item = db.get(ShortlistItem, world.item_ids[1])
        assert item is not None
        item.status = "approved"
        db.commit()
        states = Counter(bl.state_of(s) for s in db.scalars(select(Bounty.status)))
    ctx = _context(browser)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, base_url, STAFF_USER, STAFF_PASSWORD)
    page.goto(f"{base_url}/staff/bounties")
    page.click("text=数据看板")
    page.wait_for_load_state()
    assert page.url.endswith("/staff/dashboard")
    assert page.locator("svg.chart").count() == 8
    # coverage: one approved pair in this world (plus any approved by the other test)
    with world.factory() as db:
        paired = len(
            set(
                db.scalars(
                    select(ShortlistItem.enterprise_id).where(
                        ShortlistItem.status == "approved", ShortlistItem.kind != "uncovered"
                    )
                )
            )
        )
    bar = page.locator("#chart-coverage rect.progress")
    assert bar.get_attribute("data-value") == str(paired)
    # bounties by state: every bar equals the database's count
    for state, n in states.items():
        label = bl.STATE_LABELS[state]
        g = page.locator(f'#chart-bounty_state g.bar[data-label="{label}"]')
        assert g.get_attribute("data-value") == str(n), label
    page.locator("#panel-bounty_state details summary").click()
    cells = page.locator("#table-bounty_state tbody tr").all_inner_texts()
    assert any(f"{bl.STATE_LABELS[s]}\t{n}" in c for s, n in states.items() for c in cells)
    with page.expect_download() as info:
        page.click("text=下载全部数据(XLSX)")
    assert info.value.suggested_filename == "dashboard.xlsx"
    _shots(page, "dashboard")
    ctx.close()
