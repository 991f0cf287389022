# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Enterprises enter and edit their own needs through the API; staff vet them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from service.db import session_scope
from service.models import Message, Need
from tests.service.api_support import (  # noqa: F401
    World,
    bearer,
    client,
    handle,
    world,
    world_template,
)


def test_enterprise_creates_and_edits_own_need_staff_vets_it(client: Any, world: World) -> None:
    a, b = bearer(world.keys["ent_a"]), bearer(world.keys["ent_b"])
    staff, inst = bearer(world.keys["staff"]), bearer(world.keys["inst_a"])
    r = client.post(
        "/api/v1/needs",
        json={"title": "糖蜜发酵副产物利用", "description": "废糖蜜", "status": "closed"},
        headers=a,
    )
    assert r.status_code == 201, r.text
    need = r.json()
    ext = need["external_id"]
    assert need["org_external_id"] == "ENT-A" and need["review_status"] == "pending"
    assert need["status"] == "open"  # an enterprise does not set the status
    assert client.post("/api/v1/needs", json={"title": "x"}, headers=inst).status_code == 403
    r = client.post("/api/v1/needs", json={"title": "x", "org_external_id": "ENT-B"}, headers=a)
    assert r.status_code == 404
    assert client.post("/api/v1/needs", json={"title": "x"}, headers=staff).status_code == 422
    # B can neither read nor change A's need; staff vet it.
    assert client.patch(f"/api/v1/needs/{ext}", json={"title": "y"}, headers=b).status_code == 404
    r = client.post(f"/api/v1/needs/{ext}/review", json={"action": "return"}, headers=staff)
    assert r.status_code == 422 and "退回理由" in r.json()["detail"]
    assert (
        client.post(
            f"/api/v1/needs/{ext}/review", json={"action": "approve"}, headers=a
        ).status_code
        == 403
    )
    r = client.post(f"/api/v1/needs/{ext}/review", json={"action": "approve"}, headers=staff)
    assert r.status_code == 200 and r.json()["review_status"] == "approved"
    # A's edit sends it back to vetting; a staff edit does not.
    r = client.patch(f"/api/v1/needs/{ext}", json={"budget": 12.5}, headers=a)
    assert r.status_code == 200 and r.json()["review_status"] == "pending"
    r = client.post(
        f"/api/v1/needs/{ext}/review",
        json={"action": "return", "reason": "请补充指标"},
        headers=staff,
    )
    assert r.json()["review_status"] == "returned" and r.json()["review_reason"] == "请补充指标"
    r = client.patch("/api/v1/needs/N-A1", json={"budget": 3.0}, headers=staff)
    assert r.json()["review_status"] == "approved"
    with session_scope(world.factory) as s:
        row = s.scalar(select(Need).where(Need.external_id == ext))
        assert row is not None and row.budget == 12.5 and row.review_status == "returned"
        kinds = [m.kind for m in s.scalars(select(Message).order_by(Message.id))]
        assert "need.approved" in kinds and "need.returned" in kinds
