"""Shared behaviour of rankers: scikit-learn estimators over the named feature matrix.

A ranker maps a feature matrix ``X`` (n_pairs, n_features) in
:data:`matcher.features.FEATURE_NAMES` order to one score per row. Scores are computed row by
row (elementwise product then a sum over the feature axis), so a pair's score never depends
on which other pairs are in the batch: the guarantee behind ``Recommender.score_pairs``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator

from matcher.features import FEATURE_NAMES

FORMAT = "duijie.ranker"
FORMAT_VERSION = 1


def _json_safe(v: Any) -> Any:
    """NaN/inf (e.g. an undefined AUC) become null: the manifest is strict JSON."""
    if isinstance(v, float | np.floating) and not np.isfinite(v):
        return None
    return v.item() if isinstance(v, np.generic) else v


def check_X(X: ArrayLike, n_features: int = len(FEATURE_NAMES)) -> NDArray[np.float64]:
    """Validate a feature matrix: 2-D, finite, ``n_features`` columns, as float64."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != n_features:
        raise ValueError(f"X must have shape (n, {n_features}); got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("X contains NaN or infinite values")
    return arr


def top_k(
    scores: ArrayLike, k: int | None = None, mask: ArrayLike | None = None
) -> NDArray[np.int64]:
    """Indices of the k best scores, best first; ties broken by the lower index.

    Parameters
    ----------
    scores : array of float, shape (n,)
    k : int or None (all)
    mask : optional array of bool, shape (n,); True = excluded (never returned).

    Returns
    -------
    ndarray of int64, shape (min(k, n_allowed),)
    """
    s = np.asarray(scores, dtype=np.float64)
    idx = np.arange(s.shape[0], dtype=np.int64)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != s.shape:
            raise ValueError(f"mask shape {m.shape} != scores shape {s.shape}")
        idx = idx[~m]
    order = idx[np.lexsort((idx, -s[idx]))]
    return order if k is None else order[: max(int(k), 0)]


class BaseRanker(BaseEstimator):  # type: ignore[misc]
    """Base class: subclasses implement ``fit``, ``contributions`` and ``_state``."""

    name: str = "base"

    def contributions(self, X: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Per-feature contributions to the score.

        Returns
        -------
        (C, bias) : C of shape (n, n_features), bias of shape (n,);
            ``C.sum(axis=1) + bias == decision_function(X)``.
        """
        raise NotImplementedError

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """Score of each row, shape (n,), float64 (higher = better match)."""
        c, bias = self.contributions(X)
        return np.asarray(c.sum(axis=1) + bias, dtype=np.float64)

    def rank(
        self, X: ArrayLike, k: int | None = None, mask: ArrayLike | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Top-k rows (masked rows never returned) and their scores, best first."""
        scores = self.decision_function(X)
        idx = top_k(scores, k, mask)
        return idx, scores[idx]

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def to_dict(self, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """A JSON-serialisable manifest: format, ranker name, params, feature names, learned
        state, library versions (no pickle) and free ``metadata`` (e.g. held-out metrics)."""
        import sklearn

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "ranker": self.name,
            "params": self.get_params(deep=False),
            "feature_names": list(FEATURE_NAMES),
            "state": self._state(),
            "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__},
            "metadata": {k: _json_safe(v) for k, v in (metadata or {}).items()},
        }

    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` (atomically); returns the path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        text = json.dumps(self.to_dict(metadata), ensure_ascii=False, indent=2, allow_nan=False)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
        return p

    @classmethod
    def from_dict(cls, manifest: dict[str, Any], *, source: str = "<dict>") -> BaseRanker:
        """Rebuild a ranker from :meth:`to_dict` output; ``ValueError`` naming ``source`` if
        the manifest is not a ranker of this class or its feature names differ."""
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{source}: not a {FORMAT} v{FORMAT_VERSION} manifest "
                f"(format={manifest.get('format')!r}, version={manifest.get('format_version')!r})"
            )
        if manifest.get("ranker") != cls.name:
            raise ValueError(f"{source}: ranker {manifest.get('ranker')!r}, expected {cls.name!r}")
        if list(manifest.get("feature_names", [])) != list(FEATURE_NAMES):
            raise ValueError(
                f"{source}: feature names {manifest.get('feature_names')} differ from "
                f"{list(FEATURE_NAMES)}; retrain the ranker"
            )
        try:
            obj = cls(**manifest["params"])
            obj._set_state(manifest["state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: corrupt ranker manifest: {exc}") from exc
        return obj

    @classmethod
    def load(cls, path: str | Path) -> BaseRanker:
        """Load a ranker saved by :meth:`save`; errors name the file."""
        p = Path(path)
        try:
            manifest = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{p}: cannot read ranker manifest: {exc}") from exc
        if not isinstance(manifest, dict):
            raise ValueError(f"{p}: ranker manifest must be a JSON object")
        return cls.from_dict(manifest, source=str(p))
