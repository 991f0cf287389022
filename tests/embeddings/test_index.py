from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.errors import IndexCorrupted
from embeddings.index import VectorIndex, calibrate_ef_search, calibration_sample
from tests.embeddings.conftest import unit_vectors

D = 24


def _ids(n: int) -> list[str]:
    return [f"doc-{i}" for i in range(n)]


def test_flat_search_matches_numpy_brute_force(rng: np.random.Generator) -> None:
    x = unit_vectors(rng, 300, D)
    q = unit_vectors(rng, 7, D)
    index = VectorIndex(D).add(x, _ids(300))
    assert index.kind == "flat"
    scores, ids = index.search(q, 10)
    brute = q @ x.T
    order = np.argsort(-brute, axis=1)[:, :10]
    assert ids == [[f"doc-{j}" for j in row] for row in order]
    np.testing.assert_allclose(scores, np.take_along_axis(brute, order, axis=1), rtol=1e-5)
    assert scores.dtype == np.float32


def test_k_larger_than_index_drops_missing(rng: np.random.Generator) -> None:
    index = VectorIndex(D).add(unit_vectors(rng, 3, D), ["a", "b", "c"])
    scores, ids = index.search(unit_vectors(rng, 2, D), 10)
    assert scores.shape == (2, 3)
    assert all(sorted(r) == ["a", "b", "c"] for r in ids)
    empty_scores, empty_ids = VectorIndex(D).search(unit_vectors(rng, 2, D), 5)
    assert empty_scores.shape == (2, 0) and empty_ids == [[], []]


def test_hnsw_recall_against_flat(rng: np.random.Generator) -> None:
    x = unit_vectors(rng, 3000, D)
    q = unit_vectors(rng, 50, D)
    flat = VectorIndex(D).add(x, _ids(3000))
    hnsw = VectorIndex(D, exact_max=1000).add(x, _ids(3000))
    assert hnsw.kind == "hnsw"
    _, truth = flat.search(q, 10)
    _, got = hnsw.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)])
    assert recall >= 0.95


def test_switches_to_hnsw_when_growing_past_exact_max(rng: np.random.Generator) -> None:
    x = unit_vectors(rng, 150, D)
    index = VectorIndex(D, exact_max=100).add(x[:100], _ids(100))
    assert index.kind == "flat"
    index.add(x[100:], [f"doc-{i}" for i in range(100, 150)])
    assert index.kind == "hnsw" and len(index) == 150
    _, ids = index.search(x[120:121], 1)
    assert ids == [["doc-120"]]


def test_calibration_keeps_the_smallest_breadth_reaching_the_target(
    rng: np.random.Generator,
) -> None:
    x = unit_vectors(rng, 2000, D)
    opts = {
        "exact_max": 100,
        "hnsw_m": 4,
        "ef_search": 4,
        "ef_max": 256,
        "calibration_queries": 100,
    }
    hnsw = VectorIndex(D, target_recall=0.0, **opts).add(x, _ids(2000))
    flat = VectorIndex(D).add(x, _ids(2000))
    sample = calibration_sample(x, 100, 0)
    assert len({tuple(r) for r in sample.tolist()}) == 100  # without replacement

    def recall_at(ef: int) -> float:
        return calibrate_ef_search(
            hnsw.index_, flat.index_, sample, target=2.0, ef_start=ef, ef_max=ef
        )[1]

    ef, recall = calibrate_ef_search(
        hnsw.index_, flat.index_, sample, target=0.99, ef_start=4, ef_max=256
    )
    assert recall >= 0.99 and ef > 4  # M=4, efSearch=4 misses neighbours on 24-d noise
    assert recall_at(ef // 2) < 0.99 and recall_at(ef) == recall
    # VectorIndex.add runs the same calibration on the same sample (HNSW builds on several
    # threads are not bit-reproducible, so it is checked on the index it built)
    taken = VectorIndex(D, target_recall=0.99, **opts).add(x, _ids(2000))
    cal = taken.calibration_
    assert taken.kind == "hnsw" and cal is not None and cal["hnsw"] and cal["n"] == 2000
    again = calibrate_ef_search(
        taken.index_, flat.index_, sample, target=0.99, ef_start=4, ef_max=256
    )
    assert (cal["ef_search"], cal["recall"]) == (again[0], round(again[1], 4))
    never = calibrate_ef_search(
        hnsw.index_, flat.index_, sample, target=1.01, ef_start=4, ef_max=64
    )
    assert never == (64, recall_at(64))


@pytest.mark.parametrize("exact_max", [1000, 10])
def test_remove(rng: np.random.Generator, exact_max: int) -> None:
    x = unit_vectors(rng, 50, D)
    index = VectorIndex(D, exact_max=exact_max).add(x, _ids(50))
    assert index.remove(["doc-3", "doc-7", "unknown"]) == 2
    assert len(index) == 48 and "doc-3" not in index
    _, ids = index.search(x[3:4], 48)
    assert "doc-3" not in ids[0] and "doc-7" not in ids[0]
    np.testing.assert_allclose(index.reconstruct(["doc-4"])[0], x[4], rtol=1e-6)


def test_input_validation(rng: np.random.Generator) -> None:
    index = VectorIndex(D)
    with pytest.raises(ValueError, match=r"shape \(n, 24\)"):
        index.add(unit_vectors(rng, 2, D + 1), ["a", "b"])
    with pytest.raises(ValueError, match="float32"):
        index.add(unit_vectors(rng, 2, D).astype(np.float64), ["a", "b"])
    with pytest.raises(ValueError, match="2 vectors but 1 ids"):
        index.add(unit_vectors(rng, 2, D), ["a"])
    index.add(unit_vectors(rng, 1, D), ["a"])
    with pytest.raises(ValueError, match="already in the index"):
        index.add(unit_vectors(rng, 1, D), ["a"])
    with pytest.raises(ValueError, match="float32"):
        index.search(np.zeros((1, D)), 1)
    with pytest.raises(ValueError, match="k must be"):
        index.search(unit_vectors(rng, 1, D), 0)
    bad = unit_vectors(rng, 1, D)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        index.add(bad, ["b"])


@pytest.mark.parametrize("exact_max", [1000, 50])
def test_save_load_round_trip(rng: np.random.Generator, tmp_path: Path, exact_max: int) -> None:
    x = unit_vectors(rng, 200, D)
    q = unit_vectors(rng, 5, D)
    index = VectorIndex(D, exact_max=exact_max).add(x, _ids(200))
    index.remove(["doc-0"])
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert loaded.kind == index.kind and len(loaded) == 199
    s1, i1 = index.search(q, 10)
    s2, i2 = loaded.search(q, 10)
    assert i1 == i2
    np.testing.assert_array_equal(s1, s2)
    loaded.add(x[:1], ["new"])  # ids keep counting after a load
    assert loaded.search(x[:1], 1)[1] == [["new"]]


def test_corrupted_faiss_file_names_the_file(rng: np.random.Generator, tmp_path: Path) -> None:
    VectorIndex(D).add(unit_vectors(rng, 20, D), _ids(20)).save(tmp_path)
    path = tmp_path / "index.faiss"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexCorrupted, match="index.faiss"):
        VectorIndex.load(tmp_path)
    (tmp_path / "ids.json").write_text("{not json")
    with pytest.raises(IndexCorrupted, match="ids.json"):
        VectorIndex.load(tmp_path)
