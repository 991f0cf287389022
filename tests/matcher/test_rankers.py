"""One invariant suite over every registered ranker, persistence, and the learned ranker."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from matcher.features import FEATURE_NAMES
from matcher.rankers import (
    DEFAULT_WEIGHTS,
    LogisticRanker,
    ScoringRanker,
    evaluate_ranker,
    top_k,
    train_with_holdout,
)
from matcher.registry import RANKERS, get_ranker, load_ranker

F = len(FEATURE_NAMES)
SEMANTIC = FEATURE_NAMES.index("semantic")
REGION = FEATURE_NAMES.index("region")


def labelled(seed: int, n: int = 300):
    """Random feature rows; approval depends on semantic and (planted) region."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, F))
    X[:, REGION] = rng.integers(0, 2, n)
    logit = 3.0 * (X[:, SEMANTIC] - 0.5) + 2.5 * (X[:, REGION] - 0.5)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    groups = np.repeat([f"q{i}" for i in range(n // 10)], 10)
    return X, y, groups


def fitted(name: str, seed: int = 0):
    X, y, _ = labelled(seed)
    return get_ranker(name, random_state=seed).fit(X, y)


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_params_round_trip_and_clone(name):
    r = get_ranker(name, random_state=3)
    params = r.get_params()
    assert params["random_state"] == 3
    r2 = get_ranker(name)
    assert r2.set_params(**params) is r2
    assert r2.get_params() == params
    assert clone(r).get_params() == params


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_fit_returns_self_and_learned_state_ends_in_underscore(name):
    X, y, _ = labelled(0)
    r = get_ranker(name, random_state=0)
    before = set(vars(r))
    assert r.fit(X, y) is r
    learned = set(vars(r)) - before
    assert learned and all(a.endswith("_") for a in learned)


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_deterministic_under_random_state(name):
    X, _, _ = labelled(1)
    a = fitted(name, seed=5).decision_function(X)
    b = fitted(name, seed=5).decision_function(X)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(RANKERS))
@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 40),
    k=st.integers(0, 50),
    seed=st.integers(0, 2**16),
    p_mask=st.floats(0, 1),
)
def test_top_k_sorted_and_constraints_never_violated(name, n, k, seed, p_mask):
    rng = np.random.default_rng(seed)
    X = rng.random((n, F)).round(1)  # rounding creates ties
    mask = rng.random(n) < p_mask
    r = fitted(name)
    idx, scores = r.rank(X, k, mask)
    assert len(idx) == min(k, int((~mask).sum()))
    assert not mask[idx].any()
    assert np.all(np.diff(scores) <= 0)
    full = r.decision_function(X)
    np.testing.assert_array_equal(scores, full[idx])
    if len(idx) < int((~mask).sum()) and len(idx):
        # nothing left out scores higher than the last one kept
        rest = np.setdiff1d(np.flatnonzero(~mask), idx)
        assert full[rest].max() <= scores[-1]


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_scores_are_row_independent(name):
    X, _, _ = labelled(2, n=50)
    r = fitted(name)
    full = r.decision_function(X)
    for i in (0, 17, 49):
        assert r.decision_function(X[i : i + 1])[0] == full[i]


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_contributions_add_up(name):
    X, _, _ = labelled(3, n=20)
    r = fitted(name)
    c, bias = r.contributions(X)
    assert c.shape == (20, F)
    np.testing.assert_allclose(c.sum(axis=1) + bias, r.decision_function(X))


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_save_load_round_trip(name, tmp_path):
    X, _, _ = labelled(4, n=30)
    r = fitted(name)
    path = r.save(tmp_path / f"{name}.json")
    manifest = json.loads(path.read_text())
    assert manifest["ranker"] == name and manifest["feature_names"] == list(FEATURE_NAMES)
    assert "sklearn" in manifest["versions"]
    loaded = load_ranker(path)
    assert type(loaded) is type(r) and loaded.get_params() == r.get_params()
    np.testing.assert_array_equal(loaded.decision_function(X), r.decision_function(X))


