from __future__ import annotations

from pathlib import Path

import numpy as np

from embeddings.cache import EmbeddingCache, text_key
from tests.embeddings.conftest import unit_vectors


def test_vectors_round_trip_per_model(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "c.sqlite3"
    vecs = unit_vectors(rng, 3, 8)
    keys = [text_key(t) for t in ("甲", "乙", "丙")]
    with EmbeddingCache(path) as cache:
        cache.put_vectors("m1", keys, vecs)
    with EmbeddingCache(path) as cache:  # persisted across connections
        got = cache.get_vectors("m1", [*keys, text_key("丁")], 8)
        assert set(got) == set(keys)
        for k, v in zip(keys, vecs, strict=True):
            np.testing.assert_array_equal(got[k], v)
            assert got[k].dtype == np.float32
        assert cache.get_vectors("m2", keys, 8) == {}
        assert cache.get_vectors("m1", keys, 16) == {}  # other dim: a miss, not garbage
        assert cache.count_vectors("m1") == 3 and cache.count_vectors() == 3


def test_tokens_round_trip(tmp_path: Path) -> None:
    with EmbeddingCache(tmp_path / "c.sqlite3") as cache:
        cache.put_tokens("tok-v1", [("k1", ["高分子", "材料"])])
        assert cache.get_tokens("tok-v1", ["k1", "k2"]) == {"k1": ["高分子", "材料"]}
        assert cache.get_tokens("tok-v2", ["k1"]) == {}
