# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""The portal's introductions and inbox through the API (the same service functions as the
pages), and the forced first-login password change on the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service import auth, crud
from service.db import session_scope
from service.models import AuditLog, Introduction, Message, User
from tests.service.api_support import (  # noqa: F401
    PASSWORD,
    World,
    bearer,
    client,
    handle,
    world,
    world_template,
)


def test_introduction_journey_through_the_api(client: Any, world: World) -> None:
    a, b = bearer(world.keys["ent_a"]), bearer(world.keys["ent_b"])
    uni, inst = bearer(world.keys["inst_a"]), bearer(world.keys["inst_b"])
    staff = bearer(world.keys["staff"])
    body = {"need_external_id": "N-A2", "institute_external_id": "UNI-1", "message": "希望合作"}
    r = client.post("/api/v1/introductions", json=body, headers=a)
    assert r.status_code == 201, r.text
    intro = r.json()
    assert (intro["status"], intro["status_label"], intro["staff_note"]) == (
        "submitted",
        "已提交",
        None,
    )
    iid = intro["id"]
    assert client.post("/api/v1/introductions", json=body, headers=a).status_code == 409
    assert client.post("/api/v1/introductions", json=body, headers=uni).status_code == 403
    # not forwarded yet: the institute does not see it, and cannot answer it
    assert client.get(f"/api/v1/introductions/{iid}", headers=uni).status_code == 404
    act = f"/api/v1/introductions/{iid}/actions"
    assert client.post(act, json={"action": "accept"}, headers=uni).status_code == 404
    assert client.post(act, json={"action": "forward"}, headers=a).status_code == 403
    r = client.post(act, json={"action": "forward", "note": "请尽快联系"}, headers=staff)
    assert r.status_code == 200 and r.json()["status"] == "forwarded"
    # the institute sees it now, without the confidential need's id or title
    seen = client.get("/api/v1/introductions", params={"status": "forwarded"}, headers=uni)
    mine = [i for i in seen.json()["items"] if i["id"] == iid]
    assert mine and mine[0]["need_external_id"] is None and mine[0]["need_title"] is None
    assert mine[0]["staff_note"] == "请尽快联系" and mine[0]["score"] is None
    assert client.get(f"/api/v1/introductions/{iid}", headers=inst).status_code == 404
    r = client.post(act, json={"action": "decline"}, headers=uni)  # a reason is required
    assert r.status_code == 422 and "婉拒理由" in r.json()["detail"]
    r = client.post(act, json={"action": "accept", "note": "欢迎来访"}, headers=uni)
    assert r.status_code == 200 and r.json()["status"] == "negotiating"
    r = client.post(act, json={"action": "accept"}, headers=uni)
    assert r.status_code == 409 and r.json()["code"] == "wrong_state"
    r = client.post(act, json={"action": "signed", "note": "已签合同"}, headers=a)
    assert r.status_code == 200 and r.json()["status"] == "signed"
    assert client.get(f"/api/v1/introductions/{iid}", headers=b).status_code == 404
    with session_scope(world.factory) as s:
        row = s.get(Introduction, iid)
        assert row is not None
        assert (row.status, row.staff_note, row.answer, row.outcome_reason) == (
            "signed",
            "请尽快联系",
            "欢迎来访",
            "已签合同",
        )
        actions = s.scalars(
            select(AuditLog.action)
            .where(AuditLog.entity == "introduction", AuditLog.entity_id == str(iid))
            .order_by(AuditLog.id)
        ).all()
        assert actions == ["intro.request", "intro.forward", "intro.accept", "intro.signed"]
        kinds = set(s.scalars(select(Message.kind)))
        assert {"intro.requested", "intro.forwarded"} <= kinds


