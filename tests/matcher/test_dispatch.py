"""Commissioner dispatch: profile scores against brute force; load limits and the group rule
hold on every instance, and the flow's objective equals the exact LP."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.dispatch import (
    SAME_GROUP,
    ProfileScores,
    check_dispatch,
    dispatch_problem,
    profile_scores,
    solve_dispatch,
)
from matcher.errors import InvalidParameter
from matcher.solvers import UncoveredCode


def brute(qv, q_row, n_rows, dv, d_col, n_cols):  # type: ignore[no-untyped-def]
    qu = qv / np.linalg.norm(qv, axis=1, keepdims=True)
    du = dv / np.linalg.norm(dv, axis=1, keepdims=True)
    s = qu @ du.T
    out = np.full((n_rows, n_cols), -np.inf)
    for a in range(len(qv)):
        for b in range(len(dv)):
            out[q_row[a], d_col[b]] = max(out[q_row[a], d_col[b]], s[a, b])
    return out


def test_profile_scores_equal_brute_force_best_pair() -> None:
    rng = np.random.default_rng(0)
    qv, dv = rng.standard_normal((9, 6)), rng.standard_normal((11, 6))
    q_row = np.array([0, 0, 1, 2, 2, 2, 4, 5, 5])  # row 3 has no needs
    d_col = np.array([0, 1, 1, 2, 3, 3, 3, 0, 4, 4, 2])  # column 5 has no documents
    want = brute(qv, q_row, 6, dv, d_col, 6)
    got = profile_scores(qv, q_row, 6, dv, d_col, 6, top=6, block=2)
    dense = np.full((6, 6), -np.inf)
    dense[got.rows, got.cols] = got.scores
    assert np.allclose(dense, want)
    # the reported best query and document really give that score
    qu = qv / np.linalg.norm(qv, axis=1, keepdims=True)
    du = dv / np.linalg.norm(dv, axis=1, keepdims=True)
    for r, c, s, q, d in zip(got.rows, got.cols, got.scores, got.query, got.doc, strict=True):
        assert q_row[q] == r and d_col[d] == c
        assert float(qu[q] @ du[d]) == pytest.approx(s, abs=1e-6)
    top2 = profile_scores(qv, q_row, 6, dv, d_col, 6, top=2)
    assert np.bincount(top2.rows, minlength=6).max() == 2


def test_group_rule_and_load_limit_on_a_hand_built_case() -> None:
    # 3 enterprises, 2 commissioners; commissioner 0 is the best everywhere but works for
    # the group of enterprise 0 and can take one enterprise.
    cand = ProfileScores(
        rows=np.array([0, 0, 1, 1, 2, 2]),
        cols=np.array([0, 1, 0, 1, 0, 1]),
        scores=np.array([0.9, 0.5, 0.8, 0.6, 0.7, 0.4]),
        query=np.zeros(6, np.int64),
        doc=np.zeros(6, np.int64),
    )
    groups_e, groups_c = [10, 11, 12], [10, 13]
    p = dispatch_problem(
        cand, 3, 2, load_limit=[1, 2], enterprise_group=groups_e, employer_group=groups_c
    )
    sol = solve_dispatch(p)
    assert set(zip(sol.rows.tolist(), sol.cols.tolist(), strict=True)) == {
        (0, 1),
        (1, 1),
        (2, 0),
    }  # 0.5 + 0.6 + 0.7 beats 0.5 + 0.8 + 0.4
    assert check_dispatch(p, sol, groups_e, groups_c) == []
    # with commissioner 1 out of capacity, enterprise 0 has only its own group left
    p2 = dispatch_problem(
        cand, 3, 2, load_limit=[1, 0], enterprise_group=groups_e, employer_group=groups_c
    )
    sol2 = solve_dispatch(p2)
    codes = {u.enterprise: u.code for u in sol2.uncovered}
    assert 0 in codes and codes[0] in (UncoveredCode.CONFLICT, UncoveredCode.CAPACITY_EXHAUSTED)
    assert p2.excluded_reasons == (SAME_GROUP,)
    assert np.asarray(p2.excluded).tolist() == [[0, 0]]


def test_check_dispatch_reports_violations() -> None:
    cand = ProfileScores(
        np.array([0, 1]), np.array([0, 0]), np.array([0.5, 0.5]), np.zeros(2, np.int64),
        np.zeros(2, np.int64),
    )  # fmt: skip
    p = dispatch_problem(cand, 2, 1, load_limit=1, enterprise_group=[1, 2], employer_group=[1])
    sol = solve_dispatch(p)
    assert check_dispatch(p, sol, [1, 2], [1]) == []
    assert sol.rows.tolist() == [1]  # row 0 shares group 1 with the commissioner's employer
    bad = replace(sol, rows=np.array([0, 1]), cols=np.array([0, 0]))
    msgs = check_dispatch(p, bad, [1, 2], [1])
    assert any("load 2 > limit 1" in m for m in msgs)
    assert any("own group" in m for m in msgs)


def test_validation() -> None:
    with pytest.raises(InvalidParameter):
        profile_scores(np.ones((2, 3)), [0, 5], 2, np.ones((1, 3)), [0], 1)
    with pytest.raises(InvalidParameter):
        profile_scores(np.ones((2, 3)), [0, 1], 2, np.ones((1, 4)), [0], 1)
    cand = profile_scores(np.ones((1, 3)), [0], 1, np.ones((1, 3)), [0], 1)
    with pytest.raises(InvalidParameter):
        dispatch_problem(cand, 1, 1, load_limit=1, enterprise_group=[1, 2], employer_group=[1])


@st.composite
def instances(draw: st.DrawFn) -> tuple[object, list[int], list[int]]:
    n_e = draw(st.integers(1, 7))
    n_c = draw(st.integers(1, 5))
    d = 4
    n_q = draw(st.integers(1, 10))
    n_d = draw(st.integers(1, 8))
    q_row = draw(st.lists(st.integers(0, n_e - 1), min_size=n_q, max_size=n_q))
    d_col = draw(st.lists(st.integers(0, n_c - 1), min_size=n_d, max_size=n_d))
    vals = draw(st.lists(st.integers(-5, 5), min_size=(n_q + n_d) * d, max_size=(n_q + n_d) * d))
    v = np.array(vals, float).reshape(n_q + n_d, d) + 0.01
    groups = draw(st.lists(st.integers(0, 3), min_size=n_e + n_c, max_size=n_e + n_c))
    load = draw(st.lists(st.integers(0, 3), min_size=n_c, max_size=n_c))
    k = draw(st.integers(1, 2))
    top = draw(st.integers(1, n_c))
    cand = profile_scores(v[:n_q], q_row, n_e, v[n_q:], d_col, n_c, top=top)
    ge, gc = groups[:n_e], groups[n_e:]
    p = dispatch_problem(
        cand, n_e, n_c, load_limit=load, enterprise_group=ge, employer_group=gc, k=k
    )
    return p, ge, gc


@settings(max_examples=60, deadline=None)
@given(instances())
def test_dispatch_keeps_the_rules_and_equals_the_exact_lp(inst: tuple) -> None:  # type: ignore[type-arg]
    p, ge, gc = inst
    flow = solve_dispatch(p)
    assert check_dispatch(p, flow, ge, gc) == []
    lp = solve_dispatch(p, solver="lp")
    assert check_dispatch(p, lp, ge, gc) == []
    assert flow.n_pairs == lp.n_pairs
    assert flow.objective == pytest.approx(lp.objective, abs=1e-9)
