"""Recommender end to end on the tiny corpus with the in-memory retriever."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.errors import IndexNotReady, InvalidParameter, UnknownEntity
from matcher.features import FEATURE_NAMES
from matcher.pipeline import Recommender
from matcher.protocols import Candidate
from matcher.rankers import LogisticRanker, train_with_holdout
from matcher.types import BountyInfo, StaffDecision
from tests.matcher.conftest import InMemoryRetriever


def test_need_ranking_sorted_with_scores_and_evidence(recommender, documents):
    res = recommender.rank_for_need("need_sugar", k=10, kinds=None)
    sugg = res.suggestions
    assert [s.rank for s in sugg] == list(range(1, len(sugg) + 1))
    scores = [s.score for s in sugg]
    assert scores == sorted(scores, reverse=True)
    assert sugg[0].org_id == "gxu"  # the wastewater + bagasse university
    assert len({s.org_id for s in sugg}) == len(sugg)
    for s in sugg:
        assert set(s.features) == set(FEATURE_NAMES)
        assert sum(s.contributions.values()) == pytest.approx(s.score)
        assert s.evidence and all(documents[e.doc_id].org_id == s.org_id for e in s.evidence)
        assert s.query_id == "need_sugar"
    # gxu's best evidence is its wastewater achievement, with shared keywords
    top = sugg[0].evidence[0]
    assert top.doc_id == "gxu_wastewater"
    assert "制糖废水" in top.shared_keywords
    assert any(r.startswith("语义相似度") for r in sugg[0].reasons)


def test_need_ranking_excludes_group_inactive_blocked_with_reasons(recommender):
    res = recommender.rank_for_need("need_sugar", k=10, kinds=None)
    shown = {s.org_id for s in res.suggestions}
    assert not shown & {"gx_sugar", "gx_research", "gx_grand_lab", "closed_inst", "blocked_inst"}
    reasons = {(e.org_id, e.code) for e in res.excluded}
    assert {
        ("gx_research", "SAME_GROUP"),
        ("gx_grand_lab", "SAME_GROUP"),
        ("closed_inst", "INACTIVE"),
        ("blocked_inst", "STAFF_BLOCK"),
    } <= reasons
    # excluded high scorers carry the score they would have had, best first
    ex_scores = [e.score for e in res.excluded]
    assert all(s is not None for s in ex_scores) and ex_scores == sorted(ex_scores, reverse=True)


def test_default_kinds_are_universities_and_institutes(recommender, orgs):
    for s in recommender.suggest_for_need("need_sugar"):
        assert orgs[s.org_id].kind in ("university", "institute")


def test_scope_filters_are_not_reported_as_exclusions(recommender, orgs):
    # need → institutes: enterprises are out of scope, not "excluded high scorers"
    res = recommender.rank_for_need("need_sugar", k=10, require_in_region=True)
    codes = {e.code for e in res.excluded}
    assert not codes & {"WRONG_KIND", "NOT_IN_REGION"}
    assert "gx_research" in {e.org_id for e in res.excluded}  # a real conflict still is


def test_require_in_region_and_exclude(recommender, orgs):
    sugg = recommender.suggest_for_need("need_sugar", require_in_region=True, exclude={"gxu"})
    assert sugg and all(orgs[s.org_id].in_region for s in sugg)
    assert "gxu" not in {s.org_id for s in sugg} and "scut" not in {s.org_id for s in sugg}


def test_score_pairs_equals_ranked_list_score(recommender, orgs):
    for need in ("need_sugar", "need_comp", "need_out", "need_b_public"):
        ranked = recommender.rank_for_need(need, k=20, kinds=None)
        pairs = [(need, s.org_id) for s in ranked.suggestions]
        assert pairs
        assert recommender.score_pairs(pairs) == [s.score for s in ranked.suggestions]
        # excluded high scorers are scored through the same path too
        excl = {e.org_id: e.score for e in ranked.excluded}
        assert recommender.score_pairs([(need, o) for o in excl]) == list(excl.values())
    # reverse direction: capability -> enterprises
    sugg = recommender.enterprises_for_capability("gxu_wastewater", k=10)
    assert sugg
    assert recommender.score_pairs([("gxu_wastewater", s.org_id) for s in sugg]) == [
        s.score for s in sugg
    ]


def test_score_pairs_order_and_unretrieved_org(recommender):
    a = recommender.score_pairs([("need_sugar", "gxu"), ("need_sugar", "gxust")])
    b = recommender.score_pairs([("need_sugar", "gxust"), ("need_sugar", "gxu")])
    assert a == b[::-1] and a[0] > a[1]
    tiny = Recommender(
        retrievers={"capabilities": recommender.retrievers["capabilities"]},
        documents=recommender.documents,
        orgs=recommender.orgs,
        fetch_k=1,
    )
    # gxas is not among the single fetched document: scored with org-level features only
    (s,) = tiny.score_pairs([("need_sugar", "gxas")])
    (x,) = tiny.feature_matrix([("need_sugar", "gxas")])[0]
    assert x[FEATURE_NAMES.index("semantic")] == 0.0 and s == pytest.approx(0.05)  # region


def test_explanation_snippets_are_verbatim(recommender, documents):
    results = [
        *recommender.suggest_for_need("need_sugar", kinds=None),
        *recommender.enterprises_for_capability("gxu_bagasse"),
        *recommender.suggest_for_enterprise("gx_sugar"),
        *recommender.suggest_for_text("蔗渣复合材料。制糖废水厌氧处理"),
    ]
    assert len(results) > 5
    for s in results:
        for e in s.evidence:
            assert e.doc_snippet and e.doc_snippet in documents[e.doc_id].full_text
            query_text = (
                documents[e.query_doc_id].full_text
                if e.query_doc_id
                else "蔗渣复合材料。制糖废水厌氧处理"
            )
            assert e.query_snippet and e.query_snippet in query_text


def test_confidential_need_of_a_never_reaches_b(recommender, orgs):
    for org in orgs:
        if org == "ent_b":
            continue
        for s in recommender.suggest_for_enterprise(org) if orgs[org].active else []:
            assert all(e.doc_id != "need_conf" for e in s.evidence)
    for cap in ("gxust_harvest", "gxu_wastewater", "gxu_bagasse"):
        for s in recommender.enterprises_for_capability(cap):
            assert all(e.doc_id != "need_conf" for e in s.evidence)
            assert all(e.query_doc_id != "need_conf" for e in s.evidence)
    # gxust's harvester matches the confidential need best, yet ent_b only shows via its
    # public need
    ent_b = [
        s for s in recommender.enterprises_for_capability("gxust_harvest") if s.org_id == "ent_b"
    ]
    assert all(e.doc_id == "need_b_public" for s in ent_b for e in s.evidence)
    with pytest.raises(UnknownEntity):
        recommender.rank_for_need("need_conf", viewer_org_id="gxu")
    with pytest.raises(UnknownEntity):
        recommender.score_pairs([("need_conf", "gxust")], viewer_org_id="gxu")
    # the owner sees its confidential need's suggestions
    assert recommender.suggest_for_need("need_conf")[0].org_id == "gxust"


def test_closed_need_is_never_evidence(recommender):
    for s in recommender.enterprises_for_capability("gxu_wastewater", k=20):
        assert all(e.doc_id != "need_closed" for e in s.evidence)


def test_suggest_for_enterprise_across_needs(recommender):
    sugg = recommender.suggest_for_enterprise("ent_b")
    assert sugg[0].org_id == "gxust" and sugg[0].query_id == "need_conf"
    queries = {s.query_id for s in sugg}
    assert queries <= {"need_conf", "need_b_public"}
    for s in sugg:  # the shown score is that need's pair score
        assert recommender.score_pairs([(s.query_id, s.org_id)]) == [s.score]


def test_suggest_for_text_excludes_viewer_group(recommender):
    sugg = recommender.suggest_for_text("制糖废水厌氧处理", viewer_org_id="gx_holding", k=20)
    assert {s.org_id for s in sugg}.isdisjoint({"gx_research", "gx_grand_lab"})
    anon = recommender.suggest_for_text("制糖废水厌氧处理", k=20)
    assert {"gx_research", "gx_grand_lab"} <= {s.org_id for s in anon}
    with pytest.raises(InvalidParameter):
        recommender.suggest_for_text("  ")


def test_tackle_bounty_respondents_and_excluded(recommender):
    bounty = BountyInfo(
        "b1", "tackle", "gx_sugar", "制糖废水厌氧处理攻关", "", need_id="need_sugar"
    )
    res = recommender.respondents_for_bounty(bounty, k=10, members={"scut": ("gx_research",)})
    eligible = [s.org_id for s in res.suggestions]
    assert eligible[0] == "gxu" and "scut" not in eligible
    codes = {(e.org_id, e.code, e.member_id) for e in res.excluded}
    assert ("gx_research", "SAME_GROUP", None) in codes
    assert ("scut", "SAME_GROUP", "gx_research") in codes
    assert ("closed_inst", "INACTIVE", None) in codes


def test_transfer_bounty_respondents_are_in_region_enterprises(recommender, orgs):
    bounty = BountyInfo(
        "b2", "transfer", "gxu", "蔗渣制浆与制糖废水处理成果转化", "", capability_id="gxu_bagasse"
    )
    res = recommender.respondents_for_bounty(bounty, k=10)
    assert res.suggestions
    for s in res.suggestions:
        assert orgs[s.org_id].in_region and orgs[s.org_id].kind in ("enterprise", "company")
    assert ("ent_out", "NOT_IN_REGION") in {(e.org_id, e.code) for e in res.excluded}


def test_bounty_candidates_restrict_and_include_unretrieved(recommender):
    bounty = BountyInfo("b1", "tackle", "gx_sugar", "制糖废水厌氧处理攻关", "")
    res = recommender.respondents_for_bounty(bounty, candidates=["gxust", "gxu", "gx_grand"])
    assert [s.org_id for s in res.suggestions] == ["gxu", "gxust"]
    assert [(e.org_id, e.code) for e in res.excluded] == [("gx_grand", "SAME_GROUP")]


def test_explain_pair_reports_exclusion(recommender):
    s = recommender.explain_pair("need_sugar", "gx_research")
    assert s.rank == 0 and s.reasons[0].startswith("SAME_GROUP 同一集团")
    assert s.score == recommender.score_pairs([("need_sugar", "gx_research")])[0]


def test_errors(recommender):
    with pytest.raises(UnknownEntity):
        recommender.suggest_for_need("nope")
    with pytest.raises(InvalidParameter):
        recommender.suggest_for_need("gxu_wastewater")
    with pytest.raises(InvalidParameter):
        recommender.enterprises_for_capability("need_sugar")
    with pytest.raises(UnknownEntity):
        recommender.score_pairs([("need_sugar", "nobody")])
    with pytest.raises(ValueError, match="unknown collection"):
        Recommender(retrievers={"patents": None}, documents={}, orgs={})  # type: ignore[dict-item]
    rec = Recommender(
        retrievers={"capabilities": recommender.retrievers["capabilities"]},
        documents=recommender.documents,
        orgs=recommender.orgs,
    )
    with pytest.raises(IndexNotReady):
        rec.enterprises_for_capability("gxu_wastewater")
    assert recommender.enterprises_for_capability("closed_ww") == []


def test_staff_decisions_train_a_ranker_the_recommender_uses(recommender, orgs):
    """Staff approve in-region partners only: the learned ranker must pick that up and the
    Recommender must use it (out-of-region scut drops below in-region institutes)."""
    needs = ["need_sugar", "need_comp", "need_out", "need_b_public", "need_conf"]
    decisions = []
    for n in needs:
        for o in sorted(orgs):
            decisions.append(StaffDecision(n, o, approved=orgs[o].in_region))
    X, y, groups = recommender.training_data(decisions)
    assert X.shape == (len(decisions), len(FEATURE_NAMES)) and y.sum() > 0
    ranker, metrics = train_with_holdout(X, y, groups, test_size=0.4, random_state=0)
    assert metrics["test_auc"] == 1.0
    coef = dict(zip(FEATURE_NAMES, ranker.coef_, strict=True))
    assert max(coef, key=lambda n: abs(coef[n])) == "region"
    learned = Recommender(
        retrievers=recommender.retrievers,
        documents=recommender.documents,
        orgs=recommender.orgs,
        policy=recommender.policy,
        ranker=ranker,
    )
    sugg = learned.suggest_for_need("need_sugar", k=10)
    assert sugg[-1].org_id == "scut" or "scut" not in {s.org_id for s in sugg}
    assert learned.score_pairs([("need_sugar", s.org_id) for s in sugg]) == [s.score for s in sugg]
    assert "bias" in sugg[0].contributions and isinstance(ranker, LogisticRanker)
    assert np.isfinite([s.score for s in sugg]).all()


def test_consortium_is_scored_on_pooled_member_documents(recommender, documents):
    bounty = BountyInfo("b5", "tackle", "ent_b", "蔗渣复合材料与制糖废水厌氧处理", "")
    alone = recommender.respondents_for_bounty(bounty, candidates=["gxust"])
    pooled = recommender.respondents_for_bounty(
        bounty, candidates=["gxust"], members={"gxust": ("gxu",)}
    )
    (a,) = alone.suggestions
    (p,) = pooled.suggestions
    assert p.score > a.score
    assert p.features["region"] == a.features["region"]  # org-level features: the lead's
    assert "gxu" in {documents[e.doc_id].org_id for e in p.evidence}
    assert {documents[e.doc_id].org_id for e in a.evidence} <= {"gxust"}


def test_confidential_need_does_not_influence_other_scores(recommender, fake_encoder):
    """Removing ent_b's confidential need changes nothing that another organisation sees."""
    from tests.matcher.conftest import InMemoryRetriever

    docs = {k: d for k, d in recommender.documents.items() if k != "need_conf"}
    without = Recommender(
        retrievers={
            "capabilities": recommender.retrievers["capabilities"],
            "needs": InMemoryRetriever(
                fake_encoder, [d for d in docs.values() if d.kind == "need"]
            ),
        },
        documents=docs,
        orgs=recommender.orgs,
        policy=recommender.policy,
        load={"gxu": 2},
        outcomes={"gxu": (3, 4)},
        fetch_k=50,
    )
    for cap in ("gxust_harvest", "gxu_wastewater"):
        a = recommender.enterprises_for_capability(cap, k=20)
        b = without.enterprises_for_capability(cap, k=20)
        assert [s.org_id for s in a] == [s.org_id for s in b]
        # float32 matmul over a different matrix shape moves the last bits only
        assert [s.score for s in a] == pytest.approx([s.score for s in b], abs=1e-6)
        for x, y in zip(a, b, strict=True):
            assert x.features == pytest.approx(y.features, abs=1e-6)
            assert [(e.doc_id, e.doc_snippet) for e in x.evidence] == [
                (e.doc_id, e.doc_snippet) for e in y.evidence
            ]


