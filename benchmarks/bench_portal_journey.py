"""The portal journey on the demo data, timed, in Debian Chromium (JavaScript off).

Prepares (or reuses) a data directory with the demo store and an index build, adds an
enterprise account with a staff-issued password for the first demo enterprise and a staff
account, serves the real app with uvicorn on 127.0.0.1, and runs the journey of
``tests/service/portal_journey.py`` (sign-in + forced password change → need form with errors,
then correct → staff vetting → suggestions with evidence → introduction request → staff
forward → the top institute accepts → outcome recorded), checking the database at each step.
The institute account is created for whichever institute ranks first. Prints one JSON line
with the time of each step; ``--shots DIR`` keeps 1366 px and 375 px screenshots.

    python benchmarks/bench_portal_journey.py [--data-dir D] [--shots DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load_suggestions import env_for, prepare  # noqa: E402

NEED_TITLE = "甘蔗渣制备可降解包装材料"
NEED_TEXT = (
    "我公司是制糖企业，每年产生大量甘蔗渣。希望利用甘蔗渣制备生物基可降解包装材料，"
    "替代部分塑料包装，降低废弃物处理成本，目标成本低于现有纸浆模塑产品。"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-portal")
    parser.add_argument("--shots", type=Path, default=None)
    parser.add_argument("--fresh", action="store_true", help="rebuild the demo store and index")
    args = parser.parse_args()
    t0 = time.perf_counter()
    prepare(args.data_dir, args.fresh)
    prepared = time.perf_counter() - t0
    os.environ.update(env_for(args.data_dir))

    import uvicorn
    from playwright.sync_api import sync_playwright
    from sqlalchemy import select

    from service import crud
    from service.db import open_store, session_scope
    from service.main import create_app
    from service.models import Need, Organisation, User
    from service.settings import get_settings
    from tests.service.browser_support import CHROMIUM, CHROMIUM_ARGS, free_port
    from tests.service.portal_journey import Journey, run_journey

    get_settings.cache_clear()
    settings = get_settings()
    _engine, factory = open_store(settings.resolved_database_url)
    stamp = str(int(time.time()))
    with session_scope(factory) as s:
        org = s.scalar(
            select(Organisation.external_id)
            .join(Need, Need.org_id == Organisation.id)
            .where(Organisation.kind == "enterprise")
            .order_by(Organisation.id)
            .limit(1)
        )
        assert org is not None, "no demo enterprise"
        crud.create_user(
            s,
            username=f"bench-ent-{stamp}",
            role="enterprise",
            org_external_id=org,
            password="chushi-mima-1",
            must_change_password=True,
            with_api_key=False,
        )
        crud.create_user(s, username=f"bench-staff-{stamp}", role="staff", password="staff-mima-1")

    def institute_user(org_ext: str) -> tuple[str, str]:
        name = f"bench-inst-{stamp}"
        with session_scope(factory) as s:
            if s.scalar(select(User.id).where(User.username == name)) is None:
                crud.create_user(
                    s,
                    username=name,
                    role="institute",
                    org_external_id=org_ext,
                    password="yuansuo-mima-1",
                    with_api_key=False,
                )
        return name, "yuansuo-mima-1"

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    journey = Journey(
        base_url=f"http://127.0.0.1:{port}",
        factory=factory,
        enterprise=(f"bench-ent-{stamp}", "chushi-mima-1", "xin-mima-2026"),
        staff=(f"bench-staff-{stamp}", "staff-mima-1"),
        make_institute_user=institute_user,
        need_title=NEED_TITLE,
        need_description=NEED_TEXT,
        need_keywords="甘蔗渣、可降解、包装材料",
        shots=args.shots,
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        # Warm-up: the first page load pays for the model and the recommender build.
        page = browser.new_page()
        page.goto(f"{journey.base_url}/portal/login")
        page.close()
        t1 = time.perf_counter()
        done = run_journey(browser, journey)
        total = time.perf_counter() - t1
        browser.close()
    server.should_exit = True
    thread.join(timeout=10)
    print(
        json.dumps(
            {
                "bench": "portal_journey",
                "prepare_s": round(prepared, 1),
                "journey_s": round(total, 2),
                "steps_s": {k: round(v, 2) for k, v in journey.timings.items()},
                "institute": done["institute"],
                "screenshots": len(journey.shot_files),
            },
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
