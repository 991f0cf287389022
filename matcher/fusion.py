"""Score fusion and the document neighbour graph behind :class:`matcher.retrieval.HybridRetriever`.

Pure numpy: :func:`rrf_scores` and :func:`weighted_scores` combine per-source rankings,
:func:`build_neighbour_graph` computes the exact cosine k-NN graph used for score smoothing,
:func:`keep_head` puts the first-stage leaders back at the head of a smoothed ranking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InvalidParameter

Fusion = Literal["rrf", "weighted", "zscore"]
FUSIONS: tuple[Fusion, ...] = ("rrf", "weighted", "zscore")


class NeighbourGraph(NamedTuple):
    """A k-nearest-neighbour graph over the documents of one collection.

    ids : document ids, length n (row i of the arrays describes ``ids[i]``).
    indices : int64 array of shape (n, m): rows of each document's neighbours, best first,
        -1 for padding (collections with fewer than m + 1 documents).
    weights : float32 array of shape (n, m): similarity of each neighbour (0 for padding).
    """

    ids: list[str]
    indices: NDArray[np.int64]
    weights: NDArray[np.float32]


def build_neighbour_graph(
    doc_ids: Sequence[str],
    doc_vectors: NDArray[np.float32],
    n_neighbors: int = 10,
    *,
    block: int = 1024,
) -> NeighbourGraph:
    """Exact cosine k-NN graph of the documents (self excluded).

    Parameters
    ----------
    doc_ids : sequence of str, length n
        Document ids, unique.
    doc_vectors : ndarray of float32, shape (n, d)
        L2-normalised document vectors (e.g. the normalised mean of a document's chunks).
    n_neighbors : int
        Neighbours per document, >= 1.
    block : int
        Rows per matrix product (bounds memory at ``block * n`` floats).

    Returns
    -------
    NeighbourGraph
        ``indices``/``weights`` of shape (n, min(n_neighbors, n - 1)) padded to
        ``n_neighbors`` columns with -1 / 0.
    """
    if n_neighbors < 1:
        raise InvalidParameter(f"n_neighbors must be >= 1, got {n_neighbors}")
    vecs = np.ascontiguousarray(doc_vectors, dtype=np.float32)
    n = len(doc_ids)
    if vecs.ndim != 2 or vecs.shape[0] != n:
        raise InvalidParameter(f"doc_vectors must have shape ({n}, d), got {vecs.shape}")
    indices = np.full((n, n_neighbors), -1, dtype=np.int64)
    weights = np.zeros((n, n_neighbors), dtype=np.float32)
    m = min(n_neighbors, n - 1)
    if m <= 0:
        return NeighbourGraph(list(doc_ids), indices, weights)
    for start in range(0, n, block):
        sims = vecs[start : start + block] @ vecs.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # never your own neighbour
        part = np.argpartition(-sims, m - 1, axis=1)[:, :m]
        part_s = np.take_along_axis(sims, part, 1)
        # sort by similarity, ties by row number (deterministic)
        order = np.lexsort((part, -part_s), axis=1)
        indices[start : start + len(rows), :m] = np.take_along_axis(part, order, 1)
        weights[start : start + len(rows), :m] = np.take_along_axis(part_s, order, 1)
    return NeighbourGraph(list(doc_ids), indices, weights)


def rrf_scores(
    rankings: Sequence[Sequence[str]],
    *,
    k: float = 60.0,
    weights: Sequence[float] | None = None,
) -> dict[str, float]:
    """Reciprocal-rank fusion of several rankings.

    Parameters
    ----------
    rankings : sequence of sequences of str
        Document ids of each source, best first.
    k : float
        RRF constant (> 0): larger flattens the rank discount.
    weights : sequence of float, optional
        One weight per source (default 1 each).

    Returns
    -------
    dict of str -> float
        Fused score of every document found by at least one source.
    """
    if k <= 0:
        raise InvalidParameter(f"rrf k must be > 0, got {k}")
    w = [1.0] * len(rankings) if weights is None else list(weights)
    if len(w) != len(rankings):
        raise InvalidParameter(f"{len(w)} weights for {len(rankings)} rankings")
    out: dict[str, float] = {}
    for ranking, wi in zip(rankings, w, strict=True):
        for rank, doc_id in enumerate(ranking, start=1):
            out[doc_id] = out.get(doc_id, 0.0) + wi / (k + rank)
    return out


def weighted_scores(
    results: Sequence[tuple[Sequence[str], NDArray[np.float32]]],
    *,
    weights: Sequence[float] | None = None,
    normalise: Literal["minmax", "zscore"] = "minmax",
) -> dict[str, float]:
    """Weighted sum of per-source normalised scores.

    ``"minmax"`` maps each source's scores to [0, 1] over its own returned list (best -> 1,
    worst of the list -> 0); ``"zscore"`` standardises them over the list and shifts the worst
    to 0. A constant list maps to 1. A document a source did not return gets 0 from it (the
    value of the worst document the source did return).

    Parameters
    ----------
    results : sequence of (ids, scores)
        Each source's document ids and float scores (same length), any order.
    weights : sequence of float, optional
        One weight per source (default 1 each).
    normalise : {"minmax", "zscore"}
        Per-source normalisation.

    Returns
    -------
    dict of str -> float
    """
    if normalise not in ("minmax", "zscore"):
        raise InvalidParameter(f"normalise must be 'minmax' or 'zscore', got {normalise!r}")
    w = [1.0] * len(results) if weights is None else list(weights)
    if len(w) != len(results):
        raise InvalidParameter(f"{len(w)} weights for {len(results)} result lists")
    out: dict[str, float] = {}
    for (ids, scores), wi in zip(results, w, strict=True):
        if len(ids) == 0:
            continue
        s = np.asarray(scores, dtype=np.float64)
        lo, hi = float(s.min()), float(s.max())
        if hi <= lo:
            norm = np.ones_like(s)
        elif normalise == "minmax":
            norm = (s - lo) / (hi - lo)
        else:
            norm = (s - lo) / float(s.std())
        for doc_id, v in zip(ids, norm, strict=True):
            out[doc_id] = out.get(doc_id, 0.0) + wi * float(v)
    return out


def ranked_items(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """``scores`` as (id, score) pairs, best first; ties by id (deterministic)."""
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def keep_head(
    final: dict[str, float],
    first: dict[str, float],
    tolerance: float,
    head_max: int = 3,
) -> dict[str, float]:
    """Put the first-stage leaders back at the head of a feedback/smoothed ranking.

    The head is the first-stage best document plus the next ones (up to ``head_max`` in all)
    whose first-stage score is within ``tolerance * (f1 - f10)`` of the best ``f1`` (``f10``:
    the tenth best, or the last one of a shorter list): a near tie with the best exact match.
    They keep their first-stage order above every other document; the rest keeps the order
    of ``final``. Feedback and smoothing then reorder what follows the clear matches and
    cannot push a clear match down.

    Parameters
    ----------
    final : dict of str -> float
        Scores after pseudo-relevance feedback and graph smoothing.
    first : dict of str -> float
        First-stage fused scores (original query only) of the same query.
    tolerance : float
        Relative tolerance (>= 0; 0 keeps only the best document unless tied).
    head_max : int
        Most documents kept at the head (>= 1).

    Returns
    -------
    dict of str -> float
        ``final`` with the head's scores raised just above its maximum (a new dict).
    """
    if not final or not first:
        return final
    ranked = ranked_items(first)
    f1, f10 = ranked[0][1], ranked[min(9, len(ranked) - 1)][1]
    head = [d for d, v in ranked[:head_max] if v >= f1 - tolerance * (f1 - f10)]
    out = dict(final)
    ceiling = max(out.values())
    step = 1e-6 * max(1.0, abs(ceiling))  # above everything, the scale barely changed
    for j, d in enumerate(head):
        out[d] = ceiling + step * (len(head) - j)
    return out
