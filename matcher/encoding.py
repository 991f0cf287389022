"""External ids ↔ matrix rows.

Solvers and rankers see only matrices; this module owns the mapping between the string ids
of needs, documents and organisations and the integer rows/columns of those matrices (the
openreview-matcher ``Encoder`` pattern).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


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
