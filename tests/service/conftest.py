"""Shared service fixtures: a migrated store on SQLite and, where configured, on PostgreSQL.

``store`` is a migrated database. On SQLite it is a file in ``tmp_path``: Alembic runs once per
session into a template file that each test copies. On PostgreSQL (``DUIJIE_TEST_POSTGRES_URL``,
e.g. ``postgresql+psycopg://duijie:duijie@127.0.0.1:54329/duijie_test``; the role needs
CREATEDB) each test gets a fresh database cloned from a migrated template database.

Tests that use ``store`` or the API ``world`` in the store, import, campaign, export, auth and
API modules (:data:`BOTH_STORES`; not the ~300-request authorization matrix) run once per backend (test ids ``[sqlite]`` and
``[postgresql]``); ``@pytest.mark.sqlite_only`` keeps a test on SQLite (it inspects the SQLite
file itself). Without a PostgreSQL URL the ``[postgresql]`` runs are skipped, unless
``DUIJIE_REQUIRE_POSTGRES=1`` (CI), which makes them fail instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.db import make_engine, make_session_factory, migrate
from service.settings import Settings

POSTGRES_URL_ENV = "DUIJIE_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "DUIJIE_REQUIRE_POSTGRES"
#: Test modules (``name`` or ``name_*``) whose store-backed tests run on both backends.
BOTH_STORES = (
    "test_api",
    "test_auth",
    "test_campaign",
    "test_export",
    "test_import",
    "test_migrations",
    "test_request_limits",
    "test_store",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: a store test that only makes sense on SQLite (file-level)"
    )
    config.addinivalue_line("markers", "postgres_only: a store test of PostgreSQL behaviour")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    listed = any(module == m or module.startswith(m + "_") for m in BOTH_STORES)
    if metafunc.definition.get_closest_marker("postgres_only"):
        backends = ["postgresql"]
    elif listed and not metafunc.definition.get_closest_marker("sqlite_only"):
        backends = ["sqlite", "postgresql"]
    else:
        backends = ["sqlite"]
    metafunc.parametrize("db_backend", backends, indirect=True)


@dataclass
class PgServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    url: str

    def url_for(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def _admin(self, sql: str) -> None:
        import psycopg

        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(sql)  # type: ignore[arg-type]

    def create(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (optionally cloned from ``template``); returns its URL."""
        clause = f' TEMPLATE "{template}"' if template else ""
        self._admin(f'CREATE DATABASE "{name}"{clause}')
        return self.url_for(name)

    def drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def fresh_name(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def postgres_server() -> PgServer:
    """The configured PostgreSQL server; skip (or fail when required) without one."""
    url = os.environ.get(POSTGRES_URL_ENV)
    required = os.environ.get(REQUIRE_POSTGRES_ENV) == "1"
    problem = None if url else f"PostgreSQL not configured ({POSTGRES_URL_ENV} unset)"
    if url:
        try:
            PgServer(url)._admin("SELECT 1")
        except Exception as exc:  # the reason is reported, not swallowed
            problem = f"PostgreSQL at {POSTGRES_URL_ENV} unreachable: {exc}"
    if problem:
        if required:
            pytest.fail(f"{problem}, but {REQUIRE_POSTGRES_ENV}=1")
        pytest.skip(problem)
    assert url is not None
    return PgServer(url)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql`` (parametrised by :func:`pytest_generate_tests`)."""
    backend: str = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        request.getfixturevalue("postgres_server")
    return backend


@dataclass
class Store:
    """A migrated store: ``url`` for ``open_store``/settings, ``factory`` for sessions.

    ``path`` is the SQLite file (on PostgreSQL a path in ``tmp_path`` that does not exist).
    """

    path: Path
    url: str
    engine: Engine
    factory: sessionmaker[Session]
    backend: str = "sqlite"


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store-template") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:  # fold the WAL into the main file before copying it
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_store_template(postgres_server: PgServer) -> Iterator[str]:
    name = postgres_server.fresh_name("tpl_store")
    migrate(postgres_server.create(name))
    yield name
    postgres_server.drop(name)


@pytest.fixture(scope="session")
def pg_world_template(
    postgres_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """The API tests' world (tests.service.api_support.make_world) in a template database."""
    from tests.service.api_support import make_world

    name = postgres_server.fresh_name("tpl_world")
    world = make_world(tmp_path_factory.mktemp("pg-world"), postgres_server.create(name))
    world.factory.kw["bind"].dispose()  # a template database must have no open connections
    yield world
    postgres_server.drop(name)


@pytest.fixture
def pg_database(request: pytest.FixtureRequest, postgres_server: PgServer) -> Iterator[str]:
    """A fresh migrated PostgreSQL database for one test; returns its URL."""
    template = request.getfixturevalue("_pg_store_template")
    name = postgres_server.fresh_name("t")
    url = postgres_server.create(name, template=template)
    yield url
    postgres_server.drop(name)


@pytest.fixture
def store(
    request: pytest.FixtureRequest, tmp_path: Path, _migrated_template: Path, db_backend: str
) -> Iterator[Store]:
    """A fresh, migrated store (SQLite file in ``tmp_path``, or a PostgreSQL database)."""
    if db_backend == "postgresql":
        url = request.getfixturevalue("pg_database")
        engine = make_engine(url)
        yield Store(
            tmp_path / "postgresql", url, engine, make_session_factory(engine), "postgresql"
        )
        engine.dispose()
        return
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
