"""``VectorIndex``: a FAISS ``IndexIDMap2`` together with its external-id map.

Vectors are searched by inner product (cosine for the L2-normalised vectors our encoders
produce). Up to ``exact_max`` vectors the index is exact (``IndexFlatIP``); above it, HNSW
(``IndexHNSWFlat`` with inner product). FAISS ids are explicit int64 assigned here and mapped
to external string ids; the map is saved next to the FAISS file (``ids.json``), never apart.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from numpy.typing import NDArray

from embeddings.errors import IndexCorrupted
from embeddings.runtime import faiss_threads

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw"]

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
_FORMAT = 1


def check_matrix(x: Any, dim: int, what: str) -> NDArray[np.float32]:
    """Validate a float32 (n, dim) matrix and return it C-contiguous.

    Raises
    ------
    ValueError
        Wrong type, dtype, rank or width, naming ``what`` and the expected shape.
    """
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{what} must be a numpy array of float32, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise ValueError(f"{what} must have dtype float32, got {x.dtype}")
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what} must have shape (n, {dim}), got {x.shape}")
    return np.ascontiguousarray(x)


def _recall_at_10(got: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    """Mean share of the exact 10 nearest other vectors found (each query's own id, the
    query being a stored vector, is left out of both lists)."""
    hits = 0
    for g, t in zip(got, truth, strict=True):
        own = t[0]
        hits += len(set(g[g != own].tolist()[:10]) & set(t[t != own].tolist()[:10]))
    return hits / (10 * max(len(truth), 1))


def calibration_sample(
    vectors: NDArray[np.float32], n: int, random_state: int
) -> NDArray[np.float32]:
    """The stored vectors HNSW is calibrated on: ``n`` rows drawn without replacement."""
    rng = np.random.default_rng(random_state)
    return np.ascontiguousarray(
        vectors[rng.choice(len(vectors), min(n, len(vectors)), replace=False)]
    )


def calibrate_ef_search(
    hnsw: Any,
    exact: Any,
    sample: NDArray[np.float32],
    *,
    target: float,
    ef_start: int,
    ef_max: int,
) -> tuple[int, float]:
    """The smallest HNSW ``efSearch`` whose recall@10 against exact search reaches ``target``.

    ``efSearch`` doubles from ``ef_start`` up to ``ef_max``; the search breadth is left at
    the last one tried.

    Parameters
    ----------
    hnsw : faiss.IndexIDMap2 over an ``IndexHNSW``
    exact : faiss index over the same vectors and ids (exact search)
    sample : ndarray of float32, shape (q, d)
        Stored vectors used as queries (their own entry is left out of both lists).
    target : float
    ef_start, ef_max : int

    Returns
    -------
    ef_search : int
        The first breadth reaching ``target``, else ``ef_max``.
    recall : float
        Recall@10 at that breadth.
    """
    _, truth = exact.search(sample, 11)
    base: Any = faiss.downcast_index(hnsw.index)
    ef = ef_start
    while True:
        base.hnsw.efSearch = ef
        _, got = hnsw.search(sample, 11)
        recall = _recall_at_10(got, truth)
        if recall >= target or ef >= ef_max:
            return ef, recall
        ef = min(ef * 2, ef_max)


class VectorIndex:
    """Inner-product index over external string ids.

    Parameters
    ----------
    dim : int
        Vector dimension d.
    exact_max : int
        Largest size kept exact (``IndexFlatIP``); larger indexes use HNSW.
    hnsw_m : int
        HNSW graph degree.
    ef_construction, ef_search : int
        HNSW build/search breadth (recall vs speed); ``ef_search`` is the first breadth tried
        by the calibration.
    target_recall : float
        HNSW replaces exact search only if, on ``calibration_queries`` stored vectors used
        as queries (their own entry left out), its recall@10 against exact search reaches
        this at some ``efSearch`` up to ``ef_max`` (the smallest such breadth is kept);
        otherwise the index stays exact.
    calibration_queries, ef_max : int
    random_state : int
        Seed of the calibration sample.

    Attributes
    ----------
    calibration_ : dict or None
        The last calibration: ``ef_search``, ``recall`` and whether HNSW was taken.
    """

    def __init__(
        self,
        dim: int,
        *,
        exact_max: int = 200_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 128,
        target_recall: float = 0.95,
        calibration_queries: int = 200,
        ef_max: int = 1024,
        random_state: int = 0,
    ) -> None:
        self.dim = dim
        self.exact_max = exact_max
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.target_recall = target_recall
        self.calibration_queries = calibration_queries
        self.ef_max = ef_max
        self.random_state = random_state
        self.calibration_: dict[str, Any] | None = None
        self.index_: Any = None
        self.ext_by_int_: dict[int, str] = {}
        self.int_by_ext_: dict[str, int] = {}
        self.next_id_ = 0
        self.version_ = 0  # bumped by every change of the stored vectors

    # ------------------------------------------------------------------ construction
    def _new_faiss(self, kind: IndexKind) -> Any:
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {self.dim}")
        base: Any
        if kind == "flat":
            base = faiss.IndexFlatIP(self.dim)
        else:
            base = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = self.ef_construction
            base.hnsw.efSearch = int((self.calibration_ or {}).get("ef_search") or self.ef_search)
        return faiss.IndexIDMap2(base)

    def _ensure(self) -> Any:
        if self.index_ is None:
            self.index_ = self._new_faiss("flat")
        return self.index_

    @property
    def kind(self) -> IndexKind:
        """``"flat"`` (exact) or ``"hnsw"`` (approximate)."""
        if self.index_ is None:
            return "flat"
        base = faiss.downcast_index(self.index_.index)
        return "hnsw" if isinstance(base, faiss.IndexHNSW) else "flat"

    def __len__(self) -> int:
        return 0 if self.index_ is None else int(self.index_.ntotal)

    def __contains__(self, ext_id: object) -> bool:
        return ext_id in self.int_by_ext_

    @property
    def ids(self) -> list[str]:
        """External ids in insertion order."""
        return [self.ext_by_int_[i] for i in sorted(self.ext_by_int_)]

    def _all_vectors(self) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """All (int ids, vectors) in storage order, read in one pass from the base index."""
        if self.index_ is None or self.index_.ntotal == 0:
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32)
        ints = faiss.vector_to_array(self.index_.id_map).astype(np.int64)
        vecs = self.index_.index.reconstruct_n(0, self.index_.ntotal)
        return ints, np.ascontiguousarray(vecs, dtype=np.float32)

    def _rebuild(self, kind: IndexKind) -> None:
        ints, vecs = self._all_vectors()
        new = self._new_faiss(kind)
        if len(ints):
            new.add_with_ids(vecs, ints)
        self.index_ = new

    def add(self, vectors: NDArray[np.float32], ids: Sequence[str]) -> VectorIndex:
        """Add vectors under new external ids.

        Parameters
        ----------
        vectors : ndarray of float32, shape (n, dim)
        ids : sequence of str, length n, not yet in the index and unique.

        Returns
        -------
        self
        """
        vectors = check_matrix(vectors, self.dim, "vectors")
        ids = list(ids)
        if len(ids) != vectors.shape[0]:
            raise ValueError(f"got {vectors.shape[0]} vectors but {len(ids)} ids")
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique")
        dup = [i for i in ids if i in self.int_by_ext_]
        if dup:
            raise ValueError(f"ids already in the index: {dup[:5]}")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinity")
        index = self._ensure()
        crossing = self.kind == "flat" and len(self) + len(ids) > self.exact_max
        if crossing and self.calibration_ and not self.calibration_.get("hnsw"):
            # HNSW was refused at this size: try again only once the index has doubled
            crossing = len(self) + len(ids) >= 2 * int(self.calibration_.get("n", 0))
        ints = np.arange(self.next_id_, self.next_id_ + len(ids), dtype=np.int64)
        self.version_ += 1
        with faiss_threads():
            index.add_with_ids(vectors, ints)
        for i, e in zip(ints.tolist(), ids, strict=True):
            self.ext_by_int_[i] = e
            self.int_by_ext_[e] = i
        self.next_id_ += len(ids)
        if crossing:
            self._try_hnsw()
        return self

    def _try_hnsw(self) -> None:
        """Build HNSW over the stored vectors and keep it if it reaches ``target_recall``."""
        flat = self.index_
        ints, vecs = self._all_vectors()
        hnsw = self._new_faiss("hnsw")
        t0 = time.perf_counter()
        with faiss_threads():
            hnsw.add_with_ids(vecs, ints)
        build_s = time.perf_counter() - t0
        sample = calibration_sample(vecs, self.calibration_queries, self.random_state)
        ef, recall = calibrate_ef_search(
            hnsw,
            flat,
            sample,
            target=self.target_recall,
            ef_start=self.ef_search,
            ef_max=self.ef_max,
        )
        taken = recall >= self.target_recall
        self.calibration_ = {
            "ef_search": ef,
            "recall": round(recall, 4),
            "hnsw": taken,
            "n": len(ints),
        }
        logger.info(
            "%d vectors (> exact_max=%d): HNSW M=%d built in %.1fs, recall@10 %.3f at "
            "efSearch=%d: %s",
            len(ints),
            self.exact_max,
            self.hnsw_m,
            build_s,
            recall,
            ef,
            "HNSW taken" if taken else f"below {self.target_recall}, staying exact",
        )
        if taken:
            self.version_ += 1
            self.index_ = hnsw

    def remove(self, ids: Sequence[str]) -> int:
        """Remove external ids (unknown ones are ignored); returns how many were removed.

        HNSW graphs cannot delete in place, so an HNSW index is rebuilt from its stored
        vectors (O(n); removals happen in re-index runs, not per request).
        """
        ints = [self.int_by_ext_[e] for e in ids if e in self.int_by_ext_]
        if not ints:
            return 0
        self.version_ += 1
        for i in ints:
            del self.int_by_ext_[self.ext_by_int_.pop(i)]
        if self.kind == "flat":
            self.index_.remove_ids(np.array(ints, dtype=np.int64))
        else:
            all_ints, vecs = self._all_vectors()
            mask = ~np.isin(all_ints, np.array(ints, dtype=np.int64))
            kind: IndexKind = "hnsw" if int(mask.sum()) > self.exact_max else "flat"
            self.index_ = self._new_faiss(kind)
            if mask.any():
                self.index_.add_with_ids(np.ascontiguousarray(vecs[mask]), all_ints[mask])
        return len(ints)

    def reconstruct(self, ids: Sequence[str]) -> NDArray[np.float32]:
        """Stored vectors of ``ids``: float32 (len(ids), dim). Raises KeyError on unknown ids."""
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for row, e in enumerate(ids):
            out[row] = self.index_.reconstruct(self.int_by_ext_[e])
        return out

    def reconstruct_ints(self, ints: NDArray[np.int64]) -> NDArray[np.float32]:
        """Stored vectors of FAISS int ids (as returned by :meth:`search_ints`): float32
        (len(ints), dim)."""
        if len(ints) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        out = self.index_.reconstruct_batch(np.ascontiguousarray(ints, dtype=np.int64))
        return np.asarray(out, dtype=np.float32).reshape(len(ints), self.dim)

    def inner_products(
        self, query: NDArray[np.float32], ints: NDArray[np.int64]
    ) -> NDArray[np.float32]:
        """Inner products of one query with the stored vectors of FAISS int ids, read in
        place (no copy of the vectors): float32 (len(ints),).

        Parameters
        ----------
        query : ndarray of float32, shape (dim,)
        ints : ndarray of int64, ids as returned by :meth:`search_ints`
        """
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"query must have shape ({self.dim},), got {np.shape(query)}")
        out = np.empty(len(ints), dtype=np.float32)
        if len(ints) == 0:
            return out
        storage, pos_of_int = self._storage()
        pos = np.ascontiguousarray(pos_of_int[ints], dtype=np.int64)
        faiss.fvec_inner_products_by_idx(  # type: ignore[attr-defined]
            faiss.swig_ptr(out),
            faiss.swig_ptr(q),
            storage.get_xb(),
            faiss.swig_ptr(pos),
            self.dim,
            1,
            len(pos),
        )
        return out

    def _storage(self) -> tuple[Any, NDArray[np.int64]]:
        """The flat storage of the FAISS index and the storage position of each int id,
        recomputed after every change (``version_``)."""
        cached = getattr(self, "storage_", None)
        if cached is None or cached[0] != self.version_ or cached[1] is not self.index_:
            index = self._ensure()
            base: Any = faiss.downcast_index(index.index)
            storage = (
                base if isinstance(base, faiss.IndexFlat) else faiss.downcast_index(base.storage)
            )
            ids = faiss.vector_to_array(index.id_map).astype(np.int64)
            pos_of_int = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
            pos_of_int[ids] = np.arange(len(ids), dtype=np.int64)
            cached = (self.version_, self.index_, storage, pos_of_int)
            self.storage_ = cached
        return cached[2], cached[3]

    # ------------------------------------------------------------------ search
    def search_ints(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Raw k-NN: FAISS scores and int ids (``ext_by_int_`` maps them; -1 = missing).

        Parameters
        ----------
        queries : ndarray of float32, shape (n, dim)
        k : int, >= 1

        Returns
        -------
        scores : ndarray of float32, shape (n, min(k, len(self)))
        ints : ndarray of int64, same shape
        """
        queries = check_matrix(queries, self.dim, "queries")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        kk = min(k, len(self))
        n = queries.shape[0]
        if kk == 0 or n == 0:
            return np.empty((n, 0), dtype=np.float32), np.empty((n, 0), dtype=np.int64)
        scores, ints = self.index_.search(queries, kk)
        return scores, ints

    def search(
        self, queries: NDArray[np.float32], k: int
    ) -> tuple[NDArray[np.float32], list[list[str]]]:
        """k nearest vectors by inner product.

        Parameters
        ----------
        queries : ndarray of float32, shape (n, dim)
        k : int, >= 1

        Returns
        -------
        scores : ndarray of float32, shape (n, min(k, len(self)))
            Best first; rows with fewer than k results are padded with -inf.
        ids : list of n lists of str
            External ids, best first; missing (-1) results are dropped.
        """
        scores, ints = self.search_ints(queries, k)
        scores = np.where(ints >= 0, scores, -np.inf).astype(np.float32)
        ext = self.ext_by_int_
        out_ids = [[ext[int(i)] for i in row if i >= 0] for row in ints]
        return scores, out_ids

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write ``index.faiss`` and ``ids.json`` into ``directory``; returns both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        index_path = directory / INDEX_FILE
        ids_path = directory / IDS_FILE
        faiss.write_index(self._ensure(), str(index_path))
        ints = sorted(self.ext_by_int_)
        meta = {
            "format": _FORMAT,
            "dim": self.dim,
            "kind": self.kind,
            "metric": "inner_product",
            "exact_max": self.exact_max,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "target_recall": self.target_recall,
            "calibration": self.calibration_,
            "next_id": self.next_id_,
            "int_ids": ints,
            "ext_ids": [self.ext_by_int_[i] for i in ints],
        }
        ids_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return [index_path, ids_path]

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> VectorIndex:
        """Read an index written by :meth:`save`.

        Raises
        ------
        IndexCorrupted
            A file is missing, unreadable, or the two files disagree (naming the file).
        """
        directory = Path(directory)
        index_path = directory / INDEX_FILE
        ids_path = directory / IDS_FILE
        try:
            meta = json.loads(ids_path.read_text(encoding="utf-8"))
            int_ids = [int(i) for i in meta["int_ids"]]
            ext_ids = [str(e) for e in meta["ext_ids"]]
            dim = int(meta["dim"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupted(f"{ids_path}: unreadable id map ({exc})") from exc
        if len(int_ids) != len(ext_ids):
            raise IndexCorrupted(f"{ids_path}: {len(int_ids)} int ids vs {len(ext_ids)} ext ids")
        if not index_path.is_file():
            raise IndexCorrupted(f"{index_path}: missing")
        try:
            index = faiss.read_index(str(index_path))
        except RuntimeError as exc:
            raise IndexCorrupted(f"{index_path}: FAISS cannot read it ({exc})") from exc
        if index.d != dim:
            raise IndexCorrupted(f"{index_path}: dimension {index.d}, {ids_path} says {dim}")
        if index.ntotal != len(int_ids):
            raise IndexCorrupted(
                f"{index_path}: {index.ntotal} vectors, {ids_path} maps {len(int_ids)} ids"
            )
        obj = cls(
            dim,
            exact_max=int(meta.get("exact_max", 200_000)),
            hnsw_m=int(meta.get("hnsw_m", 32)),
            ef_construction=int(meta.get("ef_construction", 80)),
            ef_search=int(meta.get("ef_search", 128)),
            target_recall=float(meta.get("target_recall", 0.95)),
        )
        obj.calibration_ = meta.get("calibration")
        # read_index already returns the concrete type; faiss.downcast_index would return a
        # non-owning wrapper (the index would be freed with this local).
        if not isinstance(index, faiss.IndexIDMap2):
            raise IndexCorrupted(f"{index_path}: not an IndexIDMap2 ({type(index).__name__})")
        base = faiss.downcast_index(index.index)
        if isinstance(base, faiss.IndexHNSW):
            calibrated = (obj.calibration_ or {}).get("ef_search")
            base.hnsw.efSearch = int(calibrated or obj.ef_search)
        obj.index_ = index
        obj.ext_by_int_ = dict(zip(int_ids, ext_ids, strict=True))
        obj.int_by_ext_ = {e: i for i, e in obj.ext_by_int_.items()}
        obj.next_id_ = int(meta.get("next_id", max(int_ids, default=-1) + 1))
        return obj
