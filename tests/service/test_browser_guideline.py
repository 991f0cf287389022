"""指南凝练 in a real browser: staff condenses a round into directions, edits and exports them.

Same setup as tests/service/test_browser.py (Debian Chromium + Playwright against uvicorn,
JavaScript off), over the small web world plus one collection round of needs and an index
build made with the deterministic fake encoder. Screenshots at 1366 and 375 px go to
``DUIJIE_SHOT_DIR`` (default: the system temp directory).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

import service.jobs.reindex as job
from service import models as m
from service.recommender import RecommenderHandle
from tests.embeddings.conftest import FakeEncoder
from tests.service._webseed import STAFF_PASSWORD, STAFF_USER, World, build_app, seed
from tests.service.browser_support import free_port as _free_port
from tests.service.browser_support import launched_chromium, serve

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOT_DIR = Path(os.environ.get("DUIJIE_SHOT_DIR", tempfile.gettempdir()))
ROUND = "2026年第一批"
NEEDS = [
    ("甘蔗压榨节能改造", "糖厂压榨工序能耗高，需要压榨节能与余热回收。", "制糖", "压榨，节能"),
    ("糖厂压榨能耗优化", "压榨能耗偏高，希望优化压榨工艺降低吨糖能耗。", "制糖", "压榨，能耗"),
    ("蔗渣制浆综合利用", "蔗渣制浆造纸，提高蔗渣综合利用率。", "制糖", "蔗渣，制浆"),
    ("蔗渣高值化利用", "蔗渣制备可降解材料，提高蔗渣附加值。", "制糖", "蔗渣，可降解"),
    ("整车热管理与热泵", "冬季续航衰减，需要热泵空调与整车热管理。", "汽车", "热泵，热管理"),
    ("热泵空调低温制热", "热泵低温制热能力不足，整车热管理待优化。", "汽车", "热泵，空调"),
]


def _add_round(world: World) -> None:
    with world.factory() as s:
        ents = [
            m.Organisation(external_id=f"GE{i}", name=f"广西示例企业{i}", kind="enterprise",
                           in_region=True, province="广西", city="南宁")
            for i in range(1, 5)
        ]  # fmt: skip
        s.add_all(ents)
        s.flush()
        for n, (title, desc, field, kws) in enumerate(NEEDS, start=1):
            s.add(m.Need(external_id=f"GN{n}", org_id=ents[n % 4].id, title=title,
                         description=desc, field=field, keywords=kws.split("，"), round=ROUND))  # fmt: skip
        s.commit()


@pytest.fixture(scope="module")
def gworld(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("browser-guideline")
    world = seed(f"sqlite:///{tmp / 'browser.sqlite3'}", tmp)
    _add_round(world)
    job.run_reindex(world.settings, encoder=FakeEncoder())
    return world


@pytest.fixture(scope="module")
def gbase_url(gworld: World) -> Iterator[str]:
    import uvicorn

    handle = RecommenderHandle(gworld.settings, gworld.factory, encoder=FakeEncoder())
    port = _free_port()
    config = uvicorn.Config(
        build_app(gworld.settings, recommender=handle), host="127.0.0.1", port=port,
        log_level="warning", lifespan="on",
    )  # fmt: skip
    with serve(config, start_timeout=30) as base:
        yield base


@pytest.fixture(scope="module")
def gbrowser() -> Iterator[Any]:
    with launched_chromium() as b:
        yield b


def test_staff_condenses_a_round_and_exports_it(
    gbrowser: Any, gbase_url: str, gworld: World
) -> None:
    context = gbrowser.new_context(
        locale="zh-CN", viewport={"width": 1366, "height": 900}, java_script_enabled=False,
        accept_downloads=True,
    )  # fmt: skip
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{gbase_url}/staff/guideline")
    page.fill("#username", STAFF_USER)
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{gbase_url}/staff/guideline")
    assert "指南凝练" in page.locator("h1").inner_text()
    page.select_option("select[name=round]", ROUND)
    page.click("button:has-text('开始凝练')")
    page.wait_for_load_state()
    assert "凝练完成" in page.locator(".flash.ok").inner_text()
    assert "/staff/guideline/" in page.url
    sections = page.locator("section.direction")
    n_before = sections.count()
    assert n_before >= 2
    assert {h.inner_text() for h in page.locator("h2").all()} >= {"制糖", "汽车", "疑似重复需求"}
    SHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOT_DIR / "guideline-1366.png"), full_page=True)

    # rename the first direction
    first = sections.first
    first.locator("input[name=label]").fill("甘蔗糖业节能降耗方向")
    first.locator("button:has-text('重命名')").click()
    page.wait_for_load_state()
    assert "已重命名" in page.locator(".flash.ok").inner_text()
    assert page.locator("section.direction .label", has_text="甘蔗糖业节能降耗方向").count() == 1

    # merge two directions by ticking them
    boxes = page.locator("input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("button:has-text('合并所选方向')")
    page.wait_for_load_state()
    assert "已合并" in page.locator(".flash.ok").inner_text()
    assert page.locator("section.direction.status-merged").count() == 2

    with page.expect_download() as dl:
        page.click("a:has-text('导出指南建议表')")
    data = Path(dl.value.path()).read_bytes()
    rows = list(load_workbook(io.BytesIO(data))["指南建议"].iter_rows(values_only=True))
    assert rows[1][2] == "指南方向(建议)"
    assert len(rows) - 2 == page.locator("section.direction.status-active").count()
    assert sum(int(r[4]) for r in rows[2:]) == len(NEEDS)

    mobile = gbrowser.new_context(
        locale="zh-CN", viewport={"width": 375, "height": 812}, java_script_enabled=False,
        storage_state=context.storage_state(),
    )  # fmt: skip
    mpage = mobile.new_page()
    mpage.goto(page.url.split("?")[0])
    assert mpage.locator("section.direction").count() == page.locator("section.direction").count()
    mpage.screenshot(path=str(SHOT_DIR / "guideline-375.png"), full_page=True)
    mobile.close()
    context.close()
