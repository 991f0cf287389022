# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Suggestions, shortlist decisions (optimistic locking), campaigns, re-index, hot reload."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.service.api_support import (  # noqa: F401 (fixtures)
    FakeRecommender,
    bearer,
    client,
    handle,
    world,
    world_template,
)


def test_suggestions_for_own_need_strip_foreign_evidence(client, world, handle) -> None:
    a = bearer(world.keys["ent_a"])
    r = client.post("/api/v1/suggestions", json={"need_id": "N-A1", "k": 5}, headers=a)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["org_id"] for s in body["suggestions"]] == ["UNI-1", "INST-1"]
    assert body["suggestions"][0]["org_name"] == "广西大学"
    docs = [e["doc_id"] for s in body["suggestions"] for e in s["evidence"]]
    assert docs == ["C-U1", "C-I1"]  # the fake cited N-B1: removed for an enterprise
    assert body["excluded"] == []  # exclusions are staff-only
    staff = client.post(
        "/api/v1/suggestions", json={"need_id": "N-A1"}, headers=bearer(world.keys["staff"])
    ).json()
    assert "N-B1" in [e["doc_id"] for e in staff["suggestions"][0]["evidence"]]
    assert staff["excluded"][0] == {
        "org_id": "ENT-B",
        "code": "SAME_GROUP",
        "label": "同一集团(上下级)",
        "member_id": None,
        "detail": "",
        "score": 0.7,
    }


def test_suggestions_other_enterprise_404(client, world, handle) -> None:
    a = bearer(world.keys["ent_a"])
    for body in ({"need_id": "N-B1"}, {"need_id": "N-B2"}, {"enterprise_id": "ENT-B"}):
        r = client.post("/api/v1/suggestions", json=body, headers=a)
        assert r.status_code == 404, body
    assert all(c[1] not in ("N:N-B1", "N:N-B2", "ENT-B") for c in handle.get().calls)
    r = client.post(
        "/api/v1/suggestions", json={"need_id": "N-A1", "enterprise_id": "ENT-A"}, headers=a
    )
    assert r.status_code == 422


def test_enterprise_suggestions_drop_foreign_query_id(client, world) -> None:
    r = client.post(
        "/api/v1/suggestions", json={"enterprise_id": "ENT-A"}, headers=bearer(world.keys["ent_a"])
    )
    assert r.status_code == 200
    second = r.json()["suggestions"][1]
    assert second["query_id"] is None and second["evidence"] == []
    assert "N-B1" not in r.text


def test_match_uses_viewer_and_filters(client, world, handle) -> None:
    r = client.post(
        "/api/v1/match", json={"text": "废水处理", "k": 3}, headers=bearer(world.keys["ent_a"])
    )
    assert r.status_code == 200
    assert [e["doc_id"] for e in r.json()["suggestions"][0]["evidence"]] == ["C-I1"]
    assert handle.get().calls[-1] == ("text", "ENT-A")
    assert (
        client.post(
            "/api/v1/match", json={"text": ""}, headers=bearer(world.keys["ent_a"])
        ).status_code
        == 422
    )


def test_pair_scores(client, world) -> None:
    a = bearer(world.keys["ent_a"])
    r = client.post(
        "/api/v1/pair-scores", json={"pairs": [{"need_id": "N-A1", "org_id": "UNI-1"}]}, headers=a
    )
    assert r.status_code == 200 and r.json()["scores"][0]["score"] == 0.5
    r = client.post(
        "/api/v1/pair-scores", json={"pairs": [{"need_id": "N-B1", "org_id": "UNI-1"}]}, headers=a
    )
    assert r.status_code == 404
    r = client.post(
        "/api/v1/pair-scores", json={"pairs": [{"need_id": "N-A1", "org_id": "ZZZ"}]}, headers=a
    )
    assert r.status_code == 404 and r.json()["code"] == "unknown_entity"
    r = client.post(
        "/api/v1/pair-scores",
        json={"pairs": [{"need_id": "N-A1", "org_id": "UNI-1"}] * 201},
        headers=a,
    )
    assert r.status_code == 422


