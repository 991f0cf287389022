# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Resource routes: organisations, needs, capabilities, bounties, users, audit, errors."""

from __future__ import annotations

from tests.service.api_support import (  # noqa: F401 (fixtures)
    bearer,
    client,
    handle,
    world,
    world_template,
)


def test_pagination_and_total(client, world) -> None:
    staff = bearer(world.keys["staff"])
    r = client.get("/api/v1/organisations", params={"limit": 2, "offset": 1}, headers=staff)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 4 and body["limit"] == 2 and body["offset"] == 1
    assert [o["external_id"] for o in body["items"]] == ["ENT-B", "UNI-1"]
    r = client.get("/api/v1/organisations", params={"limit": 201}, headers=staff)
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert r.json()["errors"][0]["loc"] == ["query", "limit"]
    r = client.get("/api/v1/organisations", params={"offset": -1}, headers=staff)
    assert r.status_code == 422


def test_enterprise_sees_only_own_needs(client, world) -> None:
    a = bearer(world.keys["ent_a"])
    r = client.get("/api/v1/needs", headers=a)
    assert [n["external_id"] for n in r.json()["items"]] == ["N-A1", "N-A2"]
    assert r.json()["total"] == 2
    for other in ("N-B1", "N-B2"):
        r = client.get(f"/api/v1/needs/{other}", headers=a)
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert client.get("/api/v1/needs/N-A2", headers=a).json()["confidential"] is True
    r = client.get("/api/v1/needs", params={"org": "ENT-B"}, headers=a)
    assert r.json()["total"] == 0


def test_enterprise_directory_hides_other_enterprises(client, world) -> None:
    a = bearer(world.keys["ent_a"])
    got = [o["external_id"] for o in client.get("/api/v1/organisations", headers=a).json()["items"]]
    assert got == ["ENT-A", "UNI-1", "INST-1"]
    assert client.get("/api/v1/organisations/ENT-B", headers=a).status_code == 404
    caps = client.get("/api/v1/capabilities", headers=a).json()
    assert {c["external_id"] for c in caps["items"]} == {"C-U1", "C-I1"}


def test_staff_create_update_need_audited(client, world) -> None:
    staff = bearer(world.keys["staff"])
    body = {
        "external_id": "N-A3",
        "org_external_id": "ENT-A",
        "title": "新需求",
        "description": "x" * 100,
        "keywords": ["甘蔗"],
        "budget": 50,
    }
    r = client.post("/api/v1/needs", json=body, headers=staff)
    assert r.status_code == 201, r.text
    assert r.json()["org_external_id"] == "ENT-A"
    assert client.post("/api/v1/needs", json=body, headers=staff).status_code == 409
    r = client.patch(
        "/api/v1/needs/N-A3", json={"status": "closed", "confidential": True}, headers=staff
    )
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["confidential"]
    # the owner now sees it; B does not
    assert client.get("/api/v1/needs/N-A3", headers=bearer(world.keys["ent_a"])).status_code == 200
    assert client.get("/api/v1/needs/N-A3", headers=bearer(world.keys["ent_b"])).status_code == 404
    log = client.get("/api/v1/audit", params={"entity": "need"}, headers=staff).json()
    assert [e["action"] for e in log["items"]] == ["need.update", "need.create"]
    assert log["items"][0]["user_id"] == world.user_ids["staff"]
    r = client.post(
        "/api/v1/needs",
        json={**body, "external_id": "N-X", "org_external_id": "NOPE"},
        headers=staff,
    )
    assert r.status_code == 404


def test_enterprise_cannot_write(client, world) -> None:
    """Beyond its own needs (tests/service/test_portal_api.py) an enterprise writes nothing."""
    a = bearer(world.keys["ent_a"])
    r = client.patch("/api/v1/needs/N-B2", json={"title": "改"}, headers=a)
    assert r.status_code == 404
    r = client.post(
        "/api/v1/capabilities",
        headers=a,
        json={"external_id": "C-X", "org_external_id": "ENT-A", "kind": "patent", "title": "t"},
    )
    assert r.status_code == 403