def test_shared_keywords_keep_the_documents_spelling(recommender, documents):
    (s,) = [x for x in recommender.suggest_for_need("need_sugar") if x.org_id == "gxu"]
    ev = s.evidence[0]
    assert "COD" in ev.shared_keywords and "cod" not in ev.shared_keywords
    text = documents[ev.doc_id].full_text
    assert all(k in text for k in ev.shared_keywords)


def test_sentence_encoder_is_batched_and_cached(recommender, fake_encoder, documents):
    class Counting:
        dim, model_id = fake_encoder.dim, "counting"

        def __init__(self):
            self.doc_calls = 0
            self.query_calls = 0

        def encode_queries(self, texts):
            self.query_calls += 1
            return fake_encoder.encode_queries(texts)

        def encode_documents(self, texts):
            self.doc_calls += 1
            return fake_encoder.encode_documents(texts)

    enc = Counting()
    rec = Recommender(
        retrievers=recommender.retrievers,
        documents=recommender.documents,
        orgs=recommender.orgs,
        policy=recommender.policy,
        sentence_encoder=enc,
    )
    first = rec.suggest_for_need("need_sugar", kinds=None)
    assert enc.doc_calls == 1 and enc.query_calls == 1
    assert rec.suggest_for_need("need_sugar", kinds=None) == first
    assert enc.doc_calls == 1 and enc.query_calls == 1
    for s in first:
        for e in s.evidence:
            assert e.doc_snippet in documents[e.doc_id].full_text


