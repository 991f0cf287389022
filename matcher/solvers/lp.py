"""Reference pairing solver: the same lexicographic objective as linear programs (HiGHS).

The pairing constraint matrix is a network matrix (totally unimodular), so each LP has an
integral optimal vertex, and the optimal face of one stage is again an integral polytope; the
stages are therefore exact, with no integer costs and no rounding. Slower than the flow; it is
the ground truth in tests and in ``benchmarks/bench_pairing.py``.

Stages: (1) maximise the number of pairs; (2) if some enterprise can take a second partner,
maximise the enterprises with at least one, keeping (1); (3) maximise total affinity plus the
stability bonus, keeping (1) and (2).
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from matcher.errors import NoFeasibleAssignment
from matcher.solvers.base import PairingSolver
from matcher.solvers.problem import BoolArray, Prepared

logger = logging.getLogger(__name__)

_TOL = 1e-6


class LPSolver(PairingSolver):
    """Exact reference via ``scipy.optimize.linprog(method="highs")``."""

    name: ClassVar[str] = "lp"

    def _select(self, prep: Prepared) -> tuple[BoolArray, float | None, dict[str, float]]:
        chosen = np.zeros(len(prep.rows), bool)
        idx = np.flatnonzero(prep.usable)
        if len(idx) == 0 or prep.k_free.sum() == 0:
            return chosen, None, {}
        n_e, n_i, m = prep.n_e, prep.n_i, len(idx)
        first = ((prep.n_locked_e == 0) & (prep.k_free > 0)).astype(np.float64)
        rest = (prep.k_free - first).astype(np.float64)
        n_var = m + 2 * n_e
        ar = np.arange(n_e)
        # Flow conservation per enterprise: sum_j x_ij - y_i - z_i = 0.
        a_eq = sp.csr_matrix(
            (
                np.concatenate([np.ones(m), -np.ones(2 * n_e)]),
                (np.concatenate([prep.rows[idx], ar, ar]), np.arange(n_var)),
            ),
            shape=(n_e, n_var),
        )
        a_cap = sp.csr_matrix((np.ones(m), (prep.cols[idx], np.arange(m))), shape=(n_i, n_var))
        b_cap = prep.cap_free.astype(np.float64)
        bounds = np.column_stack([np.zeros(n_var), np.concatenate([np.ones(m), first, rest])])
        c_pairs = np.concatenate([np.ones(m), np.zeros(2 * n_e)])
        c_first = np.concatenate([np.zeros(m), np.ones(n_e), np.zeros(n_e)])
        c_weight = np.concatenate([prep.weights[idx], np.zeros(2 * n_e)])

        a_ub, b_ub = a_cap, b_cap
        pairs = self._stage(-c_pairs, a_ub, b_ub, a_eq, bounds)[1]
        tiered = bool((rest > 0).any())
        a_ub = sp.vstack([a_ub, sp.csr_matrix(-c_pairs)])
        b_ub = np.append(b_ub, -(pairs - _TOL))
        n_first = float("nan")
        if tiered:
            n_first = self._stage(-c_first, a_ub, b_ub, a_eq, bounds)[1]
            a_ub = sp.vstack([a_ub, sp.csr_matrix(-c_first)])
            b_ub = np.append(b_ub, -(n_first - _TOL))
        x, value = self._stage(-c_weight, a_ub, b_ub, a_eq, bounds)
        xe = x[:m]
        frac = float(np.abs(xe - np.rint(xe)).max())
        if frac > 1e-5:
            logger.warning("LP solution is fractional (max distance to integer %.2g)", frac)
        chosen[idx[xe > 0.5]] = True
        return chosen, None, {"lp_pairs": pairs, "lp_first": n_first, "lp_objective": value,
                              "lp_max_fraction": frac}  # fmt: skip

    @staticmethod
    def _stage(
        c: np.ndarray, a_ub: sp.spmatrix, b_ub: np.ndarray, a_eq: sp.spmatrix, bounds: np.ndarray
    ) -> tuple[np.ndarray, float]:
        res = linprog(
            c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=np.zeros(a_eq.shape[0]), bounds=bounds,
            method="highs",
        )  # fmt: skip
        if res.status != 0:
            raise NoFeasibleAssignment(f"HiGHS failed: {res.message}")
        return np.asarray(res.x), float(-res.fun)
