"""Consortium suggestions on a constructed case where specialists beat every generalist."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.consortium import suggest_consortia
from matcher.errors import InvalidParameter

ORGS = ["A-materials", "B-control", "C-software", "D-generalist", "E-copy-of-A", "F-weak"]
# aspects: 0 材料, 1 控制, 2 软件
SIM = np.array(
    [
        [0.90, 0.10, 0.10, 0.50, 0.88, 0.20],
        [0.10, 0.85, 0.10, 0.50, 0.10, 0.20],
        [0.10, 0.10, 0.80, 0.50, 0.10, 0.20],
    ]
)
LABELS = ["材料", "控制", "软件"]


def test_team_beats_best_single_and_shows_who_covers_what() -> None:
    r = suggest_consortia(SIM, ORGS, aspect_labels=LABELS, max_partners=2, min_gain=0.05)
    assert r.best_single is not None and r.best_single.lead == "D-generalist"
    assert r.best_single.coverage == pytest.approx(0.5)
    best = r.teams[0]
    assert set(best.members) == {"A-materials", "B-control", "C-software"}
    assert best.coverage == pytest.approx((0.90 + 0.85 + 0.80) / 3)
    assert best.gain == pytest.approx(best.coverage - 0.5)
    assert [(c.label, c.org_id) for c in best.covers] == [
        ("材料", "A-materials"),
        ("控制", "B-control"),
        ("软件", "C-software"),
    ]
    # The lead is the member with the best own coverage (A: 0.367 > B: 0.35 > C: 0.333).
    assert best.lead == "A-materials"
    assert all(m >= 0.05 for m in best.marginal)
    # No suggested team carries a passenger: E duplicates A, so {A, E, ...} never appears.
    for t in r.teams:
        assert not {"A-materials", "E-copy-of-A"} <= set(t.members)


def test_eligibility_and_lead_masks() -> None:
    eligible = np.array([False, True, True, True, True, True])  # A is in the poster's group
    lead_allowed = np.array([False, False, False, True, False, True])  # e.g. in-region firms
    r = suggest_consortia(
        SIM, ORGS, eligible=eligible, lead_allowed=lead_allowed, max_partners=2, min_gain=0.05
    )
    assert r.teams, "a team with E instead of A still beats D alone"
    for t in r.teams:
        assert "A-materials" not in t.members
        assert t.lead in {"D-generalist", "F-weak"}
    best = r.teams[0]
    # D must lead; with two partners the best cover is D + E (材料) + B (控制): C adds only
    # 0.8 - 0.5 on one aspect, B adds 0.85 - 0.5.
    assert best.lead == "D-generalist"
    assert set(best.partners) == {"E-copy-of-A", "B-control"}
    assert best.coverage == pytest.approx((0.88 + 0.85 + 0.50) / 3)


def test_no_team_when_single_is_good_enough() -> None:
    r = suggest_consortia(SIM, ORGS, min_gain=0.5)
    assert r.teams == () and r.best_single is not None
    none = suggest_consortia(SIM, ORGS, lead_allowed=np.zeros(6, bool))
    assert none.teams == () and none.best_single is None


def test_validation() -> None:
    with pytest.raises(InvalidParameter):
        suggest_consortia(SIM, ORGS[:3])
    with pytest.raises(InvalidParameter):
        suggest_consortia(SIM, ORGS, max_partners=5)
    with pytest.raises(InvalidParameter):
        suggest_consortia(SIM, ORGS, aspect_weights=[1, -1, 1])
