"""Readers: CSV (encoding detected), XLSX (streaming) and JSONL tables as rows of raw values.

A :class:`Source` is one table (a CSV/JSONL file or an XLSX sheet); :meth:`Source.rows` yields
``(row_number, {original header: value})``.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from service.formats import SHEET_KIND_NAMES, SUPPORTED_SUFFIXES
from service.importing.headers import detect_kind, header_key

log = logging.getLogger(__name__)


class ImportFileError(RuntimeError):
    """A whole file cannot be read (missing, too big, unknown format or encoding)."""


RawRow = dict[str, Any]


@dataclass
class Source:
    """A readable table: one CSV/JSONL file or one XLSX sheet."""

    path: Path
    fmt: Literal["csv", "xlsx", "jsonl"]
    headers: list[str]
    kind: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str = ","

    @property
    def label(self) -> str:
        return f"{self.path.name}[{self.sheet}]" if self.sheet else self.path.name

    def rows(self) -> Iterator[tuple[int, RawRow]]:
        """Yield ``(row_number, {original header: value})``; rows are 1-based as in Excel
        (the header is row 1) for CSV/XLSX and line numbers for JSONL. Empty rows are skipped.
        """
        if self.fmt == "csv":
            yield from _csv_rows(self)
        elif self.fmt == "xlsx":
            yield from _xlsx_rows(self)
        else:
            yield from _jsonl_rows(self)


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str:
    """The text encoding of ``path``: strict UTF-8 (BOM allowed), then GB18030, then a guess.

    Returns a Python codec name (``utf-8-sig``, ``gb18030`` or charset-normalizer's guess).
    """
    for encoding in ("utf-8-sig", "gb18030"):
        if _decodes(path, encoding):
            return encoding
    from charset_normalizer import from_path

    best = from_path(path).best()
    if best is None:
        raise ImportFileError(f"{path.name}：无法识别文件编码（请另存为 UTF-8 或 GB18030）")
    log.warning("%s: encoding guessed as %s", path.name, best.encoding)
    return str(best.encoding)


def _checked_encoding(path: Path, encoding: str) -> str:
    """A caller-given encoding, verified to decode the whole file."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ImportFileError(f"未知的编码：{encoding}") from None
    if not _decodes(path, encoding):
        raise ImportFileError(f"{path.name}：不是有效的 {encoding} 编码文本")
    return encoding


def encoding_label(path: Path, encoding: str) -> str:
    """Human label: ``UTF-8 (BOM)``, ``UTF-8``, ``GB18030``..."""
    if encoding == "utf-8-sig":
        with path.open("rb") as fh:
            return "UTF-8 (BOM)" if fh.read(3) == codecs.BOM_UTF8 else "UTF-8"
    return encoding.upper()


def _restore_neutralised(value: Any) -> Any:
    """Undo the export's formula neutralisation: ``'=x`` → ``=x``."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1] in "=+-@\t\r":
        return value[1:]
    return value


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _csv_open(src: Source) -> Iterator[list[str]]:
    with src.path.open("r", encoding=src.encoding or "utf-8-sig", newline="") as fh:
        yield from csv.reader(fh, delimiter=src.delimiter)


def _csv_rows(src: Source) -> Iterator[tuple[int, RawRow]]:
    reader = _csv_open(src)
    next(reader, None)  # header (always the first record; see _open_csv)
    for index, record in enumerate(reader, start=2):
        if all(is_blank(v) for v in record):
            continue
        row = {
            h: _restore_neutralised(record[i]) if i < len(record) else None
            for i, h in enumerate(src.headers)
        }
        if len(record) > len(src.headers) and any(
            not is_blank(v) for v in record[len(src.headers) :]
        ):
            row["__extra__"] = record[len(src.headers) :]
        yield index, row


def _xlsx_rows(src: Source) -> Iterator[tuple[int, RawRow]]:
    from openpyxl import load_workbook

    wb = load_workbook(src.path, read_only=True, data_only=True)
    try:
        ws = wb[src.sheet] if src.sheet else wb.worksheets[0]
        header_seen = False
        for index, record in enumerate(ws.iter_rows(values_only=True), start=1):
            if all(is_blank(v) for v in record):
                continue
            if not header_seen:
                header_seen = True
                continue
            yield (
                index,
                {
                    h: _restore_neutralised(record[i]) if i < len(record) else None
                    for i, h in enumerate(src.headers)
                },
            )
    finally:
        wb.close()


def _jsonl_rows(src: Source) -> Iterator[tuple[int, RawRow]]:
    with src.path.open("r", encoding=src.encoding or "utf-8-sig") as fh:
        for index, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield index, {"__error__": f"不是有效的 JSON：{exc.msg}（第{exc.colno}列）"}
                continue
            if not isinstance(obj, dict):
                yield index, {"__error__": "每行必须是一个 JSON 对象"}
                continue
            yield index, obj


def open_sources(
    path: Path, kind: str = "auto", encoding: str | None = None
) -> tuple[list[Source], str | None]:
    """Open ``path`` and describe its tables.

    Returns
    -------
    sources : list of Source
        One per table, each with ``kind`` set when known (from ``kind``, the sheet name or
        the headers); ``kind`` None means it could not be detected.
    encoding : str or None
        The text encoding (None for XLSX).
    """
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        encoding = _checked_encoding(path, encoding) if encoding else detect_encoding(path)
        with path.open("r", encoding=encoding, newline="") as fh:
            first = fh.readline()
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
        src = Source(path, "csv", [], encoding=encoding, delimiter=delimiter)
        header = next(_csv_open(src), None)
        if header is None or all(is_blank(h) for h in header):
            raise ImportFileError(f"{path.name}：文件为空或缺少表头")
        src.headers = [str(h).strip() for h in header]
        src.kind = kind if kind != "auto" else detect_kind(src.headers)
        return [src], encoding
    if suffix in (".jsonl", ".ndjson"):
        encoding = _checked_encoding(path, encoding) if encoding else detect_encoding(path)
        keys: dict[str, None] = {}
        with path.open("r", encoding=encoding) as fh:
            for n, line in enumerate(fh):
                if n >= 200:
                    break
                try:
                    obj = json.loads(line) if line.strip() else None
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict):
                    keys.update(dict.fromkeys(obj))
        src = Source(path, "jsonl", list(keys), encoding=encoding)
        src.kind = kind if kind != "auto" else detect_kind(src.headers)
        return [src], encoding
    if suffix == ".xlsx":
        return _open_xlsx(path, kind), None
    raise ImportFileError(
        f"{path.name}：不支持的文件类型 {suffix or '(无扩展名)'}（支持 CSV、XLSX、JSONL）"
    )


def _open_xlsx(path: Path, kind: str) -> list[Source]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for corrupt files
        raise ImportFileError(f"{path.name}：无法读取 XLSX 文件（{exc}）") from exc
    try:
        named = {ws.title: SHEET_KIND_NAMES.get(header_key(ws.title)) for ws in wb.worksheets}
        use_named = kind == "auto" and any(named.values())
        sheets = [ws for ws in wb.worksheets if named[ws.title]] if use_named else wb.worksheets[:1]
        sources = []
        for ws in sheets:
            header: list[str] = []
            for record in ws.iter_rows(values_only=True):
                if not all(is_blank(v) for v in record):
                    header = ["" if v is None else str(v).strip() for v in record]
                    break
            while header and not header[-1]:
                header.pop()
            if not header:
                continue
            src = Source(path, "xlsx", header, sheet=ws.title)
            if kind != "auto":
                src.kind = kind
            else:
                src.kind = named[ws.title] or detect_kind(header)
            sources.append(src)
        if use_named:
            ignored = [t for t, k in named.items() if not k]
            if ignored:
                log.warning("%s: sheets ignored (name is not a kind): %s", path.name, ignored)
    finally:
        wb.close()
    if not sources:
        raise ImportFileError(f"{path.name}：工作簿中没有数据")
    return sources


def expand_paths(paths: Sequence[Path | str]) -> list[Path]:
    """Files as given; a directory contributes its supported files, sorted by name."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(
                sorted(
                    c for c in p.iterdir() if c.is_file() and c.suffix.lower() in SUPPORTED_SUFFIXES
                )
            )
        else:
            out.append(p)
    return out


__all__ = [
    "ImportFileError",
    "RawRow",
    "Source",
    "detect_encoding",
    "encoding_label",
    "expand_paths",
    "is_blank",
    "open_sources",
]
