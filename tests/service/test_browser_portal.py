# ruff: noqa: F811  (the browser fixture is imported from tests.service.browser_support)
"""The portal journey (tests/service/portal_journey.py) in Debian Chromium against uvicorn, on
the small API world indexed with the real bundled model: enterprise creates a need → staff
vet it → suggestions → introduction → staff forward → the institute accepts → outcome.

Skipped without ``/usr/bin/chromium`` unless ``DUIJIE_REQUIRE_BROWSER=1`` (see
docs/browser_tests.md). Set ``DUIJIE_PORTAL_SHOTS=DIR`` to keep 1366 px and 375 px screenshots.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from matcher.encoding import need_key
from service import crud
from service.commands.match import staff_decisions
from service.db import session_scope
from tests.service.api_support import PASSWORD, World, make_world
from tests.service.browser_support import browser, serve  # noqa: F401 (fixture)
from tests.service.browser_support import free_port as _free_port
from tests.service.portal_journey import Journey, run_journey

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def indexed_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """The API test world with an enterprise whose password must be changed, indexed."""
    from service.jobs.reindex import run_reindex

    w = make_world(tmp_path_factory.mktemp("portal-browser"))
    with session_scope(w.factory) as s:
        crud.create_user(
            s,
            username="qiye",
            role="enterprise",
            org_external_id="ENT-A",
            password="chushi-mima-1",
            must_change_password=True,
        )
    run_reindex(w.settings)
    return w


@pytest.fixture(scope="module")
def base_url(indexed_world: World) -> Iterator[str]:
    import uvicorn

    from service.main import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(indexed_world.settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    with serve(config, start_timeout=60) as base:
        yield base


def test_portal_journey(browser: Any, base_url: str, indexed_world: World) -> None:
    w = indexed_world

    def institute_user(org: str) -> tuple[str, str]:
        return {"UNI-1": "inst_a", "INST-1": "inst_b"}[org], PASSWORD

    shots = os.environ.get("DUIJIE_PORTAL_SHOTS")
    journey = Journey(
        base_url=base_url,
        factory=w.factory,
        enterprise=("qiye", "chushi-mima-1", "xin-mima-2026"),
        staff=("staff", PASSWORD),
        make_institute_user=institute_user,
        need_title="铝合金轮毂轻量化成形",
        need_description="我们生产汽车铝合金轮毂，希望采用低压铸造工艺减轻轮毂重量，提高成品率。",
        need_keywords="铝合金、轻量化、低压铸造",
        shots=Path(shots) if shots else None,
    )
    done = run_journey(browser, journey)
    # The aluminium need is matched to the university with the aluminium casting capability,
    # and the signed introduction is a positive training label for the ranker.
    assert done["institute"] == "UNI-1"
    with session_scope(w.factory) as s:
        labels = {(d.query_id, d.org_id): d.approved for d in staff_decisions(s)}
    assert labels[(need_key(done["need"]), "UNI-1")] is True
