"""Pass 2 of an import: upsert the valid rows of a table by external id, in short batches.

Each batch of at most :data:`BATCH_SIZE` rows is its own transaction, and batches shrink
while one takes longer than :data:`TARGET_BATCH_SECONDS`, so an import never holds the store's
write lock for long: API writes and logins wait at most one batch. Only attributes whose value changes are assigned, so an unchanged row keeps
its ``updated_at`` and ``content_hash``; a column absent from the file never overwrites stored
values.

Every committed change is recorded in a :class:`Journal` (spooled to a temporary file, so
memory stays bounded): the ids of created rows and the previous values of changed attributes.
If a later batch fails, :func:`undo` reverts the committed batches (again in short
transactions), which keeps a file all-or-nothing although it is written in many transactions.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import IO, Any, Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.formats import EXTRA_KEY, KINDS, MODELS
from service.importing.directory import Directory
from service.importing.parse import RowParser
from service.importing.readers import Source
from service.importing.report import TableResult
from service.importing.validate import Validation
from service.models import Organisation

log = logging.getLogger(__name__)

BATCH_SIZE: Final[int] = 500
#: Batches shrink (down to MIN_BATCH_SIZE rows) while one takes longer than this.
TARGET_BATCH_SECONDS: Final[float] = 0.25
MIN_BATCH_SIZE: Final[int] = 25
#: Attempts of one batch when the store is busy (``database is locked``), with back-off.
BUSY_RETRIES: Final[int] = 5
#: Clean-value keys that are references (resolved to primary keys by :func:`model_attrs`).
REFERENCE_KEYS: Final[tuple[str, ...]] = (
    "org",
    "poster",
    "need",
    "capability",
    "bounty",
    "respondent",
    "parent",
)


def _as_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def same_value(a: Any, b: Any) -> bool:
    """Equality of a stored and an imported value (naive datetimes are UTC; 1 == 1.0)."""
    if isinstance(a, datetime) or isinstance(b, datetime):
        return bool(_as_utc(a) == _as_utc(b))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == float(b)
    if isinstance(a, date) and isinstance(b, date):
        return a == b
    return bool(a == b)


def merge_extra(stored: dict[str, Any] | None, update: dict[str, Any]) -> dict[str, Any] | None:
    """Stored extra attributes updated by a row's (None removes a key); None when empty."""
    out = dict(stored or {})
    for key, value in update.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out or None


def model_attrs(values: dict[str, Any], directory: Directory) -> dict[str, Any]:
    """Model attributes from clean values (references resolved to primary keys)."""
    attrs = {k: v for k, v in values.items() if k not in REFERENCE_KEYS}
    if "org" in values:
        attrs["org_id"] = directory.orgs[values["org"]].id
    if "poster" in values:
        attrs["poster_org_id"] = directory.orgs[values["poster"]].id
    if "respondent" in values:
        attrs["respondent_org_id"] = directory.orgs[values["respondent"]].id
    if "need" in values:
        attrs["need_id"] = directory.needs.get(values["need"]) if values["need"] else None
    if "capability" in values:
        cap = values["capability"]
        attrs["capability_id"] = directory.capabilities.get(cap) if cap else None
    if "bounty" in values:
        attrs["bounty_id"] = directory.bounties[values["bounty"]][0]
    return attrs


