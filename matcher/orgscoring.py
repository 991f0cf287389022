"""Pair scoring: retrieve documents for a query, keep the visible ones, group them by
organisation, build one feature vector per (query, organisation) and score it with the ranker.

:class:`OrgScorer` owns the state every entry point shares (documents, organisations,
eligibility policy, ranker, feature builder, retrievers) and the core path; the
:class:`matcher.pipeline.Recommender` adds the ranked directions on top of it, and
:mod:`matcher.matrices` / :mod:`matcher.bounty` use it for solver matrices and bounties.

A pair's score depends only on the query, the organisation's documents among the query's
``fetch_k`` candidates and query-wide normalisers, never on the other organisations scored
in the same call, so ``score_pairs`` equals the score in a ranked list.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher import explain
from matcher.constraints import EligibilityPolicy
from matcher.content import technical_text
from matcher.errors import IndexNotReady, InvalidParameter, UnknownEntity
from matcher.fastbatch import DocFacts, OrgFacts, doc_facts, fast_batch, org_facts
from matcher.features import (
    Aggregation,
    FeatureBatch,
    FeatureBuilder,
    OrgMatch,
    Query,
    Scored,
)
from matcher.protocols import Candidate, CandidateRetriever, TextEncoder
from matcher.rankers.base import BaseRanker
from matcher.rankers.scoring import ScoringRanker
from matcher.types import CAPABILITY_KINDS, DocKind, Document, OrgInfo, OrgKind, Suggestion

logger = logging.getLogger(__name__)

CollectionName = Literal["capabilities", "needs"]
COLLECTIONS: tuple[CollectionName, ...] = ("capabilities", "needs")
COLLECTION_KINDS: dict[CollectionName, tuple[DocKind, ...]] = {
    "capabilities": CAPABILITY_KINDS,
    "needs": ("need",),
}
ENTERPRISE_KINDS: tuple[OrgKind, ...] = ("enterprise", "company")


class ScoredBatch(NamedTuple):
    """Ranker scores of a :class:`~matcher.features.FeatureBatch` (one query): ``scores``
    float64 (n,), ``contributions`` float64 (n, n_features), ``bias`` float64 (n,)."""

    query: Query
    batch: FeatureBatch
    scores: NDArray[np.float64]
    contributions: NDArray[np.float64]
    bias: NDArray[np.float64]

    def scored(self, i: int) -> Scored:
        """Row ``i`` as the :class:`Scored` :meth:`OrgScorer.score` returns."""
        return Scored(
            self.query,
            self.batch.match(i),
            float(self.scores[i]),
            self.contributions[i],
            float(self.bias[i]),
        )


class BestScores(NamedTuple):
    """Each organisation's best score over several queries: ``org_ids`` sorted, ``scores``
    float64 (n,), and where each comes from (``batches[which[j]]``, row ``rows[j]``)."""

    org_ids: list[str]
    scores: NDArray[np.float64]
    batches: list[ScoredBatch]
    which: NDArray[np.int64]
    rows: NDArray[np.int64]

    def scored(self, j: int) -> Scored:
        """The :class:`Scored` of organisation ``org_ids[j]``."""
        return self.batches[int(self.which[j])].scored(int(self.rows[j]))


def candidate_order(
    seen: Sequence[Candidate],
    sims: Sequence[float] | NDArray[np.float64],
    scores: NDArray[np.float64] | None = None,
) -> list[int]:
    """Positions of ``seen`` in :class:`~matcher.features.OrgMatch` order: similarity
    ``sims`` descending, then fused score descending (``scores``: the candidates' fused
    scores when already gathered), then document id."""
    if len(seen) < 2:
        return list(range(len(seen)))
    x = np.asarray(sims, dtype=np.float64)
    sc = (
        np.fromiter((c.score for c in seen), dtype=np.float64, count=len(seen))
        if scores is None
        else scores
    )
    order = np.lexsort((-sc, -x))
    xs, ss = x[order], sc[order]
    if not ((xs[1:] == xs[:-1]) & (ss[1:] == ss[:-1])).any():
        out: list[int] = order.tolist()  # no ties left for the document ids to break
        return out
    keys = [(-v, -c.score, c.doc_id) for v, c in zip(x.tolist(), seen, strict=True)]
    return sorted(range(len(seen)), key=keys.__getitem__)


class OrgScorer:
    """Scores (query, organisation) pairs from retrieved documents.

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
    evidence_floor : lowest similarity of a document shown as evidence (a document without
        a dense similarity, 0, is never shown).
    score_unretrieved : score organisations asked about but none of whose documents was
        retrieved (``score_pairs``, solver matrices) from their document vectors instead of
        semantic 0. Off by default: on the CSL cross-need benchmark it lowered the
        per-organisation AUC from 0.882 to 0.784 and the per-need nDCG@10 from 0.463 to
        0.412 (raw cosines of unretrieved documents compete with the fused candidate list,
        which is the better relevance signal).
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
        evidence_floor: float = 0.0,
        score_unretrieved: bool = False,
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
        self.evidence_floor = evidence_floor
        self.score_unretrieved = score_unretrieved
        self.sentence_encoder = sentence_encoder
        self._sentence_vectors = (
            explain.SentenceVectors(sentence_encoder) if sentence_encoder is not None else None
        )
        self._docs_index: dict[str, list[Document]] | None = None
        self._evidence_cache = explain.EvidenceCache()
        self.features = FeatureBuilder(
            documents, orgs, aggregation=aggregation, agg_k=agg_k, load=load, outcomes=outcomes
        )

    def warm_up(self, doc_ids: Iterable[str] | None = None) -> int:
        """Precompute document keyword sets (jieba), the cold-start cost of a request
        (~1 ms per document), and with ``doc_ids=None`` the corpus keyword weights that
        order shared keywords. Safe to run in a background thread; returns the count."""
        ids = list(self.documents) if doc_ids is None else list(doc_ids)
        for d in ids:
            self.features.doc_keywords(d)
        if doc_ids is None:
            self.features.keyword_weights()
        return len(ids)

    # ------------------------------------------------------------------ lookups
    def doc(self, doc_id: str) -> Document:
        """The document ``doc_id``; raises :class:`UnknownEntity`."""
        try:
            return self.documents[doc_id]
        except KeyError:
            raise UnknownEntity(f"unknown document {doc_id!r}") from None

    def visible_doc(self, doc_id: str, viewer_org_id: str | None) -> Document:
        """The document as ``viewer_org_id`` may see it (a confidential record of another
        organisation is reported as unknown, not as hidden)."""
        doc = self.doc(doc_id)
        if "CONFIDENTIAL" in self.policy.document_reasons(doc, viewer_org_id):
            raise UnknownEntity(f"unknown document {doc_id!r}")
        return doc

    def docs_of(self, org_id: str) -> list[Document]:
        """Documents (needs and capabilities) of ``org_id`` sorted by id (index built on
        first use)."""
        if self._docs_index is None:
            index: dict[str, list[Document]] = defaultdict(list)
            for d in sorted(self.documents.values(), key=lambda d: d.id):
                index[d.org_id].append(d)
            self._docs_index = dict(index)
        return list(self._docs_index.get(org_id, []))

    def needs_of(self, org_id: str) -> list[Document]:
        """Need documents of ``org_id`` sorted by id."""
        return [d for d in self.docs_of(org_id) if d.kind == "need"]

    def active(self, doc: Document) -> bool:
        """A document is live only if it and its organisation are active."""
        org = self.orgs.get(doc.org_id)
        return doc.active and org is not None and org.active

    def retrieve(self, collection: CollectionName, texts: Sequence[str]) -> list[list[Candidate]]:
        """``fetch_k`` candidates per text from ``collection``."""
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
    def match_orgs(
        self,
        query: Query,
        candidates: Sequence[Candidate],
        collection: CollectionName,
        viewer_org_id: str | None,
        extra_orgs: Iterable[str] = (),
        pools: Mapping[str, Sequence[str]] | None = None,
    ) -> list[OrgMatch]:
        """Visible documents grouped by organisation → feature vectors, sorted by org id.

        ``extra_orgs`` are scored even if none of their documents was retrieved; ``pools``
        (consortium lead -> members) adds the members' documents to the lead's."""
        batch = self.match_batch(query, candidates, collection, viewer_org_id, extra_orgs, pools)
        return [batch.match(i) for i in range(len(batch.org_ids))]

    def match_batch(
        self,
        query: Query,
        candidates: Sequence[Candidate],
        collection: CollectionName,
        viewer_org_id: str | None,
        extra_orgs: Iterable[str] = (),
        pools: Mapping[str, Sequence[str]] | None = None,
    ) -> FeatureBatch:
        """:meth:`match_orgs` as one feature matrix (rows sorted by org id)."""
        kinds = COLLECTION_KINDS[collection]
        documents, orgs, visible = self.documents, self.orgs, self.policy.visible
        filled = self._dense_fill(query, candidates, collection)
        extra = list(dict.fromkeys(extra_orgs))
        if not extra and not pools and type(self.policy).visible is EligibilityPolicy.visible:
            docs, org_rows = self._facts(collection)
            fast = fast_batch(
                self.features,
                query,
                candidates,
                filled,
                docs,
                org_rows,
                viewer_org_id,
                candidate_order,
            )
            if fast is not None:
                return fast
        seen: list[Candidate] = []
        owners: list[str] = []
        for c in candidates:
            doc = documents.get(c.doc_id)
            if doc is None:
                logger.debug("retrieved unknown document %s: skipped", c.doc_id)
                continue
            if doc.id == query.id or doc.kind not in kinds or doc.org_id not in orgs:
                continue
            if not visible(doc, viewer_org_id):
                continue
            if c.dense is None and (v := filled.get(c.doc_id)) is not None:
                c = Candidate(c.doc_id, c.score, v, c.lexical, c.chunk, c.english)
            seen.append(c)
            owners.append(doc.org_id)
        # Normalise BM25 by the best *visible* document: hidden (confidential, inactive)
        # records must not influence anyone's score.
        lexical_max = max((c.lexical or 0.0 for c in seen), default=0.0)
        sims = [float(c.dense) if c.dense is not None else 0.0 for c in seen]
        semantic_range = (min(sims), max(sims)) if sims else (0.0, 0.0)
        # one sort in the order of OrgMatch.candidates, so every group comes out sorted
        by_org: dict[str, list[Candidate]] = defaultdict(list)
        for i in candidate_order(seen, sims):
            by_org[owners[i]].append(seen[i])
        missing = [o for o in extra if o in orgs and o not in by_org]
        if (
            missing and self.score_unretrieved
        ):  # asked about but not retrieved: scored from their documents directly
            by_org.update(self._direct(query, missing, collection, viewer_org_id))
        if pools:
            own = {o: list(cs) for o, cs in by_org.items()}
            for lead, members in pools.items():
                pooled = [c for m in dict.fromkeys(members) if m != lead for c in own.get(m, [])]
                if pooled and lead in orgs:
                    by_org[lead] = own.get(lead, []) + pooled
        org_ids = set(by_org) | {o for o in extra if o in orgs}
        en = [c.english for cs in by_org.values() for c in cs if c.english is not None]
        return self.features.batch_features(
            query,
            [(o, by_org.get(o, ())) for o in sorted(org_ids)],
            presorted=not pools and not (missing and self.score_unretrieved),
            lexical_max=lexical_max,
            semantic_range=semantic_range,
            query_keywords=self.features.query_keywords(query),
            english_range=(min(en), max(en)) if en else None,
        )

    def _facts(self, collection: CollectionName) -> tuple[DocFacts, OrgFacts]:
        """The document and organisation facts of :func:`matcher.fastbatch.fast_batch`,
        derived once (again if the documents or organisations were replaced, or the load
        and outcomes, which a staff decision refreshes in place)."""
        cache: dict[str, tuple[tuple[object, ...], DocFacts, OrgFacts]] = self.__dict__.setdefault(
            "facts_", {}
        )
        fb = self.features
        key = (len(self.documents), len(self.orgs), fb.load, fb.outcomes)
        found = cache.get(collection)
        # load and outcomes by identity (the cache keeps them alive): a refresh replaces them
        if (
            found is None
            or found[0][:2] != key[:2]
            or any(a is not b for a, b in zip(found[0][2:], key[2:], strict=True))
        ):
            org_rows = org_facts(self.orgs, fb.load, fb.outcomes)
            docs = doc_facts(self.documents, COLLECTION_KINDS[collection], org_rows)
            found = cache[collection] = (key, docs, org_rows)
        return found[1], found[2]

    def _dense_fill(
        self, query: Query, candidates: Sequence[Candidate], collection: CollectionName
    ) -> dict[str, float | None]:
        """The dense cosine of the candidates found by BM25 alone, from their document
        vectors (when the retriever can score documents), so that every retrieved document
        has a similarity on one scale and evidence is never shown at 0."""
        lacking = [c.doc_id for c in candidates if c.dense is None]
        score_documents = getattr(self.retrievers.get(collection), "score_documents", None)
        if not lacking or score_documents is None:
            return {}
        return {c.doc_id: c.dense for c in score_documents(technical_text(query.text), lacking)}

    def _direct(
        self,
        query: Query,
        org_ids: Sequence[str],
        collection: CollectionName,
        viewer_org_id: str | None,
    ) -> dict[str, list[Candidate]]:
        """Candidates of ``org_ids``' visible documents scored directly (dense cosine of
        the document vector) by a retriever that can (``score_documents``); the query-wide
        normalisers of ``lexical`` and ``semantic_rel`` stay those of the retrieved list."""
        retriever = self.retrievers.get(collection)
        score_documents = getattr(retriever, "score_documents", None)
        if score_documents is None:
            return {}
        kinds = COLLECTION_KINDS[collection]
        docs = [
            d
            for o in org_ids
            for d in self.docs_of(o)
            if d.kind in kinds
            and d.id != query.id
            and not self.policy.document_reasons(d, viewer_org_id)
        ]
        out: dict[str, list[Candidate]] = defaultdict(list)
        for c in score_documents(technical_text(query.text), [d.id for d in docs]):
            out[self.documents[c.doc_id].org_id].append(c)
        return dict(out)

    def score(self, query: Query, matches: Sequence[OrgMatch]) -> list[Scored]:
        """Ranker scores and per-feature contributions of ``matches`` (row by row)."""
        if not matches:
            return []
        X = np.stack([m.features for m in matches])
        contrib, bias = self.ranker.contributions(X)
        scores = contrib.sum(axis=1) + bias
        return [
            Scored(query, m, float(scores[i]), contrib[i], float(bias[i]))
            for i, m in enumerate(matches)
        ]

    def score_batch(self, query: Query, batch: FeatureBatch) -> ScoredBatch:
        """:meth:`score` of a feature matrix: the same values, one ranker call."""
        contrib, bias = self.ranker.contributions(batch.features)
        return ScoredBatch(query, batch, contrib.sum(axis=1) + bias, contrib, bias)

    def best_scores(
        self,
        queries: Sequence[Query],
        collection: CollectionName,
        viewer_org_id: str | None,
        extra_orgs: Iterable[str] = (),
        pools: Mapping[str, Sequence[str]] | None = None,
    ) -> BestScores:
        """Best-scoring query per organisation over all ``queries`` (ties: earlier query),
        as arrays: :class:`Scored` objects are made only for the rows asked for."""
        extra = list(extra_orgs)
        batches: list[ScoredBatch] = []
        for q in queries:
            # One retrieval call per query: batched float32 search may differ in the last
            # bits from a single-query search, and score_pairs retrieves one query at a time.
            (cands,) = self.retrieve(collection, [technical_text(q.text)])
            batch = self.match_batch(q, cands, collection, viewer_org_id, extra, pools)
            batches.append(self.score_batch(q, batch))
        if len(batches) == 1:
            (b,) = batches
            n = len(b.batch.org_ids)
            return BestScores(
                b.batch.org_ids, b.scores, batches, np.zeros(n, np.int64), np.arange(n)
            )
        best: dict[str, tuple[float, int, int]] = {}
        for qi, b in enumerate(batches):
            for row, (o, sc) in enumerate(zip(b.batch.org_ids, b.scores.tolist(), strict=True)):
                cur = best.get(o)
                if cur is None or sc > cur[0]:
                    best[o] = (sc, qi, row)
        org_ids = sorted(best)
        cells = [best[o] for o in org_ids]
        return BestScores(
            org_ids,
            np.array([c[0] for c in cells], dtype=np.float64),
            batches,
            np.array([c[1] for c in cells], dtype=np.int64),
            np.array([c[2] for c in cells], dtype=np.int64),
        )

    def score_queries(
        self,
        queries: Sequence[Query],
        collection: CollectionName,
        viewer_org_id: str | None,
        extra_orgs: Iterable[str] = (),
        pools: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, Scored]:
        """Best-scoring query per organisation over all ``queries`` (ties: earlier query)."""
        best = self.best_scores(queries, collection, viewer_org_id, extra_orgs, pools)
        return {o: best.scored(j) for j, o in enumerate(best.org_ids)}

    # ------------------------------------------------------------------ explicit pairs
    def pair_query(self, query_id: str, viewer_org_id: str | None) -> tuple[Query, CollectionName]:
        """The query of a need or capability id and the collection its partners live in."""
        doc = self.doc(query_id)
        doc = self.visible_doc(query_id, doc.org_id if viewer_org_id is None else viewer_org_id)
        collection: CollectionName = "capabilities" if doc.kind == "need" else "needs"
        return Query.from_document(doc), collection

    def scored_pairs(
        self, pairs: Sequence[tuple[str, str]], viewer_org_id: str | None
    ) -> list[Scored]:
        """Scored (query id, org id) pairs in input order; each query is retrieved once."""
        by_query: dict[str, list[str]] = defaultdict(list)
        for q, o in pairs:
            if o not in self.orgs:
                raise UnknownEntity(f"unknown organisation {o!r}")
            by_query[q].append(o)
        results: dict[tuple[str, str], Scored] = {}
        for qid, org_ids in by_query.items():
            query, collection = self.pair_query(qid, viewer_org_id)
            scored = self.score_queries([query], collection, query.owner_org_id, org_ids)
            for o in org_ids:
                results[(qid, o)] = scored[o]
        return [results[(q, o)] for q, o in pairs]

    def suggestion_of(self, s: Scored, rank: int) -> Suggestion:
        """The explained suggestion of one scored pair (evidence, keywords, breakdown)."""
        return explain.suggestion(
            s,
            rank,
            documents=self.documents,
            features=self.features,
            evidence_k=self.evidence_k,
            vectors=self._sentence_vectors,
            floor=self.evidence_floor,
            cache=self._evidence_cache,
        )