def test_decision_version_conflict(client, world) -> None:
    staff, admin = bearer(world.keys["staff"]), bearer(world.keys["admin"])
    item = world.ids["item_a"]
    got = client.get(f"/api/v1/shortlists/{item}", headers=staff).json()
    assert got["version"] == 1 and got["evidence"] == {"documents": [{"doc_id": "C-U1"}]}
    r1 = client.post(
        f"/api/v1/shortlists/{item}/decision",
        json={"action": "approve", "version": 1},
        headers=staff,
    )
    assert r1.status_code == 200 and r1.json()["status"] == "approved" and r1.json()["version"] == 2
    r2 = client.post(
        f"/api/v1/shortlists/{item}/decision",
        json={"action": "reject", "version": 1, "note": "不合适"},
        headers=admin,
    )
    assert r2.status_code == 409 and r2.json()["code"] == "version_conflict"
    final = client.get(f"/api/v1/shortlists/{item}", headers=staff).json()
    assert final["status"] == "approved" and final["note"] == "" and final["version"] == 2
    assert final["decided_by"] == world.user_ids["staff"]
    # lock blocks approve/reject but not notes
    r = client.post(
        f"/api/v1/shortlists/{item}/decision", json={"action": "lock", "version": 2}, headers=staff
    )
    assert r.json()["locked"] is True
    r = client.post(
        f"/api/v1/shortlists/{item}/decision",
        json={"action": "reject", "version": 3},
        headers=staff,
    )
    assert r.status_code == 409 and r.json()["code"] == "locked"
    r = client.post(
        f"/api/v1/shortlists/{item}/decision",
        json={"action": "note", "version": 3, "note": "已电话沟通"},
        headers=staff,
    )
    assert r.status_code == 200 and r.json()["note"] == "已电话沟通"
    audit = client.get("/api/v1/audit", params={"entity": "shortlist_item"}, headers=staff).json()
    assert [e["action"] for e in audit["items"]] == [
        "shortlist.note",
        "shortlist.lock",
        "shortlist.approve",
    ]


def test_concurrent_decisions_exactly_one_wins(client, world) -> None:
    item = world.ids["item_b"]
    barrier = threading.Barrier(8)

    def decide(i: int) -> int:
        barrier.wait()
        action = "approve" if i % 2 else "reject"
        return client.post(
            f"/api/v1/shortlists/{item}/decision",
            json={"action": action, "version": 1, "note": f"n{i}"},
            headers=bearer(world.keys["staff" if i % 2 else "admin"]),
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(decide, range(8)))
    assert sorted(codes) == [200] + [409] * 7
    final = client.get(f"/api/v1/shortlists/{item}", headers=bearer(world.keys["staff"])).json()
    assert final["version"] == 2
    n = client.get(
        "/api/v1/audit", params={"entity": "shortlist_item"}, headers=bearer(world.keys["staff"])
    ).json()["total"]
    assert n == 1


