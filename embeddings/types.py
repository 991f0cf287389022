"""Small value types of the embeddings layer."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray


class Hits(NamedTuple):
    """One query's search result, best first (implements ``matcher.protocols.Hits``).

    ids : external document ids (str), length m <= k; never contains missing (-1) rows.
    scores : float32 array of shape (m,), non-increasing.
    chunks : int32 array of shape (m,), the best-matching chunk of each document, or None
        when the source does not chunk documents (BM25).
    """

    ids: list[str]
    scores: NDArray[np.float32]
    chunks: NDArray[np.int32] | None = None


class DocRecord(NamedTuple):
    """A document to index: its external id and its full text (title, description, keywords)."""

    doc_id: str
    text: str


class BuildSummary(NamedTuple):
    """What a :func:`embeddings.builder.build` run did.

    Counts are documents summed over all collections; ``encoded_chunks`` counts chunks that
    were actually sent to the encoder (not found in the cache or the previous build).
    """

    build_id: str
    added: int
    changed: int
    removed: int
    unchanged: int
    encoded_chunks: int
    seconds: float
