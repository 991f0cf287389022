"""``duijie users``: create users with API keys (shown once), list, revoke, end sessions, set
passwords.

Enterprise and institute accounts are bound to one organisation (``--org``); a password set
here for them is an initial one that must be changed at the first page login.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import secrets
import sys
from typing import Any

from service.auth import ORG_ROLES, ROLES


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("users", help="manage users and API keys")
    sub = p.add_subparsers(dest="users_command", metavar="ACTION")

    c = sub.add_parser("create", help="create a user and print its API key (once)")
    c.add_argument("--role", choices=ROLES, required=True)
    c.add_argument(
        "--org", metavar="EXTERNAL_ID", help="organisation (required for enterprise/institute)"
    )
    c.add_argument("--username", help="default: <role>-<org or random>")
    c.add_argument(
        "--password",
        action="store_true",
        help="also set a login password (prompted; or DUIJIE_NEW_PASSWORD)",
    )
    c.add_argument("--no-key", action="store_true", help="do not issue an API key")
    c.set_defaults(func=cmd_create)

    ls = sub.add_parser("list", help="list users")
    ls.set_defaults(func=cmd_list)

    r = sub.add_parser("revoke", help="deactivate a user and revoke all their API keys")
    r.add_argument("username")
    r.set_defaults(func=cmd_revoke)

    k = sub.add_parser("key", help="issue an additional API key for a user")
    k.add_argument("username")
    k.set_defaults(func=cmd_key)

    lo = sub.add_parser("logout", help="end every login session of a user")
    lo.add_argument("username")
    lo.set_defaults(func=cmd_logout)

    pw = sub.add_parser("passwd", help="set a user's login password (prompted)")
    pw.add_argument("username")
    pw.set_defaults(func=cmd_passwd)

    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])


def _factory() -> Any:
    from service.db import open_store
    from service.settings import get_settings

    logging.getLogger("alembic").setLevel(logging.WARNING)
    _engine, factory = open_store(get_settings().resolved_database_url)
    return factory


def _read_password() -> str:
    import os

    pw = os.environ.get("DUIJIE_NEW_PASSWORD")
    if pw is None:
        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            raise SystemExit("passwords differ")
    if len(pw) < 8:
        raise SystemExit("password must have at least 8 characters")
    return pw


def cmd_create(args: argparse.Namespace) -> int:
    from service import crud
    from service.db import session_scope
    from service.errors import ServiceError

    username = args.username or f"{args.role}-{(args.org or secrets.token_hex(3)).lower()}"
    password = _read_password() if args.password else None
    try:
        with session_scope(_factory()) as s:
            user, key = crud.create_user(
                s,
                username=username,
                role=args.role,
                org_external_id=args.org,
                password=password,
                with_api_key=not args.no_key,
                must_change_password=args.role in ORG_ROLES,
            )
            crud.audit(
                s,
                user=None,
                action="user.create",
                entity="user",
                entity_id=user.id,
                detail={"username": username, "role": args.role, "via": "cli"},
            )
    except ServiceError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        return 1
    sys.stdout.write(
        f"created user {username!r} (role {args.role}"
        + (f", organisation {args.org}" if args.org else "")
        + ")\n"
    )
    if key:
        sys.stdout.write(f"API key (shown once, store it now):\n{key}\n")
    return 0


def cmd_list(_args: argparse.Namespace) -> int:
    from service import crud
    from service.api import convert
    from service.db import session_scope

    with session_scope(_factory()) as s:
        rows, _ = crud.list_users(s, limit=10_000, offset=0)
        users = convert.users(s, rows, crud.active_key_prefixes(s, user_ids=[u.id for u in rows]))
    sys.stdout.write(f"{'id':>4}  {'username':<24} {'role':<10} {'org':<16} active  keys\n")
    for u in users:
        sys.stdout.write(
            f"{u.id:>4}  {u.username:<24} {u.role:<10} {u.org_external_id or '-':<16} "
            f"{'yes' if u.active else 'no':<6}  {','.join(u.api_keys) or '-'}\n"
        )
    return 0


def _with_user(username: str, action: str) -> int:
    from service import crud, sessions
    from service.db import session_scope
    from service.errors import ServiceError

    try:
        with session_scope(_factory()) as s:
            user = crud.get_user(s, username=username)
            if action == "revoke":
                n = crud.revoke_user(s, user=user)
                ended = sessions.revoke_user_sessions(s, user.id)
                sys.stdout.write(
                    f"user {username!r} deactivated, {n} key(s) revoked, {ended} session(s) ended\n"
                )
            elif action == "logout":
                ended = sessions.revoke_user_sessions(s, user.id)
                sys.stdout.write(f"{ended} session(s) of {username!r} ended\n")
            elif action == "key":
                key = crud.issue_api_key(s, user=user)
                sys.stdout.write(f"API key for {username!r} (shown once):\n{key}\n")
            else:
                crud.set_password(
                    s, user=user, password=_read_password(), must_change=user.role in ORG_ROLES
                )
                sys.stdout.write(f"password of {username!r} set\n")
            crud.audit(
                s,
                user=None,
                action=f"user.{action}",
                entity="user",
                entity_id=user.id,
                detail={"via": "cli"},
            )
    except ServiceError as exc:
        sys.stderr.write(f"error: {exc.detail}\n")
        return 1
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    return _with_user(args.username, "revoke")


def cmd_key(args: argparse.Namespace) -> int:
    return _with_user(args.username, "key")


def cmd_logout(args: argparse.Namespace) -> int:
    return _with_user(args.username, "logout")


def cmd_passwd(args: argparse.Namespace) -> int:
    return _with_user(args.username, "passwd")
