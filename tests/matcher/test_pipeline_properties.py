"""Property tests of the Recommender on random small worlds: whatever the data, suggestions
are eligible, sorted, visible to the viewer, and score_pairs agrees with them."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.constraints import EligibilityPolicy
from matcher.pipeline import Recommender
from matcher.types import Document, OrgInfo
from tests.conftest import HashingEncoder
from tests.matcher.conftest import InMemoryRetriever

WORDS = ["制糖", "废水", "厌氧", "蔗渣", "材料", "发酵", "甘蔗", "收获", "涂层", "监测"]
KINDS = ("enterprise", "university", "institute", "company")
ENCODER = HashingEncoder(64)


@st.composite
def worlds(draw):
    n_orgs = draw(st.integers(2, 8))
    orgs = {}
    for i in range(n_orgs):
        oid = f"o{i}"
        parent = (
            draw(st.one_of(st.none(), st.sampled_from([f"o{j}" for j in range(i)]))) if i else None
        )
        orgs[oid] = OrgInfo(
            oid,
            oid,
            draw(st.sampled_from(KINDS)),
            draw(st.booleans()),
            parent_id=parent,
            active=draw(st.booleans() | st.just(True)),
        )
    docs = {}
    for i in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["need", "achievement", "patent"]))
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4))
        docs[f"d{i}"] = Document(
            f"d{i}",
            draw(st.sampled_from(sorted(orgs))),
            kind,
            "".join(words),
            "。".join(words) + "。",
            active=draw(st.booleans() | st.just(True)),
            confidential=kind == "need" and draw(st.booleans()),
        )
    blocks = draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(docs)), st.sampled_from(sorted(orgs))), max_size=2
        )
    )
    return orgs, docs, blocks


def build(orgs, docs, blocks) -> Recommender:
    caps = [d for d in docs.values() if d.kind != "need"]
    needs = [d for d in docs.values() if d.kind == "need"]
    return Recommender(
        retrievers={
            "capabilities": InMemoryRetriever(ENCODER, caps),
            "needs": InMemoryRetriever(ENCODER, needs),
        },
        documents=docs,
        orgs=orgs,
        policy=EligibilityPolicy(orgs, blocks=blocks),
        fetch_k=10,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_suggestions_are_eligible_sorted_visible_and_consistent(world):
    orgs, docs, blocks = world
    rec = build(orgs, docs, blocks)
    for need in (d for d in docs.values() if d.kind == "need"):
        res = rec.rank_for_need(need.id, k=5, kinds=None)
        sugg = res.suggestions
        assert [s.score for s in sugg] == sorted((s.score for s in sugg), reverse=True)
        for s in sugg:
            assert rec.policy.check(need.org_id, s.org_id, keys=[need.id]) == []
            for e in s.evidence:
                d = docs[e.doc_id]
                assert d.active and d.kind != "need" and d.org_id == s.org_id
                assert not d.confidential or d.org_id == need.org_id
                assert e.doc_snippet in d.full_text and e.query_snippet in need.full_text
        for e in res.excluded:
            assert rec.policy.check(need.org_id, e.org_id, keys=[need.id])
        if sugg:
            assert rec.score_pairs([(need.id, s.org_id) for s in sugg]) == [s.score for s in sugg]
    for cap in (d for d in docs.values() if d.kind != "need"):
        for s in rec.enterprises_for_capability(cap.id, k=5):
            for e in s.evidence:
                d = docs[e.doc_id]
                assert d.kind == "need" and d.active
                assert not d.confidential  # another organisation's confidential need
