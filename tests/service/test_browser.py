# ruff: noqa: F811  (the browser fixture is imported from tests.service.browser_support)
"""Staff pages in a real browser: Debian Chromium driven by Playwright against uvicorn.

The app (``service.main.create_app``) runs in a background thread on 127.0.0.1 and a free
port, over a temporary SQLite database seeded with a small campaign (tests/service/_webseed).
Without ``/usr/bin/chromium`` the tests are skipped, unless ``DUIJIE_REQUIRE_BROWSER=1``
(CI), where they fail. See docs/browser_tests.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.models import AuditLog, ShortlistItem
from tests.service._webseed import (
    ENTERPRISE_PASSWORD,
    ENTERPRISE_USER,
    STAFF_PASSWORD,
    STAFF_USER,
    World,
    build_app,
    seed,
)
from tests.service.browser_support import browser, serve, zh_page  # noqa: F401 (fixture)
from tests.service.browser_support import free_port as _free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = Path(os.environ.get("DUIJIE_SCREENSHOT", "/tmp/duijie-shortlist.png"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("browser")
    return seed(f"sqlite:///{tmp / 'browser.sqlite3'}", tmp)


@pytest.fixture(scope="module")
def base_url(world: World) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(
        build_app(world.settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    with serve(config, start_timeout=30) as base:
        yield base


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    with zh_page(browser, width=1400, timeout_ms=15_000) as pg:
        yield pg


def _sign_in(page: Any, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/staff/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_staff_reviews_a_shortlist(page: Any, base_url: str, world: World) -> None:
    # Anonymous: the staff page sends us to the login form, which brings us back afterwards.
    target = f"{base_url}/staff/campaigns/{world.campaign_id}"
    page.goto(target)
    assert "/staff/login" in page.url
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.fill("#username", STAFF_USER)
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(target)
    cookie = next(c for c in page.context.cookies() if c["name"] == "duijie_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"

    row = page.locator(f"#item-{world.item_ids[0]}")
    assert "广西甘糖科技有限公司" in row.inner_text()
    assert row.locator("mark").first.inner_text().startswith("希望利用甘蔗渣")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    row.locator("button[value=approve]").click()
    page.wait_for_load_state()
    assert "已通过该配对" in page.locator(".flash.ok").inner_text()
    page.reload()
    row = page.locator(f"#item-{world.item_ids[0]}")
    assert "已通过" in row.locator(".badge.approved").inner_text()
    assert row.get_attribute("data-version") == "2"
    with world.factory() as db:
        item = db.get(ShortlistItem, world.item_ids[0])
        assert item is not None
        assert (item.status, item.version, item.decided_by) == ("approved", 2, world.staff_id)
        assert db.query(AuditLog).filter_by(action="shortlist.approve").count() == 1


def test_stale_form_shows_conflict(page: Any, base_url: str, world: World) -> None:
    _sign_in(page, base_url, STAFF_USER, STAFF_PASSWORD)
    page.goto(f"{base_url}/staff/campaigns/{world.campaign_id}")
    item_id = world.item_ids[1]
    # Someone else decides in the meantime (a second browser tab / colleague).
    with world.factory() as db:
        item = db.get(ShortlistItem, item_id)
        assert item is not None
        item.status, item.version = "approved", item.version + 1
        db.commit()
    page.locator(f"#item-{item_id} button[value=reject]").click()
    page.wait_for_load_state()
    assert "冲突" in page.locator(".flash.error").inner_text()
    with world.factory() as db:
        item = db.get(ShortlistItem, item_id)
        assert item is not None and item.status == "approved"


def test_enterprise_cannot_open_staff_pages(
    page: Any, browser: Any, base_url: str, world: World
) -> None:
    _sign_in(page, base_url, ENTERPRISE_USER, ENTERPRISE_PASSWORD)
    response = page.goto(f"{base_url}/staff/campaigns/{world.campaign_id}")
    assert response is not None and response.status == 403
    assert "无权访问" in page.content()

    keyed = browser.new_context(extra_http_headers={"X-API-Key": world.enterprise_key})
    try:
        response = keyed.new_page().goto(f"{base_url}/staff/campaigns")
        assert response is not None and response.status == 403
    finally:
        keyed.close()


def test_bounty_page_says_index_not_ready(page: Any, base_url: str, world: World) -> None:
    _sign_in(page, base_url, STAFF_USER, STAFF_PASSWORD)
    page.goto(f"{base_url}/staff/bounties")
    page.click("text=甘蔗渣可降解材料攻关")
    assert "索引未就绪" in page.locator("main").inner_text()
    assert page.locator("#bids tbody tr").count() == 2
