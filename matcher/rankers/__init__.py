"""Rankers: scikit-learn-style estimators mapping (query, org) feature matrices to scores.

``ScoringRanker`` is the documented default (no training data); ``LogisticRanker`` learns
from staff decisions. Choose by name through :mod:`matcher.registry`.
"""

from __future__ import annotations

from matcher.rankers.base import BaseRanker, top_k
from matcher.rankers.learned import LogisticRanker, evaluate_ranker, train_with_holdout
from matcher.rankers.scoring import DEFAULT_WEIGHTS, ScoringRanker

__all__ = [
    "BaseRanker",
    "DEFAULT_WEIGHTS",
    "LogisticRanker",
    "ScoringRanker",
    "evaluate_ranker",
    "top_k",
    "train_with_holdout",
]
