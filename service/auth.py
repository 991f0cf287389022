"""Authentication primitives: API keys, passwords, signed session cookies, CSRF tokens, roles.

Design
------
* **API keys** look like ``dj_<prefix>_<secret>``: ``prefix`` is 8 hex characters stored in
  clear (unique, indexed) to find the row; only ``sha256(key)`` is stored and compared in
  constant time. The key itself is shown once, when created.
* **Passwords** (staff/admin page logins) are hashed with stdlib ``hashlib.scrypt``
  (N=2**14, r=8, p=1, 16-byte salt), encoded ``scrypt$N$r$p$salt$hash``.
* **Session cookies** are ``base64url(json payload) + "." + HMAC-SHA256`` with
  ``settings.secret_key`` (a per-install random secret unless one is configured, see
  :mod:`service.settings`). The payload holds the user id, an expiry, the session id (``sid``,
  the CSRF binding) and a keyed fingerprint of the user (id + password hash), so changing the
  password ends every session. A valid signature is not enough: the ``sid`` must name a live
  row of the server-side session table (:mod:`service.sessions`), which logout and an admin's
  revoke end at once.
* **CSRF**: forms and cookie-authenticated API calls must send a token bound to the session:
  ``HMAC(secret, "csrf:" + sid)`` (:func:`csrf_token`, :func:`check_csrf`). Before login
  (no session yet) the login form uses double-submit tokens (:func:`new_login_csrf`,
  :func:`check_double_submit`).
* **Roles**: ``enterprise`` (bound to one enterprise organisation), ``institute`` (bound to
  one university, institute or company that answers needs and bounties), ``staff``, ``admin``
  (a superset of staff). :func:`role_allows` is the single source of truth. Users of the two
  organisation roles (:data:`ORG_ROLES`) are created by staff; a password handed out by staff
  must be changed at the first page login (``Principal.must_change_password``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response

Role = Literal["enterprise", "institute", "staff", "admin"]
ROLES: tuple[Role, ...] = ("enterprise", "institute", "staff", "admin")
STAFF_ROLES: tuple[Role, ...] = ("staff", "admin")
ORG_ROLES: tuple[Role, ...] = ("enterprise", "institute")  # bound to one organisation
# Organisation kinds an account of each organisation role may be bound to.
ORG_KINDS_OF_ROLE: dict[str, tuple[str, ...]] = {
    "enterprise": ("enterprise",),
    "institute": ("university", "institute", "company", "other"),
}

KEY_PREFIX = "dj"
PREFIX_LEN = 8
SESSION_COOKIE = "duijie_session"
LOGIN_CSRF_COOKIE = "duijie_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FORM_FIELD = "csrf_token"
SESSION_TTL_S = 8 * 3600

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


# --- roles ------------------------------------------------------------------------------


def role_allows(role: str, allowed: tuple[str, ...] | list[str] | set[str]) -> bool:
    """Whether ``role`` may act where ``allowed`` roles may; admin can do what staff can."""
    if role in allowed:
        return True
    return role == "admin" and "staff" in allowed


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request.

    org_id / org_external_id are set for enterprise and institute users (the organisation the
    account is bound to); via says how the caller authenticated (session callers must pass
    CSRF checks); must_change_password is set until a staff-issued password is replaced.
    """

    user_id: int
    username: str
    role: Role
    org_id: int | None = None
    org_external_id: str | None = None
    via: Literal["api_key", "session"] = "api_key"
    session_id: str | None = None
    must_change_password: bool = False

    @property
    def is_staff(self) -> bool:
        """Staff or admin."""
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_enterprise(self) -> bool:
        return self.role == "enterprise"

    @property
    def is_institute(self) -> bool:
        return self.role == "institute"


