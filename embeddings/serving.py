"""Serving helpers over a loaded build: cached query encoding and per-document vectors.

The service (``service.recommender``) and ``duijie eval retrieval`` use the same two helpers,
so evaluation measures exactly what production serves.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from embeddings.cache import EmbeddingCache, text_key
from embeddings.encoder import Encoder
from embeddings.store import Collection

logger = logging.getLogger(__name__)

QUERY_SUFFIX = "#query"
"""Query vectors are cached under ``model_id + QUERY_SUFFIX`` (e5 encodes queries and
passages differently, so the two never share a key)."""


class _QueryEncoderWrapper(Encoder):
    """Delegates everything but ``encode_queries`` to the wrapped encoder."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    @property
    def model_id(self) -> str:
        return str(self.encoder.model_id)

    def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return np.asarray(self.encoder.encode_documents(list(texts)), dtype=np.float32)


class CachedQueryEncoder(_QueryEncoderWrapper):
    """An encoder whose query vectors are cached in the embeddings SQLite cache.

    Parameters
    ----------
    encoder : Encoder
        The production encoder.
    cache : embeddings.cache.EmbeddingCache or None
        Where query vectors are kept (model id + ``#query``); None disables caching.

    A write the cache refuses (another process holds the file's write lock past the cache's
    timeout) is skipped with a warning: the vectors are still returned.
    """

    def __init__(self, encoder: Encoder, cache: EmbeddingCache | None) -> None:
        super().__init__(encoder)
        self.cache = cache
        self._warned = False

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        texts = list(texts)
        if self.cache is None:
            return np.asarray(self.encoder.encode_queries(texts), dtype=np.float32)
        mid = self.model_id + QUERY_SUFFIX
        keys = [text_key(t) for t in texts]
        found = self.cache.get_vectors(mid, keys, self.dim)
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        if todo:
            by_key = dict(zip(keys, texts, strict=True))
            vecs = np.asarray(
                self.encoder.encode_queries([by_key[k] for k in todo]), dtype=np.float32
            )
            try:
                self.cache.put_vectors(mid, todo, vecs)
            except sqlite3.OperationalError as exc:  # locked by a build: the next call retries
                if not self._warned:
                    logger.warning("query vectors not cached (%s): %s", self.cache.path, exc)
                    self._warned = True
            found.update(zip(todo, vecs, strict=True))
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def document_vectors(collection: Collection) -> tuple[list[str], NDArray[np.float32]]:
    """One vector per document of a loaded collection: normalised mean of its chunk vectors.

    Returns
    -------
    doc_ids : list of str, length n
    vectors : ndarray of float32, shape (n, dim)
    """
    ids = list(collection.doc_ids)
    dim = int(collection.vectors.dim)
    out = np.zeros((len(ids), dim), dtype=np.float32)
    for i, d in enumerate(ids):
        v = collection.doc_vectors(d).mean(axis=0)
        out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
    return ids, out


class MemoQueryEncoder(_QueryEncoderWrapper):
    """A thread-safe in-memory LRU of query vectors in front of an encoder.

    The service asks for the same needs again and again (staff reviewing, enterprises
    reloading); a query costs ~40–500 ms of model time on 2 cores, a hit costs nothing.

    Entries are keyed by the text's sha256 (:func:`~embeddings.cache.text_key`) and hold a
    copy of their vector, so one entry takes the same memory whatever the text's length:
    ``4 * dim`` bytes of vector plus ~320 bytes of key, array header and LRU bookkeeping
    (1,856 bytes at dim 384: 30 MB for 16,384 queries; see ``ENTRY_OVERHEAD_BYTES``).

    Parameters
    ----------
    encoder : Encoder
    maxsize : int
        Query texts kept (least recently used first out).
    """

    #: Query vectors asked for once are kept: a caller may encode a batch ahead of the
    #: single-query calls that follow (``matcher.matrices`` does for campaign rows).
    memoises_queries = True

    #: Bytes one entry takes beyond its ``4 * dim`` bytes of vector: 291 measured with
    #: tracemalloc over 20,000 entries (64-character key, ndarray header, OrderedDict slot
    #: and link), rounded up for the table's growth steps.
    ENTRY_OVERHEAD_BYTES = 320

    def __init__(self, encoder: Encoder, maxsize: int = 4096) -> None:
        super().__init__(encoder)
        self.maxsize = maxsize
        self._memo: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def entry_bytes(self) -> int:
        """Memory one cached query takes (vector + overhead), in bytes."""
        return 4 * self.dim + self.ENTRY_OVERHEAD_BYTES

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        texts = list(texts)
        keys = [text_key(t) for t in texts]
        with self._lock:
            found = {k: self._memo[k] for k in keys if k in self._memo}
            for k in found:
                self._memo.move_to_end(k)
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        if todo:
            by_key = dict(zip(keys, texts, strict=True))
            vecs = np.asarray(
                self.encoder.encode_queries([by_key[k] for k in todo]), dtype=np.float32
            )
            with self._lock:
                for k, v in zip(todo, vecs, strict=True):
                    found[k] = v
                    if self.maxsize > 0:
                        self._memo[k] = v.copy()  # a row of its own, not a view of the batch
                while len(self._memo) > self.maxsize:
                    self._memo.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def approximate_neighbours(
    vectors: NDArray[np.float32],
    k: int,
    *,
    hnsw_m: int = 16,
    ef_construction: int = 64,
    ef_search: int = 64,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Approximate k nearest other rows of every row by inner product (FAISS HNSW).

    For the document neighbour graph of large collections (``matcher.neighbours``); its
    agreement with the exact graph is measured by ``benchmarks/bench_graph.py``. Uses every
    core (batch work).

    Parameters
    ----------
    vectors : ndarray of float32, shape (n, d), L2-normalised
    k : int, >= 1
    hnsw_m, ef_construction, ef_search : int
        HNSW degree and build/search breadth.

    Returns
    -------
    indices : ndarray of int64, shape (n, k)
        Best first, self excluded, -1 for padding.
    sims : ndarray of float32, shape (n, k)
    """
    import faiss

    from embeddings.runtime import faiss_threads

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = x.shape[0]
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    index = faiss.IndexHNSWFlat(x.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    index.hnsw.efSearch = max(ef_search, k + 1)
    with faiss_threads():
        index.add(x)
        sims, idx = index.search(x, k + 1)
    # drop each row's own entry (normally first); rows that did not find themselves lose
    # their last result instead
    own = idx == np.arange(n)[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    keep = np.ones_like(own)
    keep[np.arange(n), drop] = False
    out_i = idx[keep].reshape(n, k).astype(np.int64)
    out_s = sims[keep].reshape(n, k).astype(np.float32)
    return out_i, out_s
