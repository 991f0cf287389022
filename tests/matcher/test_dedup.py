"""Near-duplicate needs: a planted duplicate pair is found, a planted non-duplicate is not."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.dedup import DupCandidate, candidate_pairs, find_duplicates, overlap, shingles
from matcher.errors import InvalidParameter
from tests.conftest import HashingEncoder

BASE = (
    "甘蔗糖厂压榨工序能耗高，蔗渣综合利用率低，希望通过高效压榨与蔗渣制浆技术加以解决，"
    "使吨糖能耗降低15%以上。合作方式：联合开发；项目周期18个月。"
)
# The same need forwarded by the city bureau: a cover sentence added, the budget retyped.
FORWARDED = "崇左市科技局代企业报送：" + BASE.replace("15%", "20%")
# Same field, same vocabulary, a different need.
OTHER = (
    "甘蔗种植环节机械化收获率低，人工砍收成本高，希望通过甘蔗收获机械与智能农机技术加以解决，"
    "使机收率提高到60%以上。合作方式：技术转让；项目周期12个月。"
)
UNRELATED = "锂电池正极材料烧结工艺一致性差，希望改进烧结温度控制，提高批次一致性。"


def _run(texts: list[str], orgs: list[str], **kw: object) -> list:  # type: ignore[type-arg]
    enc = HashingEncoder()
    items = [DupCandidate(f"N{i}", o, t) for i, (t, o) in enumerate(zip(texts, orgs, strict=True))]
    vecs = enc.encode_documents(texts)

    def relation(a: str, b: str) -> str | None:
        if a == b:
            return "same_org"
        if {a, b} == {"ENT", "BUREAU"}:
            return "forwarded"
        return None

    return find_duplicates(items, vecs, relation=relation, min_cosine=0.5, **kw)  # type: ignore[arg-type]


def test_planted_duplicate_found_and_non_duplicate_not() -> None:
    pairs = _run([BASE, OTHER, FORWARDED, UNRELATED], ["ENT", "ENT2", "BUREAU", "ENT3"])
    found = {(p.a, p.b) for p in pairs}
    assert ("N0", "N2") in found
    assert ("N0", "N1") not in found and ("N1", "N2") not in found
    dup = next(p for p in pairs if (p.a, p.b) == ("N0", "N2"))
    assert dup.relation == "forwarded"
    assert "企业与所在地市主管部门分别报送" in dup.reasons
    assert dup.containment > 0.8
    assert 0.5 <= dup.score <= 1.0


def test_the_same_need_posted_twice_by_one_org() -> None:
    pairs = _run([BASE, BASE, OTHER], ["ENT", "ENT", "ENT"])
    assert [(p.a, p.b) for p in pairs] == [("N0", "N1")]
    assert pairs[0].score == pytest.approx(1.0)
    assert "同一单位重复提交" in pairs[0].reason_text


def test_a_stricter_overlap_drops_the_pair() -> None:
    assert _run([BASE, FORWARDED], ["ENT", "BUREAU"], min_score=0.99) == []


def test_shingles_ignore_digits_and_punctuation() -> None:
    a, b = shingles("吨糖能耗降低15%。"), shingles("吨糖能耗降低20% ")
    assert a == b
    assert overlap(frozenset(), a) == (0.0, 0.0)


def test_candidate_pairs_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    x[7] = x[3] + 0.01
    got = {(i, j) for i, j, _ in candidate_pairs(x, 0.6, block=7, max_per_row=50)}
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = u @ u.T
    want = {(i, j) for i in range(50) for j in range(i + 1, 50) if s[i, j] >= 0.6}
    assert got == want and (3, 7) in got


def test_validation() -> None:
    with pytest.raises(InvalidParameter):
        find_duplicates([DupCandidate("a", "o", "x")], np.zeros((2, 3)))
    with pytest.raises(InvalidParameter):
        find_duplicates([], np.zeros((0, 3)), min_cosine=1.0)
