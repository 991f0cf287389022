"""Corpus-vocabulary expansion of keyword-list queries for the BM25 side of retrieval.

A keyword list ("搅拌摩擦焊，焊接变形，反变形") often names its topic in words its best
document does not use (CSL kw2abs_nolex: only the keywords absent from the abstract). BM25
on the raw keywords cannot reach such a document; the corpus can: the documents that do use a
keyword also use the words its neighbours in meaning are written with. :class:`CorpusExpander`
turns that co-occurrence into extra, lightly weighted BM25 query terms:

1. each list item (the separators of :func:`matcher.feedback.is_keyword_list`) is tokenized
   with :func:`matcher.textutil.query_tokens`; its documents are those holding every one of its
   tokens (all holding any of them when none holds all), each weighted by its BM25 score for
   the item;
2. the item's term association is the weighted mean over those documents of each
   document's term distribution (its BM25 weights, normalised to sum 1); the items'
   associations are summed and the query's own tokens removed;
3. the ``n_terms`` best associated terms join the query's tokens (weight 1 each) with weight
   ``weight * association / best association``, and the documents are scored by the weighted
   sum of their BM25 term scores (the same matrix the BM25 index scores with).

It replaces the BM25 search of a keyword-list query (one weighted search instead of one plain
search, over the index's own term-document matrix); sentences and titles keep the plain BM25
search. Everything comes from the indexed documents: no query text of any evaluation set is
read, and nothing is precomputed at build time beyond the BM25 matrix itself (the
document-major copy used in step 2 is made once, at the first keyword-list query: 17 ms and
about 12 bytes per (document, term) pair, 8 MB for the 12,169 CSL abstracts).
Used by the default preset ``hybrid``; measurements: ``docs/retrieval.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InvalidParameter
from matcher.feedback import HeadHits, is_keyword_list, list_items
from matcher.protocols import Hits, LexicalSearcher
from matcher.textutil import query_tokens


class TermMatrix(Protocol):
    """A BM25 index's term-document score matrix, term-major (CSC over terms):
    the documents of term ``t`` are ``indices[indptr[t]:indptr[t + 1]]`` (rows of
    ``doc_ids``) with BM25 term scores ``data[indptr[t]:indptr[t + 1]]``
    (``embeddings.lexical.TermMatrix`` is the implementation)."""

    @property
    def doc_ids(self) -> Sequence[str]: ...

    @property
    def vocab(self) -> Mapping[str, int]: ...

    @property
    def indptr(self) -> NDArray[Any]: ...

    @property
    def indices(self) -> NDArray[Any]: ...

    @property
    def data(self) -> NDArray[Any]: ...


@runtime_checkable
class TermMatrixSource(Protocol):
    """A lexical searcher that exposes its term-document matrix (``embeddings.BM25Index``)."""

    def term_matrix(self) -> TermMatrix: ...


class CorpusExpander:
    """BM25 search of keyword lists expanded with co-occurring corpus terms.

    Parameters
    ----------
    matrix : TermMatrix
        The BM25 index's term-document matrix (see :class:`TermMatrix`).
    n_terms : int
        Expansion terms added to a query (>= 1).
    weight : float
        Weight of the best expansion term relative to a query token (> 0).
    """

    def __init__(self, matrix: TermMatrix, *, n_terms: int = 60, weight: float = 0.04) -> None:
        self.matrix = matrix
        self.n_terms = n_terms
        self.weight = weight
        self._lock = threading.Lock()

    def _validate(self) -> None:
        if self.n_terms < 1:
            raise InvalidParameter(f"n_terms must be >= 1, got {self.n_terms}")
        if not self.weight > 0:
            raise InvalidParameter(f"weight must be > 0, got {self.weight}")

    def _doc_terms(self) -> Any:
        """Document-major copy of the matrix, each row normalised to sum 1 (scipy CSR)."""
        cached = getattr(self, "doc_terms_", None)
        if cached is None:
            with self._lock:
                cached = getattr(self, "doc_terms_", None)
                if cached is None:
                    import scipy.sparse as sp

                    m = self.matrix
                    shape = (len(m.doc_ids), len(m.indptr) - 1)
                    data = np.asarray(m.data, dtype=np.float64)
                    csr = sp.csc_matrix((data, m.indices, m.indptr), shape=shape).tocsr()
                    totals = np.asarray(csr.sum(axis=1)).ravel()
                    inv = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
                    cached = sp.diags(inv) @ csr
                    self.doc_terms_ = cached
        return cached

    def _term_ids(self, tokens: Sequence[str]) -> list[int]:
        vocab = self.matrix.vocab
        n = len(self.matrix.indptr) - 1  # a vocabulary id past the matrix has no documents
        ids = (vocab.get(t, n) for t in tokens)
        return list(dict.fromkeys(i for i in ids if 0 <= i < n))

    def _item_association(self, term_ids: list[int]) -> NDArray[np.float64] | None:
        """Step 2 for one item: the BM25-weighted mean term distribution of its documents."""
        m = self.matrix
        n = len(m.doc_ids)
        score = np.zeros(n, dtype=np.float64)
        count = np.zeros(n, dtype=np.int32)
        for t in term_ids:
            s, e = int(m.indptr[t]), int(m.indptr[t + 1])
            score[m.indices[s:e]] += m.data[s:e]
            count[m.indices[s:e]] += 1
        rows = np.flatnonzero(count == len(term_ids))
        if rows.size == 0:
            rows = np.flatnonzero(count > 0)
        total = float(score[rows].sum())
        if rows.size == 0 or total <= 0:
            return None
        doc_terms = self._doc_terms()
        assoc = doc_terms[rows].T @ (score[rows] / total)
        return np.asarray(assoc, dtype=np.float64).ravel()

    def query_weights(self, text: str) -> dict[int, float]:
        """Term ids and weights of the expanded query of ``text`` (its own tokens at 1,
        duplicates once; the expansion terms below ``weight``); empty without known tokens."""
        self._validate()
        own = self._term_ids(query_tokens(text))
        if not own:
            return {}
        total: NDArray[np.float64] | None = None
        for item in list_items(text):
            ids = self._term_ids(query_tokens(item))
            assoc = self._item_association(ids) if ids else None
            if assoc is not None:
                total = assoc if total is None else total + assoc
        weights = dict.fromkeys(own, 1.0)
        if total is None:
            return weights
        total[own] = 0.0
        top = self._top_terms(total, min(self.n_terms, total.size))
        if top:
            best = float(total[top[0]])
            for t in top:
                weights[t] = self.weight * float(total[t]) / best
        return weights

    def _top_terms(self, total: NDArray[np.float64], k: int) -> list[int]:
        """The ``k`` terms of highest positive ``total``, best first, ties by the term's
        text: the vocabulary's ids follow the index build (and Python's per-process string
        hashing), so neither the terms kept at a tie nor the order the query's scores are
        summed in may depend on them."""
        cut = float(np.partition(total, total.size - k)[total.size - k])
        above = np.flatnonzero(total > max(cut, 0.0)).tolist()
        terms = self._terms()
        tied = (
            sorted(np.flatnonzero(total == cut).tolist(), key=terms.__getitem__) if cut > 0 else []
        )
        return sorted([*above, *tied[: k - len(above)]], key=lambda t: (-total[t], terms[t]))

    def _terms(self) -> list[str]:
        """The text of each term id of the matrix (its vocabulary inverted), built once."""
        cached: list[str] | None = getattr(self, "terms_", None)
        if cached is None:
            n = len(self.matrix.indptr) - 1
            cached = [""] * n
            for text, i in self.matrix.vocab.items():
                if 0 <= i < n:
                    cached[i] = text
            self.terms_ = cached
        return cached

    def search(self, text: str, k: int) -> Hits:
        """The ``k`` best documents for the expanded query of ``text`` (score > 0), best first,
        ties by document row; ``rows`` are the matrix rows (the BM25 index's ``row_ids``)."""
        m = self.matrix
        scores = np.zeros(len(m.doc_ids), dtype=np.float64)
        for t, w in self.query_weights(text).items():
            s, e = int(m.indptr[t]), int(m.indptr[t + 1])
            scores[m.indices[s:e]] += w * m.data[s:e]
        hit = np.flatnonzero(scores > 0)
        if hit.size > k:
            hit = hit[np.argpartition(-scores[hit], k - 1)[:k]]
        hit = hit[np.lexsort((hit, -scores[hit]))].astype(np.int64)
        ids = [m.doc_ids[i] for i in hit.tolist()]
        return HeadHits(ids, scores[hit].astype(np.float32), None, hit)


def make_expander(
    lexical: LexicalSearcher | None, *, n_terms: int, weight: float
) -> CorpusExpander | None:
    """A :class:`CorpusExpander` over ``lexical``'s matrix; None when ``lexical`` does not
    expose one (:class:`TermMatrixSource`) or ``n_terms`` is 0."""
    if lexical is None or n_terms <= 0 or not isinstance(lexical, TermMatrixSource):
        return None
    return CorpusExpander(lexical.term_matrix(), n_terms=n_terms, weight=weight)


def lexical_hits(
    lexical: LexicalSearcher,
    expander: CorpusExpander | None,
    texts: Sequence[str],
    depth: int,
) -> list[Hits]:
    """BM25 hits of each query: expanded (:meth:`CorpusExpander.search`) for keyword lists
    when ``expander`` is given, the plain token search of ``lexical`` for the others."""
    routed = [expander is not None and is_keyword_list(t) for t in texts]
    plain = [i for i, r in enumerate(routed) if not r]
    out: list[Hits | None] = [None] * len(texts)
    if plain:
        found = lexical.search_tokens([query_tokens(texts[i]) for i in plain], depth)
        if len(found) != len(plain):
            raise InvalidParameter("a searcher returned a different number of result lists")
        for i, h in zip(plain, found, strict=True):
            out[i] = h
    if expander is not None:
        for i, r in enumerate(routed):
            if r:
                out[i] = expander.search(texts[i], depth)
    return [h for h in out if h is not None]
