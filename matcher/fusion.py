"""Score fusion and the document neighbour graph behind :class:`matcher.retrieval.HybridRetriever`.

Pure numpy: :func:`rrf_scores` and :func:`weighted_scores` combine per-source rankings,
:func:`build_neighbour_graph` computes the exact cosine k-NN graph used for score smoothing,
:func:`keep_head` puts the first-stage leaders back at the head of a smoothed ranking and
:func:`bound_drops` limits how far its other near matches fall; :func:`candidates` turns the
final ranking into candidates with their evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InvalidParameter
from matcher.protocols import Candidate, Hits

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
        norm = normalised(scores, normalise)
        for doc_id, v in zip(ids, norm, strict=True):
            out[doc_id] = out.get(doc_id, 0.0) + wi * float(v)
    return out


def normalised(
    scores: NDArray[np.floating[Any]], normalise: Literal["minmax", "zscore"]
) -> NDArray[np.float64]:
    """One source's scores normalised over its own list (see :func:`weighted_scores`)."""
    s = np.asarray(scores, dtype=np.float64)
    lo, hi = float(s.min()), float(s.max())
    if hi <= lo:
        return np.ones_like(s)
    if normalise == "minmax":
        return (s - lo) / (hi - lo)
    # s.std() as numpy computes it (mean, squared deviations, pairwise sums), without the
    # overhead of its generic reduction path: the same value, bit for bit, at half the cost
    d = s - np.add.reduce(s) / len(s)
    return (s - lo) / math.sqrt(float(np.add.reduce(d * d)) / len(s))


class FusedRows(NamedTuple):
    """:func:`weighted_scores` over the rows of a fixed document list.

    scores : float64 array of shape (n,): fused score of every row (0 where no source
        returned the document).
    pooled : int64 array of the rows some source returned, sorted.
    extra : fused scores of returned documents that have no row.
    """

    scores: NDArray[np.float64]
    pooled: NDArray[np.int64]
    extra: dict[str, float]


def weighted_rows(
    results: Sequence[tuple[Sequence[str], NDArray[np.float32]]],
    row_of: Mapping[str, int],
    n: int,
    *,
    weights: Sequence[float],
    normalise: Literal["minmax", "zscore"] = "minmax",
    rows: Sequence[NDArray[np.int64] | None] = (),
) -> FusedRows:
    """:func:`weighted_scores` as an array over ``n`` rows (same arithmetic, same values).

    Parameters
    ----------
    results : sequence of (ids, scores)
        Each source's documents (each at most once) and scores.
    row_of : mapping of str -> int
        Row of each known document id, in ``range(n)``.
    n : int
        Number of rows.
    weights : sequence of float
        One weight per source.
    normalise : {"minmax", "zscore"}
    rows : sequence of int64 arrays or None, optional
        Each source's documents as rows (-1: no row), when already known (else looked up
        in ``row_of``).

    Returns
    -------
    FusedRows
    """
    if len(weights) != len(results):
        raise InvalidParameter(f"{len(weights)} weights for {len(results)} result lists")
    f = np.zeros(n, dtype=np.float64)
    pooled: list[NDArray[np.int64]] = []
    extra: dict[str, float] = {}
    for i, ((ids, scores), wi) in enumerate(zip(results, weights, strict=True)):
        if len(ids) == 0:
            continue
        norm = normalised(scores, normalise)
        at = rows[i] if i < len(rows) else None
        if at is None:
            at = np.fromiter((row_of.get(d, -1) for d in ids), dtype=np.int64, count=len(ids))
        ok = at >= 0
        if ok.all():
            f[at] += wi * norm  # a source lists each document once
            pooled.append(at)
            continue
        f[at[ok]] += wi * norm[ok]
        pooled.append(at[ok])
        for j in np.flatnonzero(~ok).tolist():
            extra[ids[j]] = extra.get(ids[j], 0.0) + wi * float(norm[j])
    rows_all = sorted_unique(np.concatenate(pooled)) if pooled else np.empty(0, dtype=np.int64)
    return FusedRows(f, rows_all, extra)


