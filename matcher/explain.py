"""Explanations of suggestions: evidence documents with verbatim snippets, shared keywords and
the per-feature score breakdown.

Snippets are the technical spans of the texts (:func:`matcher.content.technical_sentences`:
sentences, or their technical clauses, without company profile, cooperation mode, period,
budget or contact), so each is a verbatim substring of the query text and of the document's
``full_text`` and boilerplate is never matched to boilerplate. Shared keywords leave out
requirement boilerplate and keywords most documents share, most specific first
(:class:`matcher.content.KeywordWeights`). Documents below the similarity floor are not
shown as evidence; a document with no dense similarity (0) never is. Beyond an
organisation's best match, a document is evidence only when it shares an informative keyword
with the query (:func:`worth_showing`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matcher.content import (
    BOILERPLATE_WORDS,
    KeywordWeights,
    keyword_like,
    technical_sentences,
)
from matcher.features import FEATURE_LABELS, FEATURE_NAMES, FeatureBuilder, Scored
from matcher.protocols import TextEncoder
from matcher.textutil import overlap_coefficient, shared_keywords, tokens
from matcher.types import Document, Evidence, Exclusion, Suggestion


class SentenceVectors:
    """Sentence vectors of query texts and documents for snippet selection, cached.

    Documents are batched: :meth:`prefetch` encodes the sentences of every missing document
    in one ``encode_documents`` call (one call per request instead of one per evidence
    document). At most ``max_docs`` documents and ``max_queries`` query texts are kept
    (least recently used first out).

    Parameters
    ----------
    encoder : TextEncoder
    max_docs, max_queries : int
    """

    def __init__(
        self, encoder: TextEncoder, *, max_docs: int = 4096, max_queries: int = 256
    ) -> None:
        self.encoder = encoder
        self.max_docs = max_docs
        self.max_queries = max_queries
        self._docs: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._queries: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _put(
        cache: OrderedDict[str, NDArray[np.float32]], key: str, value: NDArray[np.float32], cap: int
    ) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > cap:
            cache.popitem(last=False)

    def prefetch(self, docs: Sequence[Document]) -> None:
        """Encode the sentences of the documents not cached yet, in one call."""
        with self._lock:
            missing = list({d.id: d for d in docs if d.id not in self._docs}.values())
        if not missing:
            return
        per_doc = [technical_sentences(d.full_text) for d in missing]
        flat = [s for sents in per_doc for s in sents]
        vecs = self.encoder.encode_documents(flat) if flat else np.zeros((0, 0), np.float32)
        start = 0
        with self._lock:
            for d, sents in zip(missing, per_doc, strict=True):
                self._put(
                    self._docs, d.id, np.asarray(vecs[start : start + len(sents)]), self.max_docs
                )
                start += len(sents)

    def document(self, doc: Document) -> NDArray[np.float32]:
        """Vectors of the technical sentences of ``doc``, shape (n_sentences, dim)."""
        with self._lock:
            v = self._docs.get(doc.id)
        if v is None:
            self.prefetch([doc])
            with self._lock:
                v = self._docs.get(doc.id)
        return v if v is not None else np.zeros((0, 0), np.float32)

    def query(self, text: str) -> NDArray[np.float32]:
        """Vectors of the technical sentences of a query text, shape (n_sentences, dim)."""
        with self._lock:
            v = self._queries.get(text)
        if v is None:
            sents = technical_sentences(text)
            v = self.encoder.encode_queries(sents) if sents else np.zeros((0, 0), np.float32)
            with self._lock:
                self._put(self._queries, text, np.asarray(v), self.max_queries)
        return v


class EvidenceCache:
    """The snippet pair and shared keywords of (query, document) pairs already explained.

    They depend only on the two texts, the query's keywords and the keyword weights, never
    on the search result, so a query asked again (staff reviewing, an enterprise reloading)
    does not match sentences again. At most ``maxsize`` pairs are kept (least recently used
    first out); thread-safe.
    """

    def __init__(self, maxsize: int = 16384) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple[object, ...], tuple[str, str, tuple[str, ...]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get_many(
        self, keys: Sequence[tuple[object, ...]]
    ) -> list[tuple[str, str, tuple[str, ...]] | None]:
        """The cached (query snippet, document snippet, keywords) of each key (None where
        not cached), under one lock."""
        out: list[tuple[str, str, tuple[str, ...]] | None] = []
        with self._lock:
            items = self._items
            for key in keys:
                v = items.get(key)
                if v is not None:
                    items.move_to_end(key)
                out.append(v)
        return out

    def put(self, key: tuple[object, ...], value: tuple[str, str, tuple[str, ...]]) -> None:
        """Keep ``value`` under ``key``."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)


