"""The nightly needs digest on a tiny real store (SQLite, a real index build with the
deterministic fake encoder, the real recommender), and application status messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import service.jobs.reindex as job
from service import applications, auth
from service import models as m
from service.cli import main
from service.jobs import digest
from service.recommender import RecommenderHandle
from service.settings import get_settings, load_settings
from tests.embeddings.conftest import FakeEncoder

PP = "改性聚丙烯低温韧性增韧材料"


def _seed(factory: Any) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    with factory() as s:
        u = m.Organisation(external_id="U", name="广西大学", kind="university")
        cane = m.Organisation(external_id="V", name="甘蔗研究所", kind="institute")
        quiet = m.Organisation(external_id="Q", name="无用户院所", kind="institute")
        e1 = m.Organisation(external_id="E1", name="企业一", kind="enterprise")
        e2 = m.Organisation(external_id="E2", name="企业二", kind="enterprise")
        s.add_all([u, cane, quiet, e1, e2])
        s.flush()
        s.add_all(
            [
                m.Capability(external_id="c1", org_id=u.id, kind="achievement",
                             title="聚丙烯增韧", description=f"{PP}。"),
                m.Capability(external_id="c2", org_id=cane.id, kind="patent",
                             title="甘蔗收获机", description="甘蔗收获机切割刀片与喂入。"),
                m.Capability(external_id="c3", org_id=quiet.id, kind="patent",
                             title="聚丙烯", description=f"{PP}。"),
                m.Need(external_id="n-new", org_id=e1.id, title="保险杠聚丙烯",
                       description=f"需要{PP}。"),
                m.Need(external_id="n-secret", org_id=e2.id, title="保密聚丙烯",
                       description=f"需要{PP}。", confidential=True),
                m.Need(external_id="n-pending", org_id=e2.id, title="待审聚丙烯",
                       description=f"需要{PP}。", review_status="pending"),
                m.Need(external_id="n-old", org_id=e2.id, title="老需求聚丙烯",
                       description=f"需要{PP}。", created_at=old),
            ]
        )  # fmt: skip
        s.add_all(
            [
                m.User(username="u1", role="institute", org_id=u.id),
                m.User(username="u2", role="institute", org_id=u.id),
                m.User(username="v1", role="institute", org_id=cane.id),
                m.User(username="e1", role="enterprise", org_id=e1.id),
            ]
        )
        s.commit()


@pytest.fixture
def env(store: Any, tmp_path: Path) -> dict[str, Any]:
    _seed(store.factory)
    enc = FakeEncoder()
    settings = load_settings(database_url=store.url, index_dir=tmp_path / "index")
    job.run_reindex(settings, encoder=enc)
    handle = RecommenderHandle(settings, store.factory, encoder=enc, check_interval=0.0)
    return {"factory": store.factory, "rec": handle.get(), "settings": settings, "enc": enc}


def _digests(factory: Any) -> list[tuple[str, str]]:
    with factory() as s:
        rows = s.execute(
            select(m.User.username, m.Message.body)
            .join(m.User, m.User.id == m.Message.user_id)
            .where(m.Message.kind == digest.DIGEST_KIND)
            .order_by(m.User.username)
        )
        return [(str(u), str(b)) for u, b in rows]


def test_digest_sends_new_matching_public_needs_once(env: dict[str, Any]) -> None:
    rec, factory = env["rec"], env["factory"]
    with factory() as s:
        scores = rec.pair_matrix(["N:n-new"], ["U", "V"]).scores[0]
    threshold = float((scores[0] + scores[1]) / 2)  # between U's (matching) and V's score
    assert scores[0] > threshold > scores[1]
    with factory() as s:
        summary = digest.run_digest(s, rec, threshold=threshold)
        s.commit()
    assert summary.institutes == 2  # Q has no institute user
    assert summary.matched == {"U": ["n-new"]}  # not: secret, pending, older than a week
    sent = _digests(factory)
    assert [u for u, _ in sent] == ["u1", "u2"]
    assert "保险杠聚丙烯" in sent[0][1] and "保密" not in sent[0][1] and "待审" not in sent[0][1]
    # a second run the same night finds nothing new for U
    with factory() as s:
        again = digest.run_digest(s, rec, threshold=threshold)
        s.commit()
    assert again.matched == {} and len(_digests(factory)) == 2
    # a need approved after the digest is sent the next night
    with factory() as s:
        need = s.scalar(select(m.Need).where(m.Need.external_id == "n-pending"))
        assert need is not None
        need.review_status, need.reviewed_at = "approved", datetime.now(UTC) + timedelta(seconds=1)
        s.commit()
    rec2 = RecommenderHandle(env["settings"], factory, encoder=env["enc"], check_interval=0).get()
    later = datetime.now(UTC) + timedelta(minutes=1)
    with factory() as s:
        third = digest.run_digest(s, rec2, threshold=threshold, now=later)
        s.commit()
    assert third.matched == {"U": ["n-pending"]}


def test_digest_cli_and_reindex_step(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DUIJIE_DATABASE_URL", env["settings"].database_url)
    monkeypatch.setenv("DUIJIE_INDEX_DIR", str(env["settings"].index_dir))
    monkeypatch.setenv("DUIJIE_DIGEST_THRESHOLD", "-10")  # everything eligible matches
    monkeypatch.setattr(job, "make_encoder", lambda *a, **k: env["enc"])
    monkeypatch.setattr("embeddings.make_encoder", lambda *a, **k: env["enc"])
    get_settings.cache_clear()
    try:
        assert main(["reindex", "--no-progress", "--digest"]) == 0
        out = capsys.readouterr().out
        assert "digest: 2 institutes" in out
        assert main(["digest"]) == 0  # nothing new since the step above
        assert "0 messages" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
    users = {u for u, _ in _digests(env["factory"])}
    assert users == {"u1", "u2", "v1"}  # V's eligible needs pass a threshold of -10


def test_application_status_change_messages_the_applicant(env: dict[str, Any]) -> None:
    factory = env["factory"]
    with factory() as s:
        e1 = s.scalar(select(m.Organisation).where(m.Organisation.external_id == "E1"))
        u = s.scalar(select(m.Organisation).where(m.Organisation.external_id == "U"))
        assert e1 is not None and u is not None
        s.add(m.Bounty(external_id="B1", kind="tackle", poster_org_id=e1.id, title="聚丙烯攻关"))
        staff_row = m.User(username="staff", role="staff")
        s.add(staff_row)
        s.commit()
        u1 = s.scalar(select(m.User.id).where(m.User.username == "u1"))
        assert u1 is not None
        staff = auth.Principal(user_id=staff_row.id, username="staff", role="staff")
        applicant = auth.Principal(user_id=u1, username="u1", role="institute", org_id=u.id)
        bid = applications.submit_application(
            s, applicant=applicant, bounty_external_id="B1", proposal="方案", price=10
        )
        s.commit()
        applications.set_application_status(
            s, user=staff, bid_external_id=bid.external_id, status="qualified", note="材料齐全"
        )
        s.commit()
        msgs = s.execute(
            select(m.User.username, m.Message.title, m.Message.body, m.Message.link)
            .join(m.User, m.User.id == m.Message.user_id)
            .where(m.Message.kind == "application.status")
            .order_by(m.User.username)
        ).all()
    assert [r[0] for r in msgs] == ["u1", "u2"]
    assert "资格审查通过" in msgs[0][1] and "材料齐全" in msgs[0][2]
    assert msgs[0][3].endswith(bid.external_id)
