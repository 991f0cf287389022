"""Shortlist decision rules (service.decisions): the same decisions through the API and the page.

Each case sets an item's state in the store, applies one action as a staff member through
``POST /api/v1/shortlists/{id}/decision`` or through the staff page's form, and checks the
outcome and the stored state. Both channels must agree on every case.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from service import auth, decisions
from service.errors import InvalidRequest
from service.models import AuditLog, ShortlistItem
from tests.service._webseed import STAFF_PASSWORD, STAFF_USER, World, build_app, seed


class Case(NamedTuple):
    kind: str  # assigned | uncovered
    status: str
    locked: bool
    action: str
    note: str | None
    outcome: str  # "ok", or the 409 code
    want: dict[str, Any]  # stored columns after the call


CASES: dict[str, Case] = {
    "approve": Case("assigned", "pending", False, "approve", None, "ok", {"status": "approved"}),
    "approve-locked": Case(
        "assigned", "pending", True, "approve", None, "ok", {"status": "approved", "locked": True}
    ),
    "reject-locked": Case("assigned", "pending", True, "reject", None, "locked", {}),
    "reject": Case("assigned", "approved", False, "reject", "不对口", "ok", {"status": "rejected"}),
    "lock-rejected": Case("assigned", "rejected", False, "lock", None, "rejected", {}),
    "lock": Case("assigned", "approved", False, "lock", None, "ok", {"locked": True}),
    "unlock": Case("assigned", "pending", True, "unlock", None, "ok", {"locked": False}),
    "reset": Case(
        "assigned", "approved", True, "reset", None, "ok", {"status": "pending", "locked": True}
    ),
    "approve-uncovered": Case("uncovered", "pending", False, "approve", None, "uncovered", {}),
    "reset-uncovered": Case("uncovered", "pending", False, "reset", None, "uncovered", {}),
    "lock-uncovered": Case("uncovered", "pending", False, "lock", None, "uncovered", {}),
    "note-uncovered": Case(
        "uncovered",
        "pending",
        False,
        "note",
        "  已电话\u0007沟通ＡＢ１  ",
        "ok",
        {"note": "已电话沟通AB1"},
    ),
    "approve-with-note": Case(
        "assigned", "pending", False, "approve", "技术对口", "ok", {"note": "技术对口"}
    ),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("decisions")
    return seed(f"sqlite:///{tmp / 'decisions.sqlite3'}", tmp)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(build_app(world.settings), follow_redirects=False) as c:
        page = c.get("/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
        assert token is not None
        login = {"username": STAFF_USER, "password": STAFF_PASSWORD, "csrf_token": token[1]}
        assert c.post("/staff/login", data=login).status_code == 303
        yield c


def _session_csrf(client: TestClient, world: World) -> str:
    html = client.get(f"/staff/campaigns/{world.campaign_id}").text
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m is not None
    return m[1]


def _prepare(world: World, case: Case) -> int:
    item_id = world.item_ids[2] if case.kind == "uncovered" else world.item_ids[0]
    decided = case.status != "pending"
    with world.factory() as db:  # the module shares one store: reset the item to version 1
        db.execute(
            update(ShortlistItem)
            .where(ShortlistItem.id == item_id)
            .values(
                status=case.status,
                locked=case.locked,
                note="",
                version=1,
                decided_by=world.staff_id if decided else None,
                decided_at=datetime.now(UTC) if decided else None,
            )
        )
        db.execute(delete(AuditLog).where(AuditLog.entity == "shortlist_item"))
        db.commit()
    return item_id


def _call(client: TestClient, world: World, channel: str, item_id: int, case: Case) -> str:
    """Apply the case's action; "ok" or the refusal's code, read from either channel."""
    csrf = _session_csrf(client, world)
    if channel == "api":
        body: dict[str, Any] = {"action": case.action, "version": 1}
        if case.note is not None:
            body["note"] = case.note
        r = client.post(
            f"/api/v1/shortlists/{item_id}/decision",
            json=body,
            headers={auth.CSRF_HEADER: csrf},
        )
        return "ok" if r.status_code == 200 else f"{r.status_code}:{r.json()['code']}"
    form = {"action": case.action, "version": "1", "csrf_token": csrf}
    if case.note is not None:
        form["note"] = case.note
    r = client.post(f"/staff/campaigns/{world.campaign_id}/items/{item_id}", data=form)
    if r.status_code == 303:
        return "ok"
    messages = {
        "locked": "请先解锁",
        "rejected": "已驳回的配对不能锁定",
        "uncovered": "只能填写备注",
    }
    code = next((c for c, text in messages.items() if text in r.text), "?")
    return f"{r.status_code}:{code}"


@pytest.mark.parametrize("channel", ["api", "page"])
@pytest.mark.parametrize("name", list(CASES))
def test_same_decision_through_api_and_page(
    client: TestClient, world: World, channel: str, name: str
) -> None:
    case = CASES[name]
    item_id = _prepare(world, case)
    got = _call(client, world, channel, item_id, case)
    assert got == ("ok" if case.outcome == "ok" else f"409:{case.outcome}")
    with world.factory() as db:
        item = db.get(ShortlistItem, item_id)
        assert item is not None
        audits = db.scalars(
            select(AuditLog).where(
                AuditLog.entity == "shortlist_item", AuditLog.entity_id == str(item_id)
            )
        ).all()
    if case.outcome != "ok":
        assert (item.status, item.locked, item.version) == (case.status, case.locked, 1)
        assert audits == []
        return
    assert item.version == 2
    for column, value in case.want.items():
        assert getattr(item, column) == value, column
    if case.action in ("approve", "reject"):
        assert item.decided_by == world.staff_id and item.decided_at is not None
    if case.action == "reset":
        assert item.decided_by is None and item.decided_at is None
    if case.action in ("lock", "unlock", "note") and case.status == "pending":
        assert item.decided_by is None  # not a decision on the pairing itself
    (entry,) = audits
    assert entry.action == f"shortlist.{case.action}"
    assert entry.detail["before"]["status"] == case.status
    assert entry.detail["from_version"] == 1 and entry.detail["version"] == 2


@pytest.mark.parametrize("channel", ["api", "page"])
def test_note_is_required_for_note_and_bounded(
    client: TestClient, world: World, channel: str
) -> None:
    item_id = _prepare(world, CASES["approve"])
    csrf = _session_csrf(client, world)
    if channel == "api":
        url, headers = f"/api/v1/shortlists/{item_id}/decision", {auth.CSRF_HEADER: csrf}
        missing = client.post(url, json={"action": "note", "version": 1}, headers=headers)
        long = client.post(
            url, json={"action": "note", "version": 1, "note": "长" * 2001}, headers=headers
        )
    else:
        url = f"/staff/campaigns/{world.campaign_id}/items/{item_id}"
        form = {"action": "note", "version": "1", "csrf_token": csrf}
        missing = client.post(url, data=form)
        long = client.post(url, data={**form, "note": "长" * 2001})
    assert missing.status_code == 422 and long.status_code == 422
    assert _version(world, item_id) == 1


def _version(world: World, item_id: int) -> int:
    with world.factory() as db:
        item = db.get(ShortlistItem, item_id)
        assert item is not None
        return item.version


def test_rules_as_a_pure_function() -> None:
    now = datetime.now(UTC)

    class Item(NamedTuple):
        kind: str
        status: str
        locked: bool

    got = decisions.decision_values(
        Item("assigned", "pending", True), "approve", user_id=7, now=now
    )
    assert got == {"status": "approved", "decided_by": 7, "decided_at": now}
    with pytest.raises(decisions.DecisionRefused) as refused:
        decisions.decision_values(Item("assigned", "pending", True), "reject", user_id=7, now=now)
    assert refused.value.code == "locked" and refused.value.status == 409
    with pytest.raises(InvalidRequest):
        decisions.decision_values(Item("assigned", "pending", False), "delete", user_id=7, now=now)
    assert decisions.clean_note(None, "approve") is None
    assert decisions.clean_note(" a\u0000b ", "approve") == "ab"
