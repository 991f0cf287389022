"""Funding priority (优先支持): the flag flips exactly at the threshold and enters the total."""

from __future__ import annotations

import pytest

from matcher.bids import FundingSplit, PriorityRule, rank_bids
from matcher.errors import InvalidParameter
from matcher.types import BidInfo


def _rank(splits: dict[str, FundingSplit], rule: PriorityRule | None = None):  # type: ignore[no-untyped-def]
    bids = [BidInfo("b1", "T", "E1", 100.0), BidInfo("b2", "T", "E2", 100.0)]
    same = {"b1": 0.5, "b2": 0.5}
    return rank_bids(bids, affinity=same, similarity=same, funding=splits, priority=rule)


@pytest.mark.parametrize(
    ("academic", "enterprise", "flag"),
    [(20.0, 80.0, True), (19.999, 80.001, False), (25.0, 75.0, True), (0.0, 100.0, False)],
)
def test_flag_flips_exactly_at_the_threshold(
    academic: float, enterprise: float, flag: bool
) -> None:
    split = FundingSplit.from_amounts("enterprise", enterprise, academic)
    assert PriorityRule(threshold=0.20).flag(split) is flag


def test_threshold_is_a_parameter() -> None:
    split = FundingSplit.from_amounts("enterprise", 70.0, 30.0)
    assert PriorityRule(threshold=0.30).flag(split)
    assert not PriorityRule(threshold=0.3000001).flag(split)


def test_only_enterprise_led_projects_qualify() -> None:
    rule = PriorityRule()
    assert not rule.flag(FundingSplit.from_amounts("university", 10.0, 90.0))
    assert rule.flag(FundingSplit.from_amounts("company", 50.0, 50.0))
    assert not rule.flag(FundingSplit.from_amounts("enterprise", None, 50.0))
    assert not rule.flag(FundingSplit.from_amounts("enterprise", 0.0, 0.0))
    assert not rule.flag(None)


def test_flag_breaks_a_tie_and_shows_in_the_table() -> None:
    splits = {
        "b1": FundingSplit.from_amounts("enterprise", 90.0, 10.0),
        "b2": FundingSplit.from_amounts("enterprise", 80.0, 20.0),
    }
    r = _rank(splits)
    assert [b.bid_id for b in r.ranked] == ["b2", "b1"]
    top, second = r.ranked
    assert top.priority and not second.priority
    assert top.total == pytest.approx(second.total + 0.05)
    assert top.priority_part == 0.05 and second.priority_part == 0.0
    rows = {row["bid"]: row for row in r.table()}
    assert rows["b2"]["priority"] == "优先支持" and rows["b1"]["priority"] == ""
    assert rows["b2"]["academic_share"] == pytest.approx(0.2)


def test_zero_bonus_flags_without_reordering() -> None:
    splits = {"b2": FundingSplit.from_amounts("enterprise", 50.0, 50.0)}
    r = _rank(splits, PriorityRule(bonus=0.0))
    assert [b.bid_id for b in r.ranked] == ["b1", "b2"]  # tie broken by id as before
    assert r.ranked[1].priority


def test_rule_validation() -> None:
    with pytest.raises(InvalidParameter):
        PriorityRule(threshold=1.5).validate()
    with pytest.raises(InvalidParameter):
        PriorityRule(bonus=-0.1).validate()
