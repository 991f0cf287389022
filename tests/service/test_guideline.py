"""Guideline runs in the store: condensation of a round, planted near-duplicates, staff edits
with optimistic versions, the 指南建议 workbook. Real SQLite, a real index build (fake encoder)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

import service.jobs.reindex as job
from service import guideline as gl
from service import models as m
from service.recommender import need_vectors_by_key as vectors_by_key
from service.settings import load_settings
from tests.embeddings.conftest import FakeEncoder

SUGAR = "甘蔗糖厂压榨工序能耗高，蔗渣综合利用率低，希望通过高效压榨与蔗渣制浆技术降低吨糖能耗。"
TOPICS = {
    "制糖": [("甘蔗压榨节能", SUGAR, ["压榨", "蔗渣"]),
             ("蔗渣制浆综合利用", "蔗渣制浆造纸与综合利用，提高蔗渣附加值与利用率。", ["蔗渣", "制浆"]),
             ("糖厂压榨能耗优化", "糖厂压榨能耗高，压榨工序需要节能改造与余热回收。", ["压榨", "节能"]),
             ("制糖废蜜发酵", "制糖废蜜发酵生产酵母与酒精，提高废蜜利用。", ["废蜜", "发酵"]),
             ("废蜜酵母生产", "利用废蜜发酵生产高活性酵母，降低发酵成本。", ["废蜜", "酵母"])],
    "汽车": [("整车热管理与热泵", "电池包温差大冬季续航衰减，需要热泵与整车热管理集成。", ["热泵", "热管理"]),
             ("热泵空调低温制热", "热泵空调低温制热能力不足，整车热管理需要优化。", ["热泵", "空调"]),
             ("车身轻量化冲压", "高强钢冲压件回弹大，车身轻量化需要热成形工艺。", ["轻量化", "冲压"])],
}  # fmt: skip


def _seed(factory) -> None:  # type: ignore[no-untyped-def]
    with factory() as s:
        grp = m.Organisation(external_id="G", name="桂糖集团", kind="enterprise", city="崇左")
        u = m.Organisation(external_id="U1", name="广西大学", kind="university", in_region=True)
        s.add_all([grp, u])
        s.flush()
        ents = [m.Organisation(external_id=f"E{i}", name=f"企业{i}", kind="enterprise",
                               in_region=True, parent_id=grp.id if i == 2 else None)
                for i in range(1, 9)]  # fmt: skip
        s.add_all(ents)
        s.flush()
        n = 0
        for field, needs in TOPICS.items():
            for title, desc, kws in needs:
                n += 1
                s.add(m.Need(external_id=f"N{n}", org_id=ents[n % 8].id, title=title,
                             description=desc, field=field, keywords=kws, round="2026第一批"))  # fmt: skip
        # the sugar need forwarded by a sister company of the same group (planted duplicate)
        s.add(m.Need(external_id="N-dup", org_id=grp.id, title="甘蔗压榨节能",
                     description="集团代报：" + SUGAR, field="制糖", keywords=["压榨", "蔗渣"],
                     round="2026第一批"))  # fmt: skip
        s.add(m.Need(external_id="N-other", org_id=ents[2].id, title="=HYPERLINK(1)",
                     description="芒果采后保鲜冷链。", field="农业", round="2026第二批"))  # fmt: skip
        s.add(m.Capability(external_id="c1", org_id=u.id, kind="achievement", title="蔗渣制浆",
                           description="蔗渣综合利用与压榨节能。", field="制糖"))  # fmt: skip
        s.commit()


@pytest.fixture
def run_env(store, tmp_path: Path):  # type: ignore[no-untyped-def]
    _seed(store.factory)
    settings = load_settings(database_url=store.url, index_dir=tmp_path / "index")
    job.run_reindex(settings, encoder=FakeEncoder())
    vectors = vectors_by_key(settings)
    with store.factory() as s:
        run = gl.run_guideline(s, vectors, name="一批", round_name="2026第一批", threshold=3.0)
        s.commit()
        run_id = run.id
    return store.factory, vectors, run_id


def test_round_is_condensed_per_field_with_every_need_placed(run_env) -> None:  # type: ignore[no-untyped-def]
    factory, _vectors, run_id = run_env
    with factory() as s:
        run = s.get_one(m.GuidelineRun, run_id)
        assert run.summary["needs"] == 9 and run.summary["condensed"] == 9
        fields = {d.field for d in run.directions}
        assert fields == {"制糖", "汽车"}  # the other round's need is not in it
        placed = sorted(n for d in run.directions for n in d.need_ids)
        assert placed == sorted([f"N{i}" for i in range(1, 9)] + ["N-dup"])
        for d in run.directions:
            assert d.label and set(d.representatives) <= set(d.need_ids)
            assert d.org_ids


def test_planted_duplicate_is_found_and_merge_keeps_both(run_env) -> None:  # type: ignore[no-untyped-def]
    factory, vectors, run_id = run_env
    with factory() as s:
        pairs = list(s.scalars(select(m.DuplicatePair).where(m.DuplicatePair.run_id == run_id)))
        found = {(p.need_a.external_id, p.need_b.external_id) for p in pairs}
        assert found == {("N1", "N-dup")}  # the planted pair only: no template look-alike
        pair = pairs[0]
        assert any("同一集团" in r for r in pair.reasons)
        gl.merge_duplicate(s, pair, user_id=None)
        s.commit()
        dup = s.scalar(select(m.Need).where(m.Need.external_id == "N-dup"))
        assert dup is not None and dup.duplicate_of_id == pair.need_a_id
        assert dup.status != "closed"  # both needs stay
        with pytest.raises(Exception, match="已处理"):
            gl.merge_duplicate(s, pair, user_id=None)
        # a later run folds the merged need into its primary and lists both sources
        run2 = gl.run_guideline(s, vectors, name="一批-复核", round_name="2026第一批")
        s.flush()
        assert run2.summary["folded_duplicates"] == 1
        d = next(d for d in run2.directions if "N1" in d.need_ids)
        assert "N-dup" not in d.need_ids and "G" in d.org_ids


def test_staff_edits_merge_split_rename_drop_with_versions(run_env) -> None:  # type: ignore[no-untyped-def]
    factory, vectors, run_id = run_env
    with factory() as s:
        run = s.get_one(m.GuidelineRun, run_id)
        sugar = [d for d in run.directions if d.field == "制糖"]
        car = [d for d in run.directions if d.field == "汽车"]
        merged = gl.merge_directions(s, [*sugar, *car], user_id=None)
        assert merged.size == 9 and all(d.status == "merged" for d in [*sugar, *car])
        parts = gl.split_direction(s, merged, vectors, version=merged.version, user_id=None)
        assert sorted(n for p in parts for n in p.need_ids) == sorted(merged.need_ids)
        assert merged.status == "split" and all(p.size >= 1 for p in parts)
        p = parts[0]
        gl.rename_direction(s, p, "甘蔗糖业节能降耗", version=p.version, user_id=None)
        with pytest.raises(gl.StaleDirection):
            gl.rename_direction(s, p, "旧版本", version=1, user_id=None)
        gl.set_status(s, parts[1], "dropped", version=parts[1].version, user_id=None)
        s.commit()
        actions = [a.action for a in s.scalars(select(m.AuditLog))]
        assert {"guideline.merge", "guideline.split", "guideline.rename", "guideline.drop"} <= set(
            actions
        )
        book = load_workbook(io.BytesIO(gl.guideline_workbook(s, run)))
        rows = list(book["指南建议"].iter_rows(values_only=True))
        assert rows[1][:3] == ("序号", "领域", "指南方向(建议)")
        assert [r[2] for r in rows[2:]] == ["甘蔗糖业节能降耗"]  # dropped and merged left out
        assert rows[2][4] == p.size


def test_selection_needs_a_round_or_dates(store) -> None:  # type: ignore[no-untyped-def]
    with store.factory() as s, pytest.raises(Exception, match="round or a date range"):
        gl.select_needs(s, round_name=None, date_from=None, date_to=None)
