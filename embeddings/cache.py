"""Persistent embedding cache: (model_id, sha256 of the text) → float32 vector, in SQLite.

Unchanged texts are never re-encoded, across runs and across builds. Vectors are stored as
little-endian float32 blobs (no pickle). The same file also caches tokenizations for the
lexical index, keyed by (tokenizer version, sha256 of the text). Query vectors
(``embeddings.serving.CachedQueryEncoder``) are kept under their own model id
(``model_id#query``): e5 encodes queries and passages differently.

Each thread gets its own SQLite connection, so the service's request threads can share one
cache object.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

CACHE_FILE = "embedding_cache.sqlite3"
_BATCH = 500  # SQLite host-parameter limit friendly


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the C type cannot)."""


def text_key(text: str) -> str:
    """sha256 hex digest of the UTF-8 text (the cache key)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """SQLite-backed cache of document vectors and token lists.

    Parameters
    ----------
    path : path-like
        The SQLite file (created on first use).
    timeout : float
        Seconds a write waits for another writer (a build in another process) before
        ``sqlite3.OperationalError``.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        # weak: a finished thread's connection goes (and closes) with its thread-local slot
        self._conns: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._conns_lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # this thread's own connection; closable from any thread by close()
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, check_same_thread=False, factory=_Connection
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model_id TEXT NOT NULL, sha TEXT NOT NULL,"
                " dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model_id, sha))"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS tokens (tokenizer TEXT NOT NULL, sha TEXT NOT NULL,"
                " tokens TEXT NOT NULL, PRIMARY KEY (tokenizer, sha))"
            )
            conn.commit()
            self._local.conn = conn
            with self._conns_lock:
                self._conns.add(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection (each is reopened on its thread's next use)."""
        with self._conns_lock:
            conns, self._conns = list(self._conns), weakref.WeakSet()
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ vectors
    def get_vectors(
        self, model_id: str, keys: Sequence[str], dim: int
    ) -> dict[str, NDArray[np.float32]]:
        """Cached vectors for the keys that are present (float32 (dim,) each)."""
        db = self._db()
        found: dict[str, NDArray[np.float32]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            part = unique[start : start + _BATCH]
            marks = ",".join("?" * len(part))
            rows = db.execute(
                f"SELECT sha, dim, vec FROM vectors WHERE model_id = ? AND sha IN ({marks})",
                [model_id, *part],
            )
            for sha, d, blob in rows:
                if d == dim and len(blob) == 4 * dim:
                    found[sha] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        return found

    def put_vectors(self, model_id: str, keys: Sequence[str], vectors: NDArray[np.float32]) -> None:
        """Store float32 (n, dim) ``vectors`` under ``keys`` (length n); idempotent."""
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for {len(vectors)} vectors")
        if len(keys) == 0:
            return
        dim = int(vectors.shape[1])
        data = np.ascontiguousarray(vectors, dtype="<f4")
        db = self._db()
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors (model_id, sha, dim, vec) VALUES (?, ?, ?, ?)",
                ((model_id, k, dim, data[i].tobytes()) for i, k in enumerate(keys)),
            )

    def count_vectors(self, model_id: str | None = None) -> int:
        """Number of cached vectors (of one model, or all)."""
        db = self._db()
        if model_id is None:
            return int(db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        return int(
            db.execute("SELECT COUNT(*) FROM vectors WHERE model_id = ?", (model_id,)).fetchone()[0]
        )

    # ------------------------------------------------------------------ tokens
    def get_tokens(self, tokenizer: str, keys: Sequence[str]) -> dict[str, list[str]]:
        """Cached token lists for the keys that are present."""
        db = self._db()
        found: dict[str, list[str]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _BATCH):
            part = unique[start : start + _BATCH]
            marks = ",".join("?" * len(part))
            rows = db.execute(
                f"SELECT sha, tokens FROM tokens WHERE tokenizer = ? AND sha IN ({marks})",
                [tokenizer, *part],
            )
            for sha, tokens in rows:
                found[sha] = json.loads(tokens)
        return found

    def put_tokens(self, tokenizer: str, items: Iterable[tuple[str, list[str]]]) -> None:
        """Store (key, tokens) pairs; idempotent."""
        db = self._db()
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO tokens (tokenizer, sha, tokens) VALUES (?, ?, ?)",
                ((tokenizer, k, json.dumps(t, ensure_ascii=False)) for k, t in items),
            )