def best_pair(
    query_units: Sequence[str],
    doc_units: Sequence[str],
    *,
    query_vectors: NDArray[np.floating[Any]] | None = None,
    document_vectors: NDArray[np.floating[Any]] | None = None,
) -> tuple[str, str]:
    """The best-matching (query unit, document unit) pair: by cosine (plus a small
    keyword-overlap tie-breaker) when both vector arrays match the unit counts, else by
    keyword overlap (ties by the shared count, then the first pair)."""
    if not query_units or not doc_units:
        return (query_units[0] if query_units else "", doc_units[0] if doc_units else "")
    q_kw = [frozenset(tokens(u)) - BOILERPLATE_WORDS for u in query_units]
    d_kw = [frozenset(tokens(u)) - BOILERPLATE_WORDS for u in doc_units]
    lex = np.array([[overlap_coefficient(a, b) for b in d_kw] for a in q_kw], dtype=np.float64)
    shared = np.array([[len(a & b) for b in d_kw] for a in q_kw], dtype=np.float64)
    if (
        query_vectors is not None
        and document_vectors is not None
        and len(query_vectors) == len(query_units)
        and len(document_vectors) == len(doc_units)
    ):
        cos = np.asarray(query_vectors, np.float64) @ np.asarray(document_vectors, np.float64).T
        sim = cos + 1e-3 * lex
    else:
        sim = lex + 1e-3 * shared
    i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)  # first maximum: deterministic
    return query_units[int(i)], doc_units[int(j)]


def evidence(
    query_id: str | None,
    query_text: str,
    query_keywords: frozenset[str],
    docs: Sequence[tuple[Document, float]],
    *,
    doc_keywords: Mapping[str, frozenset[str]],
    vectors: SentenceVectors | None = None,
    keyword_limit: int = 8,
    weights: KeywordWeights | None = None,
    floor: float = 0.0,
    cache: EvidenceCache | None = None,
) -> tuple[Evidence, ...]:
    """Evidence of the given documents, in the given order.

    Parameters
    ----------
    query_id, query_text : the query side (``query_text`` is what snippets are cut from).
    query_keywords : keyword set of the query.
    docs : (document, retrieval similarity) pairs, best first.
    doc_keywords : doc_id -> keyword set of the document.
    vectors : optional sentence-vector cache; when given, the snippet pair is the most
        similar (query unit, document unit) pair by cosine, else by keyword overlap.
    weights : corpus keyword weights; when given, shared keywords are the informative ones,
        most specific first, else the longest first.
    floor : documents with similarity <= 0 or below ``floor`` are left out.
    cache : optional :class:`EvidenceCache` of the snippet pairs and keywords already found.

    Returns
    -------
    tuple of Evidence
    """
    docs = [(d, sim) for d, sim in docs if sim > 0.0 and sim >= floor]
    keys = [(query_text, d.id, query_keywords, weights is not None, keyword_limit) for d, _ in docs]
    found = cache.get_many(keys) if cache is not None else [None] * len(keys)
    todo = [d for (d, _), f in zip(docs, found, strict=True) if f is None]
    q_units = technical_sentences(query_text) if todo else []
    q_vecs = vectors.query(query_text) if vectors is not None and todo else None
    if vectors is not None and todo:
        vectors.prefetch(todo)
    out: list[Evidence] = []
    for (doc, sim), key, parts in zip(docs, keys, found, strict=True):
        if parts is None:
            parts = _explain_document(
                doc,
                q_units,
                q_vecs,
                query_keywords & doc_keywords[doc.id],
                vectors=vectors,
                weights=weights,
                keyword_limit=keyword_limit,
            )
            if cache is not None:
                cache.put(key, parts)
        q_snip, d_snip, kws = parts
        out.append(Evidence(query_id, doc.id, float(sim), q_snip, d_snip, kws))
    return tuple(out)


def _explain_document(
    doc: Document,
    q_units: Sequence[str],
    q_vecs: NDArray[np.float32] | None,
    common: frozenset[str],
    *,
    vectors: SentenceVectors | None,
    weights: KeywordWeights | None,
    keyword_limit: int,
) -> tuple[str, str, tuple[str, ...]]:
    """The snippet pair and the shared keywords (as spelled in the document) of one document."""
    text = doc.full_text
    d_vecs = vectors.document(doc) if vectors is not None else None
    q_snip, d_snip = best_pair(
        q_units, technical_sentences(text), query_vectors=q_vecs, document_vectors=d_vecs
    )
    if weights is not None:
        ranked = weights.ranked(common, limit=keyword_limit)
    else:
        like = {k for k in common if keyword_like(k)}
        ranked = shared_keywords(like, like, limit=keyword_limit)
    return q_snip, d_snip, tuple(verbatim(k, text) for k in ranked)


