"""The document neighbour graph kept up to date across builds, and built approximately at size.

:func:`matcher.fusion.build_neighbour_graph` computes the exact graph in O(n^2); a build switch
at 100k documents would recompute it for minutes although a nightly re-index changes ~1% of
the documents. :func:`update_neighbour_graph` reuses the previous build's graph: only the rows
of changed documents are computed in full (one ``changed x n`` product, which also gives every
other document's similarity to them), and the other rows merge the changed documents into
their kept list. Each row keeps ``reserve`` neighbours beyond the ``n_neighbors`` smoothing
uses, so a removed or changed neighbour is replaced from the reserve without a recomputation;
a row is recomputed only when fewer than ``n_neighbors`` known-exact neighbours remain. From
an exact previous graph the result equals a full exact rebuild (up to float rounding in
ties); from an approximate one it stays approximate (kept rows are as good as before, changed
documents' rows are exact).

Rows may end in padding (index -1) whose weight is an upper bound of the similarity of every
unlisted document (what makes the next update exact); a graph of fewer than
``n_neighbors + 1`` documents pads with weight 0, as the full build does.

Above ``exact_max`` documents without a usable previous graph, the caller's approximate
k-NN (``knn``, e.g. FAISS HNSW from the embeddings layer; matcher stays free of it) builds the
graph; its agreement with the exact graph is measured in ``benchmarks/bench_graph.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InvalidParameter
from matcher.fusion import NeighbourGraph, build_neighbour_graph

logger = logging.getLogger(__name__)

_CELLS = 1 << 24  # similarities held at once per product (64 MB of float32)
_MAX_CHANGED = 0.25  # above this share of changed documents a full rebuild is cheaper

KnnFn = Callable[[NDArray[np.float32], int], tuple[NDArray[np.int64], NDArray[np.float32]]]
"""``knn(vectors, k) -> (indices, sims)``: each row's k nearest other rows (self excluded),
best first, -1 / any weight for padding."""


def _select(
    cand: NDArray[np.int64], sims: NDArray[np.float32], width: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Per row, the ``width`` best candidates (ties by row number), -inf for missing."""
    n_rows, n_cand = cand.shape
    if n_cand > width:
        part = np.argpartition(-sims, width - 1, axis=1)[:, :width]
        cand = np.take_along_axis(cand, part, 1)
        sims = np.take_along_axis(sims, part, 1)
    order = np.lexsort((cand, -sims), axis=1)
    cand = np.take_along_axis(cand, order, 1)
    sims = np.take_along_axis(sims, order, 1)
    if cand.shape[1] < width:
        pad = width - cand.shape[1]
        cand = np.pad(cand, ((0, 0), (0, pad)), constant_values=-1)
        sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=-np.inf)
    return cand, sims


