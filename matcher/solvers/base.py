"""The shared solver skeleton: validation, lock checks, alternates, diagnosis and churn.

Every pairing solver subclasses :class:`PairingSolver` and implements only
:meth:`PairingSolver._select` (which usable edges to add to the locked pairs), so all of
them report results the same way.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from matcher.errors import InvalidParameter
from matcher.solvers.diagnosis import diagnose
from matcher.solvers.problem import BoolArray, PairingProblem, Prepared, prepare
from matcher.solvers.results import (
    Churn,
    LockCode,
    LockConflict,
    PairingSolution,
    SolveStatus,
    format_reason,
)

logger = logging.getLogger(__name__)


class PairingSolver(ABC):
    """Base class of the campaign pairing solvers.

    Parameters
    ----------
    n_alternates : int
        Alternates reported per enterprise (0 disables them).
    cost_units : int
        Integer cost units the affinity span is mapped to by the flow solvers (upper bound;
        lowered automatically to stay inside int64).
    """

    name: ClassVar[str] = "base"

    def __init__(self, *, n_alternates: int = 3, cost_units: int = 10**9) -> None:
        self.n_alternates = n_alternates
        self.cost_units = cost_units

    def _validate_params(self) -> None:
        if not isinstance(self.n_alternates, int | np.integer) or self.n_alternates < 0:
            raise InvalidParameter(f"n_alternates must be an int >= 0; got {self.n_alternates!r}")
        if not isinstance(self.cost_units, int | np.integer) or self.cost_units < 1:
            raise InvalidParameter(f"cost_units must be an int >= 1; got {self.cost_units!r}")

    def solve(self, problem: PairingProblem) -> PairingSolution:
        """Solve ``problem``: locked pairs plus the best selection of usable edges.

        Returns
        -------
        PairingSolution
            INFEASIBLE (with ``lock_conflicts``, no pairs) if a lock cannot be honoured;
            otherwise OPTIMAL, or PARTIAL with every under-served enterprise in ``uncovered``.
        """
        self._validate_params()
        t0 = time.perf_counter()
        prep = prepare(problem)
        t_prep = time.perf_counter() - t0
        conflicts = lock_conflicts(prep)
        if conflicts:
            logger.warning("%d locked pairs cannot be honoured", len(conflicts))
            empty_i = np.zeros(0, np.int64)
            return PairingSolution(
                status=SolveStatus.INFEASIBLE,
                solver=self.name,
                rows=empty_i,
                cols=empty_i,
                scores=np.zeros(0),
                locked=np.zeros(0, bool),
                objective=0.0,
                alt_rows=empty_i,
                alt_cols=empty_i,
                alt_scores=np.zeros(0),
                alt_spare=np.zeros(0, bool),
                lock_conflicts=conflicts,
            )
        t1 = time.perf_counter()
        chosen, threshold, stats = self._select(prep)
        stats = {"prepare_s": t_prep, "select_s": time.perf_counter() - t1, **stats}
        return assemble(prep, chosen, self.name, self.n_alternates, threshold, stats)

    @abstractmethod
    def _select(self, prep: Prepared) -> tuple[BoolArray, float | None, dict[str, float]]:
        """Pick usable edges. Returns (chosen mask over edges, fair threshold, stats)."""


def lock_conflicts(prep: Prepared) -> tuple[LockConflict, ...]:
    """Every locked pair that is forbidden, ineligible, or over an institute's capacity or an
    enterprise's k (all locks of an over-full institute / enterprise are listed)."""
    out: list[LockConflict] = []
    lk = np.flatnonzero(prep.locked)
    over_cap = prep.n_locked_i > prep.capacity
    over_k = prep.n_locked_e > prep.k
    for e in lk.tolist():
        i, j = int(prep.rows[e]), int(prep.cols[e])
        if prep.forbidden[e]:
            out.append(_lock(i, j, LockCode.FORBIDDEN))
        if prep.excluded[e]:
            reasons = tuple(str(prep.reasons[e]).split(","))
            out.append(_lock(i, j, LockCode.INELIGIBLE, reasons))
        if over_cap[j]:
            out.append(_lock(i, j, LockCode.OVER_CAPACITY))
        if over_k[i]:
            out.append(_lock(i, j, LockCode.OVER_K))
    return tuple(out)


def _lock(i: int, j: int, code: LockCode, reasons: tuple[str, ...] = ()) -> LockConflict:
    return LockConflict(i, j, code, format_reason(code, reasons=reasons), reasons)


def churn(prep: Prepared, chosen_all: BoolArray) -> Churn | None:
    """Kept / changed / new / dropped pairs against ``prep.previous_pairs`` (see
    :class:`~matcher.solvers.results.Churn`); None when there was no previous campaign."""
    prev = prep.previous_pairs
    if len(prev) == 0 and prep.previous_unmapped == 0:
        return None
    n_e = prep.n_e
    kept_e = np.bincount(prep.rows[chosen_all & prep.previous], minlength=n_e)
    new_e = np.bincount(prep.rows[chosen_all], minlength=n_e) - kept_e
    old_e = np.bincount(prev[:, 0], minlength=n_e) - kept_e
    changed_e = np.minimum(new_e, old_e)
    return Churn(
        kept=int(kept_e.sum()),
        changed=int(changed_e.sum()),
        new=int((new_e - changed_e).sum()),
        dropped=int((old_e - changed_e).sum()) + prep.previous_unmapped,
    )


def assemble(
    prep: Prepared,
    chosen: BoolArray,
    solver: str,
    n_alternates: int,
    threshold: float | None,
    stats: dict[str, float],
) -> PairingSolution:
    """Build the solution: pairs, alternates, diagnosis, churn and status."""
    if (chosen & ~prep.usable).any():
        # A solver bug, not a user error: never return an edge that breaks a hard rule.
        raise RuntimeError(f"solver {solver!r} chose an unusable edge")
    final = chosen | prep.locked
    load_i = np.bincount(prep.cols[final], minlength=prep.n_i)
    load_e = np.bincount(prep.rows[final], minlength=prep.n_e)
    if (load_i > prep.capacity).any() or (load_e > prep.k).any():
        raise RuntimeError(f"solver {solver!r} exceeded a capacity or k")

    # Alternates: usable, unassigned edges, best first within each row (edges are sorted by
    # row then descending score, so the rank within a row is a running count).
    alt = np.flatnonzero(prep.usable & ~final)
    if n_alternates > 0 and len(alt):
        r = prep.rows[alt]
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        run = np.arange(len(alt)) - np.repeat(starts, np.diff(np.r_[starts, len(alt)]))
        alt = alt[run < n_alternates]
    else:
        alt = alt[:0]

    uncovered = diagnose(prep, final, load_i)
    status = SolveStatus.PARTIAL if uncovered else SolveStatus.OPTIMAL
    sel = np.flatnonzero(final)
    return PairingSolution(
        status=status,
        solver=solver,
        rows=prep.rows[sel],
        cols=prep.cols[sel],
        scores=prep.scores[sel],
        locked=prep.locked[sel],
        objective=float(prep.scores[sel].sum()),
        alt_rows=prep.rows[alt],
        alt_cols=prep.cols[alt],
        alt_scores=prep.scores[alt],
        alt_spare=load_i[prep.cols[alt]] < prep.capacity[prep.cols[alt]],
        uncovered=uncovered,
        churn=churn(prep, final),
        threshold=threshold,
        stats=stats,
    )
