"""External ids ↔ rows for pairing: builds a :class:`PairingProblem` and decodes its solution.

The solvers never see ids; this encoder owns the mapping (openreview-matcher's ``Encoder``),
and it rewrites the diagnosis messages with institute names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import cached_property
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InvalidParameter, UnknownEntity
from matcher.gcpause import gc_paused
from matcher.solvers.problem import PairingProblem
from matcher.solvers.results import (
    Alternate,
    Assignment,
    LockConflict,
    Pair,
    PairingSolution,
    Uncovered,
    format_reason,
)

logger = logging.getLogger(__name__)

Candidates = Mapping[str, Sequence[tuple[str, float]]] | Iterable[tuple[str, str, float]]


class PairingEncoder:
    """Maps enterprise and institute ids to matrix rows and columns.

    Parameters
    ----------
    enterprise_ids, institute_ids : sequence of str
        Row and column order; duplicates raise ``InvalidParameter`` on first use.
    institute_names : mapping of str to str, optional
        Display names for the Chinese diagnosis messages (the id is used when missing).
    """

    def __init__(
        self,
        enterprise_ids: Sequence[str],
        institute_ids: Sequence[str],
        *,
        institute_names: Mapping[str, str] | None = None,
    ) -> None:
        self.enterprise_ids = enterprise_ids
        self.institute_ids = institute_ids
        self.institute_names = institute_names

    @cached_property
    def _e(self) -> dict[str, int]:
        return _index(self.enterprise_ids, "enterprise")

    @cached_property
    def _i(self) -> dict[str, int]:
        return _index(self.institute_ids, "institute")

    def _pairs(
        self, pairs: Iterable[tuple[str, str]], name: str, *, unknown: Literal["raise", "skip"]
    ) -> tuple[list[tuple[int, int]], list[int]]:
        out: list[tuple[int, int]] = []
        kept: list[int] = []
        for n, (e, i) in enumerate(pairs):
            r, c = self._e.get(e), self._i.get(i)
            if r is None or c is None:
                if unknown == "raise":
                    raise UnknownEntity(f"{name} pair ({e!r}, {i!r}) has an unknown id")
                continue
            out.append((r, c))
            kept.append(n)
        return out, kept

    def _candidates(
        self, candidates: Candidates, unknown: Literal["raise", "skip"]
    ) -> tuple[list[int], list[int], list[float]]:
        if isinstance(candidates, Mapping):
            triples: Iterable[tuple[str, str, float]] = (
                (e, i, s) for e, lst in candidates.items() for i, s in lst
            )
        else:
            triples = candidates
        rows: list[int] = []
        cols: list[int] = []
        scores: list[float] = []
        skipped = 0
        for e, i, s in triples:
            r, c = self._e.get(e), self._i.get(i)
            if r is None or c is None:
                if unknown == "raise":
                    raise UnknownEntity(f"candidate ({e!r}, {i!r}) has an unknown id")
                skipped += 1
                continue
            rows.append(r)
            cols.append(c)
            scores.append(float(s))
        if skipped:
            logger.info("skipped %d candidates with unknown ids", skipped)
        return rows, cols, scores

    def encode(
        self,
        candidates: Candidates,
        *,
        k: int = 1,
        k_overrides: Mapping[str, int] | None = None,
        capacity: int = 1,
        capacity_overrides: Mapping[str, int] | None = None,
        floor: float = float("-inf"),
        locked: Iterable[tuple[str, str]] = (),
        forbidden: Iterable[tuple[str, str]] = (),
        ineligible: Mapping[tuple[str, str], str | Sequence[str]] | None = None,
        previous: Iterable[tuple[str, str]] = (),
        stability_bonus: float = 0.0,
        unknown: Literal["raise", "skip"] = "raise",
    ) -> PairingProblem:
        """Build the matrix problem.

        Parameters
        ----------
        candidates : mapping enterprise id -> [(institute id, score), ...], or (enterprise id,
            institute id, score) triples
            The matcher's sparse candidate scores (e.g. top-50 per enterprise).
        k, capacity : int
            Defaults; ``k_overrides`` / ``capacity_overrides`` set them per id.
        locked, forbidden : iterable of (enterprise id, institute id)
            Hard pairs (unknown ids always raise ``UnknownEntity``).
        ineligible : mapping (enterprise id, institute id) -> reason code(s)
            Eligibility exclusions (pairs with unknown ids are irrelevant and ignored).
        previous : iterable of (enterprise id, institute id)
            Last campaign's pairs; those with ids no longer present count as dropped.
        unknown : "raise" or "skip"
            What to do with a candidate whose enterprise or institute is not in the encoder.
        """
        if unknown not in ("raise", "skip"):
            raise InvalidParameter(f"unknown must be 'raise' or 'skip'; got {unknown!r}")
        rows, cols, scores = self._candidates(candidates, unknown)
        inel = dict(ineligible or {})
        ex, kept = self._pairs(list(inel), "ineligible", unknown="skip")
        values = list(inel.values())
        reasons = tuple(v if isinstance(v, str) else ",".join(v) for v in (values[n] for n in kept))
        return self.encode_rows(
            np.asarray(rows, np.int64),
            np.asarray(cols, np.int64),
            np.asarray(scores, np.float64),
            excluded=np.asarray(ex, np.int64).reshape(-1, 2),
            excluded_reasons=reasons,
            k=k,
            k_overrides=k_overrides,
            capacity=capacity,
            capacity_overrides=capacity_overrides,
            floor=floor,
            locked=locked,
            forbidden=forbidden,
            previous=previous,
            stability_bonus=stability_bonus,
        )

    def encode_rows(
        self,
        rows: NDArray[np.int64],
        cols: NDArray[np.int64],
        scores: NDArray[np.float64],
        *,
        excluded: NDArray[np.int64] | None = None,
        excluded_reasons: Sequence[str] = (),
        k: int = 1,
        k_overrides: Mapping[str, int] | None = None,
        capacity: int = 1,
        capacity_overrides: Mapping[str, int] | None = None,
        floor: float = float("-inf"),
        locked: Iterable[tuple[str, str]] = (),
        forbidden: Iterable[tuple[str, str]] = (),
        previous: Iterable[tuple[str, str]] = (),
        stability_bonus: float = 0.0,
    ) -> PairingProblem:
        """Build the matrix problem from candidates already in row/column form.

        The vectorised twin of :meth:`encode` for a caller that scored a dense matrix in the
        encoder's own order (the campaign engine): no per-candidate id lookups, the arrays are
        handed to the problem as they are. ``encode`` on the same candidates as id triples
        builds an equal problem.

        Parameters
        ----------
        rows, cols : int64 arrays, shape (m,)
            Positions in ``enterprise_ids`` / ``institute_ids`` (range-checked by the solver).
        scores : float64 array, shape (m,)
        excluded : int64 array, shape (r, 2), optional
            Ineligible (row, column) pairs.
        excluded_reasons : sequence of str, length r or empty
            Reason code of each excluded pair (empty: ``INELIGIBLE`` for all).
        k, k_overrides, capacity, capacity_overrides, floor, locked, forbidden, previous,
        stability_bonus
            As in :meth:`encode` (pairs and overrides in external ids).
        """
        k_vec = np.full(len(self._e), int(k), np.int64)
        for e, v in (k_overrides or {}).items():
            k_vec[self._row(e)] = int(v)
        cap_vec = np.full(len(self._i), int(capacity), np.int64)
        for i, v in (capacity_overrides or {}).items():
            cap_vec[self._col(i)] = int(v)
        lk, _ = self._pairs(locked, "locked", unknown="raise")
        fb, _ = self._pairs(forbidden, "forbidden", unknown="raise")
        prev_list = list(previous)
        pv, _ = self._pairs(prev_list, "previous", unknown="skip")
        ex = None if excluded is None or len(excluded) == 0 else excluded
        return PairingProblem(
            n_enterprises=len(self._e),
            n_institutes=len(self._i),
            rows=rows,
            cols=cols,
            scores=scores,
            k=k_vec,
            capacity=cap_vec,
            floor=floor,
            locked=lk or None,
            forbidden=fb or None,
            excluded=ex,
            excluded_reasons=tuple(excluded_reasons) if ex is not None else (),
            previous=pv or None,
            stability_bonus=stability_bonus,
            previous_unmapped=len(prev_list) - len(pv),
        )

    def _row(self, e: str) -> int:
        try:
            return self._e[e]
        except KeyError:
            raise UnknownEntity(f"unknown enterprise {e!r}") from None

    def _col(self, i: str) -> int:
        try:
            return self._i[i]
        except KeyError:
            raise UnknownEntity(f"unknown institute {i!r}") from None

    def _name(self, col: int) -> str:
        iid = self.institute_ids[col]
        return (self.institute_names or {}).get(iid, iid)

    @cached_property
    def _id_arrays(self) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
        """The ids as object arrays, for decoding whole columns by fancy indexing."""
        e = np.empty(len(self.enterprise_ids), dtype=object)
        e[:] = list(self.enterprise_ids)
        i = np.empty(len(self.institute_ids), dtype=object)
        i[:] = list(self.institute_ids)
        return e, i

    def decode(self, solution: PairingSolution) -> Assignment:
        """Map a solution back to ids; diagnosis messages name institutes by display name."""
        eids, iids = self.enterprise_ids, self.institute_ids
        e_arr, i_arr = self._id_arrays
        # Whole columns at once (13,000 pairs and 39,000 alternates in a large campaign).
        with gc_paused():
            pairs, alternates = self._decode_pairs(solution, e_arr, i_arr)
        uncovered = tuple(self._decode_uncovered(u) for u in solution.uncovered)
        conflicts = tuple(
            LockConflict(
                eids[int(c.enterprise)], iids[int(c.institute)], c.code, c.message, c.reasons
            )  # fmt: skip
            for c in solution.lock_conflicts
        )
        return Assignment(
            status=solution.status,
            solver=solution.solver,
            pairs=pairs,
            alternates=alternates,
            uncovered=uncovered,
            lock_conflicts=conflicts,
            churn=solution.churn,
            objective=solution.objective,
            min_affinity=solution.min_affinity,
            threshold=solution.threshold,
        )

    @staticmethod
    def _decode_pairs(
        solution: PairingSolution, e_arr: NDArray[np.object_], i_arr: NDArray[np.object_]
    ) -> tuple[tuple[Pair, ...], dict[str, tuple[Alternate, ...]]]:
        pairs = tuple(
            map(
                Pair,
                e_arr[solution.rows].tolist(),
                i_arr[solution.cols].tolist(),
                solution.scores.astype(np.float64).tolist(),
                solution.locked.astype(bool).tolist(),
            )
        )
        alternates = _group_alternates(
            e_arr,
            solution.alt_rows,
            list(
                map(
                    Alternate,
                    i_arr[solution.alt_cols].tolist(),
                    solution.alt_scores.astype(np.float64).tolist(),
                    solution.alt_spare.astype(bool).tolist(),
                )
            ),
        )
        return pairs, alternates

    def _decode_uncovered(self, u: Uncovered) -> Uncovered:
        cols = [int(c) for c in u.institutes]
        msg = format_reason(
            u.code,
            institutes=[self._name(c) for c in cols],
            reasons=u.reasons,
            best_score=u.best_score,
            floor=u.floor,
            wanted=u.wanted,
            got=u.got,
        )
        return replace(
            u,
            enterprise=self.enterprise_ids[int(u.enterprise)],
            institutes=tuple(self.institute_ids[c] for c in cols),
            message=msg,
        )


def _index(ids: Sequence[str], kind: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for n, x in enumerate(ids):
        if x in out:
            raise InvalidParameter(f"duplicate {kind} id {x!r}")
        out[x] = n
    return out


def _group_alternates(
    e_arr: NDArray[np.object_], rows: NDArray[np.int64], alts: list[Alternate]
) -> dict[str, tuple[Alternate, ...]]:
    """Alternates per enterprise id, in solution order within each enterprise."""
    if not alts:
        return {}
    r = np.asarray(rows, np.int64)
    order = np.argsort(r, kind="stable")  # already sorted by row from the solvers: cheap
    if not (order == np.arange(len(r))).all():
        alts = [alts[n] for n in order.tolist()]
        r = r[order]
    cut = np.flatnonzero(r[1:] != r[:-1]) + 1
    bounds = [0, *cut.tolist(), len(r)]
    ids = e_arr[r[bounds[:-1]]].tolist()
    return {e: tuple(alts[lo:hi]) for e, lo, hi in zip(ids, bounds[:-1], bounds[1:], strict=True)}
