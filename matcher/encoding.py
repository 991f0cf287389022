"""The matcher's string ids: document keys, and ids ↔ integer codes for matrices.

Document keys
    Needs and capabilities share one id space in the matcher and in the index builds
    (``Document.id``), but come from two tables whose external ids may collide, so a key
    carries a prefix: ``N:<need external id>`` or ``C:<capability external id>``. Build keys
    with :func:`need_key` / :func:`cap_key` and read them back with :func:`external_of` or
    :func:`parse_key`; nothing else writes or strips the prefixes.
Codes
    :func:`label_array` turns labels (e.g. corporate groups) into integer codes so that
    solvers and rankers see only matrices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

NEED_PREFIX = "N:"
CAP_PREFIX = "C:"

KeyKind = Literal["need", "capability"]


def need_key(external_id: str) -> str:
    """Document key of a need (``N:<external id>``)."""
    return f"{NEED_PREFIX}{external_id}"


def cap_key(external_id: str) -> str:
    """Document key of a capability (``C:<external id>``)."""
    return f"{CAP_PREFIX}{external_id}"


def parse_key(key: str) -> tuple[KeyKind | None, str]:
    """Split a document key into (kind, external id).

    A string without a document-key prefix (e.g. an organisation id used as a query id)
    comes back unchanged with kind None.
    """
    if key.startswith(NEED_PREFIX):
        return "need", key[len(NEED_PREFIX) :]
    if key.startswith(CAP_PREFIX):
        return "capability", key[len(CAP_PREFIX) :]
    return None, key


def external_of(key: str) -> str:
    """The external id behind a document key (other strings unchanged)."""
    return parse_key(key)[1]


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
