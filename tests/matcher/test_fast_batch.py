"""The array path of ``OrgScorer.match_batch`` (:mod:`matcher.fastbatch`) gives the
per-candidate path's feature batch bit for bit: visibility, grouping, evidence order (ties
included), filled dense cosines and every feature column."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.constraints import EligibilityPolicy
from matcher.features import Query
from matcher.fusion import row_space
from matcher.pipeline import Recommender
from matcher.protocols import Candidate
from matcher.rowmaps import CandidateList
from matcher.types import Document


class PerCandidatePolicy(EligibilityPolicy):
    """The same rules; a policy of its own type takes the per-candidate path."""

    def visible(self, doc: Document, viewer_org_id: str | None) -> bool:
        return super().visible(doc, viewer_org_id)


class ScoringRetriever:
    """A retriever that also scores given documents (fills BM25-only candidates)."""

    def retrieve(self, queries: list[str], k: int) -> list[list[Candidate]]:
        return [[] for _ in queries]

    def score_documents(self, query: str, doc_ids: list[str]) -> list[Candidate]:
        return [Candidate(d, 0.0, 0.25 + (sum(map(ord, d)) % 4) / 8) for d in doc_ids]


def _recommender(documents, orgs, policy) -> Recommender:  # type: ignore[no-untyped-def]
    return Recommender(
        retrievers={"capabilities": ScoringRetriever(), "needs": ScoringRetriever()},
        documents=documents,
        orgs=orgs,
        policy=policy,
        load={"gxu": 2, "scut": -3},
        outcomes={"gxu": (3, 4)},
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_batch_equals_the_per_candidate_path(documents, orgs, data) -> None:  # type: ignore[no-untyped-def]
    fast = _recommender(documents, orgs, EligibilityPolicy(orgs))
    slow = _recommender(documents, orgs, PerCandidatePolicy(orgs))
    ids = sorted(documents) + ["unknown_doc"]
    chosen = data.draw(st.lists(st.sampled_from(ids), max_size=14, unique=True))
    cands = [
        Candidate(
            d,
            data.draw(st.sampled_from([0.1, 0.3, 0.3, 0.7])),
            dense=data.draw(st.one_of(st.none(), st.sampled_from([0.2, 0.5, 0.5, 0.9]))),
            lexical=data.draw(st.one_of(st.none(), st.sampled_from([0.5, 2.0, 4.0]))),
            chunk=data.draw(st.sampled_from([0, 1])),
        )
        for d in chosen
    ]
    collection = data.draw(st.sampled_from(["capabilities", "needs"]))
    query = data.draw(
        st.one_of(
            st.sampled_from([Query.from_document(d) for d in documents.values()]),
            st.just(Query(None, "蔗渣 复合材料 焊接", None, "材料")),
        )
    )
    viewer = data.draw(st.one_of(st.none(), st.sampled_from(sorted(orgs))))
    a = fast.match_batch(query, cands, collection, viewer)
    b = slow.match_batch(query, cands, collection, viewer)
    assert a.org_ids == b.org_ids
    assert a.candidates == b.candidates
    assert a.features.tolist() == b.features.tolist()  # bit for bit
    assert a.sims.tolist() == b.sims.tolist() and a.starts.tolist() == b.starts.tolist()
    assert np.shape(a.features) == (len(a.org_ids), 10)
    # candidates carrying their rows in a retriever's space (in an order of its own)
    space = row_space(sorted(ids, reverse=True))
    carried = CandidateList(cands)
    carried.space = space
    carried.rows = np.array([space.row_of[c.doc_id] for c in cands], dtype=np.int64)
    c = fast.match_batch(query, carried, collection, viewer)
    assert (c.org_ids, c.candidates) == (a.org_ids, a.candidates)
    assert c.features.tolist() == a.features.tolist()


def _synthetic_world():  # type: ignore[no-untyped-def]
    from matcher.types import OrgInfo

    rng = np.random.default_rng(5)
    fields = ["材料", "机械", "环境", None]
    orgs = {
        f"o{i}": OrgInfo(
            f"o{i}",
            f"单位{i}",
            "university" if i % 2 else "institute",
            bool(i % 3),
            fields=("材料",) if i == 0 else (),
        )
        for i in range(6)
    }
    documents = {
        f"c{j:02d}": Document(
            f"c{j:02d}",
            f"o{j % 6}",
            "achievement",
            f"成果{j}",
            "焊接 材料 复合" if j % 2 else "机械 加工",
            field=fields[int(rng.integers(0, 4))],
            trl=None if j % 5 == 0 else int(rng.integers(1, 10)),
            active=j % 11 != 3,
            confidential=j % 13 == 4,
        )
        for j in range(36)
    }
    return documents, orgs


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_batch_equals_the_per_candidate_path_with_many_documents_per_organisation(
    data,  # type: ignore[no-untyped-def]
) -> None:
    documents, orgs = _synthetic_world()
    fast = _recommender(documents, orgs, EligibilityPolicy(orgs))
    slow = _recommender(documents, orgs, PerCandidatePolicy(orgs))
    chosen = data.draw(st.lists(st.sampled_from(sorted(documents)), min_size=1, unique=True))
    cands = [
        Candidate(
            d,
            data.draw(st.sampled_from([0.1, 0.3, 0.7])),
            dense=data.draw(st.one_of(st.none(), st.sampled_from([0.2, 0.5, 0.9]))),
            lexical=data.draw(st.one_of(st.none(), st.sampled_from([0.5, 2.0]))),
        )
        for d in chosen
    ]
    field = data.draw(st.sampled_from(["材料", "机械", "环境", None]))
    viewer = data.draw(st.one_of(st.none(), st.sampled_from(sorted(orgs))))
    query = Query(None, "焊接 材料", None, field)
    a = fast.match_batch(query, cands, "capabilities", viewer)
    b = slow.match_batch(query, cands, "capabilities", viewer)
    assert (a.org_ids, a.candidates) == (b.org_ids, b.candidates)
    assert a.features.tolist() == b.features.tolist()
    assert a.sims.tolist() == b.sims.tolist() and a.starts.tolist() == b.starts.tolist()


def test_a_refreshed_load_reaches_the_array_path(documents, orgs) -> None:  # type: ignore[no-untyped-def]
    """A staff decision replaces the feature builder's load and outcomes in place (the
    service's hot reload); the array path must not keep the facts derived before."""
    fast = _recommender(documents, orgs, EligibilityPolicy(orgs))
    slow = _recommender(documents, orgs, PerCandidatePolicy(orgs))
    cands = [Candidate(d, 0.5, dense=0.5, lexical=1.0) for d in sorted(documents)]
    query = Query(None, "蔗渣 复合材料 焊接", None, "材料")
    first = fast.match_batch(query, cands, "capabilities", None).features.tolist()
    for rec in (fast, slow):
        rec.features.load, rec.features.outcomes = {"gxu": 9}, {"gxu": (0, 5)}
    a = fast.match_batch(query, cands, "capabilities", None)
    b = slow.match_batch(query, cands, "capabilities", None)
    assert a.features.tolist() == b.features.tolist()
    assert a.features.tolist() != first
