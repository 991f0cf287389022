"""Result types of the pairing solvers: status, reasons, churn and the solution itself.

Two layers, like the rest of the matcher: :class:`PairingSolution` speaks matrix rows and
columns (what solvers return); :class:`Assignment` speaks external ids (what
:meth:`~matcher.solvers.encoding.PairingEncoder.decode` returns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray


class SolveStatus(StrEnum):
    """Outcome of a pairing solve.

    OPTIMAL : every enterprise got its k partners and the objective is optimal.
    PARTIAL : the best partial assignment (coverage first, then affinity); see ``uncovered``.
    INFEASIBLE : a locked pair cannot be honoured; see ``lock_conflicts`` (no pairs returned).
    """

    OPTIMAL = "optimal"
    PARTIAL = "partial"
    INFEASIBLE = "infeasible"


class UncoveredCode(StrEnum):
    """Why an enterprise got fewer than k partners (checked in this order)."""

    NO_CANDIDATE = "no_candidate"
    CONFLICT = "conflict"
    BELOW_FLOOR = "below_floor"
    CAPACITY_EXHAUSTED = "capacity_exhausted"
    INSUFFICIENT_CANDIDATES = "insufficient_candidates"


class LockCode(StrEnum):
    """Why a locked pair cannot be honoured."""

    FORBIDDEN = "lock_forbidden"
    INELIGIBLE = "lock_ineligible"
    OVER_CAPACITY = "lock_over_capacity"
    OVER_K = "lock_over_k"


REASON_MESSAGES: dict[str, str] = {
    UncoveredCode.NO_CANDIDATE: "无符合条件的候选",
    UncoveredCode.CONFLICT: "候选均存在冲突或不符合资格",
    UncoveredCode.BELOW_FLOOR: "候选匹配度均低于阈值",
    UncoveredCode.CAPACITY_EXHAUSTED: "候选机构名额已满",
    UncoveredCode.INSUFFICIENT_CANDIDATES: "符合条件的候选不足",
    LockCode.FORBIDDEN: "锁定的配对被禁止",
    LockCode.INELIGIBLE: "锁定的配对不符合资格",
    LockCode.OVER_CAPACITY: "锁定的配对超出机构名额",
    LockCode.OVER_K: "锁定的配对超出企业所需数量",
}

_MAX_NAMED = 5


def name_list(names: list[str] | tuple[str, ...]) -> str:
    """Join institute names for a message: at most five, then ``等 N 家``."""
    shown = "、".join(names[:_MAX_NAMED])
    if len(names) > _MAX_NAMED:
        shown += f" 等 {len(names)} 家"
    return shown


def format_reason(
    code: str,
    *,
    institutes: list[str] | tuple[str, ...] = (),
    reasons: tuple[str, ...] = (),
    best_score: float | None = None,
    floor: float | None = None,
    wanted: int = 1,
    got: int = 0,
) -> str:
    """The Chinese message of a reason code, with its specifics filled in."""
    base = REASON_MESSAGES[code]
    if code == UncoveredCode.CONFLICT:
        detail = name_list(institutes)
        if reasons:
            detail += f" ({'，'.join(reasons)})"
        return f"{base}: {detail}"
    if code == UncoveredCode.BELOW_FLOOR and best_score is not None and floor is not None:
        return f"{base} (最高 {best_score:.3f} < {floor:.3f})"
    if code == UncoveredCode.CAPACITY_EXHAUSTED:
        return f"{base}: {name_list(institutes)}"
    if code == UncoveredCode.INSUFFICIENT_CANDIDATES:
        return f"{base}: 需要 {wanted} 家, 仅匹配 {got} 家"
    if code in (LockCode.INELIGIBLE,) and reasons:
        return f"{base} ({'，'.join(reasons)})"
    return base


@dataclass(frozen=True)
class Uncovered:
    """An enterprise with fewer than k partners, and why.

    enterprise : row index (matrix layer) or external id (decoded layer).
    wanted, got : k and the number of partners it received.
    code : the reason; message : its Chinese text, naming institutes where relevant.
    institutes : the institutes the reason is about (full ones for CAPACITY_EXHAUSTED,
        conflicting ones for CONFLICT), best first.
    reasons : eligibility reason codes behind a CONFLICT.
    """

    enterprise: int | str
    wanted: int
    got: int
    code: UncoveredCode
    message: str
    institutes: tuple[int, ...] | tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    best_score: float | None = None
    floor: float | None = None


@dataclass(frozen=True)
class LockConflict:
    """A locked pair that cannot be honoured."""

    enterprise: int | str
    institute: int | str
    code: LockCode
    message: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Churn:
    """Change against the previous campaign, counted in pairs per enterprise.

    For each enterprise with previous pairs P and new pairs N: kept = |P ∩ N|,
    changed = min(|P - N|, |N - P|) (a partner replaced by another), new = the rest of N - P,
    dropped = the rest of P - N (plus previous pairs whose ids no longer exist).
    """

    kept: int
    changed: int
    new: int
    dropped: int


@dataclass(frozen=True, eq=False)
class PairingSolution:
    """What a pairing solver returns, in matrix coordinates.

    rows, cols : int64 arrays of shape (p,), the assigned pairs (locked ones included),
        sorted by row then descending score.
    scores : float64 array (p,), their affinity; locked : bool array (p,).
    objective : sum of ``scores`` (raw affinity; the stability bonus is not included).
    alt_rows, alt_cols, alt_scores, alt_spare : per-enterprise alternates — the next-best
        usable institutes not assigned to it, at most ``n_alternates`` per enterprise, best
        first; ``alt_spare`` tells whether the institute still has a free place.
    threshold : fair mode's bottleneck threshold (min affinity of a solver-chosen edge), else
        None.
    stats : solver facts (cost scale, timings, flow counts) for logs and benchmarks.
    """

    status: SolveStatus
    solver: str
    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    scores: NDArray[np.float64]
    locked: NDArray[np.bool_]
    objective: float
    alt_rows: NDArray[np.int64]
    alt_cols: NDArray[np.int64]
    alt_scores: NDArray[np.float64]
    alt_spare: NDArray[np.bool_]
    uncovered: tuple[Uncovered, ...] = ()
    lock_conflicts: tuple[LockConflict, ...] = ()
    churn: Churn | None = None
    threshold: float | None = None
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        return int(len(self.rows))

    @property
    def min_affinity(self) -> float | None:
        """Lowest affinity among assigned pairs (None when nothing is assigned)."""
        return float(self.scores.min()) if len(self.scores) else None


class Pair(NamedTuple):
    """One assigned pair, in external ids (a NamedTuple: a large campaign decodes 10^4 of
    them, at half the cost of a frozen dataclass)."""

    enterprise: str
    institute: str
    score: float
    locked: bool = False


class Alternate(NamedTuple):
    """A next-best institute for an enterprise; ``spare`` if it still has a free place."""

    institute: str
    score: float
    spare: bool


@dataclass(frozen=True)
class Assignment:
    """A decoded pairing result (external ids)."""

    status: SolveStatus
    solver: str
    pairs: tuple[Pair, ...]
    alternates: dict[str, tuple[Alternate, ...]]
    uncovered: tuple[Uncovered, ...]
    lock_conflicts: tuple[LockConflict, ...]
    churn: Churn | None
    objective: float
    min_affinity: float | None
    threshold: float | None = None

    def partners(self, enterprise: str) -> tuple[str, ...]:
        """Institutes assigned to ``enterprise``, best first."""
        return tuple(p.institute for p in self.pairs if p.enterprise == enterprise)
