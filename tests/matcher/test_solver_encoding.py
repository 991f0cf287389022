"""PairingEncoder: the array path (``encode_rows``) and the id path (``encode``) agree, and
``decode`` maps every column of a solution back to ids."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.solvers import (
    Alternate,
    Assignment,
    PairingEncoder,
    PairingProblem,
    PairingSolution,
    SolveStatus,
    get_solver,
)
from matcher.solvers.problem import prepare


def _campaign(draw: st.DrawFn) -> dict[str, object]:
    n_e = draw(st.integers(1, 8))
    n_i = draw(st.integers(1, 5))
    ents = [f"E{n}" for n in range(n_e)]
    insts = [f"I{n}" for n in range(n_i)]
    cells = [(i, j) for i in range(n_e) for j in range(n_i)]
    cand = draw(st.lists(st.sampled_from(cells), min_size=0, max_size=len(cells), unique=True))
    scores = draw(st.lists(st.integers(0, 100), min_size=len(cand), max_size=len(cand)))
    pick = st.lists(st.sampled_from(cells), max_size=3, unique=True)
    return {
        "ents": ents,
        "insts": insts,
        "rows": np.array([i for i, _ in cand], np.int64),
        "cols": np.array([j for _, j in cand], np.int64),
        "scores": np.array(scores, np.float64) / 100,
        "excluded": draw(st.lists(st.sampled_from(cand), max_size=4, unique=True)) if cand else [],
        "locked": [(ents[i], insts[j]) for i, j in draw(pick)],
        "forbidden": [(ents[i], insts[j]) for i, j in draw(pick)],
        "previous": [(ents[i], insts[j]) for i, j in draw(pick)],
        "k": draw(st.integers(1, 2)),
        "capacity": draw(st.integers(1, 3)),
        "floor": draw(st.sampled_from([float("-inf"), 0.3])),
        "bonus": draw(st.sampled_from([0.0, 0.05])),
    }


campaigns = st.composite(_campaign)


def _both(c: dict[str, object]) -> tuple[PairingEncoder, PairingProblem, PairingProblem]:
    ents, insts = c["ents"], c["insts"]
    assert isinstance(ents, list) and isinstance(insts, list)
    rows, cols, scores = c["rows"], c["cols"], c["scores"]
    assert isinstance(rows, np.ndarray) and isinstance(cols, np.ndarray)
    assert isinstance(scores, np.ndarray)
    excluded = c["excluded"]
    assert isinstance(excluded, list)
    common: dict[str, object] = {
        "k": c["k"],
        "capacity": c["capacity"],
        "floor": c["floor"],
        "locked": c["locked"],
        "forbidden": c["forbidden"],
        "previous": c["previous"],
        "stability_bonus": c["bonus"],
    }
    enc = PairingEncoder(ents, insts)
    triples = [
        (ents[i], insts[j], s)
        for i, j, s in zip(rows.tolist(), cols.tolist(), scores.tolist(), strict=True)
    ]
    ineligible = {(ents[i], insts[j]): "COI" for i, j in excluded}
    by_ids = enc.encode(triples, ineligible=ineligible, **common)  # type: ignore[arg-type]
    by_rows = enc.encode_rows(
        rows,
        cols,
        scores,
        excluded=np.array(excluded, np.int64).reshape(-1, 2),
        excluded_reasons=("COI",) * len(excluded),
        **common,  # type: ignore[arg-type]
    )
    return enc, by_ids, by_rows


def _same_assignment(a: Assignment, b: Assignment) -> None:
    assert a.status is b.status
    assert a.pairs == b.pairs
    assert a.alternates == b.alternates
    assert a.uncovered == b.uncovered
    assert a.lock_conflicts == b.lock_conflicts
    assert a.churn == b.churn
    assert a.objective == b.objective


@settings(max_examples=80, deadline=None)
@given(campaigns())
def test_encode_rows_builds_the_problem_encode_builds(c: dict[str, object]) -> None:
    enc, by_ids, by_rows = _both(c)
    p_ids, p_rows = prepare(by_ids), prepare(by_rows)
    for name in ("rows", "cols", "scores", "usable", "excluded", "locked", "previous", "reasons"):
        assert np.array_equal(getattr(p_ids, name), getattr(p_rows, name)), name
    assert np.array_equal(p_ids.k, p_rows.k) and np.array_equal(p_ids.capacity, p_rows.capacity)
    assert by_ids.previous_unmapped == by_rows.previous_unmapped
    for solver in ("mincostflow", "fair"):
        s = get_solver(solver, n_alternates=2)
        _same_assignment(enc.decode(s.solve(by_ids)), enc.decode(s.solve(by_rows)))


def _reference_decode(enc: PairingEncoder, sol: PairingSolution) -> dict[str, object]:
    """The pair-by-pair decoding, written out plainly."""
    eids, iids = enc.enterprise_ids, enc.institute_ids
    pairs = [
        (eids[r], iids[c], float(s), bool(lk))
        for r, c, s, lk in zip(sol.rows, sol.cols, sol.scores, sol.locked, strict=True)
    ]
    alts: dict[str, list[tuple[str, float, bool]]] = {}
    for r, c, s, sp in zip(sol.alt_rows, sol.alt_cols, sol.alt_scores, sol.alt_spare, strict=True):
        alts.setdefault(eids[int(r)], []).append((iids[int(c)], float(s), bool(sp)))
    return {"pairs": pairs, "alternates": alts}


@settings(max_examples=60, deadline=None)
@given(campaigns())
def test_decode_maps_every_pair_and_alternate(c: dict[str, object]) -> None:
    enc, _, by_rows = _both(c)
    sol = get_solver("mincostflow", n_alternates=3).solve(by_rows)
    got = enc.decode(sol)
    ref = _reference_decode(enc, sol)
    assert [(p.enterprise, p.institute, p.score, p.locked) for p in got.pairs] == ref["pairs"]
    alts = {e: [(a.institute, a.score, a.spare) for a in v] for e, v in got.alternates.items()}
    assert alts == ref["alternates"]
    assert all(isinstance(p.score, float) and isinstance(p.locked, bool) for p in got.pairs)


def test_decode_groups_alternates_given_out_of_row_order() -> None:
    enc = PairingEncoder(["a", "b", "c"], ["x", "y", "z"])
    i64 = np.array([], np.int64)
    sol = PairingSolution(
        status=SolveStatus.OPTIMAL,
        solver="test",
        rows=i64,
        cols=i64,
        scores=np.zeros(0),
        locked=np.zeros(0, bool),
        objective=0.0,
        alt_rows=np.array([2, 0, 2, 0], np.int64),
        alt_cols=np.array([0, 1, 2, 2], np.int64),
        alt_scores=np.array([0.9, 0.8, 0.7, 0.6]),
        alt_spare=np.array([True, False, True, False]),
    )
    got = enc.decode(sol)
    assert got.alternates == {
        "a": (Alternate("y", 0.8, False), Alternate("z", 0.6, False)),
        "c": (Alternate("x", 0.9, True), Alternate("z", 0.7, True)),
    }
    assert "b" not in got.alternates


def test_encode_rows_refuses_rows_outside_the_encoder() -> None:
    from matcher.errors import InvalidParameter

    enc = PairingEncoder(["a"], ["x", "y"])
    problem = enc.encode_rows(np.array([1]), np.array([0]), np.array([0.5]))
    with pytest.raises(InvalidParameter):
        get_solver("mincostflow").solve(problem)


def test_decode_leaves_the_garbage_collector_as_it_found_it() -> None:
    import gc

    enc = PairingEncoder(["a"], ["x"])
    sol = get_solver("mincostflow").solve(enc.encode([("a", "x", 0.5)]))
    was = gc.isenabled()
    try:
        for state in (True, False):
            (gc.enable if state else gc.disable)()
            assert enc.decode(sol).pairs[0].institute == "x"
            assert gc.isenabled() is state
    finally:
        (gc.enable if was else gc.disable)()


def _exclusions_by_pair(
    all_key: np.ndarray, ex_key: np.ndarray, reasons_in: tuple[str, ...]
) -> list[str]:
    """The exclusion reasons written out pair by pair."""
    by_key: dict[int, list[str]] = {}
    for kk, r in zip(ex_key.tolist(), reasons_in, strict=True):
        by_key.setdefault(kk, []).append(r)
    return [",".join(dict.fromkeys(by_key[k])) if k in by_key else "" for k in all_key.tolist()]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 30), unique=True, max_size=20),
    st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["COI", "REGION", "A,B"])), max_size=25),
)
def test_exclusions_join_the_codes_of_each_pair(
    edges: list[int], excluded: list[tuple[int, str]]
) -> None:
    from matcher.solvers.problem import _exclusions

    all_key = np.array(edges, np.int64)
    ex_key = np.array([k for k, _ in excluded], np.int64)
    codes = tuple(c for _, c in excluded)
    is_excluded, reasons = _exclusions(all_key, ex_key, codes)
    want = _exclusions_by_pair(all_key, ex_key, codes)
    assert reasons.tolist() == want
    assert is_excluded.tolist() == [w != "" for w in want]
