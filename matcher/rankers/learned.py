"""Learned ranker: logistic regression over the named features, trained on staff decisions.

Staff approve (1) or reject (0) suggested pairs on shortlists; each decision is a labelled
feature vector. Logistic regression is chosen over gradient-boosted trees because decisions
are few (hundreds), the model must explain itself per feature (coefficient × standardised
value is an exact additive breakdown) and it saves as a handful of numbers in JSON — trees
would need their own serialisation and give no additive explanation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ndcg_score, roc_auc_score
from sklearn.model_selection import GroupShuffleSplit

from matcher.features import FEATURE_NAMES
from matcher.rankers.base import BaseRanker, check_X

logger = logging.getLogger(__name__)


class LogisticRanker(BaseRanker):
    """L2-regularised logistic regression on standardised features.

    Parameters
    ----------
    C : float > 0
        Inverse regularisation strength.
    class_weight : None or "balanced"
    max_iter : int
    random_state : int or None
        Passed to scikit-learn (the lbfgs solver is deterministic; kept for the shared
        invariants and for solvers that shuffle).

    Attributes
    ----------
    coef_ : ndarray of float64, shape (n_features,), in standardised units.
    intercept_ : float
    mean_, scale_ : ndarray of float64, shape (n_features,), the standardisation.
    feature_names_in_ : ndarray of str, shape (n_features,)
    """

    name = "logistic"

    def __init__(
        self,
        *,
        C: float = 1.0,
        class_weight: Literal["balanced"] | None = None,
        max_iter: int = 1000,
        random_state: int | None = None,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None, **fit_params: Any
    ) -> LogisticRanker:
        """Fit on labelled pairs. ``y`` is 1 (approved) / 0 (rejected), shape (n,)."""
        if not (isinstance(self.C, int | float) and self.C > 0):
            raise ValueError(f"C must be a positive number; got {self.C!r}")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced'; got {self.class_weight!r}")
        arr = check_X(X)
        labels = np.asarray(y).astype(int).ravel()
        if labels.shape[0] != arr.shape[0]:
            raise ValueError(f"y has {labels.shape[0]} labels for {arr.shape[0]} rows")
        if set(np.unique(labels).tolist()) != {0, 1}:
            raise ValueError("y must contain both approved (1) and rejected (0) decisions")
        self.mean_ = arr.mean(axis=0)
        scale = arr.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)  # constant features stay at 0
        model = LogisticRegression(
            C=float(self.C),
            class_weight=self.class_weight,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        model.fit((arr - self.mean_) / self.scale_, labels, sample_weight=sample_weight)
        self.coef_ = model.coef_.ravel().astype(np.float64)
        self.intercept_ = float(model.intercept_[0])
        self.feature_names_in_ = np.array(FEATURE_NAMES, dtype=object)
        self.n_features_in_ = arr.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("LogisticRanker is not fitted; call fit() or load()")

    def contributions(self, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-feature log-odds contributions ``coef · (x - mean) / scale`` and the intercept."""
        self._check_fitted()
        arr = check_X(X)
        c = (arr - self.mean_) / self.scale_ * self.coef_
        return c, np.full(arr.shape[0], self.intercept_, dtype=np.float64)

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Probability of approval, shape (n,)."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def _state(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        n = len(FEATURE_NAMES)
        arrays = {k: np.asarray(state[k], dtype=np.float64) for k in ("coef", "mean", "scale")}
        for k, a in arrays.items():
            if a.shape != (n,) or not np.isfinite(a).all():
                raise ValueError(f"{k} must be {n} finite numbers")
        self.coef_, self.mean_, self.scale_ = arrays["coef"], arrays["mean"], arrays["scale"]
        self.intercept_ = float(state["intercept"])
        self.feature_names_in_ = np.array(FEATURE_NAMES, dtype=object)
        self.n_features_in_ = n


def evaluate_ranker(
    ranker: BaseRanker,
    X: ArrayLike,
    y: ArrayLike,
    groups: Sequence[str] | ArrayLike,
    *,
    k: int = 10,
) -> dict[str, float]:
    """Held-out quality of a ranker on labelled pairs.

    Returns
    -------
    dict with "auc" (pooled ROC AUC; nan if one class only), f"ndcg@{k}" (mean over groups
    that have at least one approval and two pairs) and "n_pairs", "n_groups".
    """
    arr = check_X(X)
    labels = np.asarray(y).astype(int).ravel()
    g = np.asarray(groups)
    scores = ranker.decision_function(arr)
    auc = float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")
    ndcgs = []
    for key in np.unique(g):
        sel = g == key
        if sel.sum() >= 2 and labels[sel].any():
            ndcgs.append(ndcg_score(labels[sel][None, :], scores[sel][None, :], k=k))
    return {
        "auc": auc,
        f"ndcg@{k}": float(np.mean(ndcgs)) if ndcgs else float("nan"),
        "n_pairs": float(arr.shape[0]),
        "n_groups": float(len(np.unique(g))),
    }


def train_with_holdout(
    X: ArrayLike,
    y: ArrayLike,
    groups: Sequence[str] | ArrayLike,
    *,
    test_size: float = 0.25,
    random_state: int = 0,
    k: int = 10,
    **params: Any,
) -> tuple[LogisticRanker, dict[str, float]]:
    """Fit a :class:`LogisticRanker` on a split by query (no query on both sides), report the
    held-out metrics, then refit on everything (the returned model).

    Returns
    -------
    (ranker, metrics) : metrics are :func:`evaluate_ranker` on the held-out queries, keys
        prefixed "test_", plus the same for the baseline :class:`ScoringRanker` prefixed
        "baseline_", and "n_train"/"n_test". With a single query, or a training split with
        one class, only the final model is fitted and n_train/n_test are nan.
    """
    from matcher.rankers.scoring import ScoringRanker

    arr = check_X(X)
    labels = np.asarray(y).astype(int).ravel()
    g = np.asarray(groups)
    if g.shape[0] != arr.shape[0]:
        raise ValueError(f"groups has {g.shape[0]} entries for {arr.shape[0]} rows")
    final = LogisticRanker(random_state=random_state, **params).fit(arr, labels)
    metrics: dict[str, float] = {"n_train": float("nan"), "n_test": float("nan")}
    if len(np.unique(g)) < 2:
        logger.warning("one query only: no held-out evaluation")
        return final, metrics
    split = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
    train, test = next(split.split(arr, labels, g))
    if len(np.unique(labels[train])) < 2:
        logger.warning("the training split has one class only: no held-out evaluation")
        return final, metrics
    held = LogisticRanker(random_state=random_state, **params).fit(arr[train], labels[train])
    metrics = {"n_train": float(len(train)), "n_test": float(len(test))}
    test_m = evaluate_ranker(held, arr[test], labels[test], g[test], k=k)
    metrics.update({f"test_{k_}": v for k_, v in test_m.items()})
    base = evaluate_ranker(ScoringRanker(), arr[test], labels[test], g[test], k=k)
    metrics.update({f"baseline_{k_}": v for k_, v in base.items()})
    return final, metrics
