"""Commissioner import (Chinese CSV headers) and ``duijie dispatch`` end to end: real SQLite,
a real index build (fake encoder), the pairing engine; staff review rows of kind dispatch."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

import service.jobs.reindex as job
from service import models as m
from service.commands.dispatch import import_commissioners, run_dispatch
from service.settings import load_settings
from tests.embeddings.conftest import FakeEncoder

CSV = (
    "专员编号,姓名,工作单位编号,职称,所属领域,研究方向,关键词,代表论文,授权专利,服务经历,服务企业上限\n"
    "C1,王芳,U1,教授,新材料,改性聚丙烯增韧,聚丙烯，增韧,聚丙烯低温增韧改性研究；接枝改性,,,1\n"
    "C2,李强,U2,研究员,机械,甘蔗收获机械,收获机,,甘蔗收获机切割装置,为某糖厂提供收获机改造服务,2\n"
    "C3,赵敏,G-lab,高级工程师,新材料,改性塑料配方,改性塑料,改性聚丙烯保险杠材料,,,3\n"
)


def _seed(factory) -> None:  # type: ignore[no-untyped-def]
    with factory() as s:
        u1 = m.Organisation(external_id="U1", name="广西大学", kind="university", in_region=True)
        u2 = m.Organisation(external_id="U2", name="桂林理工大学", kind="university")
        grp = m.Organisation(external_id="G", name="桂发集团", kind="enterprise", scale="large")
        s.add_all([u1, u2, grp])
        s.flush()
        lab = m.Organisation(external_id="G-lab", name="桂发研究院", kind="institute",
                             parent_id=grp.id)  # fmt: skip
        e1 = m.Organisation(external_id="E1", name="桂发塑料", kind="enterprise", scale="small",
                            parent_id=grp.id)  # fmt: skip
        e2 = m.Organisation(external_id="E2", name="南宁塑胶", kind="enterprise", scale="medium")
        e3 = m.Organisation(external_id="E3", name="崇左农机", kind="enterprise", scale="micro")
        s.add_all([lab, e1, e2, e3])
        s.flush()
        s.add_all(
            [
                m.Need(external_id="n1", org_id=e1.id, title="改性聚丙烯保险杠材料",
                       description="低温冲击韧性不足，需要改性聚丙烯配方。"),
                m.Need(external_id="n2", org_id=e2.id, title="聚丙烯低温增韧",
                       description="聚丙烯制品低温脆裂。"),
                m.Need(external_id="n3", org_id=e3.id, title="甘蔗收获机切割效率",
                       description="收获机切割装置磨损快。"),
                m.Need(external_id="n4", org_id=grp.id, title="集团大宗采购系统",
                       description="大型企业不在选派范围。"),
            ]
        )  # fmt: skip
        s.commit()


@pytest.fixture
def env(store, tmp_path: Path):  # type: ignore[no-untyped-def]
    _seed(store.factory)
    enc = FakeEncoder()
    settings = load_settings(database_url=store.url, index_dir=tmp_path / "index")
    job.run_reindex(settings, encoder=enc)
    path = tmp_path / "科技专员.csv"
    path.write_text(CSV, encoding="gb18030")
    with store.factory() as s:
        created, updated, errors = import_commissioners(s, path)
        s.commit()
    assert (created, updated, errors) == (3, 0, [])
    return settings, enc, store.factory, path


def test_import_reads_chinese_headers_and_lists(env) -> None:  # type: ignore[no-untyped-def]
    _settings, _enc, factory, path = env
    with factory() as s:
        c1 = s.scalar(select(m.Commissioner).where(m.Commissioner.external_id == "C1"))
        assert c1 is not None and c1.employer.external_id == "U1" and c1.load_limit == 1
        assert c1.papers == ["聚丙烯低温增韧改性研究", "接枝改性"]
        assert c1.keywords == ["聚丙烯", "增韧"]
        assert len(c1.profile_texts()) == 3
        # re-import: nothing changes
        assert import_commissioners(s, path) == (0, 0, [])


def test_import_rejects_unknown_employer_without_writing(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _settings, _enc, factory, _ = env
    bad = tmp_path / "bad.csv"
    bad.write_text("专员编号,姓名,工作单位\nC9,钱多,不存在大学\nC10,孙丽,U1\n", encoding="utf-8")
    with factory() as s:
        created, _updated, errors = import_commissioners(s, bad)
        assert created == 0 and len(errors) == 1 and "第 2 行" in errors[0]
        assert "不存在大学" in errors[0]


def test_dispatch_respects_load_group_and_scale(env) -> None:  # type: ignore[no-untyped-def]
    settings, enc, factory, _ = env
    summary = run_dispatch(settings, "选派一", {"k": 1, "top": 3, "alternates": 1}, encoder=enc)
    assert summary["enterprises"] == 3  # the large group enterprise is not served
    with factory() as s:
        camp = s.scalar(select(m.Campaign).where(m.Campaign.name == "选派一"))
        assert camp is not None and camp.kind == "dispatch" and camp.status == "done"
        items = list(
            s.scalars(select(m.ShortlistItem).where(m.ShortlistItem.campaign_id == camp.id))
        )
        assigned = [i for i in items if i.kind == "assigned"]
        people = {c.id: c for c in s.scalars(select(m.Commissioner))}
        orgs = {o.id: o for o in s.scalars(select(m.Organisation))}
        load: dict[int, int] = {}
        for it in assigned:
            assert it.commissioner_id is not None
            load[it.commissioner_id] = load.get(it.commissioner_id, 0) + 1
            person = people[it.commissioner_id]
            assert it.institute_id == person.employer_org_id
            assert it.evidence["commissioner"] == person.name
            # never the group's own institute to the group's enterprise
            assert not (orgs[it.enterprise_id].external_id == "E1" and person.external_id == "C3")
        assert all(load[c] <= people[c].load_limit for c in load)
        assert len(assigned) + sum(i.kind == "uncovered" for i in items) == 3
        by_ent = {orgs[i.enterprise_id].external_id: people[i.commissioner_id].external_id
                  for i in assigned if i.commissioner_id}  # fmt: skip
        assert by_ent.get("E3") == "C2"  # the sugarcane harvester expert
        from service.web.views import _partner_name

        shown = _partner_name(assigned[0])  # the review page names the person and employer
        person = people[assigned[0].commissioner_id or 0]
        assert shown == f"{person.name}（{person.employer.name}）"
    with pytest.raises(Exception, match="已存在"):
        run_dispatch(settings, "选派一", {}, encoder=enc)
