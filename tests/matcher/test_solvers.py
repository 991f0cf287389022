"""Pairing solvers on hand-built matrices with known optima, plus LP-equality properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.errors import InvalidParameter, UnknownEntity
from matcher.solvers import (
    SOLVERS,
    LockCode,
    PairingEncoder,
    PairingProblem,
    SolveStatus,
    UncoveredCode,
    get_solver,
)

ALL = sorted(SOLVERS)


def dense_problem(s: list[list[float | None]], **kw: object) -> PairingProblem:
    """Problem from a dense score table; None = not a candidate."""
    a = np.array([[np.nan if v is None else v for v in row] for row in s], dtype=float)
    r, c = np.nonzero(~np.isnan(a))
    return PairingProblem(a.shape[0], a.shape[1], r, c, a[r, c], **kw)  # type: ignore[arg-type]


def pairs(sol) -> set[tuple[int, int]]:  # type: ignore[no-untyped-def]
    return set(zip(sol.rows.tolist(), sol.cols.tolist(), strict=True))


@pytest.mark.parametrize("name", ALL)
def test_known_optimum_respects_k_and_capacity(name: str) -> None:
    # 4 enterprises, 2 institutes with capacity 2, k = 1. Greedy would give e0 and e1 to i0
    # (0.9, 0.8) and leave e2 (only i0) uncovered; the optimum covers everyone.
    p = dense_problem([[0.9, 0.85], [0.8, 0.7], [0.6, None], [None, 0.5]], k=1, capacity=2)
    sol = get_solver(name).solve(p)
    assert sol.status is SolveStatus.OPTIMAL
    assert pairs(sol) == {(0, 1), (1, 0), (2, 0), (3, 1)}
    assert sol.objective == pytest.approx(0.85 + 0.8 + 0.6 + 0.5)
    assert np.bincount(sol.cols, minlength=2).max() <= 2


@pytest.mark.parametrize("name", ALL)
def test_k_greater_than_one(name: str) -> None:
    p = dense_problem([[0.9, 0.8, 0.1], [0.7, 0.6, 0.5]], k=2, capacity=[1, 1, 2])
    sol = get_solver(name).solve(p)
    assert sol.status is SolveStatus.OPTIMAL
    assert np.bincount(sol.rows).tolist() == [2, 2]
    # i0 and i1 have one place each, i2 two: full coverage needs each enterprise on i2 plus
    # one of i0/i1; both ways total 2.1 (0.9+0.1+0.6+0.5 = 0.8+0.1+0.7+0.5).
    assert sol.objective == pytest.approx(2.1)


@pytest.mark.parametrize("name", ALL)
def test_coverage_of_enterprises_beats_a_second_partner(name: str) -> None:
    # Two places in total; e0 scores higher on both, but giving e1 one place covers both.
    p = dense_problem([[0.9, 0.9], [0.1, None]], k=[2, 1], capacity=1)
    sol = get_solver(name).solve(p)
    assert pairs(sol) == {(0, 1), (1, 0)}
    assert sol.status is SolveStatus.PARTIAL
    (u,) = sol.uncovered
    assert (u.enterprise, u.wanted, u.got) == (0, 2, 1)
    assert u.code is UncoveredCode.CAPACITY_EXHAUSTED and u.institutes == (0,)


@pytest.mark.parametrize("name", ALL)
def test_locked_always_present_forbidden_never(name: str) -> None:
    s = [[0.9, 0.1], [0.8, 0.2]]
    p = dense_problem(s, k=1, capacity=1, locked=[[0, 1]], forbidden=[[1, 1]])
    sol = get_solver(name).solve(p)
    got = pairs(sol)
    assert (0, 1) in got and (1, 1) not in got
    assert got == {(0, 1), (1, 0)}
    assert sol.locked.tolist() == [True, False]
    # A lock that is not a candidate is honoured with score 0.
    p2 = dense_problem([[0.9, None], [0.8, 0.2]], k=1, capacity=1, locked=[[0, 1]])
    sol2 = get_solver(name).solve(p2)
    assert pairs(sol2) == {(0, 1), (1, 0)}


@pytest.mark.parametrize("name", ALL)
def test_infeasible_locks_are_reported(name: str) -> None:
    s = [[0.9, 0.5], [0.8, 0.4], [0.3, 0.2]]
    p = dense_problem(
        s,
        k=1,
        capacity=1,
        locked=[[0, 0], [1, 0], [2, 1]],
        forbidden=[[2, 1]],
    )
    sol = get_solver(name).solve(p)
    assert sol.status is SolveStatus.INFEASIBLE and sol.n_pairs == 0
    codes = {(c.enterprise, c.institute, c.code) for c in sol.lock_conflicts}
    assert codes == {
        (0, 0, LockCode.OVER_CAPACITY),
        (1, 0, LockCode.OVER_CAPACITY),
        (2, 1, LockCode.FORBIDDEN),
    }
    p2 = dense_problem(
        s, k=1, capacity=2, locked=[[0, 0], [0, 1]], excluded=[[0, 1]], excluded_reasons=("COI",)
    )
    sol2 = get_solver(name).solve(p2)
    codes2 = {(c.enterprise, c.institute, c.code) for c in sol2.lock_conflicts}
    assert (0, 1, LockCode.INELIGIBLE) in codes2 and (0, 0, LockCode.OVER_K) in codes2
    inel = next(c for c in sol2.lock_conflicts if c.code is LockCode.INELIGIBLE)
    assert inel.reasons == ("COI",) and "COI" in inel.message


def test_fair_raises_the_minimum() -> None:
    # Plain optimum: e0-i0 (1.0) + e1-i1 (0.0) = 1.0, min 0.0.
    # Fair: e0-i1 (0.3) + e1-i0 (0.6) = 0.9, min 0.3.
    p = dense_problem([[1.0, 0.3], [0.6, 0.0]], k=1, capacity=1)
    plain = get_solver("mincostflow").solve(p)
    fair = get_solver("fair").solve(p)
    assert pairs(plain) == {(0, 0), (1, 1)} and plain.min_affinity == 0.0
    assert pairs(fair) == {(0, 1), (1, 0)}
    assert fair.min_affinity == pytest.approx(0.3) and fair.threshold == pytest.approx(0.3)
    assert fair.objective == pytest.approx(0.9)


def test_fair_then_total_among_threshold_solutions() -> None:
    # Both assignments have min 0.5; fair mode then maximises the total (0.5 + 0.9).
    p = dense_problem([[0.5, 0.6], [0.9, 0.5]], k=1, capacity=1)
    fair = get_solver("fair").solve(p)
    assert pairs(fair) == {(0, 1), (1, 0)} and fair.objective == pytest.approx(1.5)


def test_fair_keeps_coverage() -> None:
    # Covering e2 needs its only (poor) edge; fair mode must not trade coverage for the min.
    p = dense_problem([[0.9, 0.8], [0.9, None], [None, 0.1]], k=1, capacity=1)
    fair = get_solver("fair").solve(p)
    plain = get_solver("mincostflow").solve(p)
    assert fair.n_pairs == plain.n_pairs == 2
    assert fair.threshold is not None


def test_diagnosis_names_each_reason() -> None:
    enterprises = ["E-none", "E-conflict", "E-low", "E-full", "E-best", "E-best2", "E-short"]
    institutes = ["I-a", "I-b", "I-c"]
    enc = PairingEncoder(
        enterprises, institutes, institute_names={"I-a": "广西大学", "I-b": "桂林电子科大"}
    )
    cands = {
        "E-conflict": [("I-a", 0.9), ("I-b", 0.8)],
        "E-low": [("I-a", 0.2), ("I-c", 0.1)],
        "E-full": [("I-a", 0.5), ("I-b", 0.4)],
        "E-best": [("I-a", 0.95)],
        "E-best2": [("I-b", 0.9)],
        "E-short": [("I-c", 0.7)],
    }
    problem = enc.encode(
        cands,
        k=1,
        k_overrides={"E-short": 2},
        capacity=1,
        capacity_overrides={"I-c": 3},
        floor=0.3,
        forbidden=[("E-conflict", "I-a")],
        ineligible={("E-conflict", "I-b"): "SAME_GROUP", ("nobody", "I-a"): "X"},
    )
    a = enc.decode(get_solver("mincostflow").solve(problem))
    assert a.status is SolveStatus.PARTIAL
    by = {u.enterprise: u for u in a.uncovered}
    assert by["E-none"].code is UncoveredCode.NO_CANDIDATE
    assert by["E-none"].message == "无符合条件的候选"
    assert by["E-conflict"].code is UncoveredCode.CONFLICT
    assert set(by["E-conflict"].reasons) == {"FORBIDDEN", "SAME_GROUP"}
    assert by["E-low"].code is UncoveredCode.BELOW_FLOOR
    assert by["E-low"].message.startswith("候选匹配度均低于阈值")
    assert by["E-full"].code is UncoveredCode.CAPACITY_EXHAUSTED
    assert by["E-full"].institutes == ("I-a", "I-b")
    assert by["E-full"].message == "候选机构名额已满: 广西大学、桂林电子科大"
    assert by["E-short"].code is UncoveredCode.INSUFFICIENT_CANDIDATES
    assert (by["E-short"].wanted, by["E-short"].got) == (2, 1)
    # Three enterprises for two places: coverage ties, so affinity decides against E-full.
    assert a.partners("E-best") == ("I-a",) and a.partners("E-best2") == ("I-b",)
    assert set(by) == {"E-none", "E-conflict", "E-low", "E-full", "E-short"}


def test_stability_bonus_keeps_previous_pairs_and_reports_churn() -> None:
    # New scores slightly prefer swapping; a 0.1 bonus keeps last campaign's pairs.
    s = [[0.50, 0.55], [0.55, 0.50], [0.4, None]]
    prev = [[0, 0], [1, 1], [2, 0]]
    base = get_solver("mincostflow").solve(dense_problem(s, k=1, capacity=[2, 1], previous=prev))
    assert pairs(base) == {(0, 1), (1, 0), (2, 0)}
    assert base.churn is not None and base.churn.kept == 1 and base.churn.changed == 2
    stable = get_solver("mincostflow").solve(
        dense_problem(s, k=1, capacity=[2, 1], previous=prev, stability_bonus=0.1)
    )
    assert pairs(stable) == {(0, 0), (1, 1), (2, 0)}
    assert stable.churn is not None
    assert (stable.churn.kept, stable.churn.changed, stable.churn.new, stable.churn.dropped) == (
        3,
        0,
        0,
        0,
    )
    assert stable.objective == pytest.approx(0.5 + 0.5 + 0.4)  # raw affinity, no bonus


def test_churn_counts_new_and_dropped_and_vanished_ids() -> None:
    enc = PairingEncoder(["a", "b", "c"], ["x", "y"])
    problem = enc.encode(
        {"a": [("x", 0.9)], "c": [("y", 0.8)]},
        capacity=1,
        previous=[("a", "x"), ("b", "y"), ("gone", "x")],
    )
    churn = enc.decode(get_solver("mincostflow").solve(problem)).churn
    assert churn is not None
    # a kept x; c is new; b lost y (dropped); the vanished enterprise's pair is dropped.
    assert (churn.kept, churn.changed, churn.new, churn.dropped) == (1, 0, 1, 2)


def test_alternates_best_first_with_spare_flag() -> None:
    p = dense_problem([[0.9, 0.8, 0.7, 0.6], [0.95, None, None, None]], k=1, capacity=[1, 1, 2, 1])
    sol = get_solver("mincostflow", n_alternates=2).solve(p)
    assert pairs(sol) == {(0, 1), (1, 0)}
    alts = list(
        zip(sol.alt_rows.tolist(), sol.alt_cols.tolist(), sol.alt_spare.tolist(), strict=True)
    )
    assert alts == [(0, 0, False), (0, 2, True)]


def test_encoder_decode_and_unknown_ids() -> None:
    enc = PairingEncoder(["e1", "e2"], ["i1", "i2"])
    problem = enc.encode([("e1", "i1", 0.5), ("e2", "i2", 0.7)], capacity=1, locked=[("e1", "i1")])
    a = enc.decode(get_solver("mincostflow").solve(problem))
    assert {(p.enterprise, p.institute, p.locked) for p in a.pairs} == {
        ("e1", "i1", True),
        ("e2", "i2", False),
    }
    with pytest.raises(UnknownEntity):
        enc.encode([("e1", "zz", 0.5)])
    with pytest.raises(UnknownEntity):
        enc.encode([], locked=[("e1", "zz")])
    skipped = enc.encode([("e1", "zz", 0.5), ("e1", "i2", 0.4)], unknown="skip")
    assert len(np.asarray(skipped.rows)) == 1
    with pytest.raises(InvalidParameter):
        PairingEncoder(["a", "a"], ["x"]).encode([])


def test_registry_and_validation() -> None:
    with pytest.raises(InvalidParameter, match=r"valid: \['fair', 'lp', 'mincostflow'\]"):
        get_solver("hungarian")
    with pytest.raises(InvalidParameter):
        get_solver("mincostflow", n_alternates=-1).solve(dense_problem([[0.5]]))
    with pytest.raises(InvalidParameter):
        get_solver("mincostflow").solve(PairingProblem(1, 1, [0], [0], [np.nan]))
    with pytest.raises(InvalidParameter):
        get_solver("mincostflow").solve(PairingProblem(1, 1, [0], [1], [0.5]))
    with pytest.raises(InvalidParameter):
        get_solver("mincostflow").solve(PairingProblem(1, 1, [0], [0], [0.5], k=[1, 2]))


def test_empty_problem() -> None:
    sol = get_solver("fair").solve(PairingProblem(2, 2, [], [], []))
    assert sol.status is SolveStatus.PARTIAL and sol.n_pairs == 0
    assert [u.code for u in sol.uncovered] == [UncoveredCode.NO_CANDIDATE] * 2


@st.composite
def instances(draw: st.DrawFn) -> PairingProblem:
    n_e = draw(st.integers(1, 7))
    n_i = draw(st.integers(1, 5))
    mask = draw(st.lists(st.booleans(), min_size=n_e * n_i, max_size=n_e * n_i))
    # Scores on a 0.01 grid give ties, the hard case for a rounding solver.
    vals = draw(st.lists(st.integers(0, 100), min_size=n_e * n_i, max_size=n_e * n_i))
    m = np.array(mask).reshape(n_e, n_i)
    r, c = np.nonzero(m)
    s = np.array(vals, float).reshape(n_e, n_i)[r, c] / 100
    k = draw(st.lists(st.integers(0, 3), min_size=n_e, max_size=n_e))
    cap = draw(st.lists(st.integers(0, 3), min_size=n_i, max_size=n_i))
    floor = draw(st.sampled_from([float("-inf"), 0.2]))
    return PairingProblem(n_e, n_i, r, c, s, k=k, capacity=cap, floor=floor)


@settings(max_examples=60, deadline=None)
@given(instances())
def test_flow_equals_lp_optimum(p: PairingProblem) -> None:
    flow = get_solver("mincostflow").solve(p)
    lp = get_solver("lp").solve(p)
    assert flow.n_pairs == lp.n_pairs
    assert len({u.enterprise for u in flow.uncovered if u.got == 0}) == len(
        {u.enterprise for u in lp.uncovered if u.got == 0}
    )
    assert flow.objective == pytest.approx(lp.objective, abs=1e-9)
    k = np.asarray(p.k)
    assert (np.bincount(flow.rows, minlength=p.n_enterprises) <= k).all()
    assert (np.bincount(flow.cols, minlength=p.n_institutes) <= np.asarray(p.capacity)).all()
    assert (flow.scores >= p.floor).all()
    fair = get_solver("fair").solve(p)
    assert fair.n_pairs == flow.n_pairs
    if flow.n_pairs:
        assert fair.min_affinity >= flow.min_affinity - 1e-12  # type: ignore[operator]
        assert fair.objective <= flow.objective + 1e-9


def test_top_candidates_keeps_forbidden_for_the_diagnosis() -> None:
    from matcher.solvers.problem import top_candidates

    scores = np.array([[0.1, 0.5, 0.3], [0.9, 0.2, 0.4]])
    forbidden = np.array([[False, True, False], [False, False, False]])
    r, c, v, ex = top_candidates(scores, 2, forbidden=forbidden)
    assert sorted(zip(r.tolist(), c.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 0), (1, 2)]
    assert np.allclose(v, scores[r, c])
    assert ex.tolist() == [[0, 1]]
    p = PairingProblem(2, 3, r, c, v, excluded=ex, excluded_reasons=("SAME_GROUP",))
    sol = get_solver("mincostflow").solve(p)
    assert pairs(sol) == {(0, 2), (1, 0)}


@st.composite
def constrained(draw: st.DrawFn) -> PairingProblem:
    """Random instances with locks, forbidden and ineligible pairs, and a previous campaign."""
    base = draw(instances())
    cells = [(i, j) for i in range(base.n_enterprises) for j in range(base.n_institutes)]
    pick = st.lists(st.sampled_from(cells), max_size=3, unique=True)
    locked, forbidden, excluded, previous = draw(pick), draw(pick), draw(pick), draw(pick)
    bonus = draw(st.sampled_from([0.0, 0.05, 1.0]))
    return PairingProblem(
        base.n_enterprises,
        base.n_institutes,
        base.rows,
        base.cols,
        base.scores,
        k=base.k,
        capacity=base.capacity,
        floor=base.floor,
        locked=locked or None,
        forbidden=forbidden or None,
        excluded=excluded or None,
        excluded_reasons=("COI",) * len(excluded),
        previous=previous or None,
        stability_bonus=bonus,
    )


@settings(max_examples=60, deadline=None)
@given(constrained())
def test_hard_constraints_and_lp_agreement_with_locks(p: PairingProblem) -> None:
    flow = get_solver("mincostflow").solve(p)
    lp = get_solver("lp").solve(p)
    assert flow.status == lp.status

    def as_set(x: object) -> set[tuple[int, int]]:
        return set() if x is None else {(int(a), int(b)) for a, b in x}  # type: ignore[attr-defined]

    locked = as_set(p.locked)
    banned = as_set(p.forbidden) | as_set(p.excluded)
    if flow.status is SolveStatus.INFEASIBLE:
        assert flow.lock_conflicts and flow.n_pairs == 0
        return
    got = pairs(flow)
    assert locked <= got and not (got & banned)
    assert flow.n_pairs == lp.n_pairs
    # Same optimum of the solver's objective (affinity + bonus on kept pairs).
    prev = as_set(p.previous)

    def weighted(sol) -> float:  # type: ignore[no-untyped-def]
        kept = sum(1 for e in pairs(sol) if e in prev and e not in locked)
        return float(sol.objective) + p.stability_bonus * kept

    assert weighted(flow) == pytest.approx(weighted(lp), abs=1e-9)
    if flow.churn is not None and prev:
        assert flow.churn.kept == len(got & prev)
