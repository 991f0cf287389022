"""Fusion over arrays of rows gives exactly the dictionary functions' ranking and scores."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from matcher.fusion import fused_ranking, normalised, ranked_items, row_space, weighted_scores


def _source(rng: np.random.Generator, ids: list[str], n: int) -> tuple[list[str], np.ndarray]:
    pick = [ids[i] for i in rng.choice(len(ids), n, replace=False)]
    scores = np.sort(rng.random(n).astype(np.float32))[::-1]
    scores[n // 2 : n // 2 + 3] = scores[n // 2]  # ties inside a list
    return pick, scores


@pytest.mark.parametrize("normalise", ["minmax", "zscore"])
@pytest.mark.parametrize("smooth", [False, True])
def test_rows_equal_dictionaries(normalise: str, smooth: bool) -> None:
    rng = np.random.default_rng(7)
    ids = [f"d{i:03d}" for i in range(300)]
    space = row_space(ids)
    op = None
    if smooth:
        adj = sp.random(300, 300, density=0.03, random_state=1, format="csr")
        totals = np.asarray(adj.sum(axis=1)).ravel()
        inv = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
        op = sp.diags(inv) @ adj
    for _ in range(5):
        sources = [_source(rng, ids, 80), _source(rng, ids, 60)]
        sources[1][0].append("not-in-rows")  # a document without a row: unsmoothed
        sources[1] = (sources[1][0], np.append(sources[1][1], np.float32(0.01)))
        weights = [2.0, 1.0]
        fused = weighted_scores(sources, weights=weights, normalise=normalise)  # type: ignore[arg-type]
        if op is not None:
            f = np.zeros(300)
            for d, v in fused.items():
                if d in space.row_of:
                    f[space.row_of[d]] = v
            sm = f + 0.7 * (op @ f)
            ref = {ids[r]: float(sm[r]) for r in np.flatnonzero(sm)}
            ref.update({d: float(sm[space.row_of[d]]) for d in fused if d in space.row_of})
            ref["not-in-rows"] = fused["not-in-rows"]
        else:
            ref = fused
        got = fused_ranking(
            sources,
            weights,
            space,
            25,
            normalise=normalise,
            smoothing=op,
            smooth_weight=0.7,  # type: ignore[arg-type]
        )
        assert got == ranked_items(ref)[:25]


def test_ties_are_broken_by_id_as_ranked_items_does() -> None:
    ids = ["b", "a", "d", "c"]
    space = row_space(ids)
    sources = [(["b", "a", "d", "c"], np.array([1.0, 1.0, 0.5, 0.5], dtype=np.float32))]
    got = fused_ranking(sources, [1.0], space, 3, normalise="minmax")
    assert [d for d, _ in got] == ["a", "b", "c"]


def test_zscore_divides_by_numpy_s_standard_deviation_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    for n in (2, 3, 17, 200, 600, 4097):
        for scale in (1e-3, 1.0, 40.0):
            s = (rng.standard_normal(n) * scale + 2.0).astype(np.float32)
            x = s.astype(np.float64)
            want = (x - x.min()) / float(x.std())
            assert np.array_equal(normalised(s, "zscore"), want)
