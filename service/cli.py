"""The ``duijie`` command line.

Each command group lives in the module that owns it and exposes ``register(subparsers)``;
this file only assembles them, so arguments are parsed only inside :func:`main`.
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Modules that contribute sub-commands. Each defines ``register(subparsers) -> None`` and
# sets ``func`` on its parsers; the function receives the parsed args and returns an exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "service.commands.data",  # import, export, demo
    "service.commands.serve",  # serve
    "service.jobs.reindex",  # reindex
    "service.jobs.digest",  # digest
    "service.commands.match",  # suggest, score, train-ranker
    "service.commands.campaign",  # pair, bounty
    "service.commands.users",  # users
    "service.commands.evaluate",  # eval retrieval
    "service.commands.dispatch",  # commissioners, dispatch
    "service.commands.guideline",  # guideline, guideline-export
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="duijie", description="产学研对接 matchmaking: import data, index, match, pair."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # migrations log every plugin at INFO: noise on every command
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from service.settings import SettingsError

    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
