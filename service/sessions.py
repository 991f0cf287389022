"""Server-side login sessions, the login throttle and the password change, shared by the API
and the pages (one implementation, so every door behaves the same).

Password change
---------------
:func:`change_password` is the one rule for a user's own new password (the portal's 修改密码
page and ``POST /api/v1/auth/password``): the current password, a new one of
:data:`PASSWORD_MIN`..:data:`PASSWORD_MAX` characters with letters and digits, typed twice.
It clears ``must_change_password`` (a staff-issued password blocks the API and the portal
pages until then), ends every session of the user and opens a fresh one.

Sessions
--------
A login creates a :class:`~service.models.UserSession` row keyed by ``sha256(sid)`` and a
signed cookie carrying ``sid`` (:func:`service.auth.make_session_cookie`). Every
cookie-authenticated request checks the row (:func:`is_live`): logging out
(:func:`revoke_session`), an admin's revoke or deactivating the user
(:func:`revoke_user_sessions`) ends a session at once, on every worker.

Throttle
--------
Failed logins are counted per username and per client address in the store
(:class:`~service.models.LoginThrottleEntry`), so the limits hold across worker processes.
Past a threshold each further failure arms a back-off that doubles up to a cap: a username is
held for at most :attr:`LoginThrottle.user_max_backoff_s` (30 s) at a time, then the right
password is accepted again (an attacker cannot lock an account out for good), while an
address that keeps failing waits up to :attr:`LoginThrottle.addr_max_backoff_s` (15 min).
While held, attempts are refused with 429 + ``Retry-After`` without checking the password, so
the back-off also bounds guessing. Counters reset after ``window_s`` without failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from service import auth, crud
from service.errors import ServiceError
from service.forms import FormErrors
from service.models import LoginThrottleEntry, User, UserSession
from service.settings import Settings


class TooManyAttempts(ServiceError):
    """429: the username or the client address is in its login back-off."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}


def _utc(value: datetime | None) -> datetime | None:
    """Stored datetimes come back naive from SQLite; they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# --- sessions ---------------------------------------------------------------------------


def open_session(
    db: Session,
    settings: Settings,
    user: User,
    *,
    client: str = "",
    ttl_s: int = auth.SESSION_TTL_S,
) -> tuple[str, str]:
    """Create a session row for ``user``; returns ``(cookie value, session id)``.

    The caller commits (the row and the audit entry of the login land together).
    """
    sid = auth.new_session_id()
    now = datetime.now(UTC)
    db.add(
        UserSession(
            sid_hash=auth.session_id_hash(sid),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
            client=client[:64],
        )
    )
    cookie = auth.make_session_cookie(
        settings.secret_key,
        user_id=user.id,
        password_hash=user.password_hash,
        session_id=sid,
        ttl_s=ttl_s,
    )
    return cookie, sid


def is_live(db: Session, *, session_id: str, user_id: int) -> bool:
    """Whether ``session_id`` names an unrevoked, unexpired session of ``user_id``."""
    row = db.scalar(
        select(UserSession).where(UserSession.sid_hash == auth.session_id_hash(session_id))
    )
    if row is None or row.user_id != user_id or row.revoked_at is not None:
        return False
    expires = _utc(row.expires_at)
    return expires is not None and expires > datetime.now(UTC)


def revoke_session(db: Session, session_id: str) -> bool:
    """End one session (logout); the caller commits. True when a live session was ended."""
    result = db.execute(
        update(UserSession)
        .where(
            UserSession.sid_hash == auth.session_id_hash(session_id),
            UserSession.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def revoke_user_sessions(db: Session, user_id: int) -> int:
    """End every session of ``user_id``; the caller commits. Returns how many were live."""
    result = db.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def revoke_cookie(db: Session, settings: Settings, cookie: str | None) -> bool:
    """End the session a (validly signed) cookie names; the caller commits."""
    data = auth.read_session_cookie(settings.secret_key, cookie)
    return data is not None and revoke_session(db, data.session_id)


# --- throttle ---------------------------------------------------------------------------


@dataclass
class LoginThrottle:
    """Store-backed failure counters per username and per client address.

    ``clock`` returns epoch seconds (tests pass a fake one).
    """

    user_threshold: int = 5
    user_max_backoff_s: float = 30.0
    addr_threshold: int = 20
    addr_max_backoff_s: float = 900.0
    window_s: float = 900.0
    clock: Callable[[], float] = time.time

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    @staticmethod
    def keys(username: str, address: str) -> tuple[str, str]:
        """The store keys of a username and of a client address."""
        return f"user:{username[:64]}", f"addr:{(address or '-')[:64]}"

    def check(self, db: Session, *, username: str, address: str) -> None:
        """Raise :class:`TooManyAttempts` while the username or the address is held."""
        now = self._now()
        wait = 0.0
        for key in self.keys(username, address):
            row = db.get(LoginThrottleEntry, key)
            until = _utc(row.locked_until) if row is not None else None
            if until is not None and until > now:
                wait = max(wait, (until - now).total_seconds())
        if wait > 0:
            raise TooManyAttempts(
                "too many failed logins; try again later", retry_after=int(wait + 0.999)
            )

    def _backoff(self, failures: int, threshold: int, cap: float) -> float:
        if failures < threshold:
            return 0.0
        return float(min(cap, 2.0 ** min(failures - threshold, 30)))

    def record_failure(self, db: Session, *, username: str, address: str) -> None:
        """Count a failed attempt for both keys and arm their back-offs; the caller commits."""
        now = self._now()
        user_key, addr_key = self.keys(username, address)
        limits = {
            user_key: (self.user_threshold, self.user_max_backoff_s),
            addr_key: (self.addr_threshold, self.addr_max_backoff_s),
        }
        db.execute(
            delete(LoginThrottleEntry).where(
                LoginThrottleEntry.last_failure_at < now - timedelta(seconds=self.window_s)
            )
        )
        for key, (threshold, cap) in limits.items():
            row = self._row(db, key, now)
            row.failures = (row.failures or 0) + 1
            row.last_failure_at = now
            backoff = self._backoff(row.failures, threshold, cap)
            row.locked_until = now + timedelta(seconds=backoff) if backoff else None
        db.flush()

    def _row(self, db: Session, key: str, now: datetime) -> LoginThrottleEntry:
        row = db.get(LoginThrottleEntry, key, with_for_update=True)
        if row is not None:
            return row
        # Another worker may insert the same key at the same moment: insert-or-ignore, then
        # read whichever row won.
        values = {"key": key, "failures": 0, "last_failure_at": now}
        if db.get_bind().dialect.name == "postgresql":
            db.execute(pg_insert(LoginThrottleEntry).values(**values).on_conflict_do_nothing())
        else:
            db.execute(sqlite_insert(LoginThrottleEntry).values(**values).on_conflict_do_nothing())
        found = db.get(LoginThrottleEntry, key, with_for_update=True, populate_existing=True)
        if found is None:  # pragma: no cover - the insert above or the other worker's exists
            raise RuntimeError(f"login throttle row {key!r} vanished")
        return found

    def record_success(self, db: Session, *, username: str) -> None:
        """A right password clears the username's counter (not the address's)."""
        user_key, _ = self.keys(username, "")
        db.execute(delete(LoginThrottleEntry).where(LoginThrottleEntry.key == user_key))


# --- the login itself ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A successful login: the user, the cookie to set and the new session id."""

    user: User
    cookie: str
    session_id: str


