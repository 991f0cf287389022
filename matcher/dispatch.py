"""Commissioner dispatch (科技专员选派): people sent to small and medium enterprises.

A commissioner is a person with an expertise profile (their papers, patents, past services:
a few documents), a load limit (enterprises they can serve at once) and an employer (a
university or institute). Dispatch is the campaign pairing problem at person level, solved by
the same engine (:mod:`matcher.solvers`): enterprises are the rows, commissioners the
columns, the load limit is the column capacity, and the conflict rule — never to an
enterprise of the commissioner's own employer's corporate group — is an eligibility
exclusion (``SAME_GROUP``) that the solvers never choose and the diagnosis reports.

The affinity of (enterprise, commissioner) is the best cosine between any open need of the
enterprise and any profile document of the commissioner: a commissioner with one patent that
fits a need is a good match even if the rest of their work is elsewhere (a mean profile
would blur it). :func:`profile_scores` computes the sparse top-``top`` commissioners per
enterprise block by block, so 13,000 × 4,300 never becomes a dense matrix.

Measured (``benchmarks/bench_dispatch.py``, 4,300 commissioners × 13,000 enterprises, 26k need
and 17k profile vectors of 384 dimensions, top-50, k=1, on the busy 2-core machine): scoring
90 s, min-cost-flow solve 1.6 s, peak RSS 952 MB, no load limit or group rule broken, and the
objective equal to the exact HiGHS LP's (gap 0.0; the LP takes 78 s).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matcher.errors import InvalidParameter
from matcher.solvers import PairingProblem, PairingSolution, get_solver

logger = logging.getLogger(__name__)

SAME_GROUP = "SAME_GROUP"
IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ProfileScores:
    """Sparse candidates of :func:`profile_scores`; every array has shape (m,).

    ``query`` is the row of the query (need) vector that gave the best score of the edge,
    ``doc`` the profile document on the commissioner's side.
    """

    rows: IntArray
    cols: IntArray
    scores: FloatArray
    query: IntArray
    doc: IntArray


def _unit(x: ArrayLike) -> NDArray[np.float32]:
    a = np.asarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise InvalidParameter(f"vectors must be 2-D; got shape {a.shape}")
    return np.asarray(a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12), np.float32)


def _owners(owner: ArrayLike, n: int, length: int, name: str) -> IntArray:
    o = np.asarray(owner, dtype=np.int64).ravel()
    if o.shape != (length,):
        raise InvalidParameter(f"{name} must have shape ({length},); got {o.shape}")
    if length and (o.min() < 0 or o.max() >= n):
        raise InvalidParameter(f"{name} has an owner outside 0..{n - 1}")
    return o


def _group_max(
    s: NDArray[np.float32], owner: IntArray, n: int
) -> tuple[NDArray[np.float32], IntArray]:
    """Column-group maximum of ``s`` (r, len(owner)) -> (r, n) and the argmax column."""
    order = np.argsort(owner, kind="stable")
    so = s[:, order]
    starts = np.searchsorted(owner[order], np.arange(n))
    present = np.bincount(owner, minlength=n) > 0
    out = np.full((len(s), n), -np.inf, dtype=np.float32)
    arg = np.full((len(s), n), -1, dtype=np.int64)
    if present.any():
        st = starts[present]
        out[:, present] = np.maximum.reduceat(so, st, axis=1)
        # argmax inside each group: first column equal to the maximum
        eq = so == np.repeat(out[:, present], np.diff(np.r_[st, so.shape[1]]), axis=1)
        idx = np.arange(so.shape[1])
        first = np.where(eq, idx, so.shape[1])
        arg[:, present] = order[np.minimum.reduceat(first, st, axis=1)]
    return out, arg


def profile_scores(
    query_vectors: ArrayLike,
    query_row: ArrayLike,
    n_rows: int,
    doc_vectors: ArrayLike,
    doc_col: ArrayLike,
    n_cols: int,
    *,
    top: int = 50,
    block: int = 256,
) -> ProfileScores:
    """Top-``top`` columns per row by the best query × document cosine.

    Parameters
    ----------
    query_vectors : float (q, d), e.g. need vectors; ``query_row`` (q,) its row (enterprise)
    doc_vectors : float (p, d), profile documents; ``doc_col`` (p,) its column (commissioner)
    n_rows, n_cols : matrix shape; a row or column without vectors gets no candidates
    top : candidates kept per row
    block : rows processed at a time (memory ~ block × (p + n_cols) floats)
    """
    if top < 1:
        raise InvalidParameter(f"top must be >= 1; got {top}")
    qv, dv = _unit(query_vectors), _unit(doc_vectors)
    if qv.shape[1] != dv.shape[1]:
        raise InvalidParameter(f"dimension mismatch: {qv.shape[1]} vs {dv.shape[1]}")
    q_row = _owners(query_row, n_rows, len(qv), "query_row")
    d_col = _owners(doc_col, n_cols, len(dv), "doc_col")
    q_order = np.argsort(q_row, kind="stable")
    q_start = np.searchsorted(q_row[q_order], np.arange(n_rows + 1))
    t = min(top, n_cols)
    out_r, out_c, out_s, out_q, out_d = [], [], [], [], []
    for lo in range(0, n_rows, block):
        hi = min(lo + block, n_rows)
        qs = q_order[q_start[lo] : q_start[hi]]
        if len(qs) == 0 or len(dv) == 0 or t == 0:
            continue
        per_doc = qv[qs] @ dv.T  # (queries of the block, p)
        per_col, arg_doc = _group_max(per_doc, d_col, n_cols)  # (queries, n_cols)
        # best query of each row: group the query rows by their owner row
        per_row_t, arg_q = _group_max(per_col.T.copy(), q_row[qs] - lo, hi - lo)
        per_row = per_row_t.T  # (rows of block, n_cols)
        part = np.argpartition(-per_row, t - 1, axis=1)[:, :t] if t < n_cols else None
        cols = part if part is not None else np.tile(np.arange(n_cols), (hi - lo, 1))
        vals = np.take_along_axis(per_row, cols, axis=1)
        rr = np.repeat(np.arange(lo, hi), t)
        cc, vv = cols.ravel(), vals.ravel()
        keep = np.isfinite(vv)
        qbest = arg_q.T[rr - lo, cc]  # index into qs
        q_idx = qs[np.clip(qbest, 0, None)]
        d_idx = arg_doc[np.clip(qbest, 0, None), cc]
        out_r.append(rr[keep])
        out_c.append(cc[keep])
        out_s.append(vv[keep].astype(np.float64))
        out_q.append(q_idx[keep])
        out_d.append(d_idx[keep])
    if not out_r:
        e = np.zeros(0, np.int64)
        return ProfileScores(e, e, np.zeros(0), e, e)
    return ProfileScores(
        rows=np.concatenate(out_r).astype(np.int64),
        cols=np.concatenate(out_c).astype(np.int64),
        scores=np.concatenate(out_s).astype(np.float64),
        query=np.concatenate(out_q).astype(np.int64),
        doc=np.concatenate(out_d).astype(np.int64),
    )


def group_exclusions(
    rows: IntArray, cols: IntArray, row_group: ArrayLike, col_group: ArrayLike
) -> IntArray:
    """Candidate pairs (p, 2) whose row and column share a corporate-group code."""
    rg = np.asarray(row_group, dtype=np.int64)
    cg = np.asarray(col_group, dtype=np.int64)
    hit = rg[rows] == cg[cols]
    return np.stack([rows[hit], cols[hit]], axis=1).astype(np.int64)


def dispatch_problem(
    candidates: ProfileScores,
    n_enterprises: int,
    n_commissioners: int,
    *,
    load_limit: int | ArrayLike,
    enterprise_group: ArrayLike,
    employer_group: ArrayLike,
    k: int | ArrayLike = 1,
    floor: float = float("-inf"),
    locked: ArrayLike | None = None,
    forbidden: ArrayLike | None = None,
) -> PairingProblem:
    """The dispatch as a :class:`~matcher.solvers.PairingProblem`.

    Parameters
    ----------
    candidates : from :func:`profile_scores` (rows = enterprises, cols = commissioners)
    load_limit : int or int (n_commissioners,), enterprises a commissioner can take
    enterprise_group : int (n_enterprises,), corporate-group code of each enterprise
    employer_group : int (n_commissioners,), group code of each commissioner's employer
        (codes from one :meth:`matcher.constraints.EligibilityPolicy.group_codes` call, so
        equal codes mean the same group)
    k : commissioners per enterprise (default 1)
    """
    eg = np.asarray(enterprise_group, dtype=np.int64).ravel()
    cg = np.asarray(employer_group, dtype=np.int64).ravel()
    if eg.shape != (n_enterprises,) or cg.shape != (n_commissioners,):
        raise InvalidParameter(
            f"group codes must have shapes ({n_enterprises},), ({n_commissioners},); "
            f"got {eg.shape}, {cg.shape}"
        )
    excluded = group_exclusions(candidates.rows, candidates.cols, eg, cg)
    return PairingProblem(
        n_enterprises,
        n_commissioners,
        candidates.rows,
        candidates.cols,
        candidates.scores,
        k=k,
        capacity=load_limit,
        floor=floor,
        locked=locked,
        forbidden=forbidden,
        excluded=excluded,
        excluded_reasons=(SAME_GROUP,) * len(excluded),
    )


def solve_dispatch(
    problem: PairingProblem, *, solver: str = "mincostflow", n_alternates: int = 2
) -> PairingSolution:
    """Solve a dispatch problem with a registered pairing solver (``"lp"`` = exact)."""
    return get_solver(solver, n_alternates=n_alternates).solve(problem)


def check_dispatch(
    problem: PairingProblem,
    solution: PairingSolution,
    enterprise_group: Sequence[int] | ArrayLike,
    employer_group: Sequence[int] | ArrayLike,
) -> list[str]:
    """Violations of the hard rules in ``solution`` (empty = none): load limits, k and
    the group rule. Used by the tests and the benchmark as an independent check."""
    problems: list[str] = []
    cap = np.broadcast_to(np.asarray(problem.capacity), (problem.n_institutes,))
    k = np.broadcast_to(np.asarray(problem.k), (problem.n_enterprises,))
    load = np.bincount(solution.cols, minlength=problem.n_institutes)
    got = np.bincount(solution.rows, minlength=problem.n_enterprises)
    for c in np.flatnonzero(load > cap).tolist():
        problems.append(f"commissioner row {c}: load {load[c]} > limit {cap[c]}")
    for r in np.flatnonzero(got > k).tolist():
        problems.append(f"enterprise row {r}: {got[r]} commissioners > k {k[r]}")
    eg = np.asarray(enterprise_group, dtype=np.int64)
    cg = np.asarray(employer_group, dtype=np.int64)
    for r, c in zip(solution.rows.tolist(), solution.cols.tolist(), strict=True):
        if eg[r] == cg[c]:
            problems.append(f"enterprise row {r} got commissioner {c} of its own group")
    return problems
