"""Explanations of suggestions: evidence documents with verbatim snippets, shared keywords and
the per-feature score breakdown.

Snippets are whole sentences cut from the texts by :func:`matcher.textutil.sentence_spans`,
so each is a verbatim substring of the query text and of the document's ``full_text``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from matcher.features import FEATURE_LABELS, FEATURE_NAMES, FeatureBuilder, Scored
from matcher.protocols import TextEncoder
from matcher.textutil import best_sentence_pair, sentences, shared_keywords
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
        per_doc = [sentences(d.full_text) for d in missing]
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
        """Sentence vectors of ``doc``, shape (n_sentences, dim)."""
        with self._lock:
            v = self._docs.get(doc.id)
        if v is None:
            self.prefetch([doc])
            with self._lock:
                v = self._docs.get(doc.id)
        return v if v is not None else np.zeros((0, 0), np.float32)

    def query(self, text: str) -> NDArray[np.float32]:
        """Sentence vectors of a query text, shape (n_sentences, dim)."""
        with self._lock:
            v = self._queries.get(text)
        if v is None:
            sents = sentences(text)
            v = self.encoder.encode_queries(sents) if sents else np.zeros((0, 0), np.float32)
            with self._lock:
                self._put(self._queries, text, np.asarray(v), self.max_queries)
        return v


def evidence(
    query_id: str | None,
    query_text: str,
    query_keywords: frozenset[str],
    docs: Sequence[tuple[Document, float]],
    *,
    doc_keywords: Mapping[str, frozenset[str]],
    vectors: SentenceVectors | None = None,
    keyword_limit: int = 8,
) -> tuple[Evidence, ...]:
    """Evidence of the given documents, in the given order.

    Parameters
    ----------
    query_id, query_text : the query side (``query_text`` is what snippets are cut from).
    query_keywords : keyword set of the query.
    docs : (document, retrieval similarity) pairs, best first.
    doc_keywords : doc_id -> keyword set of the document.
    vectors : optional sentence-vector cache; when given, the snippet pair is the most
        similar (query sentence, document sentence) pair by cosine, else by keyword overlap.

    Returns
    -------
    tuple of Evidence
    """
    q_vecs = vectors.query(query_text) if vectors is not None and docs else None
    if vectors is not None:
        vectors.prefetch([d for d, _ in docs])
    out: list[Evidence] = []
    for doc, sim in docs:
        text = doc.full_text
        d_vecs = vectors.document(doc) if vectors is not None else None
        q_snip, d_snip, _ = best_sentence_pair(
            query_text, text, query_vectors=q_vecs, document_vectors=d_vecs
        )
        kws = tuple(
            verbatim(k, text)
            for k in shared_keywords(query_keywords, doc_keywords[doc.id], limit=keyword_limit)
        )
        out.append(Evidence(query_id, doc.id, float(sim), q_snip, d_snip, kws))
    return tuple(out)


def suggestion(
    s: Scored,
    rank: int,
    *,
    documents: Mapping[str, Document],
    features: FeatureBuilder,
    evidence_k: int,
    vectors: SentenceVectors | None = None,
) -> Suggestion:
    """The explained :class:`Suggestion` of one scored pair: its best ``evidence_k``
    documents as evidence, their shared keywords (at most 10) and the score breakdown."""
    feats, contrib = breakdown(s.match.features, s.contributions, s.bias)
    docs = [
        (documents[c.doc_id], sim)
        for c, sim in zip(s.match.candidates, s.match.doc_scores, strict=True)
    ][:evidence_k]
    ev = evidence(
        s.query.id,
        s.query.text,
        features.query_keywords(s.query),
        docs,
        doc_keywords={d.id: features.doc_keywords(d.id) for d, _ in docs},
        vectors=vectors,
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
    feats = {n: float(v) for n, v in zip(FEATURE_NAMES, features, strict=True)}
    contrib = {n: float(v) for n, v in zip(FEATURE_NAMES, contributions, strict=True)}
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
    ranked = sorted(
        (n for n in FEATURE_NAMES if contributions.get(n, 0.0) > 0),
        key=lambda n: (-contributions[n], n),
    )
    lines.extend(
        f"{FEATURE_LABELS[n]} {features[n]:.2f} (+{contributions[n]:.2f})" for n in ranked[:top]
    )
    return tuple(lines)
