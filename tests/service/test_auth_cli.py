# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""``duijie users`` and ``duijie serve --demo-credentials`` (credential creation)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.cli import main
from service.commands.serve import ensure_demo_credentials, format_demo
from service.main import create_app
from service.settings import get_settings
from tests.service.api_support import (  # noqa: F401
    FakeHandle,
    FakeRecommender,
    World,
    bearer,
    world,
    world_template,
)


@pytest.fixture
def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("DUIJIE_DATABASE_URL", world.settings.resolved_database_url)
    monkeypatch.setenv("DUIJIE_SECRET_KEY", world.settings.secret_key)
    get_settings.cache_clear()
    yield world
    get_settings.cache_clear()


def _app(w: World) -> TestClient:
    return TestClient(
        create_app(w.settings, session_factory=w.factory, recommender=FakeHandle(FakeRecommender()))
    )


def test_users_create_list_revoke(cli_env: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["users", "create", "--role", "enterprise", "--org", "ENT-B", "--username", "ent-b-2"])
        == 0
    )
    out = capsys.readouterr().out
    key = re.search(r"^(dj_[0-9a-f]{8}_\S+)$", out, flags=re.M)
    assert key, out
    with _app(cli_env) as c:
        me = c.get("/api/v1/auth/me", headers=bearer(key.group(1))).json()
        assert me["username"] == "ent-b-2" and me["org_external_id"] == "ENT-B"
        assert main(["users", "list"]) == 0
        listing = capsys.readouterr().out
        assert "ent-b-2" in listing and key.group(1).split("_")[1] in listing
        assert key.group(1) not in listing  # the secret is never shown again
        assert main(["users", "revoke", "ent-b-2"]) == 0
        assert "1 key(s) revoked" in capsys.readouterr().out
        assert c.get("/api/v1/auth/me", headers=bearer(key.group(1))).status_code == 401


def test_users_create_errors(cli_env: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "create", "--role", "enterprise"]) == 1
    assert "organisation" in capsys.readouterr().err
    assert main(["users", "create", "--role", "staff", "--username", "staff"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["users", "create", "--role", "enterprise", "--org", "NOPE"]) == 1


def test_demo_credentials_idempotent(world: World) -> None:
    first = ensure_demo_credentials(world.factory, password="demo-pass-1")
    second = ensure_demo_credentials(world.factory)
    assert first.enterprise_org == "ENT-A" and first.enterprise_need == "N-A1"
    assert second.staff_password != "demo-pass-1"
    text = format_demo(second, "http://127.0.0.1:8000")
    assert second.enterprise_key in text and "curl" in text and second.staff_password in text
    with _app(world) as c:
        # the refreshed keys work, the replaced ones do not
        assert c.get("/api/v1/auth/me", headers=bearer(second.enterprise_key)).status_code == 200
        assert c.get("/api/v1/auth/me", headers=bearer(first.enterprise_key)).status_code == 401
        assert c.get("/api/v1/users", headers=bearer(second.admin_key)).status_code == 200
        r = c.post(
            "/api/v1/auth/login", json={"username": "staff", "password": second.staff_password}
        )
        assert r.status_code == 200 and r.json()["role"] == "staff"
        users = c.get(
            "/api/v1/users", params={"limit": 200}, headers=bearer(second.admin_key)
        ).json()
        names = [u["username"] for u in users["items"]]
        assert names.count("demo-admin") == 1 and names.count("demo-enterprise") == 1
