"""Dense pseudo-relevance feedback (Rocchio) for :class:`matcher.retrieval.HybridRetriever`:
which queries are keyword lists, the expanded query vectors, and the pool of documents the
expanded query can be scored on without a second search over the whole collection."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.fusion import NeighbourGraph
from matcher.protocols import Hits

# an ASCII comma between two ASCII letters or digits is part of a term ("Yb,Er", "1,2-")
_LIST_SEPARATOR = re.compile(r"[，、;；]|(?<![A-Za-z0-9]),|,(?![A-Za-z0-9])")
_TERMINATOR = re.compile(r"[。！？!?]")
#: Longest item of a list separated by 、 only: 、 also enumerates inside a title's phrase
#: ("材料的制备、表征及光学特性"), whose items are longer than terms ("焊接、变形、反变形").
ENUMERATION_TERM_CHARS = 8


def is_keyword_list(text: str, *, max_term_chars: int = 20) -> bool:
    """Whether ``text`` is a list of terms ("搅拌摩擦焊，焊接变形，反变形") rather than a
    sentence or a title: at least two separated items, each at most ``max_term_chars``
    characters (:data:`ENUMERATION_TERM_CHARS` when 、 is the only separator), and no
    sentence terminator."""
    if _TERMINATOR.search(text):
        return False
    seps = set(_LIST_SEPARATOR.findall(text))
    limit = min(max_term_chars, ENUMERATION_TERM_CHARS) if seps == {"、"} else max_term_chars
    items = list_items(text)
    return len(items) >= 2 and all(0 < len(t) <= limit for t in items)


def list_items(text: str) -> list[str]:
    """The items of a keyword list, as :func:`is_keyword_list` separates them (stripped)."""
    return [t.strip() for t in _LIST_SEPARATOR.split(text)]


class HeadHits(NamedTuple):
    """The first documents of a search result (a :class:`~matcher.protocols.Hits`)."""

    ids: Sequence[str]
    scores: NDArray[np.float32]
    chunks: NDArray[np.int32] | None
    rows: NDArray[np.int64] | None = None


def head_hits(hits: Hits, k: int) -> Hits:
    """The first ``k`` documents of ``hits`` (with their rows, when it has them)."""
    chunks = None if hits.chunks is None else hits.chunks[:k]
    rows = getattr(hits, "rows", None)
    if rows is not None:
        return HeadHits(hits.ids[:k], hits.scores[:k], chunks, rows[:k])
    return HeadHits(list(hits.ids[:k]), hits.scores[:k], chunks)


def expand_queries(
    qvecs: NDArray[np.float32],
    first: Sequence[Sequence[tuple[str, float]]],
    counts: Sequence[int],
    row_of: Mapping[str, int],
    doc_vectors: NDArray[np.float32] | None,
    weight: float,
) -> tuple[NDArray[np.float32], list[list[str]]]:
    """``q' = normalise(q + weight * mean(v_top))`` over each query's first ``counts[i]``
    documents of its first fused ranking ``first[i]`` (those with a vector).

    Returns
    -------
    expanded : ndarray of float32, shape (n, d), C-contiguous
    feedback : the feedback document ids of each query
    """
    vecs = np.asarray(doc_vectors, dtype=np.float32)
    expanded = qvecs.copy()
    feedback: list[list[str]] = []
    for i, (fused, n) in enumerate(zip(first, counts, strict=True)):
        top = [d for d, _ in fused[:n] if d in row_of]
        feedback.append(top)
        if top:
            expanded[i] += weight * vecs[[row_of[d] for d in top]].mean(axis=0)
    norms = np.linalg.norm(expanded, axis=1, keepdims=True)
    expanded /= np.maximum(norms, 1e-12)
    return np.ascontiguousarray(expanded, dtype=np.float32), feedback


def feedback_pool(
    feedback: Sequence[str],
    dense: Hits,
    lexical: Hits | None,
    graph: NeighbourGraph | None,
    graph_rows: Mapping[str, int] | None,
) -> list[str]:
    """Documents an expanded query is scored on: the (deep) first dense list, the lexical
    list, the feedback documents and their graph neighbours (the ones feedback pulls up)."""
    pool = dict.fromkeys(dense.ids)
    if lexical is not None:
        pool.update(dict.fromkeys(lexical.ids))
    pool.update(dict.fromkeys(feedback))
    if graph is not None and graph_rows is not None:
        for d in feedback:
            r = graph_rows.get(d)
            if r is not None:
                pool.update(dict.fromkeys(graph.ids[j] for j in graph.indices[r] if j >= 0))
    return list(pool)
