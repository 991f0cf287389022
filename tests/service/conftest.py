"""Shared service fixtures.

``store`` is a migrated SQLite database in ``tmp_path``. Migrating with Alembic takes about a
second, so the schema is migrated once per session into a template file that each test copies.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.db import make_engine, make_session_factory, migrate
from service.settings import Settings


@dataclass
class Store:
    """A migrated store: ``url`` for ``open_store``/settings, ``factory`` for sessions."""

    path: Path
    url: str
    engine: Engine
    factory: sessionmaker[Session]


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store-template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:  # fold the WAL into the main file before copying it
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def store(tmp_path: Path, _migrated_template: Path) -> Iterator[Store]:
    """A fresh, migrated SQLite store (file in ``tmp_path``) with foreign keys on."""
    path = tmp_path / "duijie.sqlite3"
    shutil.copyfile(_migrated_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    yield Store(path=path, url=url, engine=engine, factory=make_session_factory(engine))
    engine.dispose()


@pytest.fixture
def store_settings(store: Store, tmp_path: Path) -> Settings:
    """Settings pointing at ``store`` (data dir in ``tmp_path``), for code that takes Settings."""
    return Settings(database_url=store.url, data_dir=tmp_path / "var")
