"""``duijie pair`` and ``duijie bounty`` end to end: real SQLite store, real index build (with
the deterministic fake encoder), the real recommender and the real solvers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

import service.commands.campaign as campaign_cmd
import service.jobs.reindex as job
from service import models as m
from service.cli import main
from service.recommender import RecommenderHandle
from service.settings import get_settings, load_settings
from tests.embeddings.conftest import FakeEncoder


def _seed(factory) -> None:  # type: ignore[no-untyped-def]
    with factory() as s:
        u1 = m.Organisation(external_id="U1", name="广西大学", kind="university", in_region=True)
        u2 = m.Organisation(
            external_id="U2", name="桂林理工大学", kind="university", in_region=True
        )
        ents = [
            m.Organisation(external_id=f"E{n}", name=f"企业{n}", kind="enterprise", in_region=True)
            for n in (1, 2, 3)
        ]
        s.add_all([u1, u2, *ents])
        s.flush()
        sub = m.Organisation(
            external_id="E1-lab", name="企业1研究院", kind="institute", parent_id=ents[0].id
        )
        s.add(sub)
        s.flush()
        s.add_all(
            [
                m.Capability(external_id="c1", org_id=u1.id, kind="achievement",
                             title="聚丙烯增韧改性", description="共混与接枝提高低温韧性。"),
                m.Capability(external_id="c2", org_id=u2.id, kind="patent",
                             title="甘蔗收获机切割装置", description="切割刀片与喂入结构。"),
                m.Capability(external_id="c3", org_id=sub.id, kind="achievement",
                             title="改性塑料配方", description="汽车保险杠材料。"),
                m.Need(external_id="n1", org_id=ents[0].id, title="保险杠材料耐低温冲击",
                       description="需要低温韧性更好的改性聚丙烯。"),
                m.Need(external_id="n2", org_id=ents[1].id, title="聚丙烯材料增韧",
                       description="改性聚丙烯的韧性。"),
                m.Need(external_id="n3", org_id=ents[2].id, title="甘蔗收获机械",
                       description="提高切割效率。"),
            ]
        )  # fmt: skip
        s.flush()
        bounty = m.Bounty(external_id="B1", kind="tackle", poster_org_id=ents[0].id,
                          title="低温韧性聚丙烯攻关", description="保险杠材料低温冲击", budget=100.0)  # fmt: skip
        s.add(bounty)
        s.flush()
        s.add_all(
            [
                m.Bid(external_id="bid-u1", bounty_id=bounty.id, respondent_org_id=u1.id,
                      price=80.0, proposal="接枝改性聚丙烯提高低温韧性"),
                m.Bid(external_id="bid-sub", bounty_id=bounty.id, respondent_org_id=sub.id,
                      price=50.0, proposal="改性塑料配方"),
            ]
        )  # fmt: skip
        s.commit()


@pytest.fixture
def env(store, tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
    _seed(store.factory)
    enc = FakeEncoder()
    monkeypatch.setenv("DUIJIE_DATABASE_URL", store.url)
    monkeypatch.setenv("DUIJIE_INDEX_DIR", str(tmp_path / "index"))
    get_settings.cache_clear()
    settings = load_settings(database_url=store.url, index_dir=tmp_path / "index")
    job.run_reindex(settings, encoder=enc)
    monkeypatch.setattr(
        campaign_cmd,
        "open_handle",
        lambda st, **_kw: RecommenderHandle(st, store.factory, encoder=enc),
    )
    yield store
    get_settings.cache_clear()


def test_pair_capacity_diagnosis_and_stable_repair(env, capsys) -> None:  # type: ignore[no-untyped-def]
    # Institutes: U1, U2 and E1's own lab (same group as E1: ineligible for E1). Capacity 1 and
    # three enterprises: E1 can use only U1/U2, so somebody may be left out; every enterprise
    # without a partner must come with a reason.
    assert main(["pair", "--campaign", "spring", "--k", "1", "--capacity", "1"]) == 0
    out = capsys.readouterr().out
    assert "活动 spring" in out and "配对 3 对" in out
    with env.factory() as s:
        camp = s.scalar(select(m.Campaign).where(m.Campaign.name == "spring"))
        assert camp is not None and camp.status == "done"
        items = s.scalars(
            select(m.ShortlistItem).where(m.ShortlistItem.campaign_id == camp.id)
        ).all()
        assigned = [(i.enterprise.external_id, i.institute.external_id) for i in items
                    if i.kind == "assigned"]  # fmt: skip
        assert len(assigned) == 3 and len({i for _, i in assigned}) == 3  # capacity 1 each
        assert ("E1", "E1-lab") not in assigned  # same corporate group is never paired
        # Items carry the need behind the score and the runner's evidence format.
        for it in items:
            if it.kind == "assigned":
                assert it.need_id is not None and "documents" in it.evidence
                assert it.evidence["solver"] == "mincostflow"
                # a pair filled in by capacity may have no similar document: never shown at <= 0
                assert all(d["score"] > 0 for d in it.evidence["documents"])
        assert any(it.evidence["documents"] for it in items if it.kind == "assigned")
    # Re-pair with the previous campaign: nothing changed, so every pair is kept.
    assert main(["pair", "--campaign", "summer", "--capacity", "1", "--previous", "spring"]) == 0
    out = capsys.readouterr().out
    assert "保留 3，更换 0，新增 0，取消 0" in out
    # Capacity for two pairs only: one enterprise is uncovered, with a reason naming the full
    # institutes (or the conflict, for E1).
    args = ["pair", "--campaign", "tight", "--capacity", "1", "--forbid", "E2:E1-lab",
            "--forbid", "E3:E1-lab"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "配对 2 对" in out and "未满足的企业 1 家" in out
    assert "候选机构名额已满" in out


def test_pair_reports_impossible_lock(env, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["pair", "--campaign", "x", "--lock", "E1:E1-lab"]) == 1
    err = capsys.readouterr().err
    assert "锁定的配对不符合资格" in err


def test_bounty_rank_bids_flags_same_group(env, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["bounty", "rank-bids", "B1"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if "bid-" in ln]
    assert lines[0].split()[:2] == ["1", "bid-u1"]
    assert lines[1].split()[:2] == ["-", "bid-sub"] and "同一集团" in lines[1]
    assert main(["bounty", "respondents", "B1", "--k", "3"]) == 0
    assert "广西大学" in capsys.readouterr().out
    assert main(["bounty", "rank-bids", "nope"]) == 1


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--k", "-5"], "--k"),
        (["--capacity", "0"], "--capacity"),
        (["--top", "5000"], "--top"),
        (["--solver", "hungarian"], "unknown solver"),
        (["--fair", "--solver", "lp"], "contradicts"),
    ],
)
def test_pair_refuses_invalid_params_before_running(capsys, args, flag, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Validated before the store or the index is opened.
    monkeypatch.setattr(campaign_cmd, "open_handle", lambda st, **_kw: pytest.fail("store opened"))
    assert main(["pair", "--campaign", "bad", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("参数无效") and flag in err


def test_pair_runs_the_real_engine_with_one_matrix_and_no_retrieval_per_item(
    env, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from matcher.pipeline import Recommender

    calls: list[str] = []
    for name in ("enterprise_matrix", "explain_match", "explain_pair", "scored_pairs"):
        original = getattr(Recommender, name)

        def spy(self, *a, _orig=original, _name=name, **kw):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return _orig(self, *a, **kw)

        monkeypatch.setattr(Recommender, name, spy)
    assert main(["pair", "--campaign", "spy", "--k", "1", "--alternates", "1"]) == 0
    with env.factory() as s:
        camp = s.scalar(select(m.Campaign).where(m.Campaign.name == "spy"))
        assert camp is not None
        n_explained = len(
            s.scalars(
                select(m.ShortlistItem).where(
                    m.ShortlistItem.campaign_id == camp.id, m.ShortlistItem.kind != "uncovered"
                )
            ).all()
        )
    assert calls.count("enterprise_matrix") == 1  # 3 enterprises: one chunk
    assert calls.count("explain_match") == n_explained > 0
    assert "explain_pair" not in calls and "scored_pairs" not in calls


def test_pair_rerun_encodes_no_need_again(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The real handle of the command (not the fixture's): need vectors go to the index's
    # embedding cache, so a second process-like run (a fresh handle) encodes none of them.
    import embeddings
    from service.commands.match import open_handle

    queries: list[str] = []

    class Counting(FakeEncoder):
        def encode_queries(self, texts):  # type: ignore[no-untyped-def]
            queries.extend(texts)
            return super().encode_queries(texts)

    monkeypatch.setattr(campaign_cmd, "open_handle", open_handle)
    monkeypatch.setattr(embeddings, "make_encoder", lambda *a, **kw: Counting())
    assert main(["pair", "--campaign", "first"]) == 0
    first = len(queries)
    assert first >= 3  # one query per enterprise's need at least
    assert main(["pair", "--campaign", "second"]) == 0
    assert len(queries) == first  # every need vector came from the cache