def suggestion(
    s: Scored,
    rank: int,
    *,
    documents: Mapping[str, Document],
    features: FeatureBuilder,
    evidence_k: int,
    vectors: SentenceVectors | None = None,
    floor: float = 0.0,
    cache: EvidenceCache | None = None,
) -> Suggestion:
    """The explained :class:`Suggestion` of one scored pair: its best ``evidence_k``
    documents at or above the similarity ``floor`` as evidence, their shared keywords (at
    most 10) and the score breakdown."""
    feats, contrib = breakdown(s.match.features, s.contributions, s.bias)
    q_kw = features.query_keywords(s.query)
    weights = features.keyword_weights()  # built on first use: the same for every request
    docs = worth_showing(
        (  # lazily: the walk stops once evidence_k documents are shown
            (documents[c.doc_id], sim)
            for c, sim in zip(s.match.candidates, s.match.doc_scores, strict=True)
        ),
        q_kw,
        features.doc_keywords,
        weights,
        evidence_k,
    )
    ev = evidence(
        s.query.id,
        s.query.text,
        q_kw,
        docs,
        doc_keywords={d.id: features.doc_keywords(d.id) for d, _ in docs},
        vectors=vectors,
        weights=weights,
        floor=floor,
        cache=cache,
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
        reasons=reasons(feats, contrib),
    )


def worth_showing(
    docs: Iterable[tuple[Document, float]],
    query_keywords: frozenset[str],
    doc_keywords: Callable[[str], frozenset[str]],
    weights: KeywordWeights | None,
    k: int,
) -> list[tuple[Document, float]]:
    """The documents of one organisation shown as evidence: its best match, then, in score
    order, up to ``k - 1`` more that share an informative keyword with the query.

    The similarities of the bundled model are compressed (an institute's off-topic documents
    score within a few hundredths of its on-topic ones), so beyond the best match a document
    is shown only when the two also share vocabulary: on the demo data a second or third
    document without a shared keyword was on the need's topic 1 time in 1,276
    (``benchmarks/precision_demo.py``, on-topic evidence).
    """
    shown: list[tuple[Document, float]] = []
    for doc, sim in docs:
        if len(shown) >= k:
            break
        if shown:
            kws = doc_keywords(doc.id)
            if weights is not None:
                informative = not query_keywords.isdisjoint(weights.informative_part(kws))
            else:
                informative = any(keyword_like(t) for t in query_keywords & kws)
            if not informative:
                continue
        shown.append((doc, sim))
    return shown


def verbatim(keyword: str, text: str) -> str:
    """``keyword`` as spelled in ``text`` (tokens are lower-cased: "cod" → "COD"); the
    keyword itself when it does not occur (e.g. a curated keyword)."""
    i = text.lower().find(keyword.lower())
    return text[i : i + len(keyword)] if i >= 0 else keyword


def breakdown(
    features: np.ndarray, contributions: np.ndarray, bias: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Name the feature values and contributions of one pair.

    Parameters
    ----------
    features, contributions : ndarray of float64, shape (n_features,)
    bias : the ranker's constant term (0 for the default scoring), stored under "bias".

    Returns
    -------
    (features, contributions) as dicts keyed by :data:`FEATURE_NAMES`.
    """
    feats = dict(zip(FEATURE_NAMES, np.asarray(features, dtype=np.float64).tolist(), strict=True))
    contrib = dict(
        zip(FEATURE_NAMES, np.asarray(contributions, dtype=np.float64).tolist(), strict=True)
    )
    contrib["bias"] = float(bias)
    return feats, contrib


def reasons(
    features: Mapping[str, float],
    contributions: Mapping[str, float],
    *,
    exclusions: Sequence[Exclusion] = (),
    top: int = 3,
) -> tuple[str, ...]:
    """Short Chinese lines for staff: exclusion labels first, then the ``top`` features
    that raised the score most, e.g. ``"语义相似度 0.82 (+0.82)"``."""
    lines = [
        f"{e.code} {e.label}" + (f" [{e.member_id}]" if e.member_id else "") for e in exclusions
    ]
    ranked = sorted((-c, n) for n in FEATURE_NAMES if (c := contributions.get(n, 0.0)) > 0)
    lines.extend(f"{FEATURE_LABELS[n]} {features[n]:.2f} (+{-c:.2f})" for c, n in ranked[:top])
    return tuple(lines)
