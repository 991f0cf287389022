"""Shared fixtures: seeded synthetic vectors and a deterministic fake text encoder.

Keep this file generic and small; package-specific fixtures live in tests/<package>/conftest.py.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pytest
from numpy.typing import NDArray


class HashingEncoder:
    """Deterministic fake ``TextEncoder``: hashed character uni/bigrams, L2-normalised.

    Texts sharing characters get positive cosine, so it behaves like a (weak) real encoder
    without loading a model. crc32 (not ``hash``) keeps it stable across processes.
    """

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_id(self) -> str:
        return f"hashing-{self._dim}"

    def _encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            chars = [c for c in t.lower() if not c.isspace()]
            grams = chars + [a + b for a, b in zip(chars, chars[1:], strict=False)]
            for g in grams:
                h = zlib.crc32(g.encode("utf-8"))
                out[i, h % self._dim] += 1.0 if len(g) == 2 else 0.3
            n = np.linalg.norm(out[i])
            if n > 0:
                out[i] /= n
        return out

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self._encode(texts)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator (seed 0): every test gets the same stream."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def fake_encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture
def unit_vectors(rng: np.random.Generator) -> NDArray[np.float32]:
    """100 seeded L2-normalised float32 vectors of dimension 32."""
    x = rng.standard_normal((100, 32)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