def sorted_unique(a: NDArray[np.int64]) -> NDArray[np.int64]:
    """``np.unique`` of a small int array (sort-based; ~7x faster than numpy's hash path at a
    few hundred elements)."""
    r = np.sort(a)
    if len(r) < 2:
        return r
    return r[np.concatenate(([True], r[1:] != r[:-1]))]


def top_rows(
    rows: NDArray[np.int64], scores: NDArray[np.float64], k: int, id_rank: NDArray[np.int64]
) -> NDArray[np.int64]:
    """The ``k`` best of ``rows`` by ``scores[rows]``, ties by document id (``id_rank``: the
    position of each row's id in sorted order), as :func:`ranked_items` orders them."""
    if len(rows) == 0 or k < 1:
        return np.empty(0, dtype=np.int64)
    s = scores[rows]
    if len(rows) > k:
        cut = np.partition(s, len(s) - k)[len(s) - k]
        keep = s >= cut  # every tie of the k-th score, ordered by id below
        rows, s = rows[keep], s[keep]
    order = np.lexsort((id_rank[rows], -s))[:k]
    return rows[order]


def ranked_items(scores: Mapping[str, float]) -> list[tuple[str, float]]:
    """``scores`` as (id, score) pairs, best first; ties by id (deterministic)."""
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


class RankedRows(list[tuple[str, float]]):
    """A ranking of (id, score) pairs that also knows each document's row in the row space
    it was ranked on (``rows[j]`` is item ``j``'s), so candidates need no id lookups."""

    rows: NDArray[np.int64]


class RowSpace(NamedTuple):
    """The fixed document rows array fusion works on: ids, their rows, and each row's rank
    in sorted id order (for ties)."""

    ids: list[str]
    row_of: Mapping[str, int]
    id_rank: NDArray[np.int64]


def row_space(ids: Sequence[str], row_of: Mapping[str, int] | None = None) -> RowSpace:
    """A :class:`RowSpace` over ``ids`` (``row_of`` given when already built)."""
    ids = list(ids)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    return RowSpace(ids, row_of if row_of is not None else {d: i for i, d in enumerate(ids)}, rank)


def fused_ranking(
    results: Sequence[tuple[Sequence[str], NDArray[np.float32]]],
    weights: Sequence[float],
    space: RowSpace,
    k: int,
    *,
    normalise: Literal["minmax", "zscore"],
    smoothing: Any = None,
    smooth_weight: float = 0.0,
    rows: Sequence[NDArray[np.int64] | None] = (),
) -> list[tuple[str, float]]:
    """The ``k`` best documents of :func:`weighted_scores`, optionally smoothed
    ``f + smooth_weight * (smoothing @ f)`` over the rows (every document with a pooled
    neighbour can enter), ties by id: what ``ranked_items`` of the dictionary version gives.

    ``smoothing``: row-normalised (n, n) adjacency (scipy sparse) of the graph, or None.
    Documents without a row keep their unsmoothed score. ``rows``: see :func:`weighted_rows`.
    A :class:`RankedRows` unless a document without a row was returned.
    """
    ids = space.ids
    fr = weighted_rows(
        results, space.row_of, len(ids), weights=weights, normalise=normalise, rows=rows
    )
    pooled, scores = fr.pooled, fr.scores
    if smoothing is not None and smooth_weight > 0:
        scores = scores + smooth_weight * (smoothing @ scores)
        entered = scores != 0.0  # every row with a pooled neighbour, and the pooled rows
        entered[pooled] = True
        pooled = np.flatnonzero(entered)
    if fr.extra:
        merged = {ids[r]: float(scores[r]) for r in pooled.tolist()}
        return ranked_items({**fr.extra, **merged})[:k]
    top = top_rows(pooled, scores, k, space.id_rank)
    out = RankedRows(zip([ids[r] for r in top.tolist()], scores[top].tolist(), strict=True))
    out.rows = top
    return out


