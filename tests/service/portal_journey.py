"""The portal's main journey in a real browser (Playwright + Chromium, JavaScript off):

enterprise signs in (first login: password change) → creates a need → staff vet it →
the enterprise sees suggestions → requests an introduction → staff forward it → the
institute sees and accepts it → the enterprise records the outcome.

Each step checks the page and the database. Used by tests/service/test_browser_portal.py
(tiny world) and benchmarks/bench_portal_journey.py (demo data, timed, screenshots).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.models import Introduction, Message, Need

SHOT_WIDTHS = (1366, 375)


@dataclass
class Journey:
    """Where to go and who signs in; ``shots`` is a directory for screenshots (or None)."""

    base_url: str
    factory: sessionmaker[Session]
    enterprise: tuple[str, str, str]  # username, initial password, new password
    staff: tuple[str, str]
    make_institute_user: Callable[[str], tuple[str, str]]  # org external id → credentials
    need_title: str
    need_description: str
    need_keywords: str
    shots: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    shot_files: list[Path] = field(default_factory=list)


def _shot(page: Any, j: Journey, name: str) -> None:
    if j.shots is None:
        return
    j.shots.mkdir(parents=True, exist_ok=True)
    for width in SHOT_WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        path = j.shots / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        j.shot_files.append(path)
    page.set_viewport_size({"width": SHOT_WIDTHS[0], "height": 900})


def _sign_in(page: Any, j: Journey, username: str, password: str) -> None:
    page.goto(f"{j.base_url}/portal/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form.login button.primary")


class _Clock:
    def __init__(self, j: Journey) -> None:
        self.j = j

    def __call__(self, step: str) -> _Step:
        return _Step(self.j, step)


class _Step:
    def __init__(self, j: Journey, step: str) -> None:
        self.j, self.step = j, step

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.j.timings[self.step] = time.perf_counter() - self.t0


def run_journey(browser: Any, j: Journey) -> dict[str, Any]:
    """Run the journey; returns the ids it created. Raises AssertionError on any mismatch."""
    clock = _Clock(j)

    def context() -> Any:
        ctx = browser.new_context(
            locale="zh-CN",
            viewport={"width": SHOT_WIDTHS[0], "height": 900},
            java_script_enabled=False,
        )
        pg = ctx.new_page()
        pg.set_default_timeout(30_000)
        return ctx, pg

    ent_ctx, ent = context()
    user, initial, new_pw = j.enterprise
    with clock("enterprise sign-in + password change"):
        ent.goto(f"{j.base_url}/portal/needs")
        assert "/portal/login" in ent.url
        _shot(ent, j, "01-login")
        _sign_in(ent, j, user, initial)
        assert ent.url.endswith("/portal/password"), ent.url
        _shot(ent, j, "02-password-forced")
        ent.fill("#current", initial)
        ent.fill("#new", new_pw)
        ent.fill("#again", new_pw)
        ent.click("main button.primary")
        assert "/portal/needs" in ent.url and "密码已修改" in ent.content()

    with clock("create need (with one rejected submission)"):
        ent.click("text=发布新需求")
        ent.fill("#title", j.need_title)
        ent.fill("#description", "太短")
        ent.fill("#budget", "-5")
        ent.check("#confidential")
        ent.click("form.stack button.primary")
        assert ent.locator("#description-error").inner_text().startswith("请用至少 10 个字")
        assert "不能小于0" in ent.locator("#budget-error").inner_text()
        assert ent.input_value("#title") == j.need_title  # what was typed is kept
        assert ent.is_checked("#confidential")
        _shot(ent, j, "03-need-form-errors")
        ent.fill("#description", j.need_description)
        ent.fill("#budget", "80")
        ent.fill("#keywords", j.need_keywords)
        ent.uncheck("#confidential")
        ent.click("form.stack button.primary")
        assert "待审核" in ent.content() and "需求已提交" in ent.content()
        need_ext = ent.url.split("/portal/needs/")[1].split("?")[0]
        _shot(ent, j, "04-need-pending")
    with j.factory() as s:
        need = s.scalar(select(Need).where(Need.external_id == need_ext))
        assert need is not None and need.review_status == "pending" and need.budget == 80.0

    staff_ctx, staff = context()
    with clock("staff vets the need"):
        _sign_in(staff, j, *j.staff)
        assert "/portal/staff/needs" in staff.url
        card = staff.locator(f"[data-need='{need_ext}']")
        assert j.need_title in card.inner_text()
        _shot(staff, j, "05-staff-vetting-queue")
        card.locator("button[value=approve]").click()
        assert "审核结果已保存" in staff.content()
    with j.factory() as s:
        need = s.scalar(select(Need).where(Need.external_id == need_ext))
        assert need is not None and need.review_status == "approved"

    with clock("enterprise sees suggestions"):
        ent.goto(f"{j.base_url}/portal/needs")
        assert ent.locator(".unread").count() == 1  # 需求已通过审核
        _shot(ent, j, "06-my-needs")
        deadline = time.monotonic() + 30
        while True:  # the recommender reloads the store within its check interval
            ent.goto(f"{j.base_url}/portal/needs/{need_ext}/suggestions")
            if ent.locator("#suggestions .card").count() or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        cards = ent.locator("#suggestions .card")
        assert cards.count() >= 1, ent.content()[:2000]
        top = cards.first
        institute = str(top.get_attribute("data-org"))
        assert top.locator(".evidence li").count() >= 1  # evidence shown
        _shot(ent, j, "07-suggestions")

    with clock("enterprise requests an introduction"):
        top.locator("details.ask summary").click()  # the request form opens without script
        top.locator("textarea").fill("希望与贵单位就该需求开展合作，可提供试验场地。")
        top.locator("button[type=submit]").click()
        assert "/portal/introductions" in ent.url and "已提交" in ent.content()
        _shot(ent, j, "08-my-introductions")
    with j.factory() as s:
        intro = s.scalar(select(Introduction).join(Need).where(Need.external_id == need_ext))
        assert intro is not None and intro.status == "submitted"
        assert intro.institute.external_id == institute
        intro_id = intro.id

    with clock("staff forwards it"):
        staff.goto(f"{j.base_url}/portal/staff/introductions")
        card = staff.locator(f"[data-intro='{intro_id}']")
        _shot(staff, j, "09-staff-intro-queue")
        card.locator("input[name=note]").fill("请于一周内答复")
        card.locator("button[value=forward]").click()
        assert "已更新对接申请" in staff.content()
    with j.factory() as s:
        intro = s.get(Introduction, intro_id)
        assert intro is not None and intro.status == "forwarded"

    inst_ctx, inst = context()
    with clock("institute accepts"):
        inst_user, inst_pw = j.make_institute_user(institute)
        _sign_in(inst, j, inst_user, inst_pw)
        assert "/portal/institute/introductions" in inst.url, inst.url
        card = inst.locator(f"[data-intro='{intro_id}']")
        assert j.need_title in card.inner_text() and "请于一周内答复" in card.inner_text()
        _shot(inst, j, "10-institute-introductions")
        card.locator("button[value=decline]").click()  # no reason: refused
        assert "请填写婉拒理由" in inst.locator(".field-error").inner_text()
        card = inst.locator(f"[data-intro='{intro_id}']")
        card.locator("textarea").fill("欢迎来访，可安排技术交流。")
        card.locator("button[value=accept]").click()
        assert "洽谈中" in inst.locator(f"[data-intro='{intro_id}']").inner_text()
    with j.factory() as s:
        intro = s.get(Introduction, intro_id)
        assert intro is not None and intro.status == "negotiating"

    with clock("enterprise records the outcome"):
        ent.goto(f"{j.base_url}/portal/introductions")
        card = ent.locator(f"[data-intro='{intro_id}']")
        assert "欢迎来访" in card.inner_text()
        card.locator("input[name=reason]").fill("签订技术开发合同")
        card.locator("button[value=signed]").click()
        assert "已签约" in ent.locator(f"[data-intro='{intro_id}']").inner_text()
        _shot(ent, j, "11-outcome-signed")
        ent.goto(f"{j.base_url}/portal/messages")
        assert ent.locator("#inbox li").count() >= 3
        _shot(ent, j, "12-inbox")
    with j.factory() as s:
        intro = s.get(Introduction, intro_id)
        assert intro is not None and intro.status == "signed"
        assert intro.outcome_reason == "签订技术开发合同"
        kinds = {str(k) for k in s.scalars(select(Message.kind))}
        assert {"need.approved", "intro.forwarded", "intro.accepted", "intro.signed"} <= kinds
    for ctx in (ent_ctx, staff_ctx, inst_ctx):
        ctx.close()
    return {"need": need_ext, "introduction": intro_id, "institute": institute}
