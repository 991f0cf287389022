"""Structural interfaces the matcher depends on: the one definition of each.

The embeddings package implements them without importing matcher (``embeddings.Hits``,
the encoders rooted at ``embeddings.Encoder``, ``Collection.dense`` / ``Collection.lexical``);
the service, which imports both, passes those objects in and mypy checks that they conform.
Tests satisfy them with deterministic fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


class Hits(Protocol):
    """One query's search result, best first (``embeddings.Hits`` is the implementation).

    ids : external document ids (str), length m <= k; never contains missing (-1) rows.
    scores : float32 array of shape (m,), non-increasing.
    chunks : int32 array of shape (m,), the best-matching chunk of each document, or None
        when the source does not chunk documents.
    rows : int64 array of shape (m,), each document's row in the searcher's ``row_ids``
        (:class:`RowSearcher`), or None; the matcher reads it with ``getattr``, so a source
        without it is served through the ids.
    """

    @property
    def ids(self) -> Sequence[str]: ...

    @property
    def scores(self) -> NDArray[np.float32]: ...

    @property
    def chunks(self) -> NDArray[np.int32] | None: ...

    @property
    def rows(self) -> NDArray[np.int64] | None: ...


@runtime_checkable
class TextEncoder(Protocol):
    """Turns text into L2-normalised float32 vectors of shape (n, dim)."""

    @property
    def dim(self) -> int: ...

    @property
    def model_id(self) -> str: ...

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


@runtime_checkable
class DenseSearcher(Protocol):
    """Dense candidate source over documents (a document may have several chunks:
    it is scored by its best chunk and appears once)."""

    def search(self, queries: NDArray[np.float32], k: int) -> Sequence[Hits]: ...


@runtime_checkable
class DocumentScorer(Protocol):
    """A dense source that can also score given documents exactly (best chunk), without a
    search over the whole collection (``embeddings.store.DenseChunkSearcher``)."""

    def score_documents(
        self, queries: NDArray[np.float32], doc_ids: Sequence[Sequence[str]], k: int
    ) -> Sequence[Hits]: ...


@runtime_checkable
class RowSearcher(Protocol):
    """A dense source that numbers its documents: its results carry their rows
    (``Hits.rows``, indexes of ``row_ids``), and it scores given rows exactly (best chunk)
    without a search over the whole collection (``embeddings.store.DenseChunkSearcher``)."""

    @property
    def row_ids(self) -> Sequence[str]: ...

    def search_rows(self, queries: NDArray[np.float32], k: int) -> Sequence[Hits]: ...

    def score_rows(
        self, queries: NDArray[np.float32], rows: Sequence[NDArray[np.int64]], k: int
    ) -> Sequence[Hits]: ...


@runtime_checkable
class LexicalSearcher(Protocol):
    """Lexical (BM25) candidate source over the same documents, indexed with the tokens of
    :func:`matcher.textutil.tokenize`; queries arrive tokenized the same way."""

    def search_tokens(self, queries: Sequence[Sequence[str]], k: int) -> Sequence[Hits]: ...


class Candidate(NamedTuple):
    """A retrieved document with its fused score and the per-source evidence.

    score : fused retrieval score (higher is better; comparable within one query only).
    dense : cosine similarity of the best-matching chunk, or None if not retrieved densely.
    lexical : BM25 score, or None if not retrieved lexically.
    chunk : index of the best-matching chunk of the document (0 if unchunked).
    english : cosine of the best chunk by the English model, for English queries the English
        model served (None otherwise).
    """

    doc_id: str
    score: float
    dense: float | None = None
    lexical: float | None = None
    chunk: int = 0
    english: float | None = None


@runtime_checkable
class CandidateRetriever(Protocol):
    """Hybrid candidate retrieval (matcher/retrieval.py implements it)."""

    def retrieve(self, queries: Sequence[str], k: int) -> list[list[Candidate]]: ...