def test_size_bounds(client, world) -> None:
    staff = bearer(world.keys["staff"])
    body = {
        "external_id": "N-BIG",
        "org_external_id": "ENT-A",
        "title": "t",
        "description": "长" * 20_001,
    }
    r = client.post("/api/v1/needs", json=body, headers=staff)
    assert r.status_code == 422 and "description" in r.json()["detail"]
    r = client.post("/api/v1/match", json={"text": "字" * 2001}, headers=staff)
    assert r.status_code == 422
    huge = b'{"text": "' + b"a" * 1_100_000 + b'"}'
    r = client.post(
        "/api/v1/match", content=huge, headers={**staff, "Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_bounties_bids_visibility(client, world) -> None:
    a, b, staff = (bearer(world.keys[k]) for k in ("ent_a", "ent_b", "staff"))
    listing = client.get("/api/v1/bounties", headers=a).json()
    assert listing["total"] == 1
    item = listing["items"][0]
    assert item["bid_count"] == 3 and item["need_external_id"] is None  # not the poster
    assert client.get("/api/v1/bounties/BT-1", headers=b).json()["need_external_id"] == "N-B2"

    def ids(h: dict[str, str]) -> list[str]:
        r = client.get("/api/v1/bounties/BT-1/bids", headers=h)
        return [x["external_id"] for x in r.json()["items"]]

    assert ids(a) == ["BID-A"]
    assert ids(b) == ["BID-B"]
    assert ids(staff) == ["BID-A", "BID-U", "BID-B"]
    assert client.get("/api/v1/bounties/NOPE", headers=a).status_code == 404


def test_respondents_and_bid_ranking(client, world, handle) -> None:
    a, b, staff = (bearer(world.keys[k]) for k in ("ent_a", "ent_b", "staff"))
    assert client.get("/api/v1/bounties/BT-1/respondents", headers=a).status_code == 404
    r = client.get("/api/v1/bounties/BT-1/respondents", headers=b)  # the poster
    assert r.status_code == 200 and r.json()["excluded"] == []
    assert [s["org_id"] for s in r.json()["suggestions"]] == ["UNI-1", "INST-1"]
    r = client.get("/api/v1/bounties/BT-1/bid-ranking", headers=staff)
    assert r.status_code == 200, r.text
    ranking = r.json()["ranking"]
    assert [x["bid_external_id"] for x in ranking][0] == "BID-U"
    assert {x["bid_external_id"] for x in ranking} == {"BID-A", "BID-U", "BID-B"}
    ineligible = [x for x in ranking if not x["detail"]["eligible"]]
    assert {x["respondent_org_external_id"] for x in ineligible} == {"ENT-A", "ENT-B"}
    assert [x["rank"] for x in ranking] == [1, 2, 3]
    assert client.get("/api/v1/bounties/BT-1/bid-ranking", headers=b).status_code == 403


def test_users_admin_only(client, world) -> None:
    admin, staff = bearer(world.keys["admin"]), bearer(world.keys["staff"])
    assert client.get("/api/v1/users", headers=staff).status_code == 403
    r = client.post(
        "/api/v1/users", headers=admin, json={"username": "ent-c", "role": "enterprise"}
    )
    assert r.status_code == 422 and "organisation" in r.json()["detail"]
    r = client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": "ent-a2", "role": "enterprise", "org_external_id": "ENT-A"},
    )
    assert r.status_code == 201
    key = r.json()["api_key"]
    assert key.startswith("dj_") and r.json()["user"]["api_keys"] == [key.split("_")[1]]
    me = client.get("/api/v1/auth/me", headers=bearer(key)).json()
    assert me["org_external_id"] == "ENT-A"
    users = client.get("/api/v1/users", headers=admin).json()
    assert users["total"] == 7  # six fixture users and the new one
    assert all("key_hash" not in u and "password_hash" not in u for u in users["items"])
    actions = [e["action"] for e in client.get("/api/v1/audit", headers=admin).json()["items"]]
    assert "user.create" in actions


def test_error_bodies_are_consistent(client, world, handle) -> None:
    staff = bearer(world.keys["staff"])
    for r in (
        client.get("/api/v1/needs/NOPE", headers=staff),
        client.get("/api/v1/nothing-here", headers=staff),
        client.post("/api/v1/suggestions", json={"k": 3}, headers=staff),
        client.delete("/api/v1/needs/N-A1", headers=staff),
        client.get("/api/v1/needs"),
    ):
        assert set(r.json()) >= {"detail", "code"}, r.json()
        assert isinstance(r.json()["detail"], str)
    handle.swap(None, "none")
    r = client.post("/api/v1/suggestions", json={"need_id": "N-A1"}, headers=staff)
    assert r.status_code == 503 and r.json()["code"] == "index_not_ready"


def test_healthz_and_metrics(client, world, handle) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "database": True,
        "index": {"ready": True, "build_id": "build-1"},
    }
    client.post(
        "/api/v1/suggestions", json={"need_id": "N-A1"}, headers=bearer(world.keys["ent_a"])
    )
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(world.keys["ent_a"])).status_code == 403
    text = client.get("/metrics", headers=bearer(world.keys["staff"])).text
    assert (
        'duijie_http_requests_total{method="POST",route="/api/v1/suggestions",status="200"} 1.0'
        in text
    )
    assert 'duijie_index_build_info{build_id="build-1"} 1.0' in text
    assert 'duijie_suggestion_duration_seconds_count{op="need"} 1.0' in text
    handle.swap(None, "none")
    assert client.get("/healthz").json()["status"] == "degraded"
