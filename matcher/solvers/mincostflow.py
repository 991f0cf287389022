"""The default pairing solver: one min-cost flow over the sparse candidate graph."""

from __future__ import annotations

from typing import ClassVar

from matcher.solvers.base import PairingSolver
from matcher.solvers.flow import solve_flow
from matcher.solvers.problem import BoolArray, Prepared


class MinCostFlowSolver(PairingSolver):
    """Maximise coverage, then total affinity (plus the stability bonus).

    See :mod:`matcher.solvers.flow` for the network and the priority order. Build and solve
    are vectorised (``add_arcs_with_capacity_and_unit_cost`` on numpy arrays).
    """

    name: ClassVar[str] = "mincostflow"

    def _select(self, prep: Prepared) -> tuple[BoolArray, float | None, dict[str, float]]:
        res = solve_flow(prep, prep.usable, prep.weights, cost_units=self.cost_units)
        return res.chosen, None, {"cost_scale": res.scale, "pairs": float(res.n_pairs)}
