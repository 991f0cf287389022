"""IR metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from matcher.errors import InvalidParameter
from matcher.evaluation import (
    apply_exclude,
    evaluate_rankings,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)


def test_ndcg_single_relevant_at_rank_3() -> None:
    # DCG = 1/log2(4) = 0.5; IDCG = 1
    assert ndcg_at_k(["a", "b", "c", "d"], {"c"}, 10) == pytest.approx(0.5)


def test_ndcg_several_relevant() -> None:
    # relevant at ranks 1 and 3 out of 3 relevant: DCG = 1 + 0.5; IDCG = 1 + 1/log2(3) + 0.5
    dcg = 1.0 + 0.5
    idcg = 1.0 + 1.0 / math.log2(3) + 0.5
    got = ndcg_at_k(["r1", "x", "r2", "y"], {"r1", "r2", "r3"}, 10)
    assert got == pytest.approx(dcg / idcg)


def test_ndcg_ideal_is_capped_at_k() -> None:
    # 5 relevant, k=2, both top positions relevant -> perfect
    assert ndcg_at_k(["a", "b", "x"], {"a", "b", "c", "d", "e"}, 2) == pytest.approx(1.0)
    # relevant beyond the cut-off does not count
    assert ndcg_at_k(["x", "y", "a"], {"a"}, 2) == 0.0


def test_recall_and_precision() -> None:
    ranking = ["a", "x", "b", "y", "c"]
    rel = {"a", "b", "c", "d"}
    assert recall_at_k(ranking, rel, 1) == pytest.approx(0.25)
    assert recall_at_k(ranking, rel, 3) == pytest.approx(0.5)
    assert recall_at_k(ranking, rel, 100) == pytest.approx(0.75)
    assert precision_at_k(ranking, rel, 4) == pytest.approx(0.5)
    # missing positions count as non-relevant
    assert precision_at_k(["a"], rel, 10) == pytest.approx(0.1)


def test_mrr() -> None:
    assert mrr_at_k(["x", "y", "a"], {"a", "b"}, 100) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "a"], {"a"}, 2) == 0.0
    assert mrr_at_k([], {"a"}, 10) == 0.0


def test_exclude_drops_before_scoring() -> None:
    assert apply_exclude(["q", "a", "a", "b"], {"q"}) == ["a", "b"]
    res = evaluate_rankings(
        {"q1": ["self", "x", "a"]},
        {"q1": ["a", "self"]},
        exclude={"q1": ["self"]},
        metrics=["ndcg@10", "mrr@100", "recall@1"],
    )
    # after exclusion the ranking is [x, a] and the relevant set is {a}: rank 2
    assert res["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert res["mrr@100"] == pytest.approx(0.5)
    assert res["recall@1"] == 0.0
    assert res["n_queries"] == 1.0


def test_evaluate_means_and_skips() -> None:
    res = evaluate_rankings(
        {"q1": ["a"], "q2": ["x", "b"]},
        {"q1": ["a"], "q2": ["b"], "q3": ["c"], "q4": ["z"]},
        exclude={"q4": ["z"]},
        metrics=["mrr@10"],
    )
    # q1: 1, q2: 0.5, q3 missing ranking: 0; q4 skipped (no relevant left)
    assert res["mrr@10"] == pytest.approx(1.5 / 3)
    assert res["n_queries"] == 3.0
    assert res["n_skipped"] == 1.0


@pytest.mark.parametrize("name", ["ndcg", "ndcg@x", "foo@10", "recall10"])
def test_unknown_metric_names_raise(name: str) -> None:
    with pytest.raises(InvalidParameter, match="unknown metric"):
        evaluate_rankings({}, {"q": ["a"]}, metrics=[name])


def test_bad_k_and_empty_relevant_raise() -> None:
    with pytest.raises(InvalidParameter):
        ndcg_at_k(["a"], {"a"}, 0)
    with pytest.raises(InvalidParameter):
        recall_at_k(["a"], set(), 10)
