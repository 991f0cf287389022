"""Serving helpers: the query memo never changes results and really saves model calls."""

from __future__ import annotations

import threading

import numpy as np

from embeddings.serving import MemoQueryEncoder


class CountingEncoder:
    dim = 4
    model_id = "counting/1"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode_queries(self, texts):
        self.seen.extend(texts)
        out = np.array([[len(t), t.count("a"), 1.0, 0.0] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_documents(self, texts):
        return self.encode_queries(texts)


def test_memo_returns_the_same_vectors_and_encodes_each_text_once():
    inner = CountingEncoder()
    memo = MemoQueryEncoder(inner, maxsize=10)
    first = memo.encode_queries(["ab", "aab", "ab"])
    again = memo.encode_queries(["aab", "ab"])
    np.testing.assert_array_equal(first, inner.encode_queries(["ab", "aab", "ab"]))
    np.testing.assert_array_equal(again, first[[1, 0]])
    assert inner.seen[:2] == ["ab", "aab"]  # the duplicate and the repeat cost nothing
    assert memo.encode_queries([]).shape == (0, 4)


def test_memo_evicts_least_recently_used():
    inner = CountingEncoder()
    memo = MemoQueryEncoder(inner, maxsize=2)
    memo.encode_queries(["x"])
    memo.encode_queries(["y"])
    memo.encode_queries(["x"])  # x is now the most recent
    memo.encode_queries(["z"])  # evicts y
    inner.seen.clear()
    memo.encode_queries(["x", "y"])
    assert inner.seen == ["y"]


def test_memo_is_safe_under_threads():
    inner = CountingEncoder()
    memo = MemoQueryEncoder(inner, maxsize=50)
    texts = [f"t{i}a" * (i % 5 + 1) for i in range(40)]
    want = inner.encode_queries(texts)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                np.testing.assert_array_equal(memo.encode_queries(texts), want)
        except BaseException as exc:  # reported below, not swallowed
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_memo_entries_take_the_same_memory_whatever_the_text_length():
    import tracemalloc

    class Wide(CountingEncoder):
        dim = 384

        def encode_queries(self, texts):
            return np.ones((len(texts), self.dim), dtype=np.float32) / np.sqrt(self.dim)

    memo = MemoQueryEncoder(Wide(), maxsize=1000)
    memo.encode_queries(["warm-up"])
    grown = []
    for length in (10, 20_000):  # a title, a long need description
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        texts = [f"{n}:" + "需" * length for n in range(200)]
        memo.encode_queries(texts)
        del texts  # what stays is what the memo keeps
        grown.append((tracemalloc.get_traced_memory()[0] - before) / 200)
        tracemalloc.stop()
    # Each entry costs about entry_bytes(): no copy of the text, no view of the batch.
    for per_entry in grown:
        assert per_entry < 1.25 * memo.entry_bytes()
    assert memo.entry_bytes() == 4 * 384 + MemoQueryEncoder.ENTRY_OVERHEAD_BYTES


def test_memo_of_size_zero_keeps_nothing():
    inner = CountingEncoder()
    memo = MemoQueryEncoder(inner, maxsize=0)
    np.testing.assert_array_equal(memo.encode_queries(["ab"]), inner.encode_queries(["ab"]))
    inner.seen.clear()
    memo.encode_queries(["ab"])
    assert inner.seen == ["ab"]


def test_cached_queries_are_read_back_and_a_locked_cache_only_skips_the_write(tmp_path):
    import sqlite3

    from embeddings.cache import EmbeddingCache
    from embeddings.serving import CachedQueryEncoder

    path = tmp_path / "cache.sqlite3"
    inner = CountingEncoder()
    want = CachedQueryEncoder(inner, EmbeddingCache(path)).encode_queries(["ab", "aab"])
    inner.seen.clear()
    got = CachedQueryEncoder(inner, EmbeddingCache(path)).encode_queries(["aab", "ab"])
    np.testing.assert_array_equal(got, want[[1, 0]])
    assert inner.seen == []
    # another process holds the write lock: the vectors still come back, nothing is stored
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    locked = CachedQueryEncoder(inner, EmbeddingCache(path, timeout=0.05))
    np.testing.assert_array_equal(locked.encode_queries(["abc"]), inner.encode_queries(["abc"]))
    holder.rollback()
    assert EmbeddingCache(path).count_vectors() == 2


def test_the_embedding_cache_serves_several_threads(tmp_path):
    from embeddings.cache import EmbeddingCache, text_key

    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    vec = np.ones((1, 4), dtype=np.float32)
    cache.put_vectors("m", [text_key("main")], vec)
    seen: list[int] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            cache.put_vectors("m", [text_key(f"t{i}")], vec)
            seen.append(len(cache.get_vectors("m", [text_key("main"), text_key(f"t{i}")], 4)))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and seen == [2, 2, 2, 2]
    assert cache.count_vectors("m") == 5
    cache.close()
