"""Document-level chunk search, exact document scoring and the approximate k-NN graph,
against numpy brute force on real FAISS indexes."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.index import VectorIndex
from embeddings.serving import approximate_neighbours
from embeddings.store import DenseChunkSearcher


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], np.ndarray, DenseChunkSearcher]:
    rng = np.random.default_rng(0)
    keys = [f"d{d}#{c}" for d in range(500) for c in range(int(rng.integers(1, 6)))]
    x = _unit(rng.normal(size=(len(keys), 16)))
    return keys, x, DenseChunkSearcher(VectorIndex(16).add(x, keys), 500)


def _brute(keys: list[str], x: np.ndarray, q: np.ndarray) -> list[tuple[str, float, int]]:
    best: dict[str, tuple[float, int]] = {}
    for j, s in enumerate((x @ q).tolist()):
        doc, _, chunk = keys[j].rpartition("#")
        if doc not in best or s > best[doc][0]:
            best[doc] = (s, int(chunk))
    return sorted(((d, s, c) for d, (s, c) in best.items()), key=lambda t: -t[1])


def _assert_same_ranking(h, ref) -> None:  # type: ignore[no-untyped-def]
    """Same documents, scores and chunks in order; documents with equal scores may swap."""
    np.testing.assert_allclose(h.scores, [s for _, s, _ in ref], atol=1e-5)
    by_doc = {d: (s, c) for d, s, c in ref}
    for d, s, c, (rd, rs, _) in zip(h.ids, h.scores, h.chunks, ref, strict=True):
        assert d == rd or abs(s - rs) < 1e-6
        assert d in by_doc and abs(by_doc[d][0] - s) < 1e-5 and by_doc[d][1] == c


@pytest.mark.parametrize("k", [1, 7, 200, 499, 500, 900])
def test_search_is_the_exact_best_chunk_per_document(corpus, k: int) -> None:  # type: ignore[no-untyped-def]
    keys, x, searcher = corpus
    q = _unit(np.random.default_rng(k).normal(size=(3, 16)))
    for h, qi in zip(searcher.search(q, k), q, strict=True):
        _assert_same_ranking(h, _brute(keys, x, qi)[:k])


def test_score_documents_scores_exactly_the_given_documents(corpus) -> None:  # type: ignore[no-untyped-def]
    keys, x, searcher = corpus
    rng = np.random.default_rng(1)
    q = _unit(rng.normal(size=(2, 16)))
    pools = [[f"d{i}" for i in rng.choice(500, 60, replace=False)] + ["unknown"] for _ in q]
    for h, qi, pool in zip(searcher.score_documents(q, pools, 20), q, pools, strict=True):
        _assert_same_ranking(h, [t for t in _brute(keys, x, qi) if t[0] in pool][:20])
    with pytest.raises(ValueError):
        searcher.score_documents(q, pools[:1], 5)


def test_search_after_removal_still_groups_by_document() -> None:
    rng = np.random.default_rng(2)
    keys = [f"d{d}#{c}" for d in range(50) for c in range(3)]
    x = _unit(rng.normal(size=(len(keys), 8)))
    index = VectorIndex(8).add(x, keys)
    index.remove([k for k in keys if k.startswith("d7#")])
    searcher = DenseChunkSearcher(index, 49)
    (h,) = searcher.search(x[21:22], 49)  # the vector of the removed chunk d7#0
    kept = [i for i, k in enumerate(keys) if not k.startswith("d7#")]
    assert "d7" not in h.ids
    _assert_same_ranking(h, _brute([keys[i] for i in kept], x[kept], x[21]))


def test_approximate_neighbours_recall_against_exact() -> None:
    rng = np.random.default_rng(3)
    centres = _unit(rng.normal(size=(40, 32)))
    x = _unit(centres[rng.integers(40, size=3000)] + 0.3 * rng.normal(size=(3000, 32)))
    idx, sims = approximate_neighbours(x, 10)
    assert idx.shape == sims.shape == (3000, 10)
    assert not (idx == np.arange(3000)[:, None]).any()  # never its own neighbour
    exact = np.argsort(-(x @ x.T - 2 * np.eye(3000)), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, exact, strict=True)])
    assert recall >= 0.95
    np.testing.assert_allclose(sims[:, 0], np.sum(x * x[idx[:, 0]], axis=1), atol=1e-5)


def test_hnsw_is_taken_only_at_the_measured_recall(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    centres = _unit(rng.normal(size=(30, 16)))
    x = _unit(centres[rng.integers(30, size=2000)] + 0.2 * rng.normal(size=(2000, 16)))
    keys = [f"d{i}#0" for i in range(2000)]
    taken = VectorIndex(16, exact_max=1000, ef_search=16).add(x, keys)
    assert taken.kind == "hnsw"
    cal = taken.calibration_
    assert cal is not None and cal["hnsw"] and cal["recall"] >= 0.95
    taken.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert loaded.kind == "hnsw" and loaded.calibration_ == cal
    import faiss

    assert faiss.downcast_index(loaded.index_.index).hnsw.efSearch == cal["ef_search"]
    refused = VectorIndex(16, exact_max=1000, target_recall=1.01, ef_max=64).add(x, keys)
    assert refused.kind == "flat"
    assert refused.calibration_ is not None and not refused.calibration_["hnsw"]
    scores, ids = refused.search(x[:3], 1)
    assert [i[0] for i in ids] == keys[:3]
    before = refused.calibration_
    refused.add(x[:10] * 1.0, [f"e{i}#0" for i in range(10)])  # not retried until doubled
    assert refused.calibration_ is before and refused.kind == "flat"


def test_score_rows_equals_score_documents_and_keeps_rows(corpus) -> None:  # type: ignore[no-untyped-def]
    keys, x, searcher = corpus
    rng = np.random.default_rng(2)
    q = _unit(rng.normal(size=(2, 16)))
    names = searcher.row_ids
    pools = [np.sort(rng.choice(len(names), 80, replace=False)).astype(np.int64) for _ in q]
    by_rows = searcher.score_rows(q, pools, 25)
    by_ids = searcher.score_documents(q, [[names[r] for r in p] for p in pools], 25)
    for a, b, qi, pool in zip(by_rows, by_ids, q, pools, strict=True):
        assert list(a.ids) == list(b.ids)
        assert a.scores.tolist() == b.scores.tolist() and a.chunks.tolist() == b.chunks.tolist()
        assert [names[r] for r in a.rows.tolist()] == list(a.ids)
        members = {names[r] for r in pool.tolist()}
        _assert_same_ranking(a, [t for t in _brute(keys, x, qi) if t[0] in members][:25])


def test_search_rows_name_the_documents_of_search(corpus) -> None:  # type: ignore[no-untyped-def]
    _, _, searcher = corpus
    q = _unit(np.random.default_rng(3).normal(size=(2, 16)))
    for lazy, eager in zip(searcher.search_rows(q, 40), searcher.search(q, 40), strict=True):
        assert isinstance(eager.ids, list) and lazy.ids == eager.ids
        assert lazy.ids[3] == eager.ids[3] and list(lazy.ids[:5]) == eager.ids[:5]
        assert lazy.rows.tolist() == eager.rows.tolist()
        assert [searcher.row_ids[r] for r in eager.rows.tolist()] == eager.ids


def test_inner_products_read_the_right_vectors_after_removal() -> None:
    rng = np.random.default_rng(4)
    keys = [f"v{i}" for i in range(300)]
    x = _unit(rng.normal(size=(300, 8)))
    index = VectorIndex(8).add(x, keys)
    q = _unit(rng.normal(size=(1, 8)))[0]
    ints = np.array([index.int_by_ext_[k] for k in keys], dtype=np.int64)
    np.testing.assert_allclose(index.inner_products(q, ints), x @ q, atol=1e-6)
    index.remove(keys[::3])  # storage compacts: positions move
    kept = [j for j in range(300) if j % 3]
    ints = np.array([index.int_by_ext_[keys[j]] for j in kept], dtype=np.int64)
    np.testing.assert_allclose(index.inner_products(q, ints), x[kept] @ q, atol=1e-6)
    index.add(x[:2], ["w0", "w1"])
    got = index.inner_products(q, np.array([index.int_by_ext_["w1"]], dtype=np.int64))
    np.testing.assert_allclose(got, x[1:2] @ q, atol=1e-6)
