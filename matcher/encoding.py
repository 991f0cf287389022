"""External ids ↔ matrix rows.

Solvers and rankers see only matrices; this module owns the mapping between the string ids
of needs, documents and organisations and the integer rows/columns of those matrices (the
openreview-matcher ``Encoder`` pattern).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from matcher.errors import UnknownEntity


class IdIndex(Sequence[str]):
    """An ordered, duplicate-free list of ids with O(1) id → row lookup.

    Parameters
    ----------
    ids : iterable of str
        Row order. Duplicates raise ``ValueError`` (a duplicated id would make two rows
        refer to one entity).
    """

    __slots__ = ("_ids", "_rows")

    def __init__(self, ids: Iterable[str]) -> None:
        self._ids: tuple[str, ...] = tuple(ids)
        self._rows: dict[str, int] = {}
        for i, x in enumerate(self._ids):
            if x in self._rows:
                raise ValueError(f"duplicate id {x!r} at rows {self._rows[x]} and {i}")
            self._rows[x] = i

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
        return self._ids[i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __contains__(self, x: object) -> bool:
        return x in self._rows

    def __repr__(self) -> str:
        return f"IdIndex(n={len(self)})"

    @property
    def ids(self) -> tuple[str, ...]:
        """The ids in row order."""
        return self._ids

    def row(self, id_: str) -> int:
        """Row of ``id_``; raises :class:`~matcher.errors.UnknownEntity` if absent."""
        try:
            return self._rows[id_]
        except KeyError:
            raise UnknownEntity(f"unknown id {id_!r}") from None

    def rows(
        self, ids: Iterable[str], *, missing: Literal["raise", "skip", "minus_one"] = "raise"
    ) -> NDArray[np.int64]:
        """Rows of ``ids`` as an int64 array of shape (n,).

        missing : "raise" (UnknownEntity), "skip" (drop them: the result may be shorter) or
            "minus_one" (FAISS convention: -1 marks a missing id).
        """
        if missing not in ("raise", "skip", "minus_one"):
            raise ValueError(
                f"missing must be one of 'raise', 'skip', 'minus_one'; got {missing!r}"
            )
        out: list[int] = []
        for x in ids:
            r = self._rows.get(x)
            if r is None:
                if missing == "raise":
                    raise UnknownEntity(f"unknown id {x!r}")
                if missing == "skip":
                    continue
                r = -1
            out.append(r)
        return np.asarray(out, dtype=np.int64)

    def take(self, rows: Iterable[int]) -> list[str]:
        """Ids of ``rows`` (negative rows, i.e. -1 = not found, are dropped)."""
        return [self._ids[int(r)] for r in rows if int(r) >= 0]


def label_array(ids: Sequence[str], labels: dict[str, str]) -> NDArray[np.int64]:
    """Integer-code the label of each id (ids without a label get their own unique code).

    Used to vectorise group membership: ``codes[i] == codes[j]`` iff ids i and j share a
    label.

    Returns
    -------
    ndarray of int64, shape (len(ids),)
    """
    vocab: dict[str, int] = {}
    out = np.empty(len(ids), dtype=np.int64)
    for i, x in enumerate(ids):
        key = labels.get(x, "\x00" + x)  # unlabelled ids are singleton groups
        out[i] = vocab.setdefault(key, len(vocab))
    return out