def graph_operator(graph: NeighbourGraph, neighbours: int) -> tuple[dict[str, int], Any]:
    """Row lookup of ``graph`` and its row-normalised adjacency over the first
    ``neighbours`` columns (scipy CSR, n x n; negative similarities count 0)."""
    import scipy.sparse as sp

    n = len(graph.ids)
    m = min(neighbours, graph.indices.shape[1])
    idx = graph.indices[:, :m]
    w = np.clip(graph.weights[:, :m].astype(np.float64), 0.0, None)
    keep = idx >= 0
    rows = np.repeat(np.arange(n), m).reshape(n, m)[keep]
    adj = sp.csr_matrix((w[keep], (rows, idx[keep])), shape=(n, n))
    totals = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return {d: i for i, d in enumerate(graph.ids)}, sp.diags(inv) @ adj


def smooth_scores(
    fused: dict[str, float], alpha: float, row_of: Mapping[str, int], op: Any, ids: Sequence[str]
) -> dict[str, float]:
    """``f + alpha * (op @ f)`` of a fused dictionary over the graph rows ``row_of`` (every
    document with a pooled neighbour gains, even if no source returned it; documents
    without a row keep their score)."""
    if not fused:
        return fused
    f = np.zeros(len(ids), dtype=np.float64)
    out: dict[str, float] = {}
    for d, v in fused.items():
        r = row_of.get(d)
        if r is None:
            out[d] = v  # not in the graph (added after it was built): unsmoothed
        else:
            f[r] = v
    smoothed = f + alpha * (op @ f)
    for nz in np.flatnonzero(smoothed):
        out[ids[int(nz)]] = float(smoothed[nz])
    for d in fused:
        row = row_of.get(d)
        if row is not None:
            out[d] = float(smoothed[row])  # keep pooled documents even at score 0
    return out


def keep_head(
    final: Sequence[tuple[str, float]],
    first: Sequence[tuple[str, float]],
    tolerance: float,
    head_max: int = 3,
) -> list[tuple[str, float]]:
    """Put the first-stage leaders back at the head of a feedback/smoothed ranking.

    The head is the first-stage best document plus the next ones (up to ``head_max`` in all)
    whose first-stage score is within ``tolerance * (f1 - f10)`` of the best ``f1`` (``f10``:
    the tenth best, or the last one of a shorter list): a near tie with the best exact match.
    They keep their first-stage order above every other document; the rest keeps the order
    of ``final``. Feedback and smoothing then reorder what follows the clear matches and
    cannot push a clear match down.

    Parameters
    ----------
    final : sequence of (id, score)
        The ranking after pseudo-relevance feedback and graph smoothing, best first.
    first : sequence of (id, score)
        The first-stage fused ranking (original query only) of the same query, best first,
        at least its ten best when there are ten.
    tolerance : float
        Relative tolerance (>= 0; 0 keeps only the best document unless tied).
    head_max : int
        Most documents kept at the head (>= 1).

    Returns
    -------
    list of (id, score)
        As long as ``final`` (a head document ``final`` lacked takes the last place); the
        head's scores are raised just above ``final``'s best, so the scale barely changes.
    """
    if not final or not first:
        return list(final)
    f1, f10 = first[0][1], first[min(9, len(first) - 1)][1]
    head = [d for d, v in first[:head_max] if v >= f1 - tolerance * (f1 - f10)]
    ceiling = final[0][1]
    step = 1e-6 * max(1.0, abs(ceiling))
    kept = [(d, ceiling + step * (len(head) - j)) for j, d in enumerate(head)]
    in_head = set(head)
    rest = [(d, v) for d, v in final if d not in in_head]
    return (kept + rest)[: len(final)]


