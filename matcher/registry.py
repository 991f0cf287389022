"""Components chosen by name: rankers and pairing solvers.

Entries are ``"module:Class"`` strings imported on first use, so this module imports nothing
heavy and components register without circular imports (add a line to :data:`RANKERS` or
:data:`SOLVERS`). Unknown names raise :class:`~matcher.errors.InvalidParameter` (a
``ValueError``) listing the valid ones.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matcher.errors import InvalidParameter

if TYPE_CHECKING:
    from matcher.solvers.base import PairingSolver

logger = logging.getLogger(__name__)

RANKERS: dict[str, str] = {
    "scoring": "matcher.rankers.scoring:ScoringRanker",
    "logistic": "matcher.rankers.learned:LogisticRanker",
}
"""Ranker name -> "module:Class"."""

SOLVERS: dict[str, str] = {
    "mincostflow": "matcher.solvers.mincostflow:MinCostFlowSolver",
    "fair": "matcher.solvers.fair:FairSolver",
    "lp": "matcher.solvers.lp:LPSolver",
}
"""Pairing solver name -> "module:Class" (every class shares one constructor and
``solve(problem)``; see :mod:`matcher.solvers`)."""


def _resolve(table: dict[str, str], kind: str, name: str) -> Any:
    try:
        target = table[name]
    except KeyError:
        raise InvalidParameter(f"unknown {kind} {name!r}; valid: {sorted(table)}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def ranker_class(name: str) -> type:
    """The ranker class registered under ``name``."""
    return _resolve(RANKERS, "ranker", name)  # type: ignore[no-any-return]


def get_ranker(name: str, **params: Any) -> Any:
    """A new ranker ``name`` constructed with keyword ``params``."""
    return ranker_class(name)(**params)


def load_ranker(path: str | Path) -> Any:
    """Load a saved ranker manifest (JSON), dispatching on its ``"ranker"`` field."""
    p = Path(path)
    try:
        name = json.loads(p.read_text(encoding="utf-8")).get("ranker")
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise ValueError(f"{p}: cannot read ranker manifest: {exc}") from exc
    return ranker_class(str(name)).load(p)  # type: ignore[attr-defined]


def ranker_or_default(path: str | Path | None) -> Any:
    """The saved ranker at ``path`` if the file exists, else the default ``ScoringRanker``.

    A file that exists but cannot be loaded raises ``ValueError`` (a broken model must not
    be silently replaced by the default).
    """
    if path is not None and Path(path).is_file():
        return load_ranker(path)
    logger.info("no learned ranker at %s: using the default scoring", path)
    return get_ranker("scoring")


def solver_class(name: str) -> type[PairingSolver]:
    """The pairing solver class registered under ``name``."""
    return _resolve(SOLVERS, "solver", name)  # type: ignore[no-any-return]


def get_solver(name: str, **params: Any) -> PairingSolver:
    """A new pairing solver ``name`` constructed with keyword ``params``.

    >>> get_solver("mincostflow", n_alternates=3)   # or "fair", "lp"
    """
    return solver_class(name)(**params)