def test_inbox_through_the_api(client: Any, world: World) -> None:
    a, b = bearer(world.keys["ent_a"]), bearer(world.keys["ent_b"])
    r = client.get("/api/v1/messages", headers=a)
    assert r.status_code == 200
    inbox = r.json()
    assert inbox["unread"] == 1 and [m["title"] for m in inbox["items"]] == ["给甲公司的消息"]
    assert client.get("/api/v1/messages", headers=b).json()["total"] == 0
    mid = world.ids["msg_a"]
    assert client.post(f"/api/v1/messages/{mid}/read", headers=b).status_code == 404
    r = client.post(f"/api/v1/messages/{mid}/read", headers=a)
    assert r.json() == {"marked": 1, "unread": 0}
    assert client.get("/api/v1/messages", params={"unread_only": True}, headers=a).json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
        "unread": 0,
    }
    with session_scope(world.factory) as s:
        msg = s.get(Message, mid)
        assert msg is not None and msg.read_at is not None
        for n in range(3):
            s.add(Message(user_id=world.user_ids["ent_b"], kind="test", title=f"乙{n}"))
    r = client.post("/api/v1/messages/read-all", headers=b)
    assert r.json() == {"marked": 3, "unread": 0}
    with session_scope(world.factory) as s:
        unread = s.scalars(select(Message).where(Message.read_at.is_(None))).all()
        assert unread == []


def _staff_issued(world: World, username: str, password: str) -> str:
    """An institute account opened by staff (initial password to change), with an API key."""
    with session_scope(world.factory) as s:
        user, key = crud.create_user(
            s,
            username=username,
            role="institute",
            org_external_id="INST-1",
            password=password,
            must_change_password=True,
        )
        assert key is not None and user.must_change_password
        return key


def test_api_refuses_a_staff_issued_password_until_it_is_changed(client: Any, world: World) -> None:
    key = _staff_issued(world, "new_inst", "Initial-123")
    h = bearer(key)
    r = client.get("/api/v1/needs", headers=h)
    assert r.status_code == 403 and r.json()["code"] == "password_change_required"
    assert "修改初始密码" in r.json()["detail"]
    me = client.get("/api/v1/auth/me", headers=h).json()
    assert me["must_change_password"] is True and "POST /api/v1/auth/password" in me["notice"]
    # login reports it too; with the session cookie, other calls are refused the same way
    r = client.post("/api/v1/auth/login", json={"username": "new_inst", "password": "Initial-123"})
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    csrf = {auth.CSRF_HEADER: r.json()["csrf_token"]}
    assert client.get("/api/v1/applications").json()["code"] == "password_change_required"
    bad = {"current": "Initial-123", "new": "12345678", "again": "12345678"}
    r = client.post("/api/v1/auth/password", json=bad, headers=csrf)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "new"]
    assert "字母和数字" in r.json()["errors"][0]["msg"]
    good = {"current": "Initial-123", "new": "Changed-456", "again": "Changed-456"}
    r = client.post("/api/v1/auth/password", json=good, headers=csrf)
    assert r.status_code == 200 and r.json()["must_change_password"] is False
    assert r.json()["notice"] is None
    assert client.get("/api/v1/needs", headers=h).status_code == 200  # the key works now
    assert client.get("/api/v1/auth/me").json()["must_change_password"] is False  # new cookie
    with session_scope(world.factory) as s:
        row = s.scalar(select(User).where(User.username == "new_inst"))
        assert row is not None and not row.must_change_password
        assert auth.verify_password("Changed-456", row.password_hash)
        assert s.scalar(select(AuditLog.id).where(AuditLog.action == "user.password"))


def test_password_change_needs_the_current_password(client: Any, world: World) -> None:
    h = bearer(world.keys["ent_a"])
    r = client.post(
        "/api/v1/auth/password",
        json={"current": "wrong", "new": "Another-789", "again": "Another-789"},
        headers=h,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["msg"] == "当前密码不正确"
    with session_scope(world.factory) as s:
        row = s.scalar(select(User).where(User.username == "ent_a"))
        assert row is not None and auth.verify_password(PASSWORD, row.password_hash)
