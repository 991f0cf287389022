"""The array forms of the ranked path agree with the per-organisation forms they replace:
feature batches, the eligibility screen, the eligibility walk and the evidence cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher import explain
from matcher.constraints import EligibilityPolicy
from matcher.features import AGGREGATIONS, FeatureBuilder, Query
from matcher.pipeline import PairCheck, Recommender
from matcher.protocols import Candidate
from matcher.textutil import query_tokens, tokenize
from matcher.types import Exclusion, OrgInfo

ORG_KINDS = ("university", "institute", "company", "enterprise")


@st.composite
def candidate_groups(draw, doc_ids):
    """Per organisation a list of candidates (possibly empty), with ties and missing values."""
    groups = []
    for o in draw(st.lists(st.sampled_from(ORG_IDS), min_size=1, max_size=6, unique=True)):
        cands = []
        for d in draw(st.lists(st.sampled_from(doc_ids), max_size=4, unique=True)):
            sim = draw(st.one_of(st.none(), st.sampled_from([0.2, 0.5, 0.5, 0.9])))
            lex = draw(st.one_of(st.none(), st.sampled_from([0.5, 2.0, 4.0])))
            en = draw(st.one_of(st.none(), st.sampled_from([0.1, 0.4])))
            score = draw(st.sampled_from([0.1, 0.3, 0.3]))
            cands.append(Candidate(d, score, dense=sim, lexical=lex, english=en))
        groups.append((o, cands))
    return sorted(groups)


ORG_IDS = ("gxu", "scut", "gxas", "gxust", "comp_c", "ent_b")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_batch_features_equal_org_features(documents, orgs, data):
    caps = sorted(d for d, doc in documents.items() if doc.kind != "need")
    groups = data.draw(candidate_groups(caps))
    aggregation = data.draw(st.sampled_from(AGGREGATIONS))
    fb = FeatureBuilder(
        documents,
        orgs,
        aggregation=aggregation,
        load={"gxu": 3, "scut": -1},
        outcomes={"gxas": (2, 5)},
    )
    query = data.draw(
        st.sampled_from(
            [Query.from_document(documents["need_sugar"]), Query(None, "蔗渣 复合材料", None)]
        )
    )
    kwargs = {
        "lexical_max": data.draw(st.sampled_from([0.0, 3.0])),
        "semantic_range": data.draw(st.sampled_from([(0.0, 0.0), (0.2, 0.9), (0.5, 0.5)])),
        "query_keywords": fb.query_keywords(query),
        "english_range": data.draw(st.sampled_from([None, (0.1, 0.4), (0.4, 0.4)])),
    }
    batch = fb.batch_features(query, groups, **kwargs)
    again = fb.batch_features(query, groups, **kwargs)  # keyword overlaps from the cache
    assert again.features.tolist() == batch.features.tolist()
    assert batch.org_ids == [o for o, _ in groups]
    assert batch.features.shape == (len(groups), 10)
    for i, (o, cands) in enumerate(groups):
        one = fb.org_features(query, o, cands, **kwargs)
        got = batch.match(i)
        assert got.org_id == one.org_id and got.candidates == one.candidates
        assert got.features.tolist() == one.features.tolist(), o  # bit for bit
        assert got.doc_scores.tolist() == one.doc_scores.tolist()


@st.composite
def worlds(draw):
    n = draw(st.integers(2, 10))
    ids = [f"o{i}" for i in range(n)]
    orgs = {}
    for i, oid in enumerate(ids):
        parent = draw(st.one_of(st.none(), st.sampled_from(ids[:i]))) if i else None
        orgs[oid] = OrgInfo(
            oid,
            oid,
            draw(st.sampled_from(ORG_KINDS)),
            draw(st.booleans()),
            parent_id=parent,
            active=draw(st.booleans()),
        )
    keys = ["q1", *ids]
    blocks = draw(st.lists(st.tuples(st.sampled_from(keys), st.sampled_from(ids)), max_size=4))
    sources = draw(st.lists(st.sampled_from([*ids, "outside"]), min_size=1, max_size=2))
    kinds = draw(st.one_of(st.none(), st.lists(st.sampled_from(ORG_KINDS), max_size=2)))
    return orgs, blocks, sources, kinds, draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(worlds())
def test_screen_is_true_exactly_where_the_check_excludes(world):
    orgs, blocks, sources, kinds, in_region = world
    policy = EligibilityPolicy(orgs, blocks=blocks)
    ids = sorted(orgs)
    mask = policy.may_exclude(sources, ids, keys=["q1"], kinds=kinds, require_in_region=in_region)
    for o, m in zip(ids, mask.tolist(), strict=True):
        got = policy.check(sources, o, keys=["q1"], kinds=kinds, require_in_region=in_region)
        assert m == bool(got), (o, got)


def test_screen_rejects_unknown_organisations(policy):
    with pytest.raises(Exception, match="unknown organisation"):
        policy.may_exclude(["gx_sugar"], ["nobody"])


def test_visible_agrees_with_document_reasons(policy, documents):
    for doc in documents.values():
        for viewer in (None, "ent_b", "gxu", doc.org_id):
            assert policy.visible(doc, viewer) == (not policy.document_reasons(doc, viewer))


def _brute_force(org_ids, scores, check, k, k_excluded, unreported):
    """The walk's definition: check everybody, then take the best of each kind."""
    order = np.lexsort((np.arange(len(scores)), -scores)).tolist()
    ex = {i: check(org_ids[i]) for i in order}
    kept = [i for i in order if not ex[i]][:k]
    reported = [i for i in order if any(e.code not in unreported for e in ex[i])][:k_excluded]
    excluded = [dataclasses.replace(e, score=float(scores[i])) for i in reported for e in ex[i]]
    return kept, excluded