def test_warm_up_fills_the_keyword_cache(recommender, documents):
    assert recommender.warm_up(["gxu_bridge"]) == 1
    assert "gxu_bridge" in recommender.features._kw_cache
    assert recommender.warm_up() == len(documents)


def test_pair_matrix_matches_score_pairs_and_checks(recommender, orgs):
    needs = ["need_sugar", "need_comp", "need_b_public", "need_closed"]
    cols = sorted(orgs)
    pm = recommender.pair_matrix(needs, cols, kinds=("university", "institute"))
    assert pm.scores.shape == pm.forbidden.shape == (4, len(cols))
    assert pm.forbidden.dtype == np.bool_ and pm.scores.dtype == np.float64
    for i, n in enumerate(needs):
        assert pm.scores[i].tolist() == recommender.score_pairs([(n, o) for o in cols])
        owner = recommender.documents[n].org_id
        for j, o in enumerate(cols):
            ex = recommender.policy.check(owner, o, keys=[n], kinds=("university", "institute"))
            expected = bool(ex) or n == "need_closed"
            assert pm.forbidden[i, j] == expected, (n, o, ex)
    j = cols.index("blocked_inst")
    assert pm.forbidden[0, j] and not pm.forbidden[1, j]  # blocked for need_sugar only


def test_enterprise_matrix_matches_suggest_for_enterprise(recommender, orgs):
    ents = ["ent_b", "gx_sugar", "gxu"]  # gxu has no needs
    cols = sorted(o for o in orgs if orgs[o].kind in ("university", "institute"))
    pm = recommender.enterprise_matrix(ents, cols)
    for s in recommender.suggest_for_enterprise("ent_b", k=20):
        j = cols.index(s.org_id)
        assert pm.scores[0, j] == s.score and pm.best_query[0, j] == s.query_id
        assert not pm.forbidden[0, j]
    assert pm.forbidden[1, cols.index("gx_research")]  # same group
    assert pm.forbidden[1, cols.index("blocked_inst")]  # blocked via its need id
    assert pm.forbidden[2].all() and (pm.scores[2] == 0).all()


