# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Auth primitives (service/auth.py) and how the API applies them."""

from __future__ import annotations

import time

import pytest

from service import auth
from tests.service.api_support import (  # noqa: F401 (fixtures)
    PASSWORD,
    bearer,
    client,
    handle,
    world,
    world_template,
)

SECRET = "unit-test-secret"


def test_api_key_roundtrip_and_format() -> None:
    new = auth.generate_api_key()
    assert new.key.startswith(f"dj_{new.prefix}_")
    assert auth.parse_api_key(new.key) == new.prefix
    assert auth.api_key_matches(new.key, new.key_hash)
    assert not auth.api_key_matches(new.key + "x", new.key_hash)
    assert new.key not in new.key_hash and len(new.key_hash) == 64
    for bad in ("", "dj_", "xx_0123abcd_" + "a" * 40, "dj_XYZ_" + "a" * 40, "dj_0123abcd_short"):
        assert auth.parse_api_key(bad) is None
    assert auth.generate_api_key().key != new.key


def test_password_hash_verify() -> None:
    h = auth.hash_password("s3cret-pw")
    assert h.startswith("scrypt$") and "s3cret-pw" not in h
    assert auth.verify_password("s3cret-pw", h)
    assert not auth.verify_password("s3cret-pW", h)
    assert auth.hash_password("s3cret-pw") != h  # salted
    for broken in (None, "", "md5$x", "scrypt$1$2$3", "scrypt$x$8$1$AA$AA"):
        assert not auth.verify_password("s3cret-pw", broken)


def test_session_cookie_sign_tamper_expire() -> None:
    v = auth.make_session_cookie(SECRET, user_id=7, password_hash="h1")
    data = auth.read_session_cookie(SECRET, v)
    assert data is not None and data.user_id == 7
    assert data.password_fp == auth.session_fingerprint(SECRET, 7, "h1")
    assert auth.read_session_cookie("other-secret", v) is None
    body, sig = v.rsplit(".", 1)
    assert (
        auth.read_session_cookie(SECRET, body + "." + sig[:-1] + ("A" if sig[-1] != "A" else "B"))
        is None
    )
    forged = auth._b64(b'{"uid":1,"sid":"x","exp":9999999999,"pfp":""}')
    assert auth.read_session_cookie(SECRET, forged + "." + sig) is None
    old = auth.make_session_cookie(
        SECRET, user_id=7, password_hash="h1", ttl_s=10, now=time.time() - 100
    )
    assert auth.read_session_cookie(SECRET, old) is None
    assert auth.read_session_cookie(SECRET, None) is None
    assert auth.read_session_cookie(SECRET, "garbage") is None


def test_csrf_tokens() -> None:
    tok = auth.csrf_token(SECRET, "sid-1")
    assert auth.check_csrf(SECRET, "sid-1", tok)
    assert not auth.check_csrf(SECRET, "sid-2", tok)
    assert not auth.check_csrf(SECRET, "sid-1", None)
    assert not auth.check_csrf(SECRET, None, tok)
    t = auth.new_login_csrf()
    assert auth.check_double_submit(t, t)
    assert not auth.check_double_submit(t, t + "x")
    assert not auth.check_double_submit(None, t)


@pytest.mark.parametrize(
    ("role", "allowed", "ok"),
    [
        ("admin", ("staff",), True),
        ("staff", ("admin",), False),
        ("enterprise", ("staff",), False),
        ("enterprise", ("enterprise", "staff"), True),
        ("staff", ("staff",), True),
    ],
)
def test_role_allows(role: str, allowed: tuple[str, ...], ok: bool) -> None:
    assert auth.role_allows(role, allowed) is ok


def test_bearer_and_x_api_key(client, world) -> None:
    key = world.keys["ent_a"]
    for headers in (bearer(key), {"X-API-Key": key}):
        r = client.get("/api/v1/auth/me", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["org_external_id"] == "ENT-A"
        assert r.json()["role"] == "enterprise"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer dj_00000000_" + "a" * 43},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"X-API-Key": "not-a-key"},
        {"Authorization": "Bearer "},
    ],
)
def test_bad_credentials_401(client, headers) -> None:
    r = client.get("/api/v1/needs", headers=headers)
    assert r.status_code == 401
    assert set(r.json()) == {"detail", "code"}
    assert r.headers["www-authenticate"] == "Bearer"


def test_wrong_secret_with_valid_prefix_401(client, world) -> None:
    key = world.keys["staff"]
    forged = key[: key.rindex("_") + 1] + "x" * 43
    assert client.get("/api/v1/needs", headers=bearer(forged)).status_code == 401


def test_revoked_key_and_inactive_user(client, world) -> None:
    admin = bearer(world.keys["admin"])
    assert client.get("/api/v1/auth/me", headers=bearer(world.keys["ent_b"])).status_code == 200
    r = client.post(f"/api/v1/users/{world.user_ids['ent_b']}/revoke", headers=admin)
    assert r.status_code == 200 and r.json()["active"] is False and r.json()["api_keys"] == []
    r = client.get("/api/v1/auth/me", headers=bearer(world.keys["ent_b"]))
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"


def test_session_login_csrf_logout(client, world) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "staff", "password": "wrong-pw"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    r = client.post("/api/v1/auth/login", json={"username": "staff", "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf_token"]
    log = client.get(
        "/api/v1/audit", params={"entity": "user"}, headers=bearer(world.keys["staff"])
    )
    assert [(e["action"], e["user_id"]) for e in log.json()["items"]] == [
        ("auth.login", world.user_ids["staff"]),
        ("auth.login_failed", None),
    ]
    cookie = r.cookies.get(auth.SESSION_COOKIE) or client.cookies.get(auth.SESSION_COOKIE)
    assert cookie
    assert "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=lax" in r.headers["set-cookie"].lower()
    # Reads work with the cookie alone.
    assert client.get("/api/v1/needs").status_code == 200
    me = client.get("/api/v1/auth/me").json()
    assert me["via"] == "session" and me["csrf_token"] == csrf
    # Unsafe methods need the CSRF header.
    body = {"external_id": "ORG-NEW", "name": "新单位", "kind": "institute"}
    r = client.post("/api/v1/organisations", json=body)
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    r = client.post("/api/v1/organisations", json=body, headers={auth.CSRF_HEADER: "nope"})
    assert r.status_code == 403
    r = client.post("/api/v1/organisations", json=body, headers={auth.CSRF_HEADER: csrf})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/logout", headers={auth.CSRF_HEADER: csrf})
    assert r.status_code == 204
    assert client.get("/api/v1/needs").status_code == 401


def test_password_change_ends_sessions(client, world) -> None:
    from service import crud
    from service.db import session_scope

    r = client.post("/api/v1/auth/login", json={"username": "staff", "password": PASSWORD})
    assert r.status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 200
    with session_scope(world.factory) as s:
        crud.set_password(s, user=crud.get_user(s, username="staff"), password="another-pw-1")
    assert client.get("/api/v1/auth/me").status_code == 401


def test_tampered_cookie_rejected(client) -> None:
    forged = auth.make_session_cookie("not-the-server-secret", user_id=1, password_hash=None)
    client.cookies.set(auth.SESSION_COOKIE, forged)
    assert client.get("/api/v1/auth/me").status_code == 401


def test_login_throttle(client) -> None:
    for _ in range(5):
        r = client.post("/api/v1/auth/login", json={"username": "staff", "password": "bad-pw"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/login", json={"username": "staff", "password": PASSWORD})
    assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"
    assert 1 <= int(r.headers["Retry-After"]) <= 30


def test_enterprise_without_password_cannot_login(client, world) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401