def _wait_status(client, headers, cid: int, want: set[str], timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = client.get(f"/api/v1/campaigns/{cid}", headers=headers).json()
        if c["status"] in want:
            return c
        time.sleep(0.02)
    raise AssertionError(f"campaign {cid} stuck: {c}")


def test_campaign_run_pairs_and_result(client, world, handle) -> None:
    staff = bearer(world.keys["staff"])
    r = client.post(
        "/api/v1/campaigns",
        json={"name": "秋季结对", "params": {"k": 1, "capacity": 1}, "run": True},
        headers=staff,
    )
    assert r.status_code == 201, r.text
    assert r.json()["params"] == {"k": 1, "capacity": 1}
    cid = r.json()["id"]
    done = _wait_status(client, staff, cid, {"done", "failed"})
    assert done["status"] == "done", done
    assert done["progress"] == 1.0
    summary = done["summary"]
    assert (summary["solver"], summary["enterprises"], summary["pairs"]) == ("mincostflow", 2, 2)
    result = client.get(f"/api/v1/campaigns/{cid}/result", headers=staff).json()
    rows = [
        (i["enterprise_external_id"], i["kind"], i["institute_external_id"], i["score"])
        for i in result["items"]["items"]
    ]
    # capacity 1: the optimum (0.9 + 0.7) gives UNI-1 to A and INST-1 to B; the other
    # institute is each one's alternate (full, so no spare capacity)
    assert rows == [
        ("ENT-A", "assigned", "UNI-1", 0.9),
        ("ENT-A", "alternate", "INST-1", 0.6),
        ("ENT-B", "assigned", "INST-1", 0.7),
        ("ENT-B", "alternate", "UNI-1", 0.8),
    ]
    first = result["items"]["items"][0]
    assert first["need_external_id"] == "N-A1"
    assert first["evidence"]["documents"][0]["doc_id"] == "C-U1"
    # explanations reuse the matrix's matches: one matrix call, no per-item retrieval
    rec = handle.get()
    assert [c for c in rec.calls if c[0] not in ("matrix", "explain")] == []
    assert sum(c[0] == "matrix" for c in rec.calls) == 1
    r = client.post(f"/api/v1/campaigns/{cid}/run", headers=staff)
    assert r.status_code == 409 and r.json()["code"] == "not_runnable"
    assert (
        client.post("/api/v1/campaigns", json={"name": "秋季结对"}, headers=staff).status_code
        == 409
    )


@pytest.mark.parametrize(
    "params",
    [
        {"k": -5},
        {"k": 0},
        {"capacity": 10**30},
        {"top": 0},
        {"floor": "nan"},
        {"alternates": 99},
        {"solver": "hungarian"},
        {"fair": True, "solver": "lp"},
        {"locked": [["ENT-A"]]},
        {"capacity_overrides": {"UNI-1": -1}},
        {"unknown_key": 1},
    ],
)
def test_campaign_params_are_validated_at_the_door(client, world, params) -> None:
    staff = bearer(world.keys["staff"])
    r = client.post(
        "/api/v1/campaigns", json={"name": "坏参数", "params": params, "run": True}, headers=staff
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_request"
    assert r.json()["errors"][0]["loc"][:2] == ["body", "params"]
    listed = client.get("/api/v1/campaigns", headers=staff).json()["items"]
    assert "坏参数" not in [c["name"] for c in listed]


def test_stored_invalid_params_refuse_to_start(client, world) -> None:
    from sqlalchemy import update

    from service.db import session_scope
    from service.models import Campaign

    staff = bearer(world.keys["staff"])
    cid = world.ids["fresh_campaign"]
    with session_scope(world.factory) as s:  # a row written before params were validated
        s.execute(update(Campaign).where(Campaign.id == cid).values(params={"k": -5}))
    r = client.post(f"/api/v1/campaigns/{cid}/run", headers=staff)
    assert r.status_code == 422 and r.json()["code"] == "invalid_parameter"
    assert client.get(f"/api/v1/campaigns/{cid}", headers=staff).json()["status"] == "created"


class _SlowRecommender(FakeRecommender):
    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def enterprise_matrix(self, enterprise_ids: Any, org_ids: Any, **kw: Any) -> Any:
        self.gate.wait(5)
        return super().enterprise_matrix(enterprise_ids, org_ids, **kw)


def test_campaign_cancel_and_failure(client, world, handle) -> None:
    staff = bearer(world.keys["staff"])
    gate = threading.Event()
    handle.swap(_SlowRecommender(gate), "slow")
    cid = client.post(
        "/api/v1/campaigns", json={"name": "取消测试", "run": True}, headers=staff
    ).json()["id"]
    _wait_status(client, staff, cid, {"running"})
    r = client.post(f"/api/v1/campaigns/{cid}/cancel", headers=staff)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    gate.set()
    client.app.state.campaign_runner.wait(cid, timeout=10)
    c = client.get(f"/api/v1/campaigns/{cid}", headers=staff).json()
    assert c["status"] == "cancelled"
    assert (
        client.get(f"/api/v1/campaigns/{cid}/result", headers=staff).json()["items"]["total"] == 0
    )
    assert client.post(f"/api/v1/campaigns/{cid}/cancel", headers=staff).status_code == 409
    # a failing solve is recorded, not raised
    handle.swap(None, "none")
    r = client.post(f"/api/v1/campaigns/{cid}/run", headers=staff)
    assert r.status_code == 202
    client.app.state.campaign_runner.wait(cid, timeout=10)
    c = client.get(f"/api/v1/campaigns/{cid}", headers=staff).json()
    assert c["status"] == "failed" and "IndexNotReady" in c["error"]


def test_campaign_cancelled_through_the_database(client, world, handle) -> None:
    """A cancel written by another process (only the row changes) stops the run here too."""
    from sqlalchemy import update

    from service.db import session_scope
    from service.models import Campaign

    staff = bearer(world.keys["staff"])
    gate = threading.Event()
    handle.swap(_SlowRecommender(gate), "slow")
    cid = client.post(
        "/api/v1/campaigns", json={"name": "跨进程取消", "run": True}, headers=staff
    ).json()["id"]
    _wait_status(client, staff, cid, {"running"})
    with session_scope(world.factory) as s:
        s.execute(update(Campaign).where(Campaign.id == cid).values(status="cancelled"))
    gate.set()
    client.app.state.campaign_runner.wait(cid, timeout=10)
    c = client.get(f"/api/v1/campaigns/{cid}/result", headers=staff).json()
    assert c["campaign"]["status"] == "cancelled"
    assert c["items"]["total"] == 0


def test_reindex_admin_only_background(client, world, monkeypatch) -> None:
    ran = threading.Event()
    monkeypatch.setattr(
        "service.api.routes.index.run_reindex", lambda settings, **_: (ran.set(), "build-2")[1]
    )
    assert (
        client.post("/api/v1/index/reindex", headers=bearer(world.keys["staff"])).status_code == 403
    )
    r = client.post("/api/v1/index/reindex", headers=bearer(world.keys["admin"]))
    assert r.status_code == 202 and r.json()["started"] is True
    assert ran.wait(5)
    client.app.state.reindex.thread.join(5)
    st = client.get("/api/v1/index/status", headers=bearer(world.keys["staff"])).json()
    assert st["ready"] is True and st["reindex"]["running"] is False
    assert st["reindex"]["result"] == "build-2" and st["reindex"]["by"] == "admin"
    audit = client.get(
        "/api/v1/audit", params={"action": "index.reindex"}, headers=bearer(world.keys["admin"])
    ).json()
    assert audit["total"] == 1


@pytest.mark.parametrize("n_switches", [20])
def test_hot_reload_no_failed_requests(client, world, handle, n_switches: int) -> None:
    """Suggestions keep answering 200 while the handle switches builds underneath.

    Uses the fake handle (the real RecommenderHandle is tested the same way in
    test_api_hot_reload_real.py once service.recommender exists)."""
    a = bearer(world.keys["ent_a"])
    stop = threading.Event()
    codes: list[int] = []

    def hammer() -> None:
        while not stop.is_set():
            codes.append(
                client.post("/api/v1/suggestions", json={"need_id": "N-A1"}, headers=a).status_code
            )

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    i = 0
    while (i < n_switches or len(codes) < 200) and time.monotonic() < deadline:
        handle.swap(FakeRecommender(tag=f"v{i}"), f"build-{i}")
        i += 1
        time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join()
    assert len(codes) >= 200 and i >= n_switches
    assert set(codes) == {200}


class _SleepyRecommender(FakeRecommender):
    def rank_for_need(self, need_id: str, k: int = 10, **kw: Any) -> Any:
        time.sleep(1.0)
        return super().rank_for_need(need_id, k, **kw)


def test_model_calls_do_not_hold_db_connections(world) -> None:
    """With a one-connection pool, concurrent slow suggestions and a plain read all succeed:
    routes give the connection back before calling the recommender."""
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from service.main import create_app
    from tests.service.api_support import FakeHandle

    url = world.settings.resolved_database_url
    engine = create_engine(
        url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=1.5,
        connect_args={"check_same_thread": False} if url.startswith("sqlite") else {},
    )
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    app = create_app(
        world.settings, session_factory=factory, recommender=FakeHandle(_SleepyRecommender())
    )
    a = bearer(world.keys["ent_a"])
    with TestClient(app) as client:

        def suggest(_: int) -> int:
            return client.post(
                "/api/v1/suggestions", json={"need_id": "N-A1"}, headers=a
            ).status_code

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(suggest, i) for i in range(4)]
            time.sleep(0.3)
            assert client.get("/api/v1/needs", headers=a).status_code == 200
            codes = [f.result() for f in futures]
    engine.dispose()
    assert codes == [200] * 4