def test_enterprise_matrix_best_match_explains_without_retrieval(recommender, orgs, monkeypatch):
    ents = ["ent_b", "gx_sugar", "gxu"]
    cols = sorted(o for o in orgs if orgs[o].kind in ("university", "institute"))
    pm = recommender.enterprise_matrix(ents, cols)
    assert pm.best_match[2].tolist() == [None] * len(cols)  # no needs: nothing to explain
    calls = []
    for name, r in recommender.retrievers.items():
        original = r.retrieve

        def counting(texts, k, _orig=original, _name=name):
            calls.append(_name)
            return _orig(texts, k)

        monkeypatch.setattr(r, "retrieve", counting)
    for i in (0, 1):
        for j, o in enumerate(cols):
            match = pm.best_match[i, j]
            assert match.score == pm.scores[i, j] and match.query.id == pm.best_query[i, j]
            got = recommender.explain_match(match)
            assert calls == []
            want = recommender.explain_pair(pm.best_query[i, j], o)
            calls.clear()
            assert got == want


def test_consortium_for_tackle_bounty_covers_aspects_single_respondents_miss(recommender):
    bounty = BountyInfo(
        "b_multi",
        "tackle",
        "gx_sugar",
        "制糖副产物综合利用攻关",
        "制糖废水厌氧反应器处理技术。蔗渣制备生物质复合材料。糖蜜微生物发酵生产高活性酵母。",
    )
    result = recommender.consortia_for_bounty(bounty, min_gain=0.05)
    assert result.teams, "a team should beat the best single respondent"
    team = result.teams[0]
    assert team.partners and team.gain >= 0.05
    assert team.coverage > result.best_single.coverage
    # every aspect is attributed to a member, and the fermentation aspect to 广西科学院
    assert len(team.covers) == 3 and {c.org_id for c in team.covers} <= set(team.members)
    assert team.covers[2].org_id == "gxas"
    # the poster's corporate group never joins a team
    for t in result.teams:
        assert not set(t.members) & {"gx_sugar", "gx_research", "gx_grand_lab", "gx_holding"}