# --- API keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly generated key: ``key`` is shown once; ``prefix`` and ``key_hash`` are stored."""

    key: str
    prefix: str
    key_hash: str


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of the full key (API keys are high-entropy: no slow hash needed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_api_key() -> NewApiKey:
    """A new ``dj_<8 hex>_<43 urlsafe chars>`` key (256 random bits in the secret)."""
    prefix = secrets.token_hex(PREFIX_LEN // 2)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(key=key, prefix=prefix, key_hash=hash_api_key(key))


def parse_api_key(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None (never raises on garbage input)."""
    if len(key) > 200:
        return None
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != PREFIX_LEN:
        return None
    if not all(c in "0123456789abcdef" for c in parts[1]) or len(parts[2]) < 16:
        return None
    return parts[1]


def api_key_matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of ``key`` against the stored SHA-256 hex digest."""
    return hmac.compare_digest(hash_api_key(key), stored_hash)


# --- passwords --------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """scrypt hash of ``password`` with a fresh salt, as ``scrypt$N$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, encoded: str | None) -> bool:
    """Whether ``password`` matches ``encoded``; False for a missing or malformed hash."""
    if not encoded or len(password) > 1024:
        return False
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# --- signed values ----------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: str, purpose: str, message: str) -> str:
    mac = hmac.new(secret_key.encode("utf-8"), f"{purpose}:{message}".encode(), hashlib.sha256)
    return _b64(mac.digest())


def session_fingerprint(secret_key: str, user_id: int, password_hash: str | None) -> str:
    """A keyed digest of the user (id and stored password hash) carried in the cookie.

    Keyed and bound to the user id, it differs per user even for users without a password,
    and sessions die when the password changes.
    """
    return _mac(secret_key, "fingerprint", f"{user_id}:{password_hash or ''}")[:22]


def session_id_hash(session_id: str) -> str:
    """What the session table stores for a session id (the id itself only lives in the cookie)."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def new_session_id() -> str:
    """A fresh random session id (128 bits)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class SessionData:
    """The verified content of a session cookie."""

    user_id: int
    session_id: str
    expires_at: int
    password_fp: str


def make_session_cookie(
    secret_key: str,
    *,
    user_id: int,
    password_hash: str | None,
    session_id: str | None = None,
    ttl_s: int = SESSION_TTL_S,
    now: float | None = None,
) -> str:
    """A signed session cookie value for ``user_id`` valid for ``ttl_s`` seconds.

    ``session_id`` is the id of the server-side session row (:mod:`service.sessions` creates
    both); a cookie whose id has no live row is refused however well it is signed.
    """
    issued = int(time.time() if now is None else now)
    payload = {
        "uid": user_id,
        "sid": session_id or new_session_id(),
        "exp": issued + ttl_s,
        "pfp": session_fingerprint(secret_key, user_id, password_hash),
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
    return f"{body}.{_mac(secret_key, 'session', body)}"


def read_session_cookie(
    secret_key: str, value: str | None, *, now: float | None = None
) -> SessionData | None:
    """The session in a cookie value, or None if absent, tampered with, malformed or expired."""
    if not value or len(value) > 4096 or "." not in value:
        return None
    body, sig = value.rsplit(".", 1)
    if not hmac.compare_digest(sig, _mac(secret_key, "session", body)):
        return None
    try:
        payload = json.loads(_unb64(body))
        data = SessionData(
            user_id=int(payload["uid"]),
            session_id=str(payload["sid"]),
            expires_at=int(payload["exp"]),
            password_fp=str(payload["pfp"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if data.expires_at < (time.time() if now is None else now):
        return None
    return data


# --- CSRF -------------------------------------------------------------------------------


def csrf_token(secret_key: str, session_id: str) -> str:
    """The CSRF token of a session: put it in forms (``csrf_token``) or the X-CSRF-Token header."""
    return _mac(secret_key, "csrf", session_id)


def check_csrf(secret_key: str, session_id: str | None, token: str | None) -> bool:
    """Whether ``token`` is the CSRF token of session ``session_id`` (constant time)."""
    if not session_id or not token or len(token) > 256:
        return False
    return hmac.compare_digest(token, csrf_token(secret_key, session_id))


def new_login_csrf() -> str:
    """A random double-submit token for the login form: set it as cookie and hidden field."""
    return secrets.token_urlsafe(24)


def check_double_submit(cookie_value: str | None, form_value: str | None) -> bool:
    """Whether the login form's token equals the cookie's (constant time, both required)."""
    if not cookie_value or not form_value or len(form_value) > 256:
        return False
    return hmac.compare_digest(cookie_value, form_value)


# --- cookies on responses (for the API login route and the staff pages) -------------------


def set_session_cookie(response: Response, value: str, *, secure: bool) -> None:
    """Attach the session cookie (HttpOnly, SameSite=Lax; Secure in prod)."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    """Remove the session cookie (logout)."""
    response.delete_cookie(SESSION_COOKIE, path="/")