@settings(max_examples=60, deadline=None)
@given(
    worlds(),
    st.lists(st.sampled_from([0.1, 0.5, 0.5, 0.9]), min_size=10, max_size=10),
    st.integers(0, 4),
    st.integers(0, 4),
    st.booleans(),
)
def test_eligibility_walk_equals_checking_everybody(world, raw, k, k_excluded, screened):
    orgs, blocks, sources, kinds, in_region = world
    policy = EligibilityPolicy(orgs, blocks=blocks)
    ids = sorted(orgs)
    scores = np.array(raw[: len(ids)], dtype=np.float64)
    pair = PairCheck(policy, sources, ["q1"], kinds, in_region)

    def plain(org_id: str) -> list[Exclusion]:  # no screen: every organisation is checked
        return pair(org_id)

    check = pair if screened else plain
    unreported = ("WRONG_KIND",)
    got = Recommender._walk_eligible(ids, scores, check, k, k_excluded, unreported)
    assert got == _brute_force(ids, scores, pair, k, k_excluded, unreported)


def test_evidence_cache_returns_what_matching_finds(retrievers, documents, orgs, policy):
    def build() -> Recommender:
        return Recommender(retrievers=retrievers, documents=documents, orgs=orgs, policy=policy)

    recommender = build()
    ranked = recommender.rank_for_need("need_sugar", 5)
    assert ranked.suggestions and any(s.evidence for s in ranked.suggestions)
    assert recommender.rank_for_need("need_sugar", 5) == ranked  # from the cache, unchanged
    assert build().rank_for_need("need_sugar", 5) == ranked  # a fresh cache finds the same
    fb = recommender.features
    q = Query.from_document(documents["need_sugar"])
    docs = [(documents["gxu_wastewater"], 0.9), (documents["gxu_bagasse"], 0.5)]
    kw = {d.id: fb.doc_keywords(d.id) for d, _ in docs}
    cache = explain.EvidenceCache(maxsize=1)
    args = (q.id, q.text, fb.query_keywords(q), docs)
    plain = explain.evidence(*args, doc_keywords=kw)
    assert explain.evidence(*args, doc_keywords=kw, cache=cache) == plain
    assert len(cache._items) == 1  # bounded: the older pair was dropped
    assert explain.evidence(*args, doc_keywords=kw, cache=cache) == plain


def test_query_tokens_are_the_tokenizer_s_and_a_fresh_list():
    text = "高浓度制糖废水厌氧处理技术，COD去除率90%"
    first = query_tokens(text)
    assert first == tokenize(text) and first
    first.append("x")  # the memo hands out copies
    assert query_tokens(text) == tokenize(text)