def test_corrupted_or_foreign_manifest_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        load_ranker(bad)
    r = fitted("logistic")
    path = r.save(tmp_path / "m.json")
    m = json.loads(path.read_text())
    m["state"]["coef"] = m["state"]["coef"][:-1]
    path.write_text(json.dumps(m))
    with pytest.raises(ValueError, match="m.json.*corrupt"):
        load_ranker(path)
    m["feature_names"] = ["x"]
    path.write_text(json.dumps(m))
    with pytest.raises(ValueError, match="retrain"):
        LogisticRanker.load(path)
    with pytest.raises(ValueError, match="expected 'scoring'"):
        ScoringRanker.load(r.save(tmp_path / "l.json"))


def test_unknown_ranker_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown ranker 'svm'; valid: \['logistic', 'scoring'\]"):
        get_ranker("svm")


def test_scoring_ranker_works_unfitted_and_validates_weights():
    x = np.zeros((1, F))
    x[0, SEMANTIC] = 0.8
    assert ScoringRanker().decision_function(x)[0] == pytest.approx(
        0.8 * DEFAULT_WEIGHTS["semantic"]
    )
    assert ScoringRanker(weights={"semantic": 3.0}).decision_function(x)[0] == pytest.approx(2.4)
    with pytest.raises(ValueError, match="unknown feature"):
        ScoringRanker(weights={"colour": 1.0}).fit()


def test_logistic_validates_labels_and_shape():
    X, y, _ = labelled(0)
    with pytest.raises(ValueError, match="both approved"):
        LogisticRanker().fit(X, np.ones_like(y))
    with pytest.raises(ValueError, match="shape"):
        LogisticRanker().fit(X[:, :3], y)
    with pytest.raises(ValueError, match="C must be"):
        LogisticRanker(C=-1).fit(X, y)


def test_learned_ranker_recovers_planted_preference():
    X, y, groups = labelled(7, n=600)
    ranker, metrics = train_with_holdout(X, y, groups, test_size=0.3, random_state=0)
    coef = dict(zip(FEATURE_NAMES, ranker.coef_, strict=True))
    others = [abs(v) for n, v in coef.items() if n not in ("semantic", "region")]
    assert coef["region"] > 3 * max(others) and coef["semantic"] > 3 * max(others)
    assert metrics["test_auc"] > 0.75
    # the default scoring barely weighs region: the learned model must beat it held-out
    assert metrics["test_auc"] > metrics["baseline_auc"]
    assert 0 < metrics["test_ndcg@10"] <= 1


def test_evaluate_ranker_perfect_and_reversed():
    X = np.zeros((4, F))
    X[:, SEMANTIC] = [0.9, 0.1, 0.8, 0.2]
    y = np.array([1, 0, 1, 0])
    m = evaluate_ranker(ScoringRanker(), X, y, ["a", "a", "b", "b"])
    assert m["auc"] == 1.0 and m["ndcg@10"] == 1.0
    assert evaluate_ranker(ScoringRanker(), X, 1 - y, ["a", "a", "b", "b"])["auc"] == 0.0


def test_top_k_tie_break_and_mask_shape():
    assert top_k([1.0, 2.0, 2.0, 0.5], 3).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="mask shape"):
        top_k([1.0, 2.0], 1, [True])


def test_ranker_or_default_and_metadata(tmp_path):
    from matcher.registry import ranker_or_default

    assert isinstance(ranker_or_default(None), ScoringRanker)
    assert isinstance(ranker_or_default(tmp_path / "missing.json"), ScoringRanker)
    path = fitted("logistic").save(tmp_path / "r.json", metadata={"test_auc": 0.9})
    assert json.loads(path.read_text())["metadata"] == {"test_auc": 0.9}
    assert isinstance(ranker_or_default(path), LogisticRanker)
    path.write_text("[]")
    with pytest.raises(ValueError, match="r.json"):
        ranker_or_default(path)


def test_train_with_holdout_degrades_gracefully(tmp_path):
    X, y, _ = labelled(0, n=40)
    ranker, metrics = train_with_holdout(X, y, ["q"] * 40)
    assert np.isnan(metrics["n_test"]) and hasattr(ranker, "coef_")
    path = ranker.save(tmp_path / "r.json", metadata=metrics)
    assert json.loads(path.read_text())["metadata"]["n_test"] is None
    with pytest.raises(ValueError, match="groups has"):
        train_with_holdout(X, y, ["q"] * 3)
