"""Reference pairing solver: the same lexicographic objective as linear programs (HiGHS).

The pairing constraint matrix is a network matrix (totally unimodular), so each LP has an
integral optimal vertex, and the optimal face of one stage is again an integral polytope; the
stages are therefore exact, with no integer costs and no rounding. Slower than the flow; it is
the ground truth in tests and in ``benchmarks/bench_pairing.py``.

First a transportation LP with every enterprise's demand as an equality: if it is feasible,
coverage is full and its optimum is the answer (one LP; 650k edges take ~45 s). Otherwise the
staged path: (1) maximise the number of pairs; (2) if some enterprise can take a second
partner, maximise the enterprises with at least one, keeping (1); (3) maximise total affinity
plus the stability bonus, keeping (1) and (2). The side constraints that fix earlier stages are
dense rows, which makes HiGHS much slower: use the staged path on small instances.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

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
        x_rows = sp.csr_matrix((np.ones(m), (prep.rows[idx], np.arange(m))), shape=(n_e, m))
        x_cols = sp.csr_matrix((np.ones(m), (prep.cols[idx], np.arange(m))), shape=(n_i, m))
        k_free = prep.k_free.astype(np.float64)
        cap_free = prep.cap_free.astype(np.float64)
        x_bounds = np.column_stack([np.zeros(m), np.ones(m)])
        # Full coverage first: a plain transportation LP with every enterprise's row sum
        # fixed (stages 1 and 2 are then implied). HiGHS is fast on it; only if it is
        # infeasible do we run the staged lexicographic LPs.
        n_first = float("nan")
        full = _linprog(-prep.weights[idx], x_cols, cap_free, (x_rows, k_free), x_bounds)
        if full.status == 0:
            x, value = np.asarray(full.x), float(-full.fun)
            pairs = float(k_free.sum())
        else:
            # Stage 1 over x only: max pairs s.t. row sums <= k, column sums <= capacity.
            pairs = self._stage(
                -np.ones(m), sp.vstack([x_rows, x_cols]), np.r_[k_free, cap_free], None, x_bounds
            )[1]
            x, value, n_first = self._lexicographic(prep, idx, pairs, x_rows, x_cols)
        xe = x[:m]
        frac = float(np.abs(xe - np.rint(xe)).max())
        if frac > 1e-5:
            logger.warning("LP solution is fractional (max distance to integer %.2g)", frac)
        chosen[idx[xe > 0.5]] = True
        return chosen, None, {"lp_pairs": pairs, "lp_first": n_first, "lp_objective": value,
                              "lp_max_fraction": frac}  # fmt: skip

    def _lexicographic(
        self,
        prep: Prepared,
        idx: np.ndarray,
        pairs: float,
        x_rows: sp.csr_matrix,
        x_cols: sp.csr_matrix,
    ) -> tuple[np.ndarray, float, float]:
        """Stages 2 and 3 when coverage is partial: per enterprise, split the demand into a
        first unit y_i and the rest z_i (sum_j x_ij = y_i + z_i) and fix the earlier optima
        with side constraints."""
        n_e, m = prep.n_e, len(idx)
        first = ((prep.n_locked_e == 0) & (prep.k_free > 0)).astype(np.float64)
        rest = (prep.k_free - first).astype(np.float64)
        eye = sp.identity(n_e, format="csr")
        a_eq = sp.hstack([x_rows, -eye, -eye]).tocsr()
        b_eq = np.zeros(n_e)
        a_ub = sp.hstack([x_cols, sp.csr_matrix((prep.n_i, 2 * n_e))]).tocsr()
        b_ub = prep.cap_free.astype(np.float64)
        bounds = np.column_stack([np.zeros(m + 2 * n_e), np.concatenate([np.ones(m), first, rest])])
        c_pairs = np.concatenate([np.ones(m), np.zeros(2 * n_e)])
        a_ub = sp.vstack([a_ub, sp.csr_matrix(-c_pairs)]).tocsr()
        b_ub = np.append(b_ub, -(pairs - _TOL))
        n_first = float("nan")
        if (rest > 0).any():
            c_first = np.concatenate([np.zeros(m), np.ones(n_e), np.zeros(n_e)])
            n_first = self._stage(-c_first, a_ub, b_ub, (a_eq, b_eq), bounds)[1]
            a_ub = sp.vstack([a_ub, sp.csr_matrix(-c_first)]).tocsr()
            b_ub = np.append(b_ub, -(n_first - _TOL))
        c_weight = np.concatenate([prep.weights[idx], np.zeros(2 * n_e)])
        x, value = self._stage(-c_weight, a_ub, b_ub, (a_eq, b_eq), bounds)
        return x, value, n_first

    @staticmethod
    def _stage(
        c: np.ndarray,
        a_ub: sp.spmatrix,
        b_ub: np.ndarray,
        eq: tuple[sp.spmatrix, np.ndarray] | None,
        bounds: np.ndarray,
    ) -> tuple[np.ndarray, float]:
        res = _linprog(c, a_ub, b_ub, eq, bounds)
        if res.status != 0:
            raise NoFeasibleAssignment(f"HiGHS failed: {res.message}")
        return np.asarray(res.x), float(-res.fun)


def _linprog(
    c: np.ndarray,
    a_ub: sp.spmatrix,
    b_ub: np.ndarray,
    eq: tuple[sp.spmatrix, np.ndarray] | None,
    bounds: np.ndarray,
) -> Any:
    a_eq, b_eq = eq if eq is not None else (None, None)
    return linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
