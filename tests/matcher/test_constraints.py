"""Eligibility rules: per-pair reasons and the vectorised masks agree."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.constraints import CorporateGroups, EligibilityPolicy
from matcher.errors import UnknownEntity
from matcher.types import REASON_CODES, REASON_LABELS, BountyInfo, Document, OrgInfo


def codes(exclusions):
    return sorted({e.code for e in exclusions})


def test_every_reason_code_has_a_chinese_label():
    assert set(REASON_LABELS) == set(REASON_CODES)
    assert REASON_LABELS["SAME_GROUP"] == "同一集团(上下级)"


def test_three_level_group_ancestors_descendants_and_siblings(orgs):
    g = CorporateGroups(orgs)
    assert g.ancestors("gx_sugar") == ["gx_holding", "gx_grand"]
    assert g.relation("gx_sugar", "gx_grand") == "ancestor"
    assert g.relation("gx_grand", "gx_sugar") == "descendant"
    assert g.relation("gx_sugar", "gx_research") == "related"  # sibling
    assert g.relation("gx_sugar", "gx_grand_lab") == "related"  # uncle
    assert g.relation("gx_sugar", "gx_sugar") == "same_org"
    assert g.relation("gx_sugar", "gxu") is None
    assert len({g.group(o) for o in ("gx_grand", "gx_holding", "gx_sugar", "gx_research")}) == 1


def test_group_through_unknown_parent_and_cycle():
    orgs = {
        "a": OrgInfo("a", "A", "enterprise", True, parent_id="ghost"),
        "b": OrgInfo("b", "B", "institute", True, parent_id="ghost"),
        "c": OrgInfo("c", "C", "enterprise", True, parent_id="d"),
        "d": OrgInfo("d", "D", "enterprise", True, parent_id="c"),
    }
    g = CorporateGroups(orgs)
    assert g.same_group("a", "b")
    assert g.same_group("c", "d")
    assert not g.same_group("a", "c")


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("gx_sugar", ["SAME_ORG"]),
        ("gx_grand", ["SAME_GROUP"]),  # grandparent
        ("gx_holding", ["SAME_GROUP"]),  # parent
        ("gx_research", ["SAME_GROUP"]),  # sibling
        ("gx_grand_lab", ["SAME_GROUP"]),  # child of grandparent
        ("closed_inst", ["INACTIVE"]),
        ("blocked_inst", ["STAFF_BLOCK"]),
        ("gxu", []),
        ("scut", []),
    ],
)
def test_pair_rules_for_need(policy, candidate, expected):
    assert codes(policy.check("gx_sugar", candidate, keys=["need_sugar"])) == expected


def test_child_is_same_group_seen_from_grandparent(policy):
    assert codes(policy.check("gx_grand", "gx_sugar")) == ["SAME_GROUP"]


def test_staff_block_is_per_key_and_org_blocks_are_symmetric(orgs):
    p = EligibilityPolicy(orgs, blocks=[("need_sugar", "blocked_inst"), ("gxu", "ent_b")])
    assert codes(p.check("gx_sugar", "blocked_inst", keys=["need_x"])) == []
    assert codes(p.check("gx_sugar", "blocked_inst", keys=["need_sugar"])) == ["STAFF_BLOCK"]
    assert codes(p.check("ent_b", "gxu")) == ["STAFF_BLOCK"]
    assert codes(p.check("gxu", "ent_b")) == ["STAFF_BLOCK"]


def test_kind_and_region_rules(policy):
    assert codes(policy.check("gx_sugar", "ent_b", kinds=("university", "institute"))) == [
        "WRONG_KIND"
    ]
    assert codes(policy.check("gx_sugar", "scut", require_in_region=True)) == ["NOT_IN_REGION"]


def test_unknown_org_raises(policy):
    with pytest.raises(UnknownEntity):
        policy.check("gx_sugar", "nobody")


TACKLE = BountyInfo("b1", "tackle", "gx_sugar", "制糖废水攻关", "厌氧处理", need_id="need_sugar")
TRANSFER = BountyInfo("b2", "transfer", "gxu", "蔗渣材料成果转化", "", capability_id="gxu_bagasse")


@pytest.mark.parametrize(
    ("respondent", "expected"),
    [
        ("gxu", []),
        ("scut", []),  # any region
        ("comp_c", []),  # companies may tackle
        ("ent_out", []),
        ("gx_research", ["SAME_GROUP"]),
        ("gx_grand", ["SAME_GROUP"]),
        ("closed_inst", ["INACTIVE"]),
        ("blocked_inst", ["STAFF_BLOCK"]),  # blocked for the bounty's need
    ],
)
def test_tackle_bounty(policy, documents, respondent, expected):
    assert codes(policy.check_bounty(TACKLE, respondent, documents=documents)) == expected


@pytest.mark.parametrize(
    ("respondent", "expected"),
    [
        ("ent_b", []),
        ("comp_c", []),
        ("ent_out", ["NOT_IN_REGION"]),
        ("gxas", ["WRONG_KIND"]),
        ("scut", ["NOT_IN_REGION", "WRONG_KIND"]),
        ("gx_sugar", []),
    ],
)
def test_transfer_bounty(policy, documents, respondent, expected):
    assert codes(policy.check_bounty(TRANSFER, respondent, documents=documents)) == expected


def test_transfer_bounty_excludes_holder_group_even_when_posted_by_department(orgs, documents):
    orgs = {**orgs, "dept": OrgInfo("dept", "自治区科技厅", "other", True)}
    p = EligibilityPolicy(orgs)
    docs = {**documents, "cap_g": Document("cap_g", "gx_research", "achievement", "成果", "")}
    bounty = BountyInfo("b3", "transfer", "dept", "集团研究院成果转化", "", capability_id="cap_g")
    assert codes(p.check_bounty(bounty, "gx_sugar", documents=docs)) == ["SAME_GROUP"]
    assert codes(p.check_bounty(bounty, "ent_b", documents=docs)) == []


def test_consortium_with_one_conflicted_member_reports_the_member(policy, documents):
    ex = policy.check_bounty(TACKLE, "gxu", members=("scut", "gx_research"), documents=documents)
    assert [(e.org_id, e.code, e.member_id) for e in ex] == [("gxu", "SAME_GROUP", "gx_research")]
    assert ex[0].label == "同一集团(上下级)"
    assert policy.check_bounty(TACKLE, "gxu", members=("scut", "gxas"), documents=documents) == []


def test_transfer_consortium_must_be_led_by_in_region_enterprise(policy, documents):
    assert (
        codes(policy.check_bounty(TRANSFER, "ent_b", members=("scut",), documents=documents)) == []
    )
    assert codes(
        policy.check_bounty(TRANSFER, "scut", members=("ent_b",), documents=documents)
    ) == [
        "NOT_IN_REGION",
        "WRONG_KIND",
    ]


def test_inactive_bounty_excludes_everyone(policy, documents):
    closed = BountyInfo("b4", "tackle", "gx_sugar", "t", "x", active=False)
    assert codes(policy.check_bounty(closed, "gxu", documents=documents)) == ["INACTIVE"]


def test_confidential_and_inactive_documents(policy, documents):
    conf = documents["need_conf"]
    assert policy.document_reasons(conf, "ent_b") == []
    assert policy.document_reasons(conf, "gxu") == ["CONFIDENTIAL"]
    assert policy.document_reasons(conf, None) == ["CONFIDENTIAL"]
    assert policy.document_reasons(documents["need_closed"], "comp_c") == ["INACTIVE"]


def test_conflict_mask_matches_pair_checks(policy, orgs):
    ids = sorted(orgs)
    mask = policy.conflict_mask(ids, ids, source_keys=[f"q_{i}" for i in ids])
    assert mask.dtype == np.bool_ and mask.shape == (len(ids), len(ids))
    for i, s in enumerate(ids):
        for j, t in enumerate(ids):
            ex = policy.check(s, t, keys=[f"q_{s}"])
            assert mask[i, j] == bool(ex), (s, t, ex)
    assert mask.diagonal().all()


def test_conflict_mask_blocks_by_key(policy):
    m = policy.conflict_mask(
        ["gx_sugar", "gx_sugar"], ["blocked_inst", "gxu"], source_keys=["need_sugar", "x"]
    )
    assert m.tolist() == [[True, False], [False, False]]


@st.composite
def forests(draw):
    n = draw(st.integers(2, 12))
    ids = [f"o{i}" for i in range(n)]
    orgs = {}
    for i, oid in enumerate(ids):
        parent = draw(st.one_of(st.none(), st.sampled_from(ids[:i]))) if i else None
        active = draw(st.booleans())
        orgs[oid] = OrgInfo(oid, oid, "institute", True, parent_id=parent, active=active)
    blocks = draw(st.lists(st.tuples(st.sampled_from(ids), st.sampled_from(ids)), max_size=3))
    return orgs, blocks


@settings(max_examples=40, deadline=None)
@given(forests())
def test_mask_equals_checks_on_random_forests(data):
    orgs, blocks = data
    p = EligibilityPolicy(orgs, blocks=blocks)
    ids = list(orgs)
    mask = p.conflict_mask(ids, ids)
    for i, s in enumerate(ids):
        for j, t in enumerate(ids):
            assert mask[i, j] == bool(p.check(s, t))
            # group = connected tree: same group iff same root of the parent chain
            root = lambda o: ([o, *p.groups.ancestors(o)])[-1]  # noqa: E731
            assert p.groups.same_group(s, t) == (root(s) == root(t))
