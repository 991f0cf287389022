"""Matcher fixtures: an in-memory brute-force retriever and a tiny 产学研 corpus.

Organisations (group trees in brackets):

* [gx_grand → gx_holding → {gx_sugar, gx_research}] and gx_grand → gx_grand_lab: a three-level
  corporate group; gx_sugar posts the sugar need, gx_research / gx_grand_lab are in-group
  institutes with strong matching capabilities (must be excluded as SAME_GROUP).
* gxu (university, in region), scut (university, out of region), gxas (institute),
  gxust (university), closed_inst (inactive), blocked_inst (staff-blocked for need_sugar).
* ent_b (in-region enterprise, one confidential need), ent_out (out-of-region enterprise),
  comp_c (in-region company).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from matcher.constraints import EligibilityPolicy
from matcher.pipeline import Recommender
from matcher.protocols import Candidate
from matcher.textutil import tokens
from matcher.types import Document, OrgInfo
from tests.conftest import HashingEncoder


class InMemoryRetriever:
    """``CandidateRetriever`` by numpy brute force: dense cosine from an encoder, a token
    overlap count as the lexical score, fused score = dense + 0.1 * lexical."""

    def __init__(self, encoder: HashingEncoder, documents: Sequence[Document]) -> None:
        self.encoder = encoder
        self.docs = list(documents)
        self.vectors = encoder.encode_documents([d.full_text for d in self.docs])
        self.tokens = [set(tokens(d.full_text)) for d in self.docs]

    def retrieve(self, queries: Sequence[str], k: int) -> list[list[Candidate]]:
        if not self.docs:
            return [[] for _ in queries]
        q = self.encoder.encode_queries(list(queries))
        sims = q @ self.vectors.T
        out = []
        for i, text in enumerate(queries):
            qt = set(tokens(text))
            lex = np.array([len(qt & t) for t in self.tokens], dtype=np.float64)
            fused = sims[i].astype(np.float64) + 0.1 * lex
            order = np.lexsort((np.arange(len(self.docs)), -fused))[:k]
            out.append(
                [
                    Candidate(
                        self.docs[j].id,
                        float(fused[j]),
                        dense=float(sims[i, j]),
                        lexical=float(lex[j]) if lex[j] > 0 else None,
                    )
                    for j in order
                ]
            )
        return out


ORGS: tuple[OrgInfo, ...] = (
    OrgInfo("gx_grand", "广西糖业控股集团", "enterprise", True),
    OrgInfo("gx_holding", "广西糖业股份公司", "enterprise", True, parent_id="gx_grand"),
    OrgInfo(
        "gx_sugar", "广西某制糖厂", "enterprise", True, parent_id="gx_holding", fields=("环境",)
    ),
    OrgInfo("gx_research", "糖业集团研究院", "institute", True, parent_id="gx_holding"),
    OrgInfo("gx_grand_lab", "控股集团中心实验室", "institute", True, parent_id="gx_grand"),
    OrgInfo("gxu", "广西大学", "university", True, fields=("环境", "材料")),
    OrgInfo("scut", "华南理工大学", "university", False, fields=("材料",)),
    OrgInfo("gxas", "广西科学院", "institute", True, fields=("生物",)),
    OrgInfo("gxust", "广西科技大学", "university", True, fields=("机械",)),
    OrgInfo("closed_inst", "已撤销研究所", "institute", True, active=False),
    OrgInfo("blocked_inst", "被屏蔽研究所", "institute", True),
    OrgInfo("ent_b", "柳州某机械企业", "enterprise", True, fields=("机械",)),
    OrgInfo("ent_out", "广东某造纸企业", "enterprise", False),
    OrgInfo("comp_c", "南宁某环保公司", "company", True),
)

DOCS: tuple[Document, ...] = (
    Document(
        "need_sugar",
        "gx_sugar",
        "need",
        "制糖废水处理与蔗渣综合利用",
        "我厂每年榨季产生大量制糖废水，COD浓度高，现有厌氧处理效果不稳定。"
        "希望引进高效厌氧反应器技术，同时寻求蔗渣高值化利用方案。",
        field="环境",
        keywords=("制糖废水", "厌氧", "蔗渣"),
    ),
    Document(
        "gxu_wastewater",
        "gxu",
        "achievement",
        "高浓度制糖废水厌氧处理技术",
        "研发了膨胀颗粒污泥床厌氧反应器，处理制糖废水COD去除率达90%以上。已在多家糖厂应用。",
        field="环境",
        keywords=("制糖废水", "厌氧反应器"),
        trl=7,
    ),
    Document(
        "gxu_bagasse",
        "gxu",
        "patent",
        "蔗渣制备生物质复合材料的方法",
        "以蔗渣为原料，经预处理和热压成型制备生物质复合材料，实现蔗渣高值化利用。",
        field="材料",
        keywords=("蔗渣", "复合材料"),
        trl=5,
    ),
    Document(
        "gxu_bridge",
        "gxu",
        "paper",
        "桥梁结构健康监测",
        "基于光纤传感的大跨度桥梁结构健康监测系统。",
        field="土木",
    ),
    Document(
        "scut_pulp",
        "scut",
        "achievement",
        "蔗渣清洁制浆技术",
        "蔗渣清洁制浆与造纸废水处理一体化技术，降低制浆能耗。",
        field="材料",
        trl=6,
    ),
    Document(
        "gxas_ferment",
        "gxas",
        "achievement",
        "糖蜜微生物发酵生产酵母",
        "利用制糖副产物糖蜜发酵生产高活性酵母，并处理发酵废水。",
        field="生物",
        trl=6,
    ),
    Document(
        "research_ww",
        "gx_research",
        "achievement",
        "制糖废水厌氧处理中试",
        "集团研究院开展制糖废水厌氧反应器中试，COD去除率高。",
        field="环境",
        trl=6,
    ),
    Document(
        "grandlab_bagasse",
        "gx_grand_lab",
        "achievement",
        "蔗渣综合利用与制糖废水处理",
        "中心实验室研究蔗渣综合利用和制糖废水厌氧处理。",
        field="环境",
    ),
    Document(
        "closed_ww",
        "closed_inst",
        "achievement",
        "制糖废水处理工艺",
        "制糖废水厌氧处理工艺研究。",
        field="环境",
    ),
    Document(
        "blocked_ww",
        "blocked_inst",
        "achievement",
        "制糖废水厌氧处理设备",
        "制糖废水厌氧反应器设备研制。",
        field="环境",
    ),
    Document(
        "gxust_harvest",
        "gxust",
        "achievement",
        "甘蔗机械化收获技术",
        "研制了切段式甘蔗联合收获机，含损率低，适用于丘陵蔗区。",
        field="机械",
        trl=6,
    ),
    Document(
        "need_conf",
        "ent_b",
        "need",
        "甘蔗收获机切割系统改进",
        "我司甘蔗收获机切割刀片磨损快，需要甘蔗收获机切割系统的改进技术。",
        field="机械",
        confidential=True,
    ),
    Document(
        "need_b_public",
        "ent_b",
        "need",
        "机械零部件耐磨涂层",
        "农机零部件耐磨涂层技术需求，提高刀片寿命。",
        field="机械",
    ),
    Document(
        "need_out",
        "ent_out",
        "need",
        "蔗渣制浆漂白技术",
        "寻求蔗渣制浆清洁漂白技术，降低造纸废水排放。",
        field="材料",
    ),
    Document(
        "need_comp",
        "comp_c",
        "need",
        "制糖废水深度处理",
        "寻求制糖废水深度处理与回用技术。",
        field="环境",
    ),
    Document(
        "need_closed",
        "comp_c",
        "need",
        "已关闭的需求",
        "制糖废水处理需求（已关闭）。",
        active=False,
    ),
)


@pytest.fixture(scope="session")
def orgs() -> dict[str, OrgInfo]:
    return {o.id: o for o in ORGS}


@pytest.fixture(scope="session")
def documents() -> dict[str, Document]:
    return {d.id: d for d in DOCS}


@pytest.fixture(scope="session")
def policy(orgs: dict[str, OrgInfo]) -> EligibilityPolicy:
    return EligibilityPolicy(orgs, blocks=[("need_sugar", "blocked_inst")])


@pytest.fixture(scope="session")
def retrievers(
    fake_encoder: HashingEncoder, documents: dict[str, Document]
) -> dict[str, InMemoryRetriever]:
    caps = [d for d in documents.values() if d.kind != "need"]
    needs = [d for d in documents.values() if d.kind == "need"]
    return {
        "capabilities": InMemoryRetriever(fake_encoder, caps),
        "needs": InMemoryRetriever(fake_encoder, needs),
    }


@pytest.fixture(scope="session")
def recommender(
    retrievers: dict[str, InMemoryRetriever],
    documents: dict[str, Document],
    orgs: dict[str, OrgInfo],
    policy: EligibilityPolicy,
) -> Recommender:
    return Recommender(
        retrievers=retrievers,
        documents=documents,
        orgs=orgs,
        policy=policy,
        load={"gxu": 2},
        outcomes={"gxu": (3, 4)},
        fetch_k=50,
    )
