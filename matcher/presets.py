"""Named retriever configurations and the one way to build a retriever from a name.

The service, ``duijie eval retrieval`` and the benchmarks build :class:`HybridRetriever`
instances only through :func:`make_retriever` and the presets of :data:`RETRIEVAL_METHODS`;
what each preset measured is in ``docs/retrieval.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InvalidParameter
from matcher.expansion import make_expander
from matcher.fusion import NeighbourGraph, build_neighbour_graph
from matcher.protocols import DenseSearcher, LexicalSearcher, TextEncoder
from matcher.retrieval import HybridRetriever

#: Routed feedback and smoothing with the first-stage head kept: what the hybrid presets share.
_ROUTED: dict[str, object] = {
    "fusion": "zscore",
    "dense_weight": 2.0,
    "prf_docs": 1,
    "keyword_prf_docs": 3,
    "prf_weight": 0.5,
    "graph_weight": 3.0,
    "keyword_graph_weight": 0.0,
    "graph_neighbors": 10,
    "head_tolerance": 0.2,
    "english_weight": 2.0,
}

#: Feedback without a second search over the collection: the expanded query is scored on a
#: pool (the first dense search fetched three times as deep, the BM25 list, the feedback
#: documents' graph neighbours). The smallest pool whose CSL figures equal the second
#: search's: nDCG@10 on every task to 4 decimals and the cross-need benchmark (a 2x pool
#: gives the same nDCG@10 but per-organisation nDCG@10 0.4514 vs 0.4530; ``docs/retrieval.md``).
_POOLED: dict[str, object] = {"prf_rescore": True, "prf_pool": 3}

#: Bounded drops: a first-stage top-10 document whose score is within 0.6 * (f1 - f10) of the
#: best falls at most one place in the final ranking, so feedback and smoothing do not push
#: a near-exact match (a title's own abstract) down (``matcher.fusion.bound_drops``).
_NEAR: dict[str, object] = {"near_tolerance": 0.6, "near_slack": 1, "near_rank": 10}

#: Named retriever configurations (constructor parameters other than the resources). The
#: service and ``duijie eval retrieval`` build retrievers only through these names.
RETRIEVAL_METHODS: dict[str, dict[str, object]] = {
    # single sources
    "dense": {"lexical_weight": 0.0},
    "bm25": {"dense_weight": 0.0},
    # fusion only
    "rrf": {"fusion": "rrf", "rrf_k": 60.0},
    "weighted": {"fusion": "weighted", "dense_weight": 2.0},
    "zscore": {"fusion": "zscore", "dense_weight": 2.0},
    # z-score fusion + dense PRF + graph smoothing routed by query type (keyword lists: BM25
    # weight 1.5, their BM25 query expanded with 60 co-occurring corpus terms,
    # matcher.expansion), first-stage leaders kept at the head and near matches' drops
    # bounded, feedback scored on a pool (the default)
    "hybrid": {
        **_ROUTED,
        "keyword_lexical_weight": 1.5,
        **_POOLED,
        "keyword_expansion_terms": 60,
        "keyword_expansion_weight": 0.04,
        **_NEAR,
    },
    # the previous default: near matches' drops not bounded (title2abs 0.0008 lower,
    # title2disc 0.0007 higher)
    "hybrid-nonear": {
        **_ROUTED,
        "keyword_lexical_weight": 1.5,
        **_POOLED,
        "keyword_expansion_terms": 60,
        "keyword_expansion_weight": 0.04,
    },
    # an earlier default: the same without the expansion (kw2abs_nolex 0.012 lower)
    "hybrid-noexp": {**_ROUTED, "keyword_lexical_weight": 1.5, **_POOLED},
    # an earlier default: BM25 weight 1 for keyword lists too (kw2abs_nolex 0.0047 lower)
    "hybrid-kw1": dict(_ROUTED),
    # hybrid-search with bounded drops (measured before the pool and the expansion)
    "hybrid-near": {**_ROUTED, "keyword_lexical_weight": 1.5, **_NEAR},
    # an earlier default: one smoothing weight for every query, no head kept
    "hybrid-uniform": {
        "fusion": "zscore",
        "dense_weight": 2.0,
        "prf_docs": 1,
        "keyword_prf_docs": 2,
        "prf_weight": 0.5,
        "graph_weight": 1.0,
        "graph_neighbors": 10,
        "english_weight": 2.0,
    },
    # the same with half the smoothing over 5 neighbours (measured alternative)
    "hybrid-light": {
        "fusion": "zscore",
        "dense_weight": 2.0,
        "prf_docs": 1,
        "prf_weight": 0.5,
        "graph_weight": 0.5,
        "graph_neighbors": 5,
        "english_weight": 2.0,
    },
    # the default with the expanded query searched over the whole collection again (the
    # previous default: a second dense search per query)
    "hybrid-search": {**_ROUTED, "keyword_lexical_weight": 1.5},
}
DEFAULT_METHOD = "hybrid"


def make_retriever(
    method: str = DEFAULT_METHOD,
    *,
    encoder: TextEncoder,
    dense: DenseSearcher,
    lexical: LexicalSearcher | None = None,
    doc_ids: Sequence[str] | None = None,
    doc_vectors: NDArray[np.float32] | None = None,
    graph: NeighbourGraph | None = None,
    english_encoder: TextEncoder | None = None,
    english_dense: DenseSearcher | None = None,
    **overrides: object,
) -> HybridRetriever:
    """A :class:`HybridRetriever` configured by the preset ``method``.

    Parameters
    ----------
    method : str
        A key of :data:`RETRIEVAL_METHODS`.
    encoder, dense, lexical : see :class:`HybridRetriever`
    doc_ids, doc_vectors : optional
        Document vectors (normalised mean of chunk vectors), needed by presets with PRF or
        graph smoothing; the neighbour graph is built from them when ``graph`` is None.
    graph : NeighbourGraph, optional
        A precomputed graph (built here otherwise, ~1 s per 10k documents).
    english_encoder, english_dense : optional
        The English model and its dense searcher over the same documents (used by the
        ``hybrid`` presets for English queries only).
    **overrides
        Constructor parameters replacing the preset's. ``keyword_expansion_terms`` (> 0) and
        ``keyword_expansion_weight`` build the retriever's ``expander`` from ``lexical``
        (:func:`matcher.expansion.make_expander`; none when ``lexical`` has no term matrix).

    Returns
    -------
    HybridRetriever
    """
    if method not in RETRIEVAL_METHODS:
        raise InvalidParameter(
            f"unknown retrieval method {method!r}; valid: {sorted(RETRIEVAL_METHODS)}"
        )
    params: dict[str, object] = {**RETRIEVAL_METHODS[method], **overrides}
    n_terms = int(params.pop("keyword_expansion_terms", 0))  # type: ignore[call-overload]
    expansion_weight = float(params.pop("keyword_expansion_weight", 0.04))  # type: ignore[arg-type]
    if n_terms > 0 and "expander" not in params:
        params["expander"] = make_expander(lexical, n_terms=n_terms, weight=expansion_weight)
    weights = (params.get("graph_weight", 0.0), params.get("keyword_graph_weight", 0.0))
    needs_graph = any(float(w or 0.0) > 0 for w in weights)  # type: ignore[arg-type]
    if needs_graph and graph is None:
        if doc_ids is None or doc_vectors is None:
            raise InvalidParameter(f"method {method!r} needs doc_ids and doc_vectors")
        n_nb = int(params.get("graph_neighbors", 10))  # type: ignore[call-overload]
        graph = build_neighbour_graph(doc_ids, doc_vectors, n_nb)
    return HybridRetriever(
        encoder=encoder,
        dense=dense,
        lexical=lexical,
        doc_ids=doc_ids,
        doc_vectors=doc_vectors,
        graph=graph,
        english_encoder=english_encoder,
        english_dense=english_dense,
        **params,  # type: ignore[arg-type]
    )
