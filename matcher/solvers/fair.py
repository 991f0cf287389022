"""Fair pairing: maximise the worst-off pair's affinity first, then the total.

Among the assignments with the best coverage (same number of pairs and of enterprises with a
partner as the plain solver), find the largest threshold ``t`` such that using only edges with
affinity >= ``t`` still reaches that coverage (binary search over the distinct edge scores,
each probe a max flow), then solve the ordinary min-cost flow on the edges >= ``t``. The
result maximises the minimum affinity of any solver-chosen pair (the bottleneck; for k = 1 this
is the worst-off enterprise's affinity), then total affinity. Locked pairs are staff decisions
and do not bound ``t``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from matcher.solvers.base import PairingSolver
from matcher.solvers.flow import coverage, solve_flow
from matcher.solvers.problem import BoolArray, Prepared


class FairSolver(PairingSolver):
    """Max-min (bottleneck) affinity, then max total affinity, at maximal coverage."""

    name: ClassVar[str] = "fair"

    def _select(self, prep: Prepared) -> tuple[BoolArray, float | None, dict[str, float]]:
        usable = prep.usable
        if not usable.any():
            return np.zeros(len(usable), bool), None, {"probes": 0.0}
        target = coverage(prep, usable)
        if target[0] == 0:
            return np.zeros(len(usable), bool), None, {"probes": 0.0}
        values = np.unique(prep.scores[usable])
        # Invariant: values[lo] is feasible; values[hi] is infeasible (hi == len: sentinel).
        lo, hi, probes = 0, len(values), 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            probes += 1
            if coverage(prep, usable & (prep.scores >= values[mid])) == target:
                lo = mid
            else:
                hi = mid
        t = float(values[lo])
        res = solve_flow(
            prep, usable & (prep.scores >= t), prep.weights, cost_units=self.cost_units
        )
        return res.chosen, t, {"cost_scale": res.scale, "probes": float(probes)}
