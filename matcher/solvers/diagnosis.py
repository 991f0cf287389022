"""Why an enterprise got fewer than k partners: one reason code per under-served enterprise.

Checked in this order, over the enterprise's candidate edges (locks count as assigned):

1. ``NO_CANDIDATE`` (无符合条件的候选): the matcher proposed no institute at all.
2. ``CONFLICT`` (候选均存在冲突或不符合资格): every candidate is forbidden or ineligible; the
   institutes and the eligibility reason codes are listed.
3. ``BELOW_FLOOR`` (候选匹配度均低于阈值): every allowed candidate is below the floor.
4. ``CAPACITY_EXHAUSTED`` (候选机构名额已满: X, Y): usable candidates exist but all are full —
   taken by pairs that score higher in the objective. After a max-coverage solve, a usable
   unassigned candidate with a free place cannot exist (it would extend the flow), so the
   named institutes are exactly the enterprise's usable, unassigned candidates.
5. ``INSUFFICIENT_CANDIDATES`` (符合条件的候选不足): it got every usable candidate and still
   fewer than k.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from matcher.solvers.problem import FORBIDDEN, BoolArray, Prepared
from matcher.solvers.results import Uncovered, UncoveredCode, format_reason


def diagnose(prep: Prepared, final: BoolArray, load_i: NDArray[np.int64]) -> tuple[Uncovered, ...]:
    """One :class:`Uncovered` per enterprise whose assigned count is below its k.

    Parameters
    ----------
    prep : Prepared
    final : bool array, shape (m,)
        Assigned edges, locks included.
    load_i : int array, shape (n_i,)
        Assigned count per institute.
    """
    got = np.bincount(prep.rows[final], minlength=prep.n_e)
    short = np.flatnonzero(got < prep.k)
    out: list[Uncovered] = []
    for i in short.tolist():
        lo, hi = int(prep.row_start[i]), int(prep.row_start[i + 1])
        sl = slice(lo, hi)
        cand = prep.is_candidate[sl]
        conflict = (prep.forbidden[sl] | prep.excluded[sl]) & cand
        allowed = cand & ~conflict
        usable_open = prep.usable[sl] & ~final[sl]
        cols = prep.cols[sl]
        wanted, n_got = int(prep.k[i]), int(got[i])
        best: float | None = None
        institutes: tuple[int, ...] = ()
        reasons: tuple[str, ...] = ()
        if not cand.any():
            code = UncoveredCode.NO_CANDIDATE
        elif not allowed.any():
            code = UncoveredCode.CONFLICT
            institutes = tuple(cols[conflict].tolist())
            codes: list[str] = []
            for e in np.flatnonzero(conflict):
                if prep.forbidden[lo + e]:
                    codes.append(FORBIDDEN)
                if prep.excluded[lo + e]:
                    codes.extend(str(prep.reasons[lo + e]).split(","))
            reasons = tuple(dict.fromkeys(codes))
        elif not prep.usable[sl].any() and (allowed & prep.below_floor[sl]).any():
            code = UncoveredCode.BELOW_FLOOR
            best = float(prep.scores[sl][allowed & prep.below_floor[sl]].max())
        elif usable_open.any():
            code = UncoveredCode.CAPACITY_EXHAUSTED
            full = cols[usable_open]
            # Only full institutes can be left unused by a max-coverage solve; keep the check
            # so a wrong message can never be produced.
            institutes = tuple(full[load_i[full] >= prep.capacity[full]].tolist())
        else:
            code = UncoveredCode.INSUFFICIENT_CANDIDATES
        labels = [f"#{j}" for j in institutes]
        msg = format_reason(
            code,
            institutes=labels,
            reasons=reasons,
            best_score=best,
            floor=prep.floor,
            wanted=wanted,
            got=n_got,
        )
        out.append(
            Uncovered(
                i,
                wanted,
                n_got,
                code,
                msg,
                institutes,
                reasons,
                best,
                prep.floor if best is not None else None,
            )
        )
    return tuple(out)
