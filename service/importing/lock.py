"""The store-level import lock: one import writes at a time, across threads and processes.

SQLite: an exclusive ``flock`` on a file beside the database (``<db>.import-lock``), released
by the kernel if the process dies. PostgreSQL: a session-level advisory lock. Other stores
and in-memory SQLite: a process-local lock.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

#: Key of the PostgreSQL advisory lock (any constant shared by all importers).
ADVISORY_KEY: Final[int] = 0x64756A6965  # "dujie"
_LOCAL = threading.Lock()


class ImportLockTimeout(RuntimeError):
    """Another import held the lock for longer than the wait allowed."""


@contextmanager
def import_lock(engine: Engine, timeout: float | None = None) -> Iterator[None]:
    """Hold the import lock of the store behind ``engine`` while the block runs.

    Parameters
    ----------
    engine : Engine
        The store's engine.
    timeout : float or None
        Seconds to wait for another import to finish; None waits as long as it takes.

    Raises
    ------
    ImportLockTimeout
        When ``timeout`` passed before the lock was free.
    """
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        with _file_lock(Path(f"{url.database}.import-lock"), timeout):
            yield
    elif url.get_backend_name() == "postgresql":
        with _advisory_lock(engine, timeout):
            yield
    else:
        if not _LOCAL.acquire(timeout=-1 if timeout is None else timeout):
            raise ImportLockTimeout("另一个导入正在进行，等待超时")
        try:
            yield
        finally:
            _LOCAL.release()


def _wait(acquire: Callable[[], bool], timeout: float | None) -> None:
    """Poll ``acquire()`` (True when taken) until it succeeds or ``timeout`` passes."""
    start = time.monotonic()
    told = False
    while not acquire():
        if timeout is not None and time.monotonic() - start > timeout:
            raise ImportLockTimeout(f"另一个导入正在进行，等待 {timeout:.0f} 秒后超时")
        if not told:
            log.info("waiting for another import of this store to finish")
            told = True
        time.sleep(0.05)


@contextmanager
def _file_lock(path: Path, timeout: float | None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:

        def acquire() -> bool:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        _wait(acquire, timeout)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(engine: Engine, timeout: float | None) -> Iterator[None]:
    with engine.connect() as conn:

        def acquire() -> bool:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            conn.commit()
            return bool(got.scalar())

        _wait(acquire, timeout)
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            conn.commit()


__all__ = ["ImportLockTimeout", "import_lock"]