class DirectRetriever(InMemoryRetriever):
    """Also scores given documents directly, as HybridRetriever.score_documents does; the
    lexical-only candidates of ``lexical_only`` come back without a dense similarity."""

    lexical_only: frozenset[str] = frozenset()

    def retrieve(self, queries, k):  # type: ignore[no-untyped-def]
        out = super().retrieve(queries, k)
        return [
            [c._replace(dense=None) if c.doc_id in self.lexical_only else c for c in cs]
            for cs in out
        ]

    def score_documents(self, query, doc_ids):  # type: ignore[no-untyped-def]
        q = self.encoder.encode_queries([query])[0]
        at = {d.id: i for i, d in enumerate(self.docs)}
        return [Candidate(d, 0.0, dense=float(self.vectors[at[d]] @ q)) for d in doc_ids if d in at]


def test_unretrieved_org_is_scored_from_its_documents(recommender, fake_encoder):
    caps = [d for d in recommender.documents.values() if d.kind != "need"]
    direct = DirectRetriever(fake_encoder, caps)

    def rec(fetch_k: int) -> Recommender:
        return Recommender(
            retrievers={"capabilities": direct},
            documents=recommender.documents,
            orgs=recommender.orgs,
            fetch_k=fetch_k,
            score_unretrieved=True,
        )

    sem = FEATURE_NAMES.index("semantic")
    (x_small,) = rec(1).feature_matrix([("need_sugar", "gxas")])[0]
    (x_full,) = rec(50).feature_matrix([("need_sugar", "gxas")])[0]
    assert x_small[sem] > 0.0
    assert x_small[sem] == pytest.approx(x_full[sem])  # the same document cosine
    assert x_small[FEATURE_NAMES.index("lexical")] == 0.0
    (x_off,) = Recommender(
        retrievers={"capabilities": direct},
        documents=recommender.documents,
        orgs=recommender.orgs,
        fetch_k=1,
    ).feature_matrix([("need_sugar", "gxas")])[0]
    assert x_off[sem] == 0.0  # the default: not retrieved, no document evidence


