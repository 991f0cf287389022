"""Document rows shared by the searchers and :class:`matcher.retrieval.HybridRetriever`.

A searcher that numbers its documents (``row_ids``, and ``Hits.rows`` on its results: the
embeddings package's chunk searcher and BM25 index do) lets the retriever fuse, pool and
build candidates on integer rows instead of id strings. :class:`SourceRows` maps one
searcher's rows to the retriever's :class:`~matcher.fusion.RowSpace` and back, computed once
per (searcher id list, row space); :func:`pool_rows` is the pool an expanded feedback query
is scored on; :func:`ranked_candidates` turns a final ranking into candidates with their
evidence using sorted row arrays. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.fusion import NeighbourGraph, RankedRows, RowSpace, sorted_unique
from matcher.protocols import Candidate, Hits


class SourceRows(NamedTuple):
    """Row maps between a searcher's documents and a row space.

    names : the searcher's ``row_ids`` (kept to tell whether a cached map still applies).
    space : the row space mapped to.
    to_space : int64 array (len(names),): each searcher row's row in ``space`` (-1: none).
    from_space : int64 array (len(space.ids),): each space row's searcher row (-1: none).
    """

    names: Sequence[str]
    space: RowSpace
    to_space: NDArray[np.int64]
    from_space: NDArray[np.int64]


def source_rows(names: Sequence[str], space: RowSpace) -> SourceRows:
    """The :class:`SourceRows` of a searcher whose rows are ``names``."""
    row_of = space.row_of
    to_space = np.fromiter((row_of.get(d, -1) for d in names), dtype=np.int64, count=len(names))
    from_space = np.full(len(space.ids), -1, dtype=np.int64)
    known = to_space >= 0
    from_space[to_space[known]] = np.flatnonzero(known)
    return SourceRows(names, space, to_space, from_space)


def cached_source_rows(owner: Any, searcher: Any, space: RowSpace | None) -> SourceRows | None:
    """The row maps of ``searcher`` into ``space``, kept on ``owner`` (one per searcher);
    None when the searcher does not number its documents or there is no space."""
    names = getattr(searcher, "row_ids", None) if space is not None else None
    if names is None or space is None:
        return None
    cache: dict[int, SourceRows] = owner.__dict__.setdefault("source_rows_", {})
    found = cache.get(id(searcher))
    if found is None or found.names is not names or found.space is not space:
        found = cache[id(searcher)] = source_rows(names, space)  # a race only repeats work
    return found


def space_rows(hits: Hits | None, rows: SourceRows | None) -> NDArray[np.int64] | None:
    """The rows in the space of a result's documents (-1: not in the space), or None when
    the result carries no rows."""
    found = getattr(hits, "rows", None)
    if found is None or rows is None or hits is None or len(found) != len(hits.ids):
        return None
    out: NDArray[np.int64] = rows.to_space[found]
    return out


def pool_rows(
    first: NDArray[np.int64],
    lexical: NDArray[np.int64] | None,
    feedback: NDArray[np.int64],
    graph: NeighbourGraph | None,
    dense: SourceRows,
) -> NDArray[np.int64]:
    """The dense searcher's rows an expanded query is scored on: the (deep) first dense
    list, the lexical list, the feedback documents and their graph neighbours (the graph's
    rows are the space's), sorted and unique.

    ``first``, ``lexical`` and ``feedback`` are rows of the space (-1 entries ignored).
    """
    parts = [first, feedback]
    if lexical is not None:
        parts.append(lexical)
    fb = feedback[feedback >= 0]
    if graph is not None and len(fb) and len(graph.ids) == len(dense.from_space):
        parts.append(graph.indices[fb].ravel())
    pool = np.concatenate(parts)
    pool = dense.from_space[pool[(pool >= 0) & (pool < len(dense.from_space))]]
    return sorted_unique(pool[pool >= 0])


def row_pools(
    feedback: Sequence[Sequence[str]],
    deep: Sequence[Hits],
    lexical: Sequence[NDArray[np.int64] | None],
    space: RowSpace,
    dense: SourceRows,
    graph: NeighbourGraph | None,
) -> list[NDArray[np.int64]] | None:
    """:func:`pool_rows` of each query (its feedback document ids, its deep first dense
    result, its lexical rows in ``space``); None when a dense result has no rows."""
    pools = []
    for fb, hits, lx in zip(feedback, deep, lexical, strict=True):
        first = space_rows(hits, dense)
        if first is None:
            return None
        fb_rows = np.array([space.row_of.get(d, -1) for d in fb], dtype=np.int64)
        pools.append(pool_rows(first, lx, fb_rows, graph, dense))
    return pools


def _positions(ranked: NDArray[np.int64], rows: NDArray[np.int64] | None) -> NDArray[np.int64]:
    """Position of each ranked row in ``rows`` (a source's result), -1 where absent."""
    out = np.full(len(ranked), -1, dtype=np.int64)
    if rows is None or len(rows) == 0:
        return out
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    at = np.minimum(np.searchsorted(srt, ranked), len(srt) - 1)
    hit = srt[at] == ranked
    out[hit] = order[at[hit]]
    return out


def _values(scores: NDArray[np.float32], at: NDArray[np.int64]) -> list[float | None]:
    """``float(scores[j])`` at each position ``j`` (None where -1)."""
    if len(scores) == 0:
        return [None] * len(at)
    vals: list[float | None] = scores[np.maximum(at, 0)].tolist()
    for j in np.flatnonzero(at < 0).tolist():
        vals[j] = None
    return vals


class CandidateList(list[Candidate]):
    """Candidates that also carry each document's row in the retriever's row ``space``
    (``rows[j]`` is candidate ``j``'s), so the feature batch needs no id lookups."""

    space: RowSpace
    rows: NDArray[np.int64]


def ranking_rows(
    ranked: Sequence[tuple[str, float]], sources: Sequence[Sequence[tuple[str, float]]]
) -> NDArray[np.int64] | None:
    """The rows of ``ranked``'s documents, taken from the rankings it was made of where
    they carry rows (:class:`matcher.fusion.RankedRows`); None when a document is in none.

    Reading them from a few hundred pairs at hand beats looking each id up in the space's
    table, which the dense scan before has pushed out of the CPU caches."""
    carried = [s for s in sources if isinstance(s, RankedRows)]
    for s in carried:
        if s is ranked:
            return s.rows
    lookup: dict[str, int] = {}
    for s in reversed(carried):  # the first source wins (a document has one row anyway)
        lookup.update(zip([d for d, _ in s], s.rows.tolist(), strict=True))
    found = list(map(lookup.get, [d for d, _ in ranked]))
    return None if None in found else np.array(found, dtype=np.int64)


def ranked_candidates(
    ranked: Sequence[tuple[str, float]],
    space: RowSpace,
    dense: tuple[Hits, NDArray[np.int64]],
    lexical: tuple[Hits, NDArray[np.int64] | None] | None,
    english: tuple[Hits, NDArray[np.int64] | None] | None,
    ranked_rows: NDArray[np.int64] | None = None,
) -> CandidateList | None:
    """:func:`matcher.fusion.candidates` over rows: each source given with its documents'
    rows in ``space`` (``ranked_rows``: the ranked documents' rows, when known). None when
    a ranked document or a source has no rows (the caller falls back)."""
    if (lexical is not None and lexical[1] is None) or (english is not None and english[1] is None):
        return None
    ids = [d for d, _ in ranked]
    if ranked_rows is None:
        found = list(map(space.row_of.get, ids))
        if None in found:
            return None
        ranked_rows = np.array(found, dtype=np.int64)
    d_hits, d_rows = dense
    d_at = _positions(ranked_rows, d_rows)
    dense_v = _values(d_hits.scores, d_at)
    chunks: list[int] = (
        [0] * len(ranked)
        if d_hits.chunks is None or len(d_hits.chunks) == 0
        else np.where(d_at >= 0, d_hits.chunks[np.maximum(d_at, 0)], 0).astype(np.int64).tolist()
    )
    lex_v: list[float | None] = [None] * len(ranked)
    if lexical is not None and lexical[1] is not None:
        lex_v = _values(lexical[0].scores, _positions(ranked_rows, lexical[1]))
    en_v: list[float | None] = [None] * len(ranked)
    if english is not None and english[1] is not None:
        en_v = _values(english[0].scores, _positions(ranked_rows, english[1]))
    scores = [float(v) for _, v in ranked]
    make = partial(tuple.__new__, Candidate)  # the fields in order, without Python-level __new__
    out = CandidateList(map(make, zip(ids, scores, dense_v, lex_v, chunks, en_v, strict=True)))
    out.space, out.rows = space, ranked_rows
    return out
