# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Sessions that cannot be forged or outlive a logout, the per-install secret, dev mode, and
the store-backed login throttle (per username and per client address, across workers)."""

from __future__ import annotations

import argparse
import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service import auth, crud
from service.db import session_scope
from service.main import create_app
from service.sessions import LoginThrottle
from service.settings import (
    DEV_SECRET_KEY,
    SECRET_FILE,
    Settings,
    SettingsError,
    load_settings,
    session_secret,
)
from tests.service.api_support import (  # noqa: F401 (fixtures)
    PASSWORD,
    FakeHandle,
    FakeRecommender,
    World,
    bearer,
    client,
    handle,
    world,
    world_template,
)


def _app(world: World, settings: Settings | None = None) -> TestClient:
    app = create_app(
        settings or world.settings,
        session_factory=world.factory,
        recommender=FakeHandle(FakeRecommender()),
    )
    return TestClient(app)


def _passwordless_admin(world: World) -> int:
    with session_scope(world.factory) as s:
        user, _key = crud.create_user(s, username="key-only-admin", role="admin")
        return user.id


def _forge(secret: str, uid: int, fingerprint: str, sid: str = "forged-sid") -> str:
    """A cookie signed by hand, as the attack in the field report did."""
    body = auth._b64(
        f'{{"uid":{uid},"sid":"{sid}","exp":9999999999,"pfp":"{fingerprint}"}}'.encode()
    )
    return f"{body}.{auth._mac(secret, 'session', body)}"


NEW_USER = {"username": "intruder", "role": "admin", "with_api_key": True}


def test_forged_cookie_with_the_public_key_is_refused(world: World, tmp_path: Path) -> None:
    """The reported attack: the default settings, a user without a password (constant
    fingerprint), a cookie and CSRF token signed with the public dev key → POST /users."""
    uid = _passwordless_admin(world)
    settings = Settings(data_dir=tmp_path / "install")  # nothing configured, like a fresh install
    constant_fp = hashlib.sha256(b"").hexdigest()[:16]
    with _app(world, settings) as c:
        c.cookies.set(auth.SESSION_COOKIE, _forge(DEV_SECRET_KEY, uid, constant_fp))
        headers = {auth.CSRF_HEADER: auth.csrf_token(DEV_SECRET_KEY, "forged-sid")}
        r = c.post("/api/v1/users", json=NEW_USER, headers=headers)
        assert r.status_code == 401, r.text
    with session_scope(world.factory) as s:
        assert crud.list_users(s, limit=100, offset=0)[1] == len(world.user_ids) + 1


def test_forged_cookie_with_the_real_secret_still_needs_a_session(world: World) -> None:
    """Even someone holding the signing secret cannot mint a session: the sid must be a live
    server-side session, and the fingerprint is keyed per user."""
    uid = _passwordless_admin(world)
    secret = world.settings.secret_key
    fp = auth.session_fingerprint(secret, uid, None)
    assert fp != auth.session_fingerprint(secret, uid + 1, None)  # per user, even without pw
    with _app(world) as c:
        c.cookies.set(auth.SESSION_COOKIE, _forge(secret, uid, fp, sid="made-up"))
        headers = {auth.CSRF_HEADER: auth.csrf_token(secret, "made-up")}
        assert c.post("/api/v1/users", json=NEW_USER, headers=headers).status_code == 401


def _login(c: TestClient, username: str = "staff", password: str = PASSWORD) -> Any:
    return c.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_logout_revokes_the_session_server_side(world: World) -> None:
    with _app(world) as c:
        r = _login(c)
        assert r.status_code == 200
        cookie = c.cookies.get(auth.SESSION_COOKIE)
        csrf = r.json()["csrf_token"]
        assert c.post("/api/v1/auth/logout", headers={auth.CSRF_HEADER: csrf}).status_code == 204
        c.cookies.set(auth.SESSION_COOKIE, cookie)  # replay the cookie the browser dropped
        assert c.get("/api/v1/auth/me").status_code == 401


def test_admin_revokes_a_users_sessions(world: World) -> None:
    with _app(world) as c, _app(world) as other:
        assert _login(c).status_code == 200
        assert _login(other).status_code == 200  # a second browser
        assert c.get("/api/v1/auth/me").status_code == 200
        uid = world.user_ids["staff"]
        assert (
            c.post(f"/api/v1/users/{uid}/sessions/revoke", headers=bearer(world.keys["staff"]))
        ).status_code == 403
        r = c.post(f"/api/v1/users/{uid}/sessions/revoke", headers=bearer(world.keys["admin"]))
        assert r.status_code == 200 and r.json() == {"user_id": uid, "sessions_revoked": 2}
        assert c.get("/api/v1/auth/me").status_code == 401
        assert other.get("/api/v1/auth/me").status_code == 401
        # The account itself still works: a new login gets a new session.
        assert _login(c).status_code == 200 and c.get("/api/v1/auth/me").status_code == 200


def test_staff_page_logout_revokes_the_session(world: World) -> None:
    import re

    with _app(world) as c:
        page = c.get("/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = c.post(
            "/staff/login",
            data={"username": "staff", "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        cookie = c.cookies.get(auth.SESSION_COOKIE)
        page = c.get("/staff/campaigns")
        assert page.status_code == 200
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        c.post("/staff/logout", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
        c.cookies.set(auth.SESSION_COOKIE, cookie)
        assert c.get("/api/v1/auth/me").status_code == 401


# --- secrets ----------------------------------------------------------------------------


def test_install_secret_is_random_private_and_stable(tmp_path: Path) -> None:
    a = session_secret(Settings(data_dir=tmp_path))
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert a.secret_key and a.secret_key != DEV_SECRET_KEY and len(a.secret_key) >= 32
    assert session_secret(Settings(data_dir=tmp_path)).secret_key == a.secret_key
    assert session_secret(Settings(data_dir=tmp_path / "other")).secret_key != a.secret_key
    configured = Settings(data_dir=tmp_path / "x", secret_key="s" * 40)
    assert session_secret(configured).secret_key == "s" * 40
    assert not (tmp_path / "x" / SECRET_FILE).exists()


@pytest.mark.parametrize("secret", [DEV_SECRET_KEY, "changeme", "dev-key-1234567890", "short"])
def test_public_or_weak_secret_refused_outside_dev(secret: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="DUIJIE_SECRET_KEY"):
        load_settings(data_dir=tmp_path, secret_key=secret)
    with pytest.raises(SettingsError):
        load_settings(data_dir=tmp_path, secret_key=secret, environment="prod")
    assert load_settings(data_dir=tmp_path, secret_key=secret, environment="dev").dev_mode


def _serve_args(**kw: Any) -> argparse.Namespace:
    base = {"host": None, "port": None, "workers": 1, "demo_credentials": False}
    base["log_level"] = "warning"
    base.update(kw)
    return argparse.Namespace(**base)


def test_serve_dev_mode_binds_loopback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from service.commands import serve
    from service.settings import get_settings

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("DUIJIE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DUIJIE_ENVIRONMENT", "dev")
    get_settings.cache_clear()
    try:
        assert serve.cmd_serve(_serve_args(host="0.0.0.0")) == 0
        assert seen["host"] == "127.0.0.1"
        assert "127.0.0.1" in capsys.readouterr().out
        monkeypatch.delenv("DUIJIE_ENVIRONMENT")
        get_settings.cache_clear()
        assert serve.cmd_serve(_serve_args(host="0.0.0.0")) == 0
        assert seen["host"] == "0.0.0.0"
        assert serve.cmd_serve(_serve_args(demo_credentials=True)) == 2  # dev mode only
        assert (tmp_path / SECRET_FILE).exists()
    finally:
        get_settings.cache_clear()


# --- throttle ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _throttled_app(world: World, clock: Clock) -> TestClient:
    c = _app(world)
    c.app.state.login_throttle = LoginThrottle(clock=clock)  # type: ignore[attr-defined]
    return c


def test_locked_account_accepts_right_password_after_short_backoff(world: World) -> None:
    clock = Clock()
    with _throttled_app(world, clock) as c:
        for _ in range(5):
            assert _login(c, password="wrong-pw").status_code == 401
        # An attacker keeps failing, each time as soon as the back-off allows.
        for _ in range(20):
            r = _login(c, password="wrong-pw")
            assert r.status_code == 429
            wait = int(r.headers["Retry-After"])
            assert wait <= 30  # the back-off is capped: never a permanent lock-out
            clock.now += wait
            assert _login(c, password="wrong-pw").status_code == 401
        r = _login(c)
        assert r.status_code == 429  # held right after a failure, even with the right password
        clock.now += int(r.headers["Retry-After"])
        assert _login(c).status_code == 200


def test_throttle_per_client_address_and_across_workers(world: World) -> None:
    clock = Clock()
    with _throttled_app(world, clock) as worker1, _throttled_app(world, clock) as worker2:
        for i in range(20):  # one address, many usernames: each username stays under its limit
            assert _login(worker1, username=f"guess-{i}", password="x").status_code == 401
        # The address is held on the other worker too (the counters live in the store) ...
        r = _login(worker2, username="staff")
        assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"
        clock.now += int(r.headers["Retry-After"])
        assert _login(worker2, username="staff").status_code == 200


def test_username_failures_count_on_every_worker(world: World) -> None:
    clock = Clock()
    with _throttled_app(world, clock) as worker1, _throttled_app(world, clock) as worker2:
        for w in (worker1, worker2, worker1, worker2, worker1):
            assert _login(w, username="admin", password="wrong").status_code == 401
        assert _login(worker2, username="admin").status_code == 429
        assert _login(worker2, username="staff").status_code == 200  # other users unaffected


def test_cli_logout_ends_sessions(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.cli import main
    from service.settings import get_settings

    monkeypatch.setenv("DUIJIE_DATABASE_URL", world.settings.resolved_database_url)
    monkeypatch.setenv("DUIJIE_SECRET_KEY", world.settings.secret_key)
    get_settings.cache_clear()
    try:
        with _app(world) as c:
            assert _login(c).status_code == 200
            assert main(["users", "logout", "staff"]) == 0
            assert c.get("/api/v1/auth/me").status_code == 401
    finally:
        get_settings.cache_clear()