# --------------------------------------------------------------------------- journal


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, date):
        return {"__date__": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        if "__datetime__" in value:
            return datetime.fromisoformat(value["__datetime__"])
        if "__date__" in value:
            return date.fromisoformat(value["__date__"])
    return value


class Journal:
    """Undo information of the committed batches of one file (a temporary JSONL file)."""

    def __init__(self) -> None:
        self._fh: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.rows = 0

    def record(self, kind: str, ext: str, before: dict[str, Any] | None) -> None:
        """``before`` None: the row was created; else the previous values of changed attrs."""
        entry = {
            "k": kind,
            "e": ext,
            "b": None if before is None else {k: _encode(v) for k, v in before.items()},
        }
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.rows += 1

    def entries(self, kind: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
        self._fh.flush()
        self._fh.seek(0)
        for line in self._fh:
            entry = json.loads(line)
            if entry["k"] == kind:
                before = entry["b"]
                yield (
                    entry["e"],
                    None if before is None else {k: _decode(v) for k, v in before.items()},
                )
        self._fh.seek(0, 2)

    def close(self) -> None:
        self._fh.close()


# --------------------------------------------------------------------------- batches


def _busy(exc: OperationalError) -> bool:
    """Whether ``exc`` means another writer held a lock (SQLite or PostgreSQL)."""
    text = str(exc).lower()
    return "locked" in text or "lock timeout" in text or "busy" in text


@dataclass
class Writer:
    """Writes batches in their own transactions, retrying while the store is busy."""

    session_factory: sessionmaker[Session]
    journal: Journal | None  # None: dry run (nothing is written)

    def transaction(self, work: Callable[[Session], Any]) -> Any:
        """Run ``work(session)`` in one transaction; retried if the store is locked."""
        for attempt in range(BUSY_RETRIES):
            session = self.session_factory()
            try:
                out = work(session)
                if self.journal is None:
                    session.rollback()
                else:
                    session.commit()
                return out
            except OperationalError as exc:
                session.rollback()
                if not _busy(exc) or attempt == BUSY_RETRIES - 1:
                    raise
                log.info("store busy, retrying batch (%d)", attempt + 1)
                time.sleep(0.2 * 2**attempt)
            finally:
                session.close()
        raise AssertionError("unreachable")  # pragma: no cover


def _valid_values(src: Source, parser: RowParser, v: Validation) -> Iterator[dict[str, Any]]:
    if v.cache is not None:
        yield from (values for n, values in v.cache.items() if n not in v.rejected)
        return
    valid = v.first_row_set()
    for n, raw in src.rows():
        if n in valid and n not in v.rejected:
            yield parser.parse(raw)


def write_table(
    writer: Writer,
    src: Source,
    parser: RowParser,
    directory: Directory,
    v: Validation,
    table: TableResult,
    progress: Callable[..., Iterable[Any]],
) -> None:
    """Upsert the valid rows of ``src`` (cached, or re-read and re-parsed), batch by batch."""
    kind = str(src.kind)
    total = len(v.first_row) - sum(1 for r in v.first_row.values() if r in v.rejected)
    batch: list[dict[str, Any]] = []
    size = BATCH_SIZE
    for values in progress(_valid_values(src, parser, v), f"写入 {src.label}", total=total):
        batch.append(values)
        if len(batch) >= size:
            started = time.perf_counter()
            _write_batch(writer, kind, batch, directory, table, v)
            size = _next_size(size, time.perf_counter() - started)
            batch = []
    if batch:
        _write_batch(writer, kind, batch, directory, table, v)
    if writer.journal is None:
        return
    with writer.session_factory() as session:  # a read: ids of the rows just written
        directory.load(session, kind)
    if kind == "organisations" and v.parents:
        link_parents(writer, v, directory, table)


def _next_size(size: int, seconds: float) -> int:
    """Halve the batch while one takes longer than :data:`TARGET_BATCH_SECONDS` (a slow disk,
    long descriptions, a busy store); grow back towards :data:`BATCH_SIZE` when fast."""
    if seconds > TARGET_BATCH_SECONDS:
        return max(MIN_BATCH_SIZE, size // 2)
    if seconds < TARGET_BATCH_SECONDS / 4:
        return min(BATCH_SIZE, size * 2)
    return size


def _write_batch(
    writer: Writer,
    kind: str,
    batch: list[dict[str, Any]],
    directory: Directory,
    table: TableResult,
    v: Validation,
) -> None:
    apply = writer.journal is not None
    changes = writer.transaction(lambda s: upsert(s, kind, batch, directory, apply=apply))
    for ext, before in changes:
        if before is None:
            table.created += 1
            status = "created"
        elif before:
            table.updated += 1
            status = "updated"
        else:
            table.unchanged += 1
            status = "unchanged"
        if kind == "organisations":
            v.status[ext] = status
        if writer.journal is not None and before != {}:
            writer.journal.record(kind, ext, before)


def upsert(
    session: Session,
    kind: str,
    batch: list[dict[str, Any]],
    directory: Directory,
    *,
    apply: bool = True,
) -> list[tuple[str, dict[str, Any] | None]]:
    """Insert or update one batch of clean rows (``apply`` False: only compare).

    Returns ``(external id, before)`` per row: ``before`` None for a created row, else the
    previous values of the changed attributes (empty: unchanged).
    """
    model: Any = MODELS[kind]
    ids = [values["external_id"] for values in batch]
    existing = {
        obj.external_id: obj
        for obj in session.scalars(select(model).where(model.external_id.in_(ids)))
    }
    out: list[tuple[str, dict[str, Any] | None]] = []
    for values in batch:
        attrs = model_attrs(values, directory)
        obj = existing.get(values["external_id"])
        if obj is None:
            if EXTRA_KEY in attrs:
                attrs[EXTRA_KEY] = merge_extra(None, attrs[EXTRA_KEY])
            if apply:
                session.add(model(**attrs))
            out.append((values["external_id"], None))
            continue
        if EXTRA_KEY in attrs:
            attrs[EXTRA_KEY] = merge_extra(obj.extra, attrs[EXTRA_KEY])
        before: dict[str, Any] = {}
        for name, value in attrs.items():
            old = getattr(obj, name)
            if not same_value(old, value):
                before[name] = old
                if apply:
                    setattr(obj, name, value)
        out.append((values["external_id"], before))
    if apply:
        session.flush()
    return out


def link_parents(writer: Writer, v: Validation, directory: Directory, table: TableResult) -> None:
    """Set ``parent_id`` of the imported organisations (after all of them exist)."""
    wanted = {
        ext: (directory.orgs[parent].id if parent else None)
        for ext, (row, parent) in v.parents.items()
        if row not in v.rejected
    }
    exts = list(wanted)

    def link(session: Session, *, chunk: list[str]) -> list[tuple[str, int | None]]:
        changed = []
        for obj in session.scalars(select(Organisation).where(Organisation.external_id.in_(chunk))):
            if obj.parent_id != wanted[obj.external_id]:
                changed.append((obj.external_id, obj.parent_id))
                obj.parent_id = wanted[obj.external_id]
        session.flush()
        return changed

    for i in range(0, len(exts), BATCH_SIZE):
        chunk = exts[i : i + BATCH_SIZE]
        linked: list[tuple[str, int | None]] = writer.transaction(partial(link, chunk=chunk))
        for ext, old in linked:
            if writer.journal is not None:
                writer.journal.record("organisations", ext, {"parent_id": old})
            if v.status.get(ext) == "unchanged":
                # Only the parent changed: the row counts as updated.
                v.status[ext] = "updated"
                table.unchanged -= 1
                table.updated += 1


def undo(session_factory: sessionmaker[Session], journal: Journal) -> int:
    """Revert what ``journal`` recorded, newest kinds first, in short transactions.

    Returns the number of journal entries reverted.
    """
    scratch = Journal()  # the undo itself is not journaled, but must commit
    writer = Writer(session_factory, scratch)
    done = 0
    try:
        for kind in reversed(KINDS):
            model: Any = MODELS[kind]
            # The first recorded value of an attribute is the one from before the import.
            merged: dict[str, dict[str, Any] | None] = {}
            for ext, before in journal.entries(kind):
                if ext not in merged:
                    merged[ext] = before
                elif merged[ext] is not None and before is not None:
                    merged[ext] = {**before, **(merged[ext] or {})}
            entries = list(merged.items())
            for i in range(0, len(entries), BATCH_SIZE):
                chunk = entries[i : i + BATCH_SIZE]
                writer.transaction(partial(_revert, model=model, chunk=chunk))
                done += len(chunk)
    finally:
        scratch.close()
    return done


def _revert(
    session: Session, *, model: Any, chunk: list[tuple[str, dict[str, Any] | None]]
) -> None:
    created = [ext for ext, before in chunk if before is None]
    if created:
        if model is Organisation:  # children created in the same file point at them
            session.execute(
                update(Organisation)
                .where(Organisation.external_id.in_(created))
                .values(parent_id=None)
            )
        session.execute(delete(model).where(model.external_id.in_(created)))
    changed = {ext: before for ext, before in chunk if before}
    if changed:
        for obj in session.scalars(select(model).where(model.external_id.in_(list(changed)))):
            for name, value in changed[obj.external_id].items():
                setattr(obj, name, value)
    session.flush()


__all__ = [
    "BATCH_SIZE",
    "Journal",
    "Writer",
    "link_parents",
    "merge_extra",
    "model_attrs",
    "same_value",
    "undo",
    "upsert",
    "write_table",
]
