"""Guideline condensation: clustering recovers planted topics, labels come from the cluster."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from matcher.errors import InvalidParameter
from matcher.guideline import (
    METHODS,
    NeedItem,
    cluster_vectors,
    condense,
    distinctive_terms,
    make_label,
    split_labels,
)


def planted(
    n_topics: int = 4, per: int = 12, d: int = 32, noise: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_topics, d))
    labels = np.repeat(np.arange(n_topics), per)
    x = centres[labels] + noise * rng.standard_normal((len(labels), d))
    return x.astype(np.float32), labels


@pytest.mark.parametrize("method", METHODS)
def test_every_method_recovers_separated_topics(method: str) -> None:
    x, truth = planted()
    kw = {"n_clusters": 4} if method in ("kmeans",) else {}
    labels = cluster_vectors(x, method=method, min_cluster_size=4, **kw)  # type: ignore[arg-type]
    assert len(labels) == len(truth) and labels.min() == 0
    assert adjusted_rand_score(truth, labels) > 0.9


def test_threshold_sets_granularity_not_count() -> None:
    x, _ = planted(n_topics=3)
    fine = cluster_vectors(x, threshold=0.3)
    coarse = cluster_vectors(x, threshold=100.0)
    assert fine.max() + 1 > coarse.max() + 1
    assert coarse.max() + 1 == 1


def test_large_input_goes_through_micro_clusters_and_stays_deterministic() -> None:
    x, truth = planted(n_topics=5, per=60, noise=0.1)
    a = cluster_vectors(x, max_exact=100)
    b = cluster_vectors(x, max_exact=100)
    assert (a == b).all()
    assert adjusted_rand_score(truth, a) > 0.9


def test_bad_parameters() -> None:
    with pytest.raises(InvalidParameter, match="ward"):
        cluster_vectors(np.zeros((3, 2)), method="spectral")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter):
        cluster_vectors(np.zeros(3))
    with pytest.raises(InvalidParameter):
        split_labels(np.zeros((1, 3)))


def _items() -> tuple[list[NeedItem], np.ndarray]:
    x, truth = planted(n_topics=2, per=6, seed=3)
    topics = [("热泵", "整车热管理"), ("沃柑", "黄龙病")]
    items = []
    for i, t in enumerate(truth.tolist()):
        a, b = topics[t]
        items.append(
            NeedItem(
                id=f"N{i:02d}",
                org_id=f"E{i % 5}",
                field="汽车" if t == 0 else "农业",
                title=f"{a}{b}技术需求",
                keywords=(a, b, "工艺"),
            )
        )
    items.append(NeedItem("N99", "E9", None, "孤立需求"))
    x = np.vstack([x, np.ones((1, x.shape[1]), np.float32)])
    return items, x


def test_condense_builds_directions_per_field_with_own_keywords() -> None:
    items, x = _items()
    res = condense(items, x, threshold=3.0)
    fields = res.by_field()
    assert set(fields) == {"汽车", "农业", "未分类"}
    car = fields["汽车"]
    assert sum(d.size for d in car) == 6
    top = car[0]
    assert "热泵" in top.keywords and "整车热管理" in top.keywords
    assert "黄龙病" not in top.label
    assert set(top.representatives) <= set(top.need_ids)
    assert len(top.representatives) == 3
    assert set(top.org_ids) == {items[int(i[1:])].org_id for i in top.need_ids}
    assert 0 < top.cohesion <= 1
    # every need is placed exactly once
    placed = [n for d in res.directions for n in d.need_ids]
    assert sorted(placed) == sorted(it.id for it in items)


def test_condense_checks_shapes() -> None:
    items, x = _items()
    with pytest.raises(InvalidParameter):
        condense(items, x[:-1])


def test_distinctive_terms_prefer_cluster_specific_words() -> None:
    terms = [["泵", "热泵", "通用"], ["热泵", "通用"], ["通用", "茶叶"], ["茶叶", "通用"]]
    kws = distinctive_terms(terms, np.array([0, 0, 1, 1]))
    assert kws[0][0] == "热泵"
    assert kws[1][0] == "茶叶"
    assert "泵" not in kws[0]  # contained in a better term


def test_labels() -> None:
    assert make_label(["热泵", "热管理", "电池"]) == "热泵、热管理与电池"
    assert make_label(["热泵"]) == "热泵关键技术"
    assert make_label([], "农业") == "农业综合方向"


def test_split_labels_two_parts() -> None:
    x, truth = planted(n_topics=2, per=5)
    lab = split_labels(x)
    assert set(lab.tolist()) == {0, 1}
    assert adjusted_rand_score(truth, lab) == 1.0