def test_lexical_only_candidates_get_a_similarity_and_evidence_never_shows_zero(
    recommender, fake_encoder
):
    caps = [d for d in recommender.documents.values() if d.kind != "need"]
    direct = DirectRetriever(fake_encoder, caps)
    direct.lexical_only = frozenset(d.id for d in caps)
    with_fill = Recommender(
        retrievers={"capabilities": direct}, documents=recommender.documents, orgs=recommender.orgs
    )
    plain = Recommender(
        retrievers={"capabilities": recommender.retrievers["capabilities"]},
        documents=recommender.documents,
        orgs=recommender.orgs,
    )
    filled = {s.org_id: s for s in with_fill.suggest_for_need("need_sugar", kinds=None)}
    ref = {s.org_id: s for s in plain.suggest_for_need("need_sugar", kinds=None)}
    for org, s in filled.items():
        assert s.features["semantic"] == pytest.approx(ref[org].features["semantic"])
        assert s.evidence and all(e.score > 0 for e in s.evidence)

    class NoDense(InMemoryRetriever):
        def retrieve(self, queries, k):  # type: ignore[no-untyped-def]
            return [[c._replace(dense=None) for c in cs] for cs in super().retrieve(queries, k)]

    blind = Recommender(
        retrievers={"capabilities": NoDense(fake_encoder, caps)},
        documents=recommender.documents,
        orgs=recommender.orgs,
    )
    for s in blind.suggest_for_need("need_sugar", kinds=None):
        assert s.evidence == ()  # no similarity: nothing is shown as evidence at 0.000


