"""Pass 2 of an import: upsert the valid rows of a table by external id, in batches.

Only attributes whose value changes are assigned, so an unchanged row keeps its
``updated_at`` and ``content_hash``; a column absent from the file never overwrites stored
values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.formats import MODELS
from service.importing.parse import Directory, RowParser
from service.importing.readers import Source
from service.importing.report import TableResult
from service.importing.validate import Validation
from service.models import Organisation

BATCH_SIZE: Final[int] = 500
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


def write_table(
    session: Session,
    src: Source,
    parser: RowParser,
    directory: Directory,
    v: Validation,
    table: TableResult,
    progress: Callable[[Iterable[Any], str], Iterable[Any]],
) -> None:
    """Upsert the valid rows of ``src`` (cached, or re-read and re-parsed)."""
    kind = str(src.kind)
    batch: list[dict[str, Any]] = []
    valid: Iterable[dict[str, Any]]
    if v.cache is not None:
        valid = (values for n, values in v.cache.items() if n not in v.rejected)
    else:
        valid = (
            parser.parse(raw)
            for n, raw in src.rows()
            if n not in v.rejected and n in v.first_row_set()
        )
    for values in progress(valid, f"写入 {src.label}"):
        batch.append(values)
        if len(batch) >= BATCH_SIZE:
            upsert(session, kind, batch, directory, table, v)
            batch = []
    if batch:
        upsert(session, kind, batch, directory, table, v)
    if kind == "organisations" and v.parents:
        session.flush()
        directory.load("organisations")
        link_parents(session, v, directory, table)
    session.flush()
    session.expunge_all()


def upsert(
    session: Session,
    kind: str,
    batch: list[dict[str, Any]],
    directory: Directory,
    table: TableResult,
    v: Validation,
) -> None:
    """Insert or update one batch of clean rows; count created/updated/unchanged."""
    model: Any = MODELS[kind]
    ids = [values["external_id"] for values in batch]
    existing = {
        obj.external_id: obj
        for obj in session.scalars(select(model).where(model.external_id.in_(ids)))
    }
    for values in batch:
        attrs = model_attrs(values, directory)
        obj = existing.get(values["external_id"])
        if obj is None:
            session.add(model(**attrs))
            table.created += 1
            if kind == "organisations":
                v.status[values["external_id"]] = "created"
            continue
        changed = False
        for name, value in attrs.items():
            if not same_value(getattr(obj, name), value):
                setattr(obj, name, value)
                changed = True
        if changed:
            table.updated += 1
        else:
            table.unchanged += 1
            if kind == "organisations":
                v.status[values["external_id"]] = "unchanged"
    session.flush()
    session.expunge_all()


def link_parents(session: Session, v: Validation, directory: Directory, table: TableResult) -> None:
    """Set ``parent_id`` of the imported organisations (after all of them exist)."""
    wanted = {
        ext: (directory.orgs[parent].id if parent else None)
        for ext, (row, parent) in v.parents.items()
        if row not in v.rejected
    }
    for i in range(0, len(wanted), BATCH_SIZE):
        chunk = list(wanted)[i : i + BATCH_SIZE]
        for obj in session.scalars(select(Organisation).where(Organisation.external_id.in_(chunk))):
            if obj.parent_id != wanted[obj.external_id]:
                obj.parent_id = wanted[obj.external_id]
                if v.status.get(obj.external_id) == "unchanged":
                    # Only the parent changed: the row counts as updated.
                    v.status[obj.external_id] = "updated"
                    table.unchanged -= 1
                    table.updated += 1
        session.flush()
        session.expunge_all()


__all__ = ["BATCH_SIZE", "model_attrs", "same_value", "upsert", "write_table"]
