"""Parameter checks of :class:`matcher.retrieval.HybridRetriever`, run at every call (the
scikit-learn convention: ``__init__`` stores, the call validates)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from matcher.errors import InvalidParameter
from matcher.fusion import FUSIONS

if TYPE_CHECKING:
    from matcher.retrieval import HybridRetriever


#: The constructor parameters of :class:`~matcher.retrieval.HybridRetriever`, in order.
PARAMETERS: tuple[str, ...] = (
    "encoder",
    "dense",
    "lexical",
    "fusion",
    "rrf_k",
    "dense_weight",
    "lexical_weight",
    "depth",
    "prf_docs",
    "keyword_prf_docs",
    "prf_weight",
    "prf_rescore",
    "prf_pool",
    "doc_ids",
    "doc_vectors",
    "graph",
    "graph_weight",
    "graph_neighbors",
    "english_encoder",
    "english_dense",
    "english_weight",
    "keyword_graph_weight",
    "head_tolerance",
    "head_max",
    "near_tolerance",
    "near_slack",
    "near_rank",
    "keyword_lexical_weight",
    "expander",
)


def validate_retriever(r: HybridRetriever) -> None:
    """Raise :class:`~matcher.errors.InvalidParameter` naming the first invalid parameter."""
    if r.fusion not in FUSIONS:
        raise InvalidParameter(f"fusion must be one of {list(FUSIONS)}, got {r.fusion!r}")
    if r.rrf_k <= 0:
        raise InvalidParameter(f"rrf_k must be > 0, got {r.rrf_k}")
    for name in (
        "dense_weight",
        "lexical_weight",
        "prf_weight",
        "graph_weight",
        "english_weight",
    ):
        if getattr(r, name) < 0:
            raise InvalidParameter(f"{name} must be >= 0, got {getattr(r, name)}")
    for name in ("keyword_graph_weight", "keyword_lexical_weight"):
        value = getattr(r, name)
        if value is not None and value < 0:
            raise InvalidParameter(f"{name} must be >= 0, got {value}")
    if r.depth < 1:
        raise InvalidParameter(f"depth must be >= 1, got {r.depth}")
    if r.prf_docs < 0 or r.keyword_prf_docs < 0:
        raise InvalidParameter(
            f"prf_docs and keyword_prf_docs must be >= 0, got {r.prf_docs}, {r.keyword_prf_docs}"
        )
    if r.prf_pool < 1:
        raise InvalidParameter(f"prf_pool must be >= 1, got {r.prf_pool}")
    if r.graph_neighbors < 1:
        raise InvalidParameter(f"graph_neighbors must be >= 1, got {r.graph_neighbors}")
    if r._uses_prf():
        if r.doc_ids is None or r.doc_vectors is None:
            raise InvalidParameter("prf_docs > 0 needs doc_ids and doc_vectors")
        if np.shape(r.doc_vectors)[0] != len(r.doc_ids):
            raise InvalidParameter(
                f"doc_vectors has {np.shape(r.doc_vectors)[0]} rows for {len(r.doc_ids)} doc_ids"
            )
    if r.head_tolerance is not None and r.head_tolerance < 0:
        raise InvalidParameter(f"head_tolerance must be >= 0, got {r.head_tolerance}")
    if r.head_max < 1:
        raise InvalidParameter(f"head_max must be >= 1, got {r.head_max}")
    near = (r.near_tolerance, r.near_slack, r.near_rank)
    if (r.near_tolerance or 0.0) < 0 or r.near_slack < 0 or r.near_rank < 1:
        raise InvalidParameter(
            f"near_tolerance, near_slack must be >= 0 and near_rank >= 1, got {near}"
        )
    if max(r.graph_weight, r.keyword_graph_weight or 0.0) > 0 and r.graph is None:
        raise InvalidParameter("graph_weight > 0 needs a graph")
