"""Bid ranking follows the documented formula (recomputed by hand) and flags ineligible bids."""

from __future__ import annotations

import pytest

from matcher.bids import BidWeights, rank_bids, score_matrix
from matcher.constraints import EligibilityPolicy
from matcher.errors import InvalidParameter
from matcher.types import BidInfo, BountyInfo, OrgInfo

BIDS = [
    BidInfo("b1", "bounty", "uni-a", price=80.0),
    BidInfo("b2", "bounty", "uni-b", price=100.0),
    BidInfo("b3", "bounty", "inst-c", price=60.0),
]
AFF = {"b1": 0.8, "b2": 0.9, "b3": 0.5}
SIM = {"b1": 0.7, "b2": 0.9, "b3": 0.4}
MAT = {"b1": 0.5, "b2": 1.0, "b3": 0.2}


def test_lowest_price_formula_by_hand() -> None:
    w = BidWeights(affinity=0.3, similarity=0.3, maturity=0.1, price=0.3)
    r = rank_bids(BIDS, affinity=AFF, similarity=SIM, maturity=MAT, weights=w, budget=120)
    # p_min = 60. P = 60/80, 60/100, 60/60.
    expect = {
        "b1": 0.3 * 0.8 + 0.3 * 0.7 + 0.1 * 0.5 + 0.3 * (60 / 80),  # 0.725
        "b2": 0.3 * 0.9 + 0.3 * 0.9 + 0.1 * 1.0 + 0.3 * (60 / 100),  # 0.82
        "b3": 0.3 * 0.5 + 0.3 * 0.4 + 0.1 * 0.2 + 0.3 * 1.0,  # 0.59
    }
    assert r.benchmark_price == 60.0
    assert [b.bid_id for b in r.ranked] == ["b2", "b1", "b3"]
    assert [b.rank for b in r.ranked] == [1, 2, 3]
    for b in r.ranked:
        assert b.total == pytest.approx(expect[b.bid_id])
        assert b.quality + b.price_part == pytest.approx(b.total)
    assert r.ranked[0].price_score == pytest.approx(0.6)
    assert r.table()[0]["bid"] == "b2"


def test_budget_variant_by_hand() -> None:
    w = BidWeights(affinity=0.0, similarity=0.0, maturity=0.0, price=1.0)
    s = score_matrix([60, 80, 100], [0, 0, 0], [0, 0, 0], [0, 0, 0], budget=200, weights=w,
                     method="budget")  # fmt: skip
    # P = 1 - (p - 60) / 200
    assert s.price_score.tolist() == pytest.approx([1.0, 0.9, 0.8])
    with pytest.raises(InvalidParameter, match="needs a budget"):
        score_matrix([1], [0], [0], [0], method="budget")


def test_same_group_respondent_is_flagged_and_ranked_last() -> None:
    orgs = {
        "poster": OrgInfo("poster", "某集团", "enterprise", True),
        "sub": OrgInfo("sub", "某集团研究院", "institute", True, parent_id="poster"),
        "uni-a": OrgInfo("uni-a", "广西大学", "university", True),
        "uni-b": OrgInfo("uni-b", "桂林理工", "university", True),
    }
    bounty = BountyInfo("bounty", "tackle", "poster", "title", "text", budget=120)
    policy = EligibilityPolicy(orgs)
    bids = [
        BidInfo("b1", "bounty", "uni-a", price=80.0),
        BidInfo("b2", "bounty", "uni-b", price=100.0),
        BidInfo("b-sub", "bounty", "sub", price=50.0),  # best price, best quality: still last
        BidInfo("b-over", "bounty", "uni-b", price=130.0),
    ]
    aff = {"b1": 0.5, "b2": 0.5, "b-sub": 1.0, "b-over": 1.0}
    sim = dict(aff)

    def check(b: BidInfo) -> list[str]:
        return [e.code for e in policy.check_bounty(bounty, b.respondent_org_id, members=b.members)]

    r = rank_bids(bids, affinity=aff, similarity=sim, budget=bounty.budget, eligibility=check)
    assert [b.bid_id for b in r.ranked][:2] == ["b1", "b2"]
    last = {b.bid_id: b for b in r.ranked[2:]}
    assert set(last) == {"b-sub", "b-over"}
    assert "SAME_GROUP" in last["b-sub"].reasons and not last["b-sub"].eligible
    assert "同一集团" in last["b-sub"].reason_text
    assert last["b-over"].reasons == ("OVER_BUDGET",)
    # The ineligible cheap bid does not set the benchmark price.
    assert r.benchmark_price == 80.0
    ex = rank_bids(bids, affinity=aff, similarity=sim, budget=120, eligibility=check,
                   ineligible="exclude")  # fmt: skip
    assert [b.bid_id for b in ex.ranked] == ["b1", "b2"]
    assert {b.bid_id for b in ex.excluded} == {"b-sub", "b-over"}
    assert all(b.rank is None for b in ex.excluded)


def test_mapping_eligibility_and_invalid_price() -> None:
    bids = [*BIDS, BidInfo("b0", "bounty", "x", price=0.0)]
    aff = {**AFF, "b0": 1.0}
    sim = {**SIM, "b0": 1.0}
    r = rank_bids(bids, affinity=aff, similarity=sim, eligibility={"b3": ["STAFF_BLOCK"]})
    # b1 0.2+0.175+0.4*1 = 0.775 beats b2 0.225+0.225+0.4*0.8 = 0.77 (benchmark 80: b3 is
    # ineligible). Ineligible bids come last by their own total: b3 (P capped at 1), b0.
    assert [b.bid_id for b in r.ranked] == ["b1", "b2", "b3", "b0"]
    by = {b.bid_id: b for b in r.ranked}
    assert by["b0"].reasons == ("INVALID_PRICE",) and by["b0"].price_score == 0.0
    assert by["b3"].reasons == ("STAFF_BLOCK",)
    assert r.benchmark_price == 80.0


@pytest.mark.parametrize(
    "w",
    [
        BidWeights(affinity=0.5, similarity=0.5, maturity=0.5, price=0.0),
        BidWeights(affinity=-0.1, similarity=0.5, maturity=0.2, price=0.4),
        BidWeights(affinity=float("nan"), similarity=0.5, maturity=0.1, price=0.4),
    ],
)
def test_weights_validated(w: BidWeights) -> None:
    with pytest.raises(InvalidParameter):
        rank_bids(BIDS, affinity=AFF, similarity=SIM, weights=w)


def test_missing_component_and_bad_method() -> None:
    with pytest.raises(InvalidParameter, match="missing"):
        rank_bids(BIDS, affinity={"b1": 1.0}, similarity=SIM)
    with pytest.raises(InvalidParameter, match="lowest, budget"):
        rank_bids(BIDS, affinity=AFF, similarity=SIM, method="cheapest")  # type: ignore[arg-type]