def bound_drops(
    final: Sequence[tuple[str, float]],
    first: Sequence[tuple[str, float]],
    tolerance: float,
    slack: int = 1,
    max_rank: int = 3,
) -> list[tuple[str, float]]:
    """Let a near match of the first stage fall at most ``slack`` places in the final ranking.

    A near match is one of the first-stage ``max_rank`` best documents whose first-stage
    score is within ``tolerance * (f1 - f10)`` of the best ``f1`` (as in :func:`keep_head`,
    which keeps the closest of them in place). Smoothing lifts documents with many pooled
    neighbours; a near-exact match with a sparse neighbourhood (a title's own abstract among
    papers of other topics) can otherwise drop from the second place to the twentieth. Each
    near match at first-stage place ``r`` (0-based) is put at place ``r + slack`` at the latest;
    everything else keeps the order of ``final``.

    Parameters
    ----------
    final : sequence of (id, score)
        The ranking after feedback, smoothing and :func:`keep_head`, best first.
    first : sequence of (id, score)
        The first-stage fused ranking of the same query, best first (its ten best at least
        when there are ten).
    tolerance : float
        Relative tolerance (>= 0).
    slack : int
        Places a near match may fall (>= 0).
    max_rank : int
        Only the first-stage ``max_rank`` best can be near matches (>= 1).

    Returns
    -------
    list of (id, score)
        As long as ``final``; the scores are ``final``'s, by place (still non-increasing), so
        a moved document takes the score of the place it lands on.
    """
    if tolerance < 0 or slack < 0 or max_rank < 1:
        raise InvalidParameter(
            f"tolerance and slack must be >= 0 and max_rank >= 1, got {tolerance}, {slack}, "
            f"{max_rank}"
        )
    if not final or not first:
        return list(final)
    f1, f10 = first[0][1], first[min(9, len(first) - 1)][1]
    cut = f1 - tolerance * (f1 - f10)
    latest = {d: r + slack for r, (d, v) in enumerate(first[:max_rank]) if v >= cut}
    ids = [d for d, _ in final]
    pending = list(latest)  # first-stage order, so deadlines are increasing
    order: list[str] = []
    placed: set[str] = set()
    j = 0
    while len(order) < len(ids):
        while pending and pending[0] in placed:
            del pending[0]
        if not pending:  # no deadline left: the rest keeps final's order
            order.extend(d for d in ids[j:] if d not in placed)
            del order[len(ids) :]  # a near match final lacked took a place
            break
        while j < len(ids) and ids[j] in placed:
            j += 1
        if latest[pending[0]] <= len(order) or j == len(ids):
            doc = pending.pop(0)
        else:
            doc = ids[j]
        placed.add(doc)
        order.append(doc)
    return [(d, v) for d, (_, v) in zip(order, final, strict=True)]


def candidates(
    ranked: list[tuple[str, float]],
    dense: Hits,
    lexical: Hits | None,
    english: Hits | None = None,
) -> list[Candidate]:
    """The ranked documents as :class:`~matcher.protocols.Candidate` with their evidence: the
    first dense search's best-chunk cosine and chunk, the BM25 score, the English cosine
    (None where that source did not return the document)."""
    dense_at = {d: j for j, d in enumerate(dense.ids)}
    lex_at = {} if lexical is None else {d: j for j, d in enumerate(lexical.ids)}
    en_at = {} if english is None else {d: j for j, d in enumerate(english.ids)}
    out = []
    for doc_id, score in ranked:
        j = dense_at.get(doc_id)
        li = lex_at.get(doc_id)
        chunk = 0
        if j is not None and dense.chunks is not None:
            chunk = int(dense.chunks[j])
        out.append(
            Candidate(
                doc_id=doc_id,
                score=float(score),
                dense=None if j is None else float(dense.scores[j]),
                lexical=None if li is None or lexical is None else float(lexical.scores[li]),
                chunk=chunk,
                english=(
                    float(english.scores[en_at[doc_id]])
                    if english is not None and doc_id in en_at
                    else None
                ),
            )
        )
    return out
