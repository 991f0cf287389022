"""``duijie serve``: run the API and staff pages with uvicorn.

Sessions are signed with ``DUIJIE_SECRET_KEY`` or, when unset, the install's own random secret
(``DUIJIE_DATA_DIR/secret_key``, created once with mode 0600); a public placeholder key is
refused unless ``DUIJIE_ENVIRONMENT=dev``. Development mode (``make run``) always listens on
loopback, whatever ``--host`` / ``DUIJIE_HOST`` say, and says so.

``--demo-credentials`` (development mode only) first creates or refreshes demo logins and
prints them: staff user ``staff`` with a fresh random password (for /staff pages), an enterprise API
key bound to the first demo enterprise with open needs, an admin API key, and an example
``curl``. Re-running replaces the previous demo password and keys (idempotent: no duplicates).
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DEMO_STAFF = "staff"
DEMO_ADMIN = "demo-admin"
DEMO_ENTERPRISE = "demo-enterprise"
LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("serve", help="run the HTTP service (API + staff pages)")
    p.add_argument("--host", default=None, help="default: DUIJIE_HOST (127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="default: DUIJIE_PORT (8000)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument(
        "--demo-credentials",
        action="store_true",
        help="create demo logins/keys and print them before serving (dev only)",
    )
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve)


@dataclass(frozen=True)
class DemoCredentials:
    staff_username: str
    staff_password: str
    enterprise_key: str | None
    enterprise_org: str | None
    enterprise_need: str | None
    admin_key: str


def _fresh_key(session: Any, user: Any) -> str:
    from sqlalchemy import update

    from service import crud
    from service.models import ApiKey

    session.execute(update(ApiKey).where(ApiKey.user_id == user.id).values(revoked=True))
    return crud.issue_api_key(session, user=user)


def ensure_demo_credentials(factory: Any, *, password: str | None = None) -> DemoCredentials:
    """Create (or refresh) the demo staff login, admin key and enterprise key."""
    from sqlalchemy import select

    from service import auth, crud
    from service.db import session_scope
    from service.models import Need, Organisation, User

    password = password or secrets.token_urlsafe(9)
    with session_scope(factory) as s:
        staff = s.scalar(select(User).where(User.username == DEMO_STAFF))
        if staff is None:
            staff, _ = crud.create_user(s, username=DEMO_STAFF, role="staff", with_api_key=False)
        staff.password_hash = auth.hash_password(password)
        staff.active = True

        admin = s.scalar(select(User).where(User.username == DEMO_ADMIN))
        if admin is None:
            admin, _ = crud.create_user(s, username=DEMO_ADMIN, role="admin", with_api_key=False)
        admin.active = True
        admin_key = _fresh_key(s, admin)

        row = s.execute(
            select(Organisation.external_id, Need.external_id)
            .join(Need, Need.org_id == Organisation.id)
            .where(
                Organisation.kind == "enterprise",
                Need.status == "open",
                Need.confidential.is_(False),
            )
            .order_by(Organisation.id, Need.id)
            .limit(1)
        ).first()
        ent_key = org_ext = need_ext = None
        if row is not None:
            org_ext, need_ext = str(row[0]), str(row[1])
            ent = s.scalar(select(User).where(User.username == DEMO_ENTERPRISE))
            if ent is None:
                ent, _ = crud.create_user(
                    s,
                    username=DEMO_ENTERPRISE,
                    role="enterprise",
                    org_external_id=org_ext,
                    with_api_key=False,
                )
            ent.org_id = crud.org_by_external_id(s, external_id=org_ext).id
            ent.active = True
            ent_key = _fresh_key(s, ent)
        crud.audit(s, user=None, action="demo.credentials", entity="user", entity_id=staff.id)
    return DemoCredentials(DEMO_STAFF, password, ent_key, org_ext, need_ext, admin_key)


def format_demo(creds: DemoCredentials, base: str) -> str:
    lines = [
        "=" * 72,
        "演示账号 / demo credentials (dev only; re-running replaces them)",
        f"  工作人员登录 staff login:  {base}/staff/login",
        f"    username: {creds.staff_username}",
        f"    password: {creds.staff_password}",
        f"  admin API key:            {creds.admin_key}",
    ]
    if creds.enterprise_key:
        lines += [
            f"  enterprise API key ({creds.enterprise_org}): {creds.enterprise_key}",
            "  example:",
            f"    curl -s -X POST {base}/api/v1/suggestions \\",
            f"      -H 'Authorization: Bearer {creds.enterprise_key}' \\",
            "      -H 'Content-Type: application/json' \\",
            f'      -d \'{{"need_id": "{creds.enterprise_need}", "k": 5}}\'',
        ]
    else:
        lines.append("  (no enterprise with open needs: run `duijie demo` first)")
    lines += [
        f"  API docs: {base}/api/v1/docs (log in at /staff/login first)    health: {base}/healthz",
        "=" * 72,
    ]
    return "\n".join(lines) + "\n"


def _build_index_if_missing(settings: Any) -> None:
    """Demo convenience: with no index build yet, run ``duijie reindex`` in a background
    process while the server already answers; the server hot-reloads the build when it is
    ready (suggestions answer 503 until then). Its progress lines (rate, ETA) go to this
    terminal and to ``DATA_DIR/reindex-demo.log``."""
    import shlex
    import subprocess

    from embeddings import BuildStore

    if BuildStore(settings.resolved_index_dir).current_build_id() is not None:
        return
    log_path = settings.data_dir / "reindex-demo.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # `tee` keeps the progress visible in the terminal and in the log file.
    script = f'"$0" -m service.cli reindex --no-progress 2>&1 | tee -a {shlex.quote(str(log_path))}'
    subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        ["/bin/sh", "-c", script, sys.executable],
        start_new_session=True,
    )
    sys.stdout.write(
        "  首次索引在后台构建(进度见下方与日志) / building the first index in the background "
        f"(log: {log_path});\n"
        "  suggestions answer 503 index_not_ready until it is done, then switch automatically.\n"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.settings import get_settings, session_secret

    settings = get_settings()
    session_secret(settings)  # create/check the install's secret before binding the port
    host = args.host or settings.host
    port = args.port or settings.port
    if settings.dev_mode:
        if host not in LOOPBACK_HOSTS:
            sys.stdout.write(f"  开发模式:忽略 --host {host},仅监听 {LOOPBACK}\n")
            log.warning("development mode: binding to %s instead of %s", LOOPBACK, host)
            host = LOOPBACK
        sys.stdout.write(
            f"  开发模式 / development mode (DUIJIE_ENVIRONMENT=dev): listening on {host} only\n"
        )
    if args.demo_credentials:
        if not settings.dev_mode:
            sys.stderr.write("--demo-credentials needs DUIJIE_ENVIRONMENT=dev (make run sets it)\n")
            return 2
        from service.db import open_store

        logging.getLogger("alembic").setLevel(logging.WARNING)
        _engine, factory = open_store(settings.resolved_database_url)
        creds = ensure_demo_credentials(factory)
        sys.stdout.write(format_demo(creds, f"http://{host}:{port}"))
        _build_index_if_missing(settings)
        sys.stdout.flush()
    # One FAISS thread per search in every thread: set by embeddings.runtime, imported
    # first by service.cli and service.main.
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        log_level=args.log_level,
    )
    return 0
