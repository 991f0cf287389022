"""Document → organisation aggregation and the named feature vector."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matcher.features import AGGREGATIONS, FEATURE_NAMES, FeatureBuilder, Query, aggregate
from matcher.protocols import Candidate


def test_aggregations_on_known_values():
    s = np.array([0.2, 0.9, 0.5])
    assert aggregate(s, "max") == 0.9
    assert aggregate(s, "mean") == pytest.approx(1.6 / 3)
    assert aggregate(s, "sum") == pytest.approx(1.6)
    assert aggregate(s, "topk_mean", k=2) == pytest.approx(0.7)
    assert aggregate(np.array([0.8]), "topk_mean", k=2) == pytest.approx(0.4)  # missing = 0
    lse = aggregate(s, "logsumexp", temperature=0.05)
    assert 0.9 < lse < 0.9 + 0.05 * math.log(3) + 1e-12
    for m in AGGREGATIONS:
        assert aggregate(np.zeros(0), m) == 0.0
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate(s, "median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be"):
        aggregate(s, "topk_mean", k=0)


def test_feature_vector_names_and_values(documents, orgs):
    fb = FeatureBuilder(documents, orgs, load={"gxu": 3}, outcomes={"gxu": (4, 4)})
    q = Query.from_document(documents["need_sugar"])
    cands = [
        Candidate("gxu_bagasse", 0.5, dense=0.5, lexical=2.0),
        Candidate("gxu_wastewater", 0.9, dense=0.9, lexical=4.0),
    ]
    m = fb.org_features(q, "gxu", cands, lexical_max=8.0, semantic_range=(0.5, 1.3))
    f = dict(zip(FEATURE_NAMES, m.features, strict=True))
    assert m.features.dtype == np.float64 and m.features.shape == (len(FEATURE_NAMES),)
    assert [c.doc_id for c in m.candidates] == ["gxu_wastewater", "gxu_bagasse"]
    assert f["semantic"] == 0.9 and f["lexical"] == 0.5
    assert f["semantic_rel"] == pytest.approx(0.5)
    top = fb.org_features(q, "gxu", cands, lexical_max=8.0, semantic_range=(0.9, 0.9))
    assert top.features[FEATURE_NAMES.index("semantic_rel")] == 1.0
    assert f["field_match"] == 1.0 and f["maturity"] == pytest.approx(7 / 9)
    assert f["region"] == 1.0 and f["load"] == pytest.approx(math.log(4))
    assert f["past_success"] == pytest.approx(5 / 6 - 0.5)
    assert f["coverage"] == pytest.approx(0.2)
    assert 0 < f["keyword_overlap"] <= 1
    vec = fb.org_features(q, "scut", [], lexical_max=0.0).features
    empty = dict(zip(FEATURE_NAMES, vec, strict=True))
    assert empty["semantic"] == empty["lexical"] == empty["keyword_overlap"] == 0.0
    assert empty["semantic_rel"] == 0.0
    assert empty["region"] == 0.0 and empty["past_success"] == 0.0


def test_feature_builder_rejects_unknown_aggregation(documents, orgs):
    with pytest.raises(ValueError, match="aggregation must be one of"):
        FeatureBuilder(documents, orgs, aggregation="median")  # type: ignore[arg-type]
