"""Alembic migrations: upgrade an empty database, downgrade to base, upgrade again."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from service.db import alembic_config, make_engine, migrate, open_store
from service.models import Base

EXPECTED_TABLES = {t.name for t in Base.metadata.sorted_tables}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    migrate(url)
    assert _tables(url) == EXPECTED_TABLES
    migrate(url)  # idempotent
    cfg = alembic_config(url)
    command.downgrade(cfg, "base")
    assert _tables(url) == set()
    command.upgrade(cfg, "head")
    assert _tables(url) == EXPECTED_TABLES


def test_single_head_and_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].down_revision is None
    assert all(isinstance(r.down_revision, str | None) for r in revisions)


def test_schema_matches_models(tmp_path: Path) -> None:
    """Every model column exists in the migrated database (no missing migration)."""
    url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    engine, _factory = open_store(url)
    try:
        insp = inspect(engine)
        for table in Base.metadata.sorted_tables:
            columns = {c["name"] for c in insp.get_columns(table.name)}
            assert {c.name for c in table.columns} <= columns, table.name
    finally:
        engine.dispose()


def test_store_fixture_is_migrated_and_isolated(store_settings: object, store: object) -> None:
    from sqlalchemy import text

    from service.settings import Settings
    from tests.service.conftest import Store

    assert isinstance(store, Store) and isinstance(store_settings, Settings)
    assert store_settings.resolved_database_url == store.url
    with store.factory() as s:
        assert s.execute(text("SELECT version_num FROM alembic_version")).scalar() is not None
        assert s.execute(text("SELECT count(*) FROM organisations")).scalar() == 0


def test_upgrade_keeps_rows_of_an_older_store(tmp_path: Path) -> None:
    """A store created at the first revision and holding linked rows upgrades to head.

    SQLite's batch mode rebuilds a table by DROP + CREATE; with foreign keys on, dropping a
    table that other rows point at fails, so an existing deployment could not upgrade.
    """
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0001")
    engine = make_engine(url)
    now = "2026-01-01 00:00:00"
    stamps = {"c": now, "u": now, "h": ""}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organisations (id, external_id, name, kind, in_region, fields, status,"
                " created_at, updated_at, content_hash)"
                " VALUES (1, 'ORG-1', '甲公司', 'enterprise', 1, '[]', 'active', :c, :u, :h),"
                " (2, 'ORG-2', '乙大学', 'university', 1, '[]', 'active', :c, :u, :h)"
            ),
            stamps,
        )
        conn.execute(
            text(
                "INSERT INTO needs (id, external_id, org_id, title, description, keywords,"
                " confidential, status, created_at, updated_at, content_hash)"
                " VALUES (1, 'NEED-1', 1, '焊接变形', '', '[]', 0, 'open', :c, :u, :h)"
            ),
            stamps,
        )
        conn.execute(
            text(
                "INSERT INTO bounties (id, external_id, kind, poster_org_id, need_id, title,"
                " description, status, created_at, updated_at, content_hash)"
                " VALUES (1, 'BTY-1', 'tackle', 1, 1, '焊接变形攻关', '', 'open', :c, :u, :h)"
            ),
            stamps,
        )
        conn.execute(
            text(
                "INSERT INTO bids (id, external_id, bounty_id, respondent_org_id, members, price,"
                " proposal, submitted_at, created_at, updated_at, content_hash)"
                " VALUES (1, 'BID-1', 1, 2, '[]', 50.0, '方案', :c, :c, :u, :h)"
            ),
            stamps,
        )
    engine.dispose()

    migrate(url)

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM bids")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM bounties")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM needs")).scalar() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    finally:
        engine.dispose()
