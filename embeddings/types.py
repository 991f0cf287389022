"""Small value types of the embeddings layer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

import numpy as np
from numpy.typing import NDArray


class Hits(NamedTuple):
    """One query's search result, best first (implements ``matcher.protocols.Hits``).

    ids : external document ids (str), length m <= k; never contains missing (-1) rows.
    scores : float32 array of shape (m,), non-increasing.
    chunks : int32 array of shape (m,), the best-matching chunk of each document, or None
        when the source does not chunk documents (BM25).
    rows : int64 array of shape (m,), each document's row in the searcher's ``row_ids``, or
        None when the searcher does not number its documents.
    """

    ids: Sequence[str]
    scores: NDArray[np.float32]
    chunks: NDArray[np.int32] | None = None
    rows: NDArray[np.int64] | None = None


class RowIds(Sequence[str]):
    """Document ids of some rows of a fixed id list, looked up only when read (a search
    result whose consumer works on rows never builds its strings).

    Parameters
    ----------
    names : list of str
        The searcher's ids, one per row.
    rows : int64 array
        The rows, in result order.
    """

    __slots__ = ("names", "rows")

    def __init__(self, names: list[str], rows: NDArray[np.int64]) -> None:
        self.names = names
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> RowIds: ...

    def __getitem__(self, i: int | slice) -> str | RowIds:
        if isinstance(i, slice):
            return RowIds(self.names, self.rows[i])
        return self.names[int(self.rows[i])]

    def __iter__(self) -> Iterator[str]:
        names = self.names
        return (names[r] for r in self.rows.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(list(self))


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
