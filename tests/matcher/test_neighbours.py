"""Incremental neighbour graph: equal to a full exact rebuild after every kind of change."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.errors import InvalidParameter
from matcher.fusion import build_neighbour_graph
from matcher.neighbours import update_neighbour_graph


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _assert_same_as_rebuild(graph, ids, vecs, m=5, width=9):  # type: ignore[no-untyped-def]
    ref = build_neighbour_graph(ids, vecs, width)
    assert graph.ids == list(ids)
    np.testing.assert_array_equal(graph.indices[:, :m], ref.indices[:, :m])
    np.testing.assert_allclose(graph.weights[:, :m], ref.weights[:, :m], atol=1e-6)


def test_incremental_equals_full_rebuild_over_successive_changes() -> None:
    rng = np.random.default_rng(3)
    ids = [f"d{i}" for i in range(400)]
    vecs = _unit(rng.normal(size=(400, 16)))
    graph = update_neighbour_graph(None, None, ids, vecs, 5, reserve=4)
    _assert_same_as_rebuild(graph, ids, vecs)
    for step in range(4):
        # remove 8, change 8, add 8 (a nightly re-index in miniature)
        drop = set(rng.choice(len(ids), 8, replace=False).tolist())
        keep = [i for i in range(len(ids)) if i not in drop]
        new_ids = [ids[i] for i in keep] + [f"s{step}n{j}" for j in range(8)]
        new_vecs = np.concatenate([vecs[keep], _unit(rng.normal(size=(8, 16)))])
        new_vecs[rng.choice(len(keep), 8, replace=False)] = _unit(rng.normal(size=(8, 16)))
        graph = update_neighbour_graph(graph, vecs, new_ids, new_vecs, 5, reserve=4)
        _assert_same_as_rebuild(graph, new_ids, new_vecs)
        ids, vecs = new_ids, new_vecs


def test_no_change_keeps_the_graph_and_neighbourhoods_of_a_changed_cluster() -> None:
    rng = np.random.default_rng(4)
    ids = [f"d{i}" for i in range(200)]
    vecs = _unit(rng.normal(size=(200, 8)))
    graph = update_neighbour_graph(None, None, ids, vecs, 5, reserve=4)
    same = update_neighbour_graph(graph, vecs, ids, vecs, 5, reserve=4)
    np.testing.assert_array_equal(same.indices[:, :5], graph.indices[:, :5])
    # move 30 documents next to document 0: its whole neighbourhood changes
    moved = vecs.copy()
    moved[100:130] = _unit(vecs[0] + 0.01 * rng.normal(size=(30, 8)))
    updated = update_neighbour_graph(graph, vecs, ids, moved, 5, reserve=4)
    _assert_same_as_rebuild(updated, ids, moved)
    assert set(updated.indices[0, :5].tolist()) <= set(range(100, 130))


def test_small_or_mismatched_previous_graphs_fall_back_to_a_full_build() -> None:
    rng = np.random.default_rng(5)
    ids = [f"d{i}" for i in range(6)]
    vecs = _unit(rng.normal(size=(6, 4)))
    g = update_neighbour_graph(None, None, ids, vecs, 3, reserve=2)
    np.testing.assert_array_equal(g.indices, build_neighbour_graph(ids, vecs, 5).indices)
    with pytest.raises(InvalidParameter):
        update_neighbour_graph(None, None, ids, vecs[:3], 3)


def test_a_large_first_build_uses_the_given_knn() -> None:
    rng = np.random.default_rng(6)
    ids = [f"d{i}" for i in range(50)]
    vecs = _unit(rng.normal(size=(50, 4)))
    calls = []

    def knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(k)
        g = build_neighbour_graph([str(i) for i in range(len(x))], x, k)
        return g.indices, g.weights

    g = update_neighbour_graph(None, None, ids, vecs, 3, reserve=2, exact_max=10, knn=knn)
    assert calls == [5]
    assert g.indices.shape == (50, 5)