def attempt_login(
    db: Session,
    settings: Settings,
    throttle: LoginThrottle,
    *,
    username: str,
    password: str,
    client: str,
) -> LoginResult | None:
    """Check the throttle and the password; on success open a session. Commits.

    Returns None for a wrong username or password (counted against both the username and the
    client address); raises :class:`TooManyAttempts` while either is in its back-off.
    """
    throttle.check(db, username=username, address=client)
    user = crud.verify_login(db, username=username, password=password)
    if user is None:
        throttle.record_failure(db, username=username, address=client)
        crud.audit(
            db,
            user=None,
            action="auth.login_failed",
            entity="user",
            entity_id=username[:64],
            detail={"client": client[:64]},
        )
        db.commit()
        return None
    throttle.record_success(db, username=username)
    cookie, sid = open_session(db, settings, user, client=client)
    crud.audit(
        db,
        user=None,
        user_id=user.id,
        action="auth.login",
        entity="user",
        entity_id=user.id,
        detail={"client": client[:64]},
    )
    db.commit()
    return LoginResult(user=user, cookie=cookie, session_id=sid)


PASSWORD_MIN = 8
PASSWORD_MAX = 128


def password_errors(current_ok: bool, current: str, new: str, again: str) -> dict[str, str]:
    """Field → Chinese message for a password change (empty when acceptable)."""
    errors: dict[str, str] = {}
    if not current_ok:
        errors["current"] = "当前密码不正确"
    if len(new) < PASSWORD_MIN:
        errors["new"] = f"新密码至少 {PASSWORD_MIN} 位"
    elif len(new) > PASSWORD_MAX:
        errors["new"] = f"新密码不能超过 {PASSWORD_MAX} 位"
    elif new == current:
        errors["new"] = "新密码不能与当前密码相同"
    elif new.isdigit() or new.isalpha():
        errors["new"] = "新密码请同时包含字母和数字"
    if not errors.get("new") and new != again:
        errors["again"] = "两次输入的新密码不一致"
    return errors


def change_password(
    db: Session,
    settings: Settings,
    *,
    user: User,
    current: str,
    new: str,
    again: str,
    client: str,
) -> tuple[str, str]:
    """Replace ``user``'s password after checking :func:`password_errors`; every session of
    the user ends and a new one opens. Audited; commits.

    Returns
    -------
    (cookie, session_id) of the new session.

    Raises
    ------
    FormErrors
        Field → Chinese message (``current``, ``new``, ``again``); nothing is changed.
    """
    ok = auth.verify_password(current[: PASSWORD_MAX * 4], user.password_hash)
    problems = password_errors(ok, current, new, again)
    if problems:
        errors = FormErrors()
        for name, message in problems.items():
            errors.add(name, message)
        errors.raise_if_any()
    crud.set_password(db, user=user, password=new)
    revoke_user_sessions(db, user.id)
    cookie, sid = open_session(db, settings, user, client=client)
    crud.audit(db, user=None, user_id=user.id, action="user.password", entity="user",
               entity_id=user.id)  # fmt: skip
    db.commit()
    return cookie, sid
