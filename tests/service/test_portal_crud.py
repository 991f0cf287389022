# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""The portal's data rules: institute accounts, need vetting, introductions, messages, and
introduction outcomes as ranker training labels."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from matcher.encoding import need_key
from service import auth, crud
from service import portal_crud as pc
from service.cli import main
from service.commands.match import staff_decisions
from service.db import session_scope
from service.errors import Conflict, Forbidden, InvalidRequest, NotFound
from service.jobs.reindex import read_collections
from service.models import AuditLog, Message, Need, User
from service.settings import get_settings
from service.snapshot import load_snapshot
from tests.service.api_support import World, world, world_template  # noqa: F401


def _principal(s, username: str) -> auth.Principal:  # type: ignore[no-untyped-def]
    from service.api.deps import _principal_for

    return _principal_for(crud.get_user(s, username=username))


def _messages(s, username: str) -> list[Message]:  # type: ignore[no-untyped-def]
    uid = crud.get_user(s, username=username).id
    return list(s.scalars(select(Message).where(Message.user_id == uid).order_by(Message.id)))


@pytest.fixture
def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("DUIJIE_DATABASE_URL", world.settings.resolved_database_url)
    monkeypatch.setenv("DUIJIE_SECRET_KEY", world.settings.secret_key)
    monkeypatch.setenv("DUIJIE_NEW_PASSWORD", "initial-pass-1")
    get_settings.cache_clear()
    yield world
    get_settings.cache_clear()


