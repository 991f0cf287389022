from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

import service.jobs.reindex as job
from embeddings import BuildStore
from matcher.encoding import cap_key, need_key
from matcher.textutil import tokenize
from service import models as m
from service.cli import main
from service.settings import get_settings, load_settings
from tests.embeddings.conftest import FakeEncoder


def _seed(factory) -> None:  # type: ignore[no-untyped-def]
    with factory() as s:
        uni = m.Organisation(external_id="U1", name="广西大学", kind="university")
        ent = m.Organisation(external_id="E1", name="柳州某汽车零部件公司", kind="enterprise")
        s.add_all([uni, ent])
        s.flush()
        s.add_all(
            [
                m.Capability(
                    external_id="cap-1",
                    org_id=uni.id,
                    kind="achievement",
                    title="聚丙烯增韧改性",
                    description="共混与接枝提高韧性。",
                    keywords=["高分子", "改性"],
                ),
                m.Capability(
                    external_id="cap-2",
                    org_id=uni.id,
                    kind="patent",
                    title="甘蔗收获机切割装置",
                    description="",
                ),
                m.Need(
                    external_id="need-1",
                    org_id=ent.id,
                    title="保险杠材料耐低温冲击",
                    description="需要低温韧性更好的改性聚丙烯。",
                    confidential=True,
                ),
            ]
        )
        s.commit()


@pytest.fixture
def env(store, tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
    _seed(store.factory)
    enc = FakeEncoder()
    monkeypatch.setenv("DUIJIE_DATABASE_URL", store.url)
    monkeypatch.setenv("DUIJIE_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setattr(job, "make_encoder", lambda *a, **k: enc)
    get_settings.cache_clear()
    yield store, enc, tmp_path / "index"
    get_settings.cache_clear()


def test_run_reindex_indexes_both_collections(env) -> None:  # type: ignore[no-untyped-def]
    store, enc, index_dir = env
    settings = load_settings(database_url=store.url, index_dir=index_dir, keep_builds=2)
    summary = job.run_reindex(settings, encoder=enc)
    assert summary.added == 3 and summary.encoded_chunks == 3
    b = BuildStore(index_dir).load_current(enc)
    caps, needs = b.collection("capabilities"), b.collection("needs")
    assert caps.doc_ids == [cap_key("cap-1"), cap_key("cap-2")]
    assert needs.doc_ids == [need_key("need-1")]  # confidential needs are indexed too
    text = "".join(caps.chunks_of(cap_key("cap-1")))
    assert text.startswith("聚丙烯增韧改性。共混") and text.endswith("关键词：高分子、改性")
    assert caps.lexical.search_tokens([tokenize("改性")], 5)[0].ids[0] == cap_key("cap-1")


def test_cli_incremental_summary_and_exit_codes(env, capsys) -> None:  # type: ignore[no-untyped-def]
    store, enc, index_dir = env
    assert main(["reindex", "--no-progress"]) == 0
    assert "added 3, changed 0, removed 0, unchanged 0, encoded 3 chunks" in capsys.readouterr().out
    with store.factory() as s:
        cap = s.scalars(select(m.Capability).where(m.Capability.external_id == "cap-2")).one()
        cap.description = "刀盘转速自适应。"
        s.commit()
    enc.encoded.clear()
    assert main(["reindex"]) == 0
    out = capsys.readouterr().out
    assert "added 0, changed 1, removed 0, unchanged 2, encoded 1 chunks" in out
    assert enc.encoded == ["甘蔗收获机切割装置。刀盘转速自适应。"]
    assert main(["reindex", "--full"]) == 0
    assert "encoded 3 chunks" in capsys.readouterr().out
    with BuildStore(index_dir).lock():
        assert main(["reindex"]) == job.EXIT_LOCKED
    assert "another run is in progress" in capsys.readouterr().err


def test_cli_failure_keeps_previous_build(env, capsys, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, _, index_dir = env
    assert main(["reindex"]) == 0
    before = BuildStore(index_dir).current_build_id()
    monkeypatch.setenv("DUIJIE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    get_settings.cache_clear()
    assert main(["reindex"]) == job.EXIT_FAILED
    err = capsys.readouterr().err
    assert "reindex failed" in err and "no schema yet" in err
    assert BuildStore(index_dir).current_build_id() == before