def _exact_rows(
    vecs: NDArray[np.float32], rows: NDArray[np.int64], width: int, block: int
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Exact top-``width`` neighbours (self excluded) of ``rows`` against every row."""
    idx = np.full((len(rows), width), -1, dtype=np.int64)
    w = np.zeros((len(rows), width), dtype=np.float32)
    all_rows = np.arange(len(vecs), dtype=np.int64)
    block = max(16, min(block, _CELLS // max(len(vecs), 1)))
    for start in range(0, len(rows), block):
        part = rows[start : start + block]
        sims = vecs[part] @ vecs.T
        sims[np.arange(len(part)), part] = -np.inf
        cand = np.broadcast_to(all_rows, sims.shape)
        i, s = _select(cand, sims, width)
        idx[start : start + len(part)], w[start : start + len(part)] = i, s
    return idx, w


def update_neighbour_graph(
    previous: NeighbourGraph | None,
    previous_vectors: NDArray[np.float32] | None,
    doc_ids: Sequence[str],
    doc_vectors: NDArray[np.float32],
    n_neighbors: int = 10,
    *,
    reserve: int = 10,
    exact_max: int = 20_000,
    knn: KnnFn | None = None,
    block: int = 1024,
) -> NeighbourGraph:
    """The neighbour graph of ``doc_ids``, reusing ``previous`` where it still holds.

    Parameters
    ----------
    previous : NeighbourGraph or None
        The graph of the previous build (made by this function), or None.
    previous_vectors : ndarray of float32, shape (len(previous.ids), d), or None
        The document vectors ``previous`` was computed from (a document whose vector
        differs counts as changed).
    doc_ids : sequence of str, length n
    doc_vectors : ndarray of float32, shape (n, d), L2-normalised
    n_neighbors : int
        Neighbours smoothing uses (>= 1).
    reserve : int
        Extra neighbours kept per row (>= 0); columns are ``n_neighbors + reserve``.
    exact_max : int
        Without a previous graph, more documents than this use ``knn`` (when given).
    knn : callable, optional
        Approximate k-NN for large first builds (see :data:`KnnFn`).
    block : int
        Rows per matrix product.

    Returns
    -------
    NeighbourGraph
    """
    if n_neighbors < 1 or reserve < 0:
        raise InvalidParameter(
            f"need n_neighbors >= 1 and reserve >= 0, got {n_neighbors}, {reserve}"
        )
    vecs = np.ascontiguousarray(doc_vectors, dtype=np.float32)
    n, width = len(doc_ids), n_neighbors + reserve
    if vecs.ndim != 2 or vecs.shape[0] != n:
        raise InvalidParameter(f"doc_vectors must have shape ({n}, d), got {vecs.shape}")
    if (
        previous is None
        or previous_vectors is None
        or previous.indices.shape[1] != width
        or len(previous.ids) <= width + 1
        or n <= width + 1
    ):
        if knn is not None and n > exact_max:
            return _approximate(doc_ids, vecs, width, knn)
        return build_neighbour_graph(doc_ids, vecs, width, block=block)
    if previous_vectors.shape != (len(previous.ids), vecs.shape[1]):
        raise InvalidParameter(
            f"previous_vectors must have shape ({len(previous.ids)}, {vecs.shape[1]}), "
            f"got {previous_vectors.shape}"
        )
    return _incremental(previous, previous_vectors, doc_ids, vecs, n_neighbors, width, block)


def _approximate(
    doc_ids: Sequence[str], vecs: NDArray[np.float32], width: int, knn: KnnFn
) -> NeighbourGraph:
    idx, sims = knn(vecs, width)
    idx = np.asarray(idx, dtype=np.int64)
    sims = np.asarray(sims, dtype=np.float32)
    if idx.shape != (len(doc_ids), width) or sims.shape != idx.shape:
        raise InvalidParameter(f"knn returned shape {idx.shape}, expected {(len(doc_ids), width)}")
    sims = np.where(idx >= 0, sims, 0.0).astype(np.float32)
    return NeighbourGraph(list(doc_ids), idx, sims)


def _incremental(
    previous: NeighbourGraph,
    previous_vectors: NDArray[np.float32],
    doc_ids: Sequence[str],
    vecs: NDArray[np.float32],
    n_neighbors: int,
    width: int,
    block: int,
) -> NeighbourGraph:
    n = len(doc_ids)
    prev_row = {d: i for i, d in enumerate(previous.ids)}
    old_of_new = np.fromiter((prev_row.get(d, -1) for d in doc_ids), dtype=np.int64, count=n)
    known = old_of_new >= 0
    same = np.zeros(n, dtype=bool)
    same[known] = np.all(previous_vectors[old_of_new[known]] == vecs[known], axis=1)
    changed = np.flatnonzero(~same)
    if len(changed) > _MAX_CHANGED * n:
        return build_neighbour_graph(doc_ids, vecs, width, block=block)
    # previous rows still valid (same document, same vector) -> their new row
    new_of_old = np.full(len(previous.ids), -1, dtype=np.int64)
    new_of_old[old_of_new[same]] = np.flatnonzero(same)

    idx = np.full((n, width), -1, dtype=np.int64)
    w = np.zeros((n, width), dtype=np.float32)
    kept = np.flatnonzero(same)
    old = previous.indices[old_of_new[kept]]
    old_w = previous.weights[old_of_new[kept]]
    mapped = np.where(old >= 0, new_of_old[np.maximum(old, 0)], -1)
    # an old entry is exact if it is still valid; the row's bound is its last weight
    bound = old_w[:, -1].astype(np.float32)
    cand_sims = np.where(mapped >= 0, old_w, -np.inf).astype(np.float32)

    if len(changed):
        c_idx, c_w = _exact_rows(vecs, changed, width, block)
        idx[changed], w[changed] = c_idx, c_w
        step = max(64, _CELLS // len(changed))
        for start in range(0, len(kept), step):
            sl = slice(start, start + step)
            s = vecs[kept[sl]] @ vecs[changed].T  # (rows, changed)
            cand = np.concatenate([mapped[sl], np.broadcast_to(changed, s.shape)], axis=1)
            sims = np.concatenate([cand_sims[sl], s.astype(np.float32)], axis=1)
            mapped_sl, sims_sl = _select(cand, sims, width)
            mapped[sl], cand_sims[sl] = mapped_sl, sims_sl
    else:
        mapped, cand_sims = _select(mapped, cand_sims, width)
    exact = (cand_sims > bound[:, None]) & (mapped >= 0)
    n_exact = exact.sum(axis=1)
    ok = n_exact >= n_neighbors
    rows_ok = kept[ok]
    idx[rows_ok] = np.where(exact[ok], mapped[ok], -1)
    w[rows_ok] = np.where(exact[ok], cand_sims[ok], bound[ok, None])
    redo = kept[~ok]
    if len(redo):
        idx[redo], w[redo] = _exact_rows(vecs, redo, width, block)
    logger.info(
        "neighbour graph: %d documents, %d changed, %d rows recomputed, %d merged",
        n,
        len(changed),
        len(changed) + len(redo),
        len(rows_ok),
    )
    return NeighbourGraph(list(doc_ids), idx, w)
