# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""A busy store answers 503 + Retry-After (never a 500), and the same request succeeds once the
lock is released: another connection holds the SQLite write lock (as a long import would)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.db import open_store
from tests.service.api_support import (  # noqa: F401 (fixtures)
    PASSWORD,
    FakeHandle,
    FakeRecommender,
    World,
    bearer,
    world,
    world_template,
)

pytestmark = pytest.mark.sqlite_only  # the SQLite file's lock; PostgreSQL: test_store_postgres


@contextmanager
def write_lock(world: World) -> Iterator[None]:
    """Hold the database's write lock from a second connection until the block ends."""
    path = world.settings.resolved_database_url.split("///", 1)[1]
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE users SET active = active")
        yield
    finally:
        con.execute("ROLLBACK")
        con.close()


@pytest.fixture
def busy_client(world: World) -> Iterator[Any]:
    """An app whose store waits only 0.2 s for a lock (the default is 5 s)."""
    from service.main import create_app

    _engine, factory = open_store(
        world.settings.resolved_database_url, upgrade=False, lock_timeout_s=0.2
    )
    app = create_app(
        world.settings, session_factory=factory, recommender=FakeHandle(FakeRecommender())
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _decide(client: Any, world: World, version: int) -> Any:
    return client.post(
        f"/api/v1/shortlists/{world.ids['item_a']}/decision",
        json={"action": "approve", "version": version},
        headers=bearer(world.keys["staff"]),
    )


def test_decision_while_locked_is_503_then_applies(busy_client: Any, world: World) -> None:
    staff = bearer(world.keys["staff"])
    assert busy_client.get("/api/v1/auth/me", headers=staff).status_code == 200
    with write_lock(world):
        r = _decide(busy_client, world, 1)
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"].isdigit()
        assert r.json()["code"] == "store_busy"
        # Reads still work under WAL while the writer holds the lock.
        assert (
            busy_client.get(f"/api/v1/shortlists/{world.ids['item_a']}", headers=staff).json()[
                "status"
            ]
            == "pending"
        )
    r = _decide(busy_client, world, 1)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["version"] == 2


def test_login_while_locked_is_503_then_succeeds(busy_client: Any, world: World) -> None:
    body = {"username": "staff", "password": PASSWORD}
    with write_lock(world):
        r = busy_client.post("/api/v1/auth/login", json=body)
        assert r.status_code == 503, r.text
        assert "Retry-After" in r.headers
    assert busy_client.post("/api/v1/auth/login", json=body).status_code == 200


def test_staff_page_decision_while_locked_is_html_503(busy_client: Any, world: World) -> None:
    staff = bearer(world.keys["staff"])
    assert busy_client.get("/api/v1/auth/me", headers=staff).status_code == 200
    url = f"/staff/campaigns/{world.ids['campaign']}/items/{world.ids['item_a']}"
    with write_lock(world):
        r = busy_client.post(url, data={"action": "approve", "version": "1"}, headers=staff)
    assert r.status_code == 503, r.text[:300]
    assert "Retry-After" in r.headers and "系统繁忙" in r.text
