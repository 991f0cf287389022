from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.errors import IndexCorrupted
from embeddings.lexical import BM25Index
from embeddings.types import DocRecord
from tests.embeddings.conftest import bigram_tokens


def _index(corpus: list[DocRecord]) -> BM25Index:
    return BM25Index().fit([d.doc_id for d in corpus], [bigram_tokens(d.text) for d in corpus])


def _q(*texts: str) -> list[list[str]]:
    return [bigram_tokens(t) for t in texts]


def test_search_ranks_matching_document_first(corpus: list[DocRecord]) -> None:
    hits = _index(corpus).search_tokens(_q("锂离子电池 正极", "steel defect detection", "！！"), 3)
    assert hits[0].ids[0] == "c2"
    assert hits[1].ids[0] == "c4"
    assert hits[2].ids == [] and hits[2].scores.shape == (0,)
    assert hits[0].chunks is None
    assert hits[0].scores.dtype == np.float32
    assert np.all(np.diff(hits[0].scores) <= 0) and np.all(hits[0].scores > 0)


def test_k_larger_than_corpus(corpus: list[DocRecord]) -> None:
    hits = _index(corpus).search_tokens(_q("材料"), 100)
    assert 1 <= len(hits[0].ids) <= len(corpus)


def test_save_load_round_trip_without_pickle(corpus: list[DocRecord], tmp_path: Path) -> None:
    index = _index(corpus)
    files = index.save(tmp_path)
    assert not [f for f in files if f.suffix in {".pkl", ".pickle"}]
    for f in files:
        if f.suffix == ".npy":
            np.load(f, allow_pickle=False)  # raises if the array needed pickle
    loaded = BM25Index.load(tmp_path)
    q = _q("农业 传感器", "中药 萃取")
    for a, b in zip(index.search_tokens(q, 3), loaded.search_tokens(q, 3), strict=True):
        assert a.ids == b.ids
        np.testing.assert_allclose(a.scores, b.scores)


def test_empty_index_and_corruption(tmp_path: Path) -> None:
    empty = BM25Index().fit([], [])
    assert empty.search_tokens(_q("材料"), 5)[0].ids == []
    empty.save(tmp_path / "e")
    assert len(BM25Index.load(tmp_path / "e")) == 0
    with pytest.raises(IndexCorrupted, match="doc_ids.json"):
        BM25Index.load(tmp_path / "missing")
    with pytest.raises(TypeError):
        empty.search_tokens("not a list", 5)
    with pytest.raises(TypeError):
        empty.search_tokens(["材料"], 5)  # a text, not a token list


def test_term_matrix_sums_to_the_index_scores(corpus: list[DocRecord]) -> None:
    index = _index(corpus)
    m = index.term_matrix()
    assert m.doc_ids == [d.doc_id for d in corpus]
    assert m.indptr.dtype == np.int64 and m.indices.dtype == np.int32
    assert m.data.dtype == np.float32 and len(m.indices) == len(m.data) == m.indptr[-1]
    query = _q("锂离子电池 正极")[0]
    summed = np.zeros(len(corpus))
    for t in query:
        tid = m.vocab.get(t)
        if tid is not None and tid < len(m.indptr) - 1:
            s, e = m.indptr[tid], m.indptr[tid + 1]
            summed[m.indices[s:e]] += m.data[s:e]
    np.testing.assert_allclose(summed, index.scores(query), rtol=1e-5)
    assert summed.max() > 0
    empty = BM25Index().fit([], []).term_matrix()
    assert empty.doc_ids == [] and empty.vocab == {} and len(empty.indptr) == 1