def test_evidence_floor_and_technical_snippets(recommender):
    floor = Recommender(
        retrievers=recommender.retrievers,
        documents=recommender.documents,
        orgs=recommender.orgs,
        evidence_floor=2.0,  # above any cosine
    )
    assert all(s.evidence == () for s in floor.suggest_for_need("need_sugar", kinds=None))
    text = (
        "合作方式：委托开发；项目周期36个月。制糖废水厌氧处理效果不稳定，COD浓度高。联系人：王工。"
    )
    for s in recommender.suggest_for_text(text, kinds=None):
        for e in s.evidence:
            assert "合作方式" not in e.query_snippet and "联系人" not in e.query_snippet
            assert e.query_snippet in text


def test_evidence_beyond_the_best_match_shares_a_keyword(recommender, documents):
    from matcher.content import KeywordWeights
    from matcher.explain import worth_showing
    from matcher.types import Document

    docs = [
        (Document("a", "o", "achievement", "铝合金压铸", "铝合金压铸气孔控制"), 0.91),
        (Document("b", "o", "achievement", "甘蔗压榨", "甘蔗压榨提汁"), 0.90),
        (Document("c", "o", "achievement", "压铸模具", "压铸模具排气设计"), 0.88),
        (Document("d", "o", "achievement", "铝合金熔炼", "铝合金熔炼除气"), 0.87),
    ]
    kws = {"a": {"铝合金", "压铸", "气孔"}, "b": {"甘蔗", "压榨"}, "c": {"压铸", "模具"}}
    kws["d"] = {"铝合金", "熔炼"}
    weights = KeywordWeights([*kws.values(), *({f"其他{i}"} for i in range(10))])
    query = frozenset({"铝合金", "压铸", "气孔", "变形"})
    shown = worth_showing(docs, query, lambda d: frozenset(kws[d]), weights, 3)
    # the off-topic second document gives way to the fourth, which shares 铝合金
    assert [d.id for d, _ in shown] == ["a", "c", "d"]
    # the best match is shown even without a shared keyword
    lone = worth_showing(docs[1:2], query, lambda d: frozenset(kws[d]), weights, 3)
    assert [d.id for d, _ in lone] == ["b"]
    for s in recommender.suggest_for_need("need_sugar", kinds=None):
        assert all(e.shared_keywords for e in s.evidence[1:])


def test_shared_keywords_are_the_informative_ones_from_the_first_request(recommender):
    fresh = Recommender(
        retrievers=recommender.retrievers, documents=recommender.documents, orgs=recommender.orgs
    )
    first = fresh.suggest_for_need("need_sugar", kinds=None)  # no warm-up ran
    weights = fresh.features.keyword_weights()
    assert weights.n_documents == len(recommender.documents)
    shown = [k for s in first for e in s.evidence for k in e.shared_keywords]
    assert shown and all(weights.informative(k.lower()) for k in shown)
    assert [s.shared_keywords for s in first] == [
        s.shared_keywords for s in fresh.suggest_for_need("need_sugar", kinds=None)
    ]


def test_keyword_weights_count_an_even_sample_of_a_large_store(recommender, monkeypatch):
    from matcher import features

    monkeypatch.setattr(features, "WEIGHT_SAMPLE", 3)
    fresh = Recommender(
        retrievers=recommender.retrievers, documents=recommender.documents, orgs=recommender.orgs
    )
    n = len(recommender.documents)
    assert fresh.features.keyword_weights().n_documents == len(range(0, n, -(-n // 3)))
