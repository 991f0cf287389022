from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.errors import IndexCorrupted
from embeddings.lexical import BM25Index, tokenize
from embeddings.types import DocRecord


def test_tokenize_mixed_text() -> None:
    tokens = tokenize("基于深度学习的Defect Detection，提高了钢板的检测精度！！ 。")
    assert "defect" in tokens and "detection" in tokens
    assert "的" not in tokens and "基于" not in tokens
    assert all(t.strip() and t not in {"，", "！", "。"} for t in tokens)
    assert "钢板" in tokens


def _index(corpus: list[DocRecord]) -> BM25Index:
    return BM25Index().fit([d.doc_id for d in corpus], [tokenize(d.text) for d in corpus])


def test_search_text_ranks_matching_document_first(corpus: list[DocRecord]) -> None:
    hits = _index(corpus).search_text(["锂离子电池 正极", "steel defect detection", "！！"], 3)
    assert hits[0].ids[0] == "c2"
    assert hits[1].ids[0] == "c4"
    assert hits[2].ids == [] and hits[2].scores.shape == (0,)
    assert hits[0].chunks is None
    assert hits[0].scores.dtype == np.float32
    assert np.all(np.diff(hits[0].scores) <= 0) and np.all(hits[0].scores > 0)


def test_k_larger_than_corpus(corpus: list[DocRecord]) -> None:
    hits = _index(corpus).search_text(["材料"], 100)
    assert 1 <= len(hits[0].ids) <= len(corpus)


def test_save_load_round_trip_without_pickle(corpus: list[DocRecord], tmp_path: Path) -> None:
    index = _index(corpus)
    files = index.save(tmp_path)
    assert not [f for f in files if f.suffix in {".pkl", ".pickle"}]
    for f in files:
        if f.suffix == ".npy":
            np.load(f, allow_pickle=False)  # raises if the array needed pickle
    loaded = BM25Index.load(tmp_path)
    q = ["农业 传感器", "中药 萃取"]
    for a, b in zip(index.search_text(q, 3), loaded.search_text(q, 3), strict=True):
        assert a.ids == b.ids
        np.testing.assert_allclose(a.scores, b.scores)


def test_empty_index_and_corruption(tmp_path: Path) -> None:
    empty = BM25Index().fit([], [])
    assert empty.search_text(["材料"], 5)[0].ids == []
    empty.save(tmp_path / "e")
    assert len(BM25Index.load(tmp_path / "e")) == 0
    with pytest.raises(IndexCorrupted, match="doc_ids.json"):
        BM25Index.load(tmp_path / "missing")
    with pytest.raises(TypeError):
        empty.search_text("not a list", 5)
