"""Export of the store in the import formats, so every export can be re-imported.

* ``jsonl``: one file per kind (``organisations.jsonl`` ...), canonical English keys, lists as
  JSON arrays, references as external ids;
* ``xlsx``: one workbook, one sheet per kind named in Chinese (单位, 技术需求, 成果, 揭榜榜单,
  揭榜申报) with the Chinese column labels of :data:`service.formats.COLUMNS`;
* ``csv``: one UTF-8-with-BOM file per kind (Excel opens it), Chinese headers.

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
from service.models import Bid, Bounty, Capability, Need, Organisation

log = logging.getLogger(__name__)

ExportFormat = Literal["jsonl", "xlsx", "csv"]
EXPORT_FORMATS: Final[tuple[ExportFormat, ...]] = ("jsonl", "xlsx", "csv")
LIST_JOINER: Final[str] = "；"
XLSX_MAX_ROWS: Final[int] = 1_048_575  # Excel's sheet limit minus the header row


def iter_records(session: Session, kind: str) -> Iterator[dict[str, Any]]:
    """Records of ``kind`` as dicts keyed like :data:`COLUMNS` (references as external ids).

    Rows are streamed in primary-key order.
    """
    org_ext = dict(session.execute(select(Organisation.id, Organisation.external_id)).all())
    if kind == "organisations":
        for o in session.scalars(select(Organisation).order_by(Organisation.id)).yield_per(1000):
            yield {
                "external_id": o.external_id,
                "name": o.name,
                "kind": o.kind,
                "credit_code": o.credit_code,
                "province": o.province,
                "city": o.city,
                "parent": org_ext.get(o.parent_id) if o.parent_id else None,
                "fields": list(o.fields or []),
                "status": o.status,
                "scale": o.scale,
            }
    elif kind == "needs":
        for n in session.scalars(select(Need).order_by(Need.id)).yield_per(1000):
            yield {
                "external_id": n.external_id,
                "org": org_ext[n.org_id],
                "title": n.title,
                "description": n.description,
                "field": n.field,
                "keywords": list(n.keywords or []),
                "budget": n.budget,
                "deadline": n.deadline,
                "confidential": n.confidential,
                "status": n.status,
                "round": n.round,
            }
    elif kind == "capabilities":
        for c in session.scalars(select(Capability).order_by(Capability.id)).yield_per(1000):
            yield {
                "external_id": c.external_id,
                "org": org_ext[c.org_id],
                "kind": c.kind,
                "title": c.title,
                "description": c.description,
                "field": c.field,
                "keywords": list(c.keywords or []),
                "trl": c.trl,
                "year": c.year,
                "status": c.status,
            }
    elif kind == "bounties":
        need_ext = dict(session.execute(select(Need.id, Need.external_id)).all())
        cap_ext = dict(session.execute(select(Capability.id, Capability.external_id)).all())
        for b in session.scalars(select(Bounty).order_by(Bounty.id)).yield_per(1000):
            yield {
                "external_id": b.external_id,
                "kind": b.kind,
                "poster": org_ext[b.poster_org_id],
                "need": need_ext.get(b.need_id) if b.need_id else None,
                "capability": cap_ext.get(b.capability_id) if b.capability_id else None,
                "title": b.title,
                "description": b.description,
                "budget": b.budget,
                "deadline": b.deadline,
                "status": b.status,
            }
    elif kind == "bids":
        bounty_ext = dict(session.execute(select(Bounty.id, Bounty.external_id)).all())
        for d in session.scalars(select(Bid).order_by(Bid.id)).yield_per(1000):
            yield {
                "external_id": d.external_id,
                "bounty": bounty_ext[d.bounty_id],
                "respondent": org_ext[d.respondent_org_id],
                "members": list(d.members or []),
                "price": d.price,
                "proposal": d.proposal,
                "submitted_at": d.submitted_at,
                "funding_enterprise": d.funding_enterprise,
                "funding_academic": d.funding_academic,
            }
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


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


def _write_jsonl(session: Session, kind: str, path: Path) -> int:
    n = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in iter_records(session, kind):
            fh.write(json.dumps({k: _json_value(v) for k, v in record.items()}, ensure_ascii=False))
            fh.write("\n")
            n += 1
    tmp.replace(path)
    return n


def _write_csv(session: Session, kind: str, path: Path) -> int:
    cols = COLUMNS[kind]
    n = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([c.label for c in cols])
        for record in iter_records(session, kind):
            writer.writerow(
                ["" if (v := _cell_value(c.key, record[c.key])) is None else v for c in cols]
            )
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
        cols = COLUMNS[kind]
        ws.append([c.label for c in cols])
        n = 0
        for record in iter_records(session, kind):
            ws.append([_cell_value(c.key, record[c.key]) for c in cols])
            n += 1
        counts[kind] = n
    tmp = path.with_name(path.name + ".tmp")
    wb.save(tmp)
    tmp.replace(path)


__all__ = ["EXPORT_FORMATS", "ExportFormat", "export_store", "iter_records", "neutralise_cell"]
