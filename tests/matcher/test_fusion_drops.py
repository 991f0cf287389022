"""matcher.fusion.bound_drops: near matches of the first stage fall at most ``slack`` places."""

from __future__ import annotations

import pytest

from matcher.errors import InvalidParameter
from matcher.fusion import bound_drops

# first stage: x leads, y close behind (gap 0.2 of the lead over the tenth), z far (gap 0.8)
FIRST = [("x", 10.0), ("y", 9.0), ("z", 6.0)] + [(f"o{i}", 5.0 - i * 0.1) for i in range(7)]
# after smoothing: the cluster o0..o4 overtook both y and z
FINAL = [("x", 9.0)] + [(f"o{i}", 8.0 - i) for i in range(5)] + [("y", 2.0), ("z", 1.0)]


def ids(ranking: list[tuple[str, float]]) -> list[str]:
    return [d for d, _ in ranking]


def test_a_near_match_falls_at_most_slack_places() -> None:
    out = bound_drops(FINAL, FIRST, tolerance=0.3, slack=1)
    # y was second (place 1): at place 2 at the latest; z (gap 0.8) keeps its smoothed place
    assert ids(out) == ["x", "o0", "y", "o1", "o2", "o3", "o4", "z"]
    out = bound_drops(FINAL, FIRST, tolerance=0.3, slack=3)
    assert ids(out).index("y") == 4
    out = bound_drops(FINAL, FIRST, tolerance=0.9, slack=1)
    assert ids(out)[:4] == ["x", "o0", "y", "z"]  # z (place 2) is now near too: place 3


def test_only_the_first_max_rank_can_be_near_matches() -> None:
    assert ids(bound_drops(FINAL, FIRST, 0.9, 1, max_rank=2)).index("z") == 7
    assert bound_drops(FINAL, FIRST, 0.1, 1) == FINAL  # y outside the tolerance


def test_scores_stay_by_place_and_length_is_kept() -> None:
    out = bound_drops(FINAL, FIRST, 0.3, 0)
    assert [v for _, v in out] == [v for _, v in FINAL]
    assert sorted(ids(out)) == sorted(ids(FINAL))
    short = bound_drops(FINAL[:3], FIRST, 0.3, 1)  # y not in the final top 3: it comes in
    assert ids(short) == ["x", "o0", "y"]
    assert bound_drops([], FIRST, 0.3) == []
    assert bound_drops(FINAL, [], 0.3) == FINAL


def test_an_unmoved_ranking_is_returned_unchanged() -> None:
    final = FIRST[:]  # no reordering happened: nothing to bound
    assert bound_drops(final, FIRST, 1.0, 0, max_rank=10) == final


@pytest.mark.parametrize("bad", [{"tolerance": -0.1}, {"slack": -1}, {"max_rank": 0}])
def test_invalid_parameters_are_refused(bad: dict[str, float]) -> None:
    params: dict[str, float] = {"tolerance": 0.3, "slack": 1, "max_rank": 3, **bad}
    with pytest.raises(InvalidParameter):
        bound_drops(
            FINAL, FIRST, params["tolerance"], int(params["slack"]), int(params["max_rank"])
        )


def test_the_retriever_bounds_the_drop_of_its_first_stage_leader() -> None:
    from tests.matcher.test_retrieval import _smoothing_retriever

    smoothed = [c.doc_id for c in _smoothing_retriever(graph_weight=3.0).retrieve(["q"], 4)[0]]
    assert smoothed.index("d") >= 2  # smoothing alone lets the a/b cluster overtake the leader
    for slack in (0, 1):
        r = _smoothing_retriever(graph_weight=3.0, near_tolerance=0.0, near_slack=slack)
        order = [c.doc_id for c in r.retrieve(["q"], 4)[0]]
        assert order.index("d") == slack
        assert [d for d in order if d != "d"] == [d for d in smoothed if d != "d"]
    with pytest.raises(InvalidParameter):
        _smoothing_retriever(graph_weight=3.0, near_tolerance=-1.0).retrieve(["q"], 4)


def test_keyword_lists_get_their_own_lexical_weight() -> None:
    from matcher.retrieval import HybridRetriever
    from tests.matcher.test_retrieval import ENC, FixedDense, FixedLexical, _hits

    def top(query: str, **params: object) -> str:
        r = HybridRetriever(
            encoder=ENC,
            dense=FixedDense(_hits(["a", "b", "c"], [0.9, 0.5, 0.1])),
            lexical=FixedLexical(_hits(["b", "a", "c"], [10.0, 1.0, 0.0])),
            fusion="weighted",
            dense_weight=2.0,
            **params,  # type: ignore[arg-type]
        )
        return r.retrieve([query], 3)[0][0].doc_id

    # min-max: a = 2 * 1 + 0.1 * w, b = 2 * 0.5 + 1 * w: b leads once w > 1.11
    assert top("焊接，变形") == "a"
    assert top("焊接，变形", keyword_lexical_weight=1.5) == "b"
    assert top("焊接变形的控制方法研究", keyword_lexical_weight=1.5) == "a"  # not a list
    with pytest.raises(InvalidParameter):
        top("焊接，变形", keyword_lexical_weight=-1.0)


def test_a_long_ranking_keeps_its_order_after_the_last_deadline() -> None:
    final = [(f"f{i}", 300.0 - i) for i in range(200)]
    first = [("f150", 10.0), ("f3", 9.9)] + [(f"g{i}", 5.0 - i * 0.1) for i in range(8)]
    out = bound_drops(final, first, tolerance=0.3, slack=1)
    order = ids(out)
    assert order[:4] == ["f0", "f150", "f3", "f1"]  # due at places 1 and 2 at the latest
    rest = [d for d in order if d not in {"f150", "f3"}]
    assert rest == [d for d in ids(final) if d not in {"f150", "f3"}][: len(rest)]
    assert [v for _, v in out] == [v for _, v in final] and len(set(order)) == 200
