"""Engine, sessions and schema migrations.

SQLite (WAL mode, foreign keys on) is the embedded default; PostgreSQL
(``postgresql+psycopg://user@host/duijie``, psycopg 3) is the deployment store and runs the
same test suite. The schema is owned by Alembic migrations in ``service/migrations``;
:func:`migrate` brings any database to the latest revision.

Waiting for the store is bounded everywhere: a SQLite writer waits ``busy_timeout`` for the
write lock, a PostgreSQL statement ``lock_timeout`` for a row or table lock, and a request
``pool_timeout`` for a connection. After that the driver raises, and the API answers 503 with
``Retry-After`` (:mod:`service.errors`) instead of hanging or failing with a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


#: Default bound on waiting for a lock held by another writer (seconds).
DEFAULT_LOCK_TIMEOUT_S = 5.0


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cur = dbapi_connection.cursor()
        # WAL lets the API read while the nightly job or an import writes.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    return _on_connect


def make_engine(url: str, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Engine:
    """Create an engine whose waits for locks and connections are bounded.

    Parameters
    ----------
    url : SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg://...``).
    lock_timeout_s : how long a statement waits for a lock held by another transaction
        (SQLite ``busy_timeout``, PostgreSQL ``lock_timeout``); also the pool's wait for a
        free connection (at least 5 s).
    """
    kwargs: dict[str, Any] = {}
    timeout_ms = max(1, int(lock_timeout_s * 1000))
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # ``timeout`` is the driver's own busy wait; the pragma below sets the same bound.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": lock_timeout_s}
    elif url.startswith("postgresql"):
        kwargs["connect_args"] = {"options": f"-c lock_timeout={timeout_ms}"}
        kwargs["pool_pre_ping"] = True
    if url != "sqlite://" and ":memory:" not in url:  # in-memory SQLite has no queue pool
        kwargs["pool_timeout"] = max(5.0, lock_timeout_s)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas(timeout_ms))
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str) -> Any:
    """An Alembic config pointing at our migrations and the given database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def open_store(
    url: str, *, upgrade: bool = True, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
) -> tuple[Engine, sessionmaker[Session]]:
    """Engine + session factory for ``url``, migrating the schema first by default."""
    if upgrade:
        migrate(url)
    engine = make_engine(url, lock_timeout_s=lock_timeout_s)
    return engine, make_session_factory(engine)