def test_cli_creates_institute_account_that_must_change_password(
    cli_env: World, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["users", "create", "--role", "institute", "--org", "INST-1", "--username", "yjs"]
    assert main([*args, "--password"]) == 0
    assert re.search(r"role institute, organisation INST-1", capsys.readouterr().out)
    with session_scope(cli_env.factory) as s:
        user = crud.get_user(s, username="yjs")
        assert user.role == "institute" and user.org is not None
        assert user.org.external_id == "INST-1" and user.must_change_password
        assert _principal(s, "yjs").must_change_password
        crud.set_password(s, user=user, password="my-own-secret")
        assert not user.must_change_password
    # Bound to an enterprise, or to nothing: refused with the reason.
    assert main(["users", "create", "--role", "institute", "--org", "ENT-A"]) == 1
    assert "kind 'enterprise'" in capsys.readouterr().err
    assert main(["users", "create", "--role", "institute"]) == 1
    assert "bound to an organisation" in capsys.readouterr().err


def test_enterprise_need_waits_for_vetting(world: World) -> None:
    with session_scope(world.factory) as s:
        ent_a = _principal(s, "ent_a")
        need = pc.create_need(
            s, user=ent_a, data={"title": "新型储能材料", "description": "钠离子电池正极"}
        )
        ext = need.external_id
        assert need.review_status == "pending" and need.org.external_id == "ENT-A"
        assert any(m.kind == "need.pending" for m in _messages(s, "staff"))
    with session_scope(world.factory) as s:
        snap = load_snapshot(s)
        assert not snap.documents[need_key(ext)].active  # invisible to matching
        assert need_key(ext) not in {r.doc_id for r in read_collections(s)["needs"]}
        need = s.scalar(select(Need).where(Need.external_id == ext))
        assert need is not None
        with pytest.raises(Forbidden):
            pc.review_need(s, user=_principal(s, "ent_a"), need=need, approve=True)
        with pytest.raises(InvalidRequest, match="退回理由"):
            pc.review_need(s, user=_principal(s, "staff"), need=need, approve=False, reason=" ")
        pc.review_need(s, user=_principal(s, "staff"), need=need, approve=True)
        assert _messages(s, "ent_a")[-1].kind == "need.approved"
        with pytest.raises(Conflict):
            pc.review_need(s, user=_principal(s, "staff"), need=need, approve=True)
    with session_scope(world.factory) as s:
        assert load_snapshot(s).documents[need_key(ext)].active
        assert need_key(ext) in {r.doc_id for r in read_collections(s)["needs"]}
        need = s.scalar(select(Need).where(Need.external_id == ext))
        assert need is not None
        # B cannot touch A's need; A's edit sends it back to vetting.
        with pytest.raises(NotFound):
            pc.edit_need(s, user=_principal(s, "ent_b"), need=need, data={"title": "x"})
        with pytest.raises(NotFound):
            pc.withdraw_need(s, user=_principal(s, "ent_b"), need=need)
        changed = pc.edit_need(s, user=_principal(s, "ent_a"), need=need, data={"budget": 30.0})
        assert set(changed) == {"budget"} and need.review_status == "pending"
        pc.review_need(s, user=_principal(s, "staff"), need=need, approve=False, reason="缺少预算")
        assert need.review_status == "returned" and need.review_reason == "缺少预算"
        assert _messages(s, "ent_a")[-1].body == "退回理由：缺少预算"
        pc.withdraw_need(s, user=_principal(s, "ent_a"), need=need)
        assert need.status == "withdrawn"
        with pytest.raises(Conflict):
            pc.edit_need(s, user=_principal(s, "ent_a"), need=need, data={"title": "改"})


def test_institute_cannot_create_needs_and_staff_needs_are_approved(world: World) -> None:
    with session_scope(world.factory) as s:
        with pytest.raises(Forbidden):
            pc.create_need(s, user=_principal(s, "inst_a"), data={"title": "x"})
        with pytest.raises(NotFound):  # an enterprise names another organisation
            pc.create_need(
                s, user=_principal(s, "ent_a"), data={"title": "x", "org_external_id": "ENT-B"}
            )
        need = pc.create_need(
            s, user=_principal(s, "staff"), data={"title": "录入", "org_external_id": "ENT-B"}
        )
        assert need.review_status == "approved" and need.reviewed_by is not None


def _intro(s, world: World):  # type: ignore[no-untyped-def]
    """A new approved need of ENT-A (entered by staff) and A's request to UNI-1 about it."""
    need = s.scalar(select(Need).where(Need.external_id == "N-A9"))
    if need is None:
        need = pc.create_need(
            s,
            user=_principal(s, "staff"),
            data={"external_id": "N-A9", "org_external_id": "ENT-A", "title": "轮毂涂装"},
        )
    return pc.request_introduction(
        s, user=_principal(s, "ent_a"), need=need, institute_external_id="UNI-1", message="望合作"
    )


def test_introduction_lifecycle_messages_and_audit(world: World) -> None:
    with session_scope(world.factory) as s:
        intro = _intro(s, world)
        iid = intro.id
        assert intro.status == "submitted" and intro.institute.external_id == "UNI-1"
        assert _messages(s, "staff")[-1].kind == "intro.requested"
        # Not yet forwarded: the institute does not see it; nobody but staff may forward.
        with pytest.raises(NotFound):
            pc.get_introduction(s, viewer=_principal(s, "inst_a"), intro_id=iid)
        with pytest.raises(Forbidden):
            pc.advance_introduction(s, user=_principal(s, "ent_a"), intro=intro, action="forward")
        with pytest.raises(Conflict):  # a second open request for the same pair
            _intro(s, world)
        pc.advance_introduction(s, user=_principal(s, "staff"), intro=intro, action="forward")
        assert intro.status == "forwarded" and intro.forwarded_at is not None
        assert _messages(s, "inst_a")[-1].kind == "intro.forwarded"
        assert _messages(s, "ent_a")[-1].kind == "intro.forwarded"
    with session_scope(world.factory) as s:
        inst_a, inst_b = _principal(s, "inst_a"), _principal(s, "inst_b")
        intro = pc.get_introduction(s, viewer=inst_a, intro_id=iid)

        def seen(p: auth.Principal) -> set[int]:
            return {i.id for i in pc.list_introductions(s, viewer=p, limit=50, offset=0)[0]}

        assert iid in seen(inst_a) and iid in seen(_principal(s, "ent_a"))
        assert iid not in seen(inst_b) | seen(_principal(s, "ent_b"))
        with pytest.raises(NotFound):
            pc.get_introduction(s, viewer=inst_b, intro_id=iid)
        with pytest.raises(Forbidden):  # another institute cannot answer for UNI-1
            pc.advance_introduction(s, user=inst_b, intro=intro, action="accept")
        with pytest.raises(InvalidRequest):
            pc.advance_introduction(s, user=inst_a, intro=intro, action="decline", note="")
        with pytest.raises(Conflict):  # the outcome comes after the institute's answer
            pc.advance_introduction(s, user=_principal(s, "ent_a"), intro=intro, action="signed")
        pc.advance_introduction(s, user=inst_a, intro=intro, action="accept", note="欢迎来访")
        assert intro.status == "negotiating" and intro.answer == "欢迎来访"
        assert _messages(s, "ent_a")[-1].kind == "intro.accepted"
        pc.advance_introduction(s, user=_principal(s, "ent_a"), intro=intro, action="signed")
        assert intro.status == "signed" and intro.outcome_at is not None
        assert _messages(s, "inst_a")[-1].kind == "intro.signed"
        actions = list(
            s.scalars(
                select(AuditLog.action)
                .where(AuditLog.entity == "introduction", AuditLog.entity_id == str(iid))
                .order_by(AuditLog.id)
            )
        )
        assert actions == ["intro.request", "intro.forward", "intro.accept", "intro.signed"]


def test_outcomes_become_training_labels(world: World) -> None:
    with session_scope(world.factory) as s:
        staff = _principal(s, "staff")
        intro = _intro(s, world)
        for action in ("forward",):
            pc.advance_introduction(s, user=staff, intro=intro, action=action)
        pc.advance_introduction(s, user=_principal(s, "inst_a"), intro=intro, action="accept")
        pc.advance_introduction(s, user=staff, intro=intro, action="signed")
        need_b = s.scalar(select(Need).where(Need.external_id == "N-B2"))
        lost = pc.request_introduction(
            s, user=staff, need=need_b, institute_external_id="INST-1", message=""
        )
        pc.advance_introduction(s, user=staff, intro=lost, action="close", note="需求方放弃")
        assert lost.outcome_reason == "需求方放弃"
    with session_scope(world.factory) as s:
        labels = {(d.query_id, d.org_id): d.approved for d in staff_decisions(s)}
    assert labels[(need_key("N-A9"), "UNI-1")] is True
    assert labels[(need_key("N-B2"), "INST-1")] is False


def test_request_rules(world: World) -> None:
    with session_scope(world.factory) as s:
        need = s.scalar(select(Need).where(Need.external_id == "N-A1"))
        ent_a, ent_b = _principal(s, "ent_a"), _principal(s, "ent_b")
        with pytest.raises(NotFound):  # B asks about A's need
            pc.request_introduction(
                s, user=ent_b, need=need, institute_external_id="UNI-1", message=""
            )
        with pytest.raises(NotFound):  # an enterprise is not an institute
            pc.request_introduction(
                s, user=ent_a, need=need, institute_external_id="ENT-B", message=""
            )
        with pytest.raises(InvalidRequest, match="500"):
            pc.request_introduction(
                s, user=ent_a, need=need, institute_external_id="UNI-1", message="长" * 501
            )
        need.review_status = "pending"
        with pytest.raises(Conflict):
            pc.request_introduction(
                s, user=ent_a, need=need, institute_external_id="UNI-1", message=""
            )


def test_messages_read_state_is_per_user(world: World) -> None:
    with session_scope(world.factory) as s:
        a = crud.get_user(s, username="ent_b").id
        b = crud.get_user(s, username="inst_a").id
        m1 = pc.send_message(s, user_id=a, kind="test", title="一")
        pc.send_message(s, user_id=a, kind="test", title="二")
        s.flush()
        assert pc.unread_count(s, user_id=a) == 2 and pc.unread_count(s, user_id=b) == 0
        with pytest.raises(NotFound):
            pc.mark_read(s, user_id=b, message_id=m1.id)
        assert pc.mark_read(s, user_id=a, message_id=m1.id) == 1
        assert pc.unread_count(s, user_id=a) == 1
        assert pc.mark_read(s, user_id=a) == 1 and pc.unread_count(s, user_id=a) == 0
        rows, total = pc.list_messages(s, user_id=a, limit=10, offset=0)
        assert total == 2 and [m.title for m in rows] == ["二", "一"]
        assert pc.notify_org(s, org_id=s.get(User, a).org_id, kind="k", title="t") == 1
