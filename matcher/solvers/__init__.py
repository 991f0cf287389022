"""Campaign pairing solvers (结对子), chosen by name from :data:`matcher.registry.SOLVERS`.

Solvers see only matrices (:class:`PairingProblem`); :class:`PairingEncoder` maps external
ids to rows and decodes results. All solvers share one constructor and ``solve(problem)``.

>>> solver = get_solver("mincostflow", n_alternates=3)   # or "fair", "lp"
"""

from __future__ import annotations

from matcher.registry import SOLVERS, get_solver
from matcher.solvers.base import PairingSolver
from matcher.solvers.encoding import PairingEncoder
from matcher.solvers.fair import FairSolver
from matcher.solvers.lp import LPSolver
from matcher.solvers.mincostflow import MinCostFlowSolver
from matcher.solvers.problem import PairingProblem
from matcher.solvers.results import (
    Alternate,
    Assignment,
    Churn,
    LockCode,
    LockConflict,
    Pair,
    PairingSolution,
    SolveStatus,
    Uncovered,
    UncoveredCode,
)

__all__ = [
    "SOLVERS",
    "Alternate",
    "Assignment",
    "Churn",
    "FairSolver",
    "LPSolver",
    "LockCode",
    "LockConflict",
    "MinCostFlowSolver",
    "Pair",
    "PairingEncoder",
    "PairingProblem",
    "PairingSolution",
    "PairingSolver",
    "UncoveredCode",
    "SolveStatus",
    "Uncovered",
    "get_solver",
]
