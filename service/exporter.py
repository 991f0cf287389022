"""Export of the store in the import formats, so every export can be re-imported.

* ``jsonl``: one file per kind (``organisations.jsonl`` ...), canonical English keys, lists as
  JSON arrays, references as external ids, extra attributes as an ``extra`` object;
* ``xlsx``: one workbook, one sheet per kind named in Chinese (单位, 技术需求, 成果, 揭榜榜单,
  揭榜申报) with the Chinese column labels of :data:`service.formats.COLUMNS`;
* ``csv``: one UTF-8-with-BOM file per kind (Excel opens it), Chinese headers.

In spreadsheets the extra attributes of the records (columns an import kept without an
attribute of their own, e.g. 联系人) follow the standard columns, one column per key.

Spreadsheet cells are text that Excel or WPS may evaluate: text that could be read as a
formula is prefixed with a single quote (:func:`service.formats.neutralise_cell`); the importer
removes exactly that quote again in tables with the export's header row. Numbers stay numbers
(a negative number is not a formula).
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.formats import COLUMNS, KIND_LABELS, KINDS, MODELS, neutralise_cell
from service.validation import remove_control_chars

log = logging.getLogger(__name__)

ExportFormat = Literal["jsonl", "xlsx", "csv"]
EXPORT_FORMATS: Final[tuple[ExportFormat, ...]] = ("jsonl", "xlsx", "csv")
LIST_JOINER: Final[str] = "；"
XLSX_MAX_ROWS: Final[int] = 1_048_575  # Excel's sheet limit minus the header row


def iter_records(session: Session, kind: str) -> Iterator[dict[str, Any]]:
    """Records of ``kind`` as dicts keyed like :data:`COLUMNS` (references as external ids),
    plus ``extra`` (the record's extra attributes, or None).

    Rows are streamed in primary-key order. Control characters that a legacy row may still
    hold are left out (:func:`service.validation.remove_control_chars`): XLSX cannot store
    them, and no import would accept them again.
    """
    for record in _raw_records(session, kind):
        yield {k: _clean(v) for k, v in record.items()}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return remove_control_chars(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {remove_control_chars(str(k)): _clean(v) for k, v in value.items()}
    return value


#: Columns that are references: the attribute holding the primary key, and the kind it names.
_REFERENCES: Final[dict[str, tuple[str, str]]] = {
    "org": ("org_id", "organisations"),
    "poster": ("poster_org_id", "organisations"),
    "respondent": ("respondent_org_id", "organisations"),
    "parent": ("parent_id", "organisations"),
    "need": ("need_id", "needs"),
    "capability": ("capability_id", "capabilities"),
    "bounty": ("bounty_id", "bounties"),
}
_LIST_KEYS: Final[frozenset[str]] = frozenset({"fields", "keywords", "members"})


def _raw_records(session: Session, kind: str) -> Iterator[dict[str, Any]]:
    """One dict per record: every column of :data:`COLUMNS` (references as external ids)."""
    if kind not in MODELS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    model: Any = MODELS[kind]
    cols = [c.key for c in COLUMNS[kind]]
    refs = {key: _REFERENCES[key] for key in cols if key in _REFERENCES}
    external: dict[str, dict[int, str]] = {}
    for _attr, target in refs.values():
        if target not in external:
            other: Any = MODELS[target]
            rows = session.execute(select(other.id, other.external_id))
            external[target] = {row[0]: row[1] for row in rows}
    for obj in session.scalars(select(model).order_by(model.id)).yield_per(1000):
        record: dict[str, Any] = {}
        for key in cols:
            if key in refs:
                attr, target = refs[key]
                ref = getattr(obj, attr)
                record[key] = external[target].get(ref) if ref is not None else None
            elif key in _LIST_KEYS:
                record[key] = list(getattr(obj, key) or [])
            else:
                record[key] = getattr(obj, key)
        record["extra"] = obj.extra
        yield record


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _cell_value(key: str, value: Any) -> Any:
    """A record value as a spreadsheet cell (text neutralised, lists joined, 是/否)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return neutralise_cell(LIST_JOINER.join(str(v) for v in value))
    if isinstance(value, dict):
        return neutralise_cell(json.dumps(value, ensure_ascii=False))
    if isinstance(value, datetime):
        return value.isoformat()  # openpyxl cannot write time-zone aware datetimes
    if isinstance(value, str):
        return neutralise_cell(value)
    return value


def export_store(
    session_factory: sessionmaker[Session],
    out: Path,
    fmt: ExportFormat = "jsonl",
    kinds: tuple[str, ...] = KINDS,
) -> dict[str, Any]:
    """Write the store to ``out``.

    Parameters
    ----------
    session_factory : sessionmaker
        From :func:`service.db.open_store`.
    out : Path
        A directory for ``jsonl``/``csv`` (created); for ``xlsx`` a ``.xlsx`` file, or a
        directory to write ``duijie_export.xlsx`` into.
    fmt : {"jsonl", "xlsx", "csv"}
    kinds : tuple of str
        Which kinds to write, in dependency order.

    Returns
    -------
    dict
        ``{"files": [paths], "counts": {kind: rows}}``.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {EXPORT_FORMATS}")
    counts: dict[str, int] = {}
    files: list[Path] = []
    with session_factory() as session:
        if fmt == "xlsx":
            # A path without the .xlsx suffix is a directory to write duijie_export.xlsx into.
            path = out if out.suffix.lower() == ".xlsx" else out / "duijie_export.xlsx"
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_xlsx(session, path, kinds, counts)
            files.append(path)
        else:
            out.mkdir(parents=True, exist_ok=True)
            for kind in kinds:
                path = out / f"{kind}.{fmt}"
                counts[kind] = (
                    _write_jsonl(session, kind, path)
                    if fmt == "jsonl"
                    else _write_csv(session, kind, path)
                )
                files.append(path)
    log.info("exported %s to %s", counts, out)
    return {"files": files, "counts": counts}


def extra_keys(session: Session, kind: str) -> list[str]:
    """The extra attributes found on records of ``kind``, in order of first appearance."""
    model: Any = MODELS[kind]
    keys: dict[str, None] = {}
    labels = {c.label for c in COLUMNS[kind]}
    for (extra,) in session.execute(select(model.extra).where(model.extra.is_not(None))):
        if isinstance(extra, dict):
            keys.update((k, None) for k in _clean(extra) if k not in labels)
    return list(keys)


def _sheet_rows(session: Session, kind: str) -> Iterator[list[Any]]:
    """The header row, then one row per record: the columns of ``kind``, then its extras."""
    cols = COLUMNS[kind]
    extras = extra_keys(session, kind)
    yield [c.label for c in cols] + extras
    for record in iter_records(session, kind):
        extra = record["extra"] or {}
        yield [_cell_value(c.key, record[c.key]) for c in cols] + [
            _cell_value(k, extra.get(k)) for k in extras
        ]


def _write_jsonl(session: Session, kind: str, path: Path) -> int:
    n = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in iter_records(session, kind):
            if not record["extra"]:
                del record["extra"]
            fh.write(json.dumps({k: _json_value(v) for k, v in record.items()}, ensure_ascii=False))
            fh.write("\n")
            n += 1
    tmp.replace(path)
    return n


def _write_csv(session: Session, kind: str, path: Path) -> int:
    n = -1  # the header row
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        for row in _sheet_rows(session, kind):
            writer.writerow(["" if v is None else v for v in row])
            n += 1
    tmp.replace(path)
    return n


def _write_xlsx(
    session: Session, path: Path, kinds: tuple[str, ...], counts: dict[str, int]
) -> None:
    from openpyxl import Workbook

    for kind in kinds:  # checked first: a half-written workbook cannot be closed cleanly
        n = session.scalar(select(func.count()).select_from(MODELS[kind])) or 0
        if n > XLSX_MAX_ROWS:
            raise ValueError(
                f"{kind}: {n} rows do not fit in an XLSX sheet (max {XLSX_MAX_ROWS}); "
                "export as jsonl or csv"
            )
    wb = Workbook(write_only=True)
    for kind in kinds:
        ws = wb.create_sheet(KIND_LABELS[kind])
        n = -1  # the header row
        for row in _sheet_rows(session, kind):
            ws.append(row)
            n += 1
        counts[kind] = n
    tmp = path.with_name(path.name + ".tmp")
    wb.save(tmp)
    tmp.replace(path)


__all__ = ["EXPORT_FORMATS", "ExportFormat", "export_store", "extra_keys", "iter_records"]
