"""The pairing problem as matrices, and its validated, solver-ready form.

A :class:`PairingProblem` is what every pairing solver receives: integer rows (enterprises),
integer columns (institutes) and float scores, never external ids (the
:class:`~matcher.solvers.encoding.PairingEncoder` owns that mapping). :func:`prepare` checks
it once and derives the edge masks every solver and the diagnosis share, so the solvers
differ only in how they pick edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matcher.errors import InvalidParameter

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Reason code the diagnosis uses for a staff-forbidden pair (eligibility reasons come from
# the caller's constraint checks).
FORBIDDEN = "FORBIDDEN"


def _pairs(x: ArrayLike | None, name: str) -> IntArray:
    """Coerce a list of (row, col) pairs to an int64 array of shape (p, 2)."""
    if x is None:
        return np.zeros((0, 2), dtype=np.int64)
    a = np.asarray(x, dtype=np.int64)
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise InvalidParameter(f"{name} must have shape (p, 2); got {a.shape}")
    return a


@dataclass(frozen=True, eq=False)
class PairingProblem:
    """One pairing campaign in matrix form.

    Parameters
    ----------
    n_enterprises, n_institutes : int
        Matrix shape (enterprises are rows, institutes columns).
    rows, cols : array_like of int, shape (m,)
        Candidate edges in COO form (typically the matcher's top-50 institutes per
        enterprise). A duplicated (row, col) keeps its highest score.
    scores : array_like of float, shape (m,)
        Affinity of each candidate edge (higher is better; finite).
    k : int or array_like of int, shape (n_enterprises,)
        Partners wanted per enterprise (default 1). Locked pairs count towards it.
    capacity : int or array_like of int, shape (n_institutes,)
        Maximum enterprises per institute. Locked pairs count towards it.
    floor : float
        Minimum affinity of a solver-chosen edge. Locked pairs are exempt (staff decided).
    locked : array_like of int, shape (p, 2)
        Hard pairs: always in the assignment. A lock that is forbidden, ineligible or over a
        capacity or k makes the result INFEASIBLE with the offending locks listed.
    forbidden : array_like of int, shape (q, 2)
        Hard forbidden pairs (staff decision); never assigned.
    excluded : array_like of int, shape (r, 2)
        Ineligible pairs from the eligibility rules (conflict of interest, region, ...).
    excluded_reasons : tuple of str, length r
        Reason code of each excluded pair (several codes may be joined with ``","``).
    previous : array_like of int, shape (s, 2)
        Last campaign's pairs, for stable re-pairing.
    stability_bonus : float
        Added to the score of every previous pair that is still a usable candidate, i.e. the
        penalty for changing an existing pair (0 disables it).
    previous_unmapped : int
        Previous pairs whose enterprise or institute no longer exists (the encoder counts
        them); reported as dropped in the churn.
    """

    n_enterprises: int
    n_institutes: int
    rows: ArrayLike
    cols: ArrayLike
    scores: ArrayLike
    k: int | ArrayLike = 1
    capacity: int | ArrayLike = 1
    floor: float = float("-inf")
    locked: ArrayLike | None = None
    forbidden: ArrayLike | None = None
    excluded: ArrayLike | None = None
    excluded_reasons: tuple[str, ...] = field(default_factory=tuple)
    previous: ArrayLike | None = None
    stability_bonus: float = 0.0
    previous_unmapped: int = 0


@dataclass(frozen=True, eq=False)
class Prepared:
    """Validated problem with derived per-edge masks (internal to the solvers).

    Edges are the de-duplicated candidate edges plus locked pairs that were not candidates
    (score 0), sorted by (row, -score). All per-edge arrays have shape (m,).
    """

    n_e: int
    n_i: int
    rows: IntArray
    cols: IntArray
    scores: FloatArray
    is_candidate: BoolArray  # the edge came from the COO input (not only a lock)
    forbidden: BoolArray
    excluded: BoolArray
    reasons: NDArray[np.object_]  # reason code string of excluded edges, "" otherwise
    below_floor: BoolArray
    locked: BoolArray
    previous: BoolArray
    usable: BoolArray  # a solver may choose it: candidate, allowed, >= floor, not locked
    k: IntArray  # (n_e,)
    capacity: IntArray  # (n_i,)
    k_free: IntArray  # (n_e,) k minus locks, clipped at 0
    cap_free: IntArray  # (n_i,) capacity minus locks, clipped at 0
    n_locked_e: IntArray  # (n_e,)
    n_locked_i: IntArray  # (n_i,)
    floor: float
    stability_bonus: float
    previous_pairs: IntArray  # (s, 2)
    previous_unmapped: int
    row_start: IntArray  # (n_e + 1,) edges of row i are row_start[i]:row_start[i+1]

    @property
    def weights(self) -> FloatArray:
        """Objective weight per edge: affinity plus the stability bonus on previous pairs."""
        if self.stability_bonus == 0.0:
            return self.scores
        return self.scores + self.stability_bonus * self.previous


def _vector(x: int | ArrayLike, n: int, name: str) -> IntArray:
    a = np.asarray(x)
    if a.ndim == 0:
        a = np.full(n, int(a), dtype=np.int64)
    if a.shape != (n,):
        raise InvalidParameter(f"{name} must be an int or have shape ({n},); got {a.shape}")
    if not np.all(np.equal(np.mod(a, 1), 0)):
        raise InvalidParameter(f"{name} must be integral")
    a = a.astype(np.int64)
    if (a < 0).any():
        raise InvalidParameter(f"{name} must be >= 0")
    return a


def _check_range(p: IntArray, n_e: int, n_i: int, name: str) -> None:
    if p.size and (
        p[:, 0].min() < 0 or p[:, 0].max() >= n_e or p[:, 1].min() < 0 or p[:, 1].max() >= n_i
    ):
        raise InvalidParameter(f"{name} has a pair outside the {n_e}x{n_i} matrix")


def _candidate_arrays(
    problem: PairingProblem, n_e: int, n_i: int
) -> tuple[IntArray, IntArray, FloatArray]:
    if n_e < 0 or n_i < 0:
        raise InvalidParameter("matrix shape must be non-negative")
    rows = np.asarray(problem.rows, dtype=np.int64).ravel()
    cols = np.asarray(problem.cols, dtype=np.int64).ravel()
    scores = np.asarray(problem.scores, dtype=np.float64).ravel()
    if not (rows.shape == cols.shape == scores.shape):
        raise InvalidParameter(
            f"rows, cols, scores must have one shape; got {rows.shape}, {cols.shape}, {scores.shape}"
        )
    if not np.isfinite(scores).all():
        raise InvalidParameter("scores must be finite")
    _check_range(np.stack([rows, cols], axis=1), n_e, n_i, "candidates")
    return rows, cols, scores


def _merge_edges(
    rows: IntArray, cols: IntArray, scores: FloatArray, locked: IntArray, n_c: int
) -> tuple[IntArray, FloatArray, BoolArray, IntArray]:
    """Candidates and locks as one edge list (key ``row * n_c + col``), each row best first.

    A duplicated candidate keeps its best score; a lock that is not a candidate enters with
    score 0. Returns (keys, scores, is_candidate, lock keys). Only cheap sorts: a stable sort
    of int keys (fast on row-sorted input), then a stable sort of the composite float
    ``2 * row + normalised rank`` to put each row best first.
    """
    key = rows * n_c + cols
    order = np.argsort(key, kind="stable")
    key, scores = key[order], scores[order]
    if len(key):
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        scores = np.maximum.reduceat(scores, starts)
        key = key[starts]
    lock_key = locked[:, 0] * n_c + locked[:, 1]
    pos = np.searchsorted(key, lock_key)
    found = np.zeros(len(lock_key), bool)
    inside = pos < len(key)
    found[inside] = key[pos[inside]] == lock_key[inside]
    extra = lock_key[~found]
    all_key = np.concatenate([key, extra])
    all_score = np.concatenate([scores, np.zeros(len(extra))])
    is_cand = np.concatenate([np.ones(len(key), bool), np.zeros(len(extra), bool)])
    if len(all_key):
        span = float(all_score.max() - all_score.min())
        u = (all_score.max() - all_score) / span if span > 0 else np.zeros(len(all_key))
        # u in [0, 1], so 2*row + u never crosses into the next row.
        order = np.argsort(2.0 * (all_key // n_c) + u, kind="stable")
        all_key, all_score, is_cand = all_key[order], all_score[order], is_cand[order]
    return all_key, all_score, is_cand, lock_key


def _exclusions(
    all_key: IntArray, ex_key: IntArray, reasons_in: tuple[str, ...]
) -> tuple[BoolArray, NDArray[np.object_]]:
    """Which edges are excluded and why (several entries for one pair: codes joined in input
    order, each once). Vectorised: a campaign excludes ~10^4 of ~10^6 edges, and only a pair
    listed more than once takes a Python step."""
    reasons = np.full(len(all_key), "", dtype=object)
    if not len(ex_key):
        return np.zeros(len(all_key), bool), reasons
    codes = np.empty(len(reasons_in), dtype=object)
    codes[:] = list(reasons_in)
    order = np.argsort(ex_key, kind="stable")  # keeps input order within a pair
    keys, codes = ex_key[order], codes[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    counts = np.diff(np.r_[starts, len(keys)])
    uniq, joined = keys[starts], codes[starts]
    for u in np.flatnonzero(counts > 1).tolist():
        lo = int(starts[u])
        joined[u] = ",".join(dict.fromkeys(codes[lo : lo + int(counts[u])].tolist()))
    pos = np.minimum(np.searchsorted(uniq, all_key), len(uniq) - 1)
    is_excluded = uniq[pos] == all_key
    reasons[is_excluded] = joined[pos[is_excluded]]
    return is_excluded, reasons


def prepare(problem: PairingProblem) -> Prepared:
    """Validate ``problem`` and derive the edge masks.

    Raises
    ------
    InvalidParameter
        On a shape, range, dtype or NaN error in the inputs.
    """
    n_e, n_i = int(problem.n_enterprises), int(problem.n_institutes)
    rows, cols, scores = _candidate_arrays(problem, n_e, n_i)
    floor = float(problem.floor)
    if np.isnan(floor):
        raise InvalidParameter("floor must not be NaN")
    bonus = float(problem.stability_bonus)
    if not np.isfinite(bonus) or bonus < 0:
        raise InvalidParameter(f"stability_bonus must be finite and >= 0; got {bonus}")
    k = _vector(problem.k, n_e, "k")
    capacity = _vector(problem.capacity, n_i, "capacity")

    locked = np.unique(_pairs(problem.locked, "locked"), axis=0)
    forbidden = _pairs(problem.forbidden, "forbidden")
    excluded = _pairs(problem.excluded, "excluded")
    previous = np.unique(_pairs(problem.previous, "previous"), axis=0)
    for p, name in ((locked, "locked"), (forbidden, "forbidden"), (excluded, "excluded")):
        _check_range(p, n_e, n_i, name)
    _check_range(previous, n_e, n_i, "previous")
    reasons_in = tuple(problem.excluded_reasons)
    if reasons_in and len(reasons_in) != len(excluded):
        raise InvalidParameter(
            f"excluded_reasons has {len(reasons_in)} entries for {len(excluded)} excluded pairs"
        )
    if not reasons_in:
        reasons_in = ("INELIGIBLE",) * len(excluded)

    n_c = max(n_i, 1)
    all_key, all_score, is_cand, lock_key = _merge_edges(rows, cols, scores, locked, n_c)
    e_rows = all_key // n_c
    e_cols = all_key % n_c

    is_forbidden = np.isin(all_key, forbidden[:, 0] * n_c + forbidden[:, 1])
    is_excluded, reasons = _exclusions(all_key, excluded[:, 0] * n_c + excluded[:, 1], reasons_in)
    is_locked = np.isin(all_key, lock_key)
    is_prev = np.isin(all_key, previous[:, 0] * n_c + previous[:, 1])
    below = all_score < floor
    usable = is_cand & ~is_forbidden & ~is_excluded & ~below & ~is_locked

    n_locked_e = np.bincount(locked[:, 0], minlength=n_e).astype(np.int64)
    n_locked_i = np.bincount(locked[:, 1], minlength=n_i).astype(np.int64)
    row_start = np.searchsorted(e_rows, np.arange(n_e + 1)).astype(np.int64)
    return Prepared(
        n_e=n_e,
        n_i=n_i,
        rows=e_rows.astype(np.int64),
        cols=e_cols.astype(np.int64),
        scores=all_score.astype(np.float64),
        is_candidate=is_cand,
        forbidden=is_forbidden,
        excluded=is_excluded,
        reasons=reasons,
        below_floor=below,
        locked=is_locked,
        previous=is_prev,
        usable=usable,
        k=k,
        capacity=capacity,
        k_free=np.maximum(k - n_locked_e, 0),
        cap_free=np.maximum(capacity - n_locked_i, 0),
        n_locked_e=n_locked_e,
        n_locked_i=n_locked_i,
        floor=floor,
        stability_bonus=bonus,
        previous_pairs=previous,
        previous_unmapped=int(problem.previous_unmapped),
        row_start=row_start,
    )


def top_candidates(
    scores: ArrayLike, top: int, *, forbidden: ArrayLike | None = None
) -> tuple[IntArray, IntArray, FloatArray, IntArray]:
    """Sparse top-``top`` candidates per row of a dense score matrix.

    Forbidden cells stay among the candidates (so the diagnosis can say *why* an enterprise's
    best institutes were not used) and are returned as excluded pairs.

    Parameters
    ----------
    scores : array_like of float, shape (n, m)
    top : int
        Candidates kept per row (all if >= m).
    forbidden : array_like of bool, shape (n, m), optional

    Returns
    -------
    rows, cols : int64 (p,); vals : float64 (p,); excluded : int64 (q, 2), the forbidden
        candidate pairs.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise InvalidParameter(f"scores must be 2-D; got shape {s.shape}")
    if not isinstance(top, int | np.integer) or top < 1:
        raise InvalidParameter(f"top must be an int >= 1; got {top!r}")
    n, m = s.shape
    t = min(int(top), m)
    if n == 0 or t == 0:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0), np.zeros((0, 2), np.int64)
    part = np.argpartition(-s, t - 1, axis=1)[:, :t] if t < m else np.tile(np.arange(m), (n, 1))
    rows = np.repeat(np.arange(n, dtype=np.int64), t)
    cols = part.ravel().astype(np.int64)
    vals = s[rows, cols]
    if forbidden is None:
        excluded = np.zeros((0, 2), np.int64)
    else:
        f = np.asarray(forbidden, dtype=bool)
        if f.shape != s.shape:
            raise InvalidParameter(f"forbidden must have shape {s.shape}; got {f.shape}")
        hit = f[rows, cols]
        excluded = np.stack([rows[hit], cols[hit]], axis=1)
    return rows, cols, vals, excluded
