# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""PostgreSQL specifics: migrations down and up again, and a row lock held by another
transaction answered with 503 + Retry-After (``lock_timeout``), then applied once released."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from service.db import alembic_config, make_engine, migrate, open_store
from service.models import Base
from tests.service.api_support import (  # noqa: F401 (fixtures)
    FakeHandle,
    FakeRecommender,
    World,
    bearer,
    world,
    world_template,
)
from tests.service.conftest import PgServer


def test_migrations_down_and_up_on_postgresql(postgres_server: PgServer) -> None:
    name = postgres_server.fresh_name("mig")
    url = postgres_server.create(name)
    try:
        migrate(url)
        cfg = alembic_config(url)
        command.downgrade(cfg, "base")
        command.upgrade(cfg, "head")
        engine = make_engine(url)
        try:
            tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        finally:
            engine.dispose()
        assert tables == {t.name for t in Base.metadata.sorted_tables}
    finally:
        postgres_server.drop(name)


@pytest.fixture
def pg_client(world: World) -> Iterator[Any]:
    _engine, factory = open_store(
        world.settings.resolved_database_url, upgrade=False, lock_timeout_s=0.3
    )
    app = create_app_for(world, factory)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    _engine.dispose()


def create_app_for(world: World, factory: Any) -> Any:
    from service.main import create_app

    return create_app(
        world.settings, session_factory=factory, recommender=FakeHandle(FakeRecommender())
    )


@pytest.mark.postgres_only  # SQLite: test_store_busy
def test_row_lock_is_503_then_applies(pg_client: Any, world: World) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    staff = bearer(world.keys["staff"])
    item = world.ids["item_a"]
    assert pg_client.get("/api/v1/auth/me", headers=staff).status_code == 200
    dsn = make_url(world.settings.resolved_database_url).set(drivername="postgresql")
    with psycopg.connect(dsn.render_as_string(hide_password=False)) as other:
        other.execute("SELECT id FROM shortlist_items WHERE id = %s FOR UPDATE", (item,))
        r = pg_client.post(
            f"/api/v1/shortlists/{item}/decision",
            json={"action": "approve", "version": 1},
            headers=staff,
        )
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"].isdigit() and r.json()["code"] == "store_busy"
        other.rollback()
    r = pg_client.post(
        f"/api/v1/shortlists/{item}/decision",
        json={"action": "approve", "version": 1},
        headers=staff,
    )
    assert r.status_code == 200 and r.json()["status"] == "approved"
