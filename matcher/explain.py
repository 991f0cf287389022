"""Explanations of suggestions: evidence documents with verbatim snippets, shared keywords and
the per-feature score breakdown.

Snippets are whole sentences cut from the texts by :func:`matcher.textutil.sentence_spans`,
so each is a verbatim substring of the query text and of the document's ``full_text``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from matcher.features import FEATURE_LABELS, FEATURE_NAMES
from matcher.protocols import TextEncoder
from matcher.textutil import best_sentence_pair, sentences, shared_keywords
from matcher.types import Document, Evidence, Exclusion


def evidence(
    query_id: str | None,
    query_text: str,
    query_keywords: frozenset[str],
    docs: Sequence[tuple[Document, float]],
    *,
    doc_keywords: Mapping[str, frozenset[str]],
    encoder: TextEncoder | None = None,
    keyword_limit: int = 8,
) -> tuple[Evidence, ...]:
    """Evidence of the given documents, in the given order.

    Parameters
    ----------
    query_id, query_text : the query side (``query_text`` is what snippets are cut from).
    query_keywords : keyword set of the query.
    docs : (document, retrieval similarity) pairs, best first.
    doc_keywords : doc_id -> keyword set of the document.
    encoder : optional sentence encoder; when given, the snippet pair is the most similar
        (query sentence, document sentence) pair by cosine, else by keyword overlap.

    Returns
    -------
    tuple of Evidence
    """
    q_vecs = None
    if encoder is not None and docs:
        q_sents = sentences(query_text)
        q_vecs = encoder.encode_queries(q_sents) if q_sents else None
    out: list[Evidence] = []
    for doc, sim in docs:
        text = doc.full_text
        d_vecs = None
        if q_vecs is not None and encoder is not None:
            d_sents = sentences(text)
            d_vecs = encoder.encode_documents(d_sents) if d_sents else None
        q_snip, d_snip, _ = best_sentence_pair(
            query_text,
            text,
            query_vectors=None if d_vecs is None else np.asarray(q_vecs).tolist(),
            document_vectors=None if d_vecs is None else np.asarray(d_vecs).tolist(),
        )
        kws = tuple(
            verbatim(k, text)
            for k in shared_keywords(query_keywords, doc_keywords[doc.id], limit=keyword_limit)
        )
        out.append(Evidence(query_id, doc.id, float(sim), q_snip, d_snip, kws))
    return tuple(out)


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
