"""Readers: CSV (encoding detected), XLSX (streaming) and JSONL tables as rows of raw values.

A :class:`Source` is one table (a CSV/JSONL file or an XLSX sheet); :meth:`Source.rows` yields
``(row_number, {original header: value})``.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from service.formats import (
    DEFAULT_MAX_ROWS,
    MAX_CELL_CHARS,
    MAX_RECORD_CHARS,
    MAX_XLSX_UNCOMPRESSED_BYTES,
    SHEET_KIND_NAMES,
    SUPPORTED_SUFFIXES,
    is_export_header,
    restore_cell,
)
from service.importing.headers import detect_kind, header_key

log = logging.getLogger(__name__)


class ImportFileError(RuntimeError):
    """A whole file cannot be read (missing, too big, unknown format or encoding)."""


RawRow = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Bounds checked while reading, before any value is parsed."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_cell_chars: int = MAX_CELL_CHARS
    max_record_chars: int = MAX_RECORD_CHARS


class TableTooLarge(ImportFileError):
    """A table has more rows than :attr:`ReadLimits.max_rows`."""


@dataclass
class Source:
    """A readable table: one CSV/JSONL file or one XLSX sheet.

    ``restore`` is set for tables written by the export (:func:`service.formats.is_export_header`):
    only there is a leading ``'`` the formula guard, removed again on reading.
    """

    path: Path
    fmt: Literal["csv", "xlsx", "jsonl"]
    headers: list[str]
    kind: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str = ","
    limits: ReadLimits = field(default_factory=ReadLimits)
    #: Rows declared or estimated (for progress), None if unknown.
    approx_rows: int | None = None
    #: ``(size, mtime)`` of the file when it was opened.
    stamp: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        return f"{self.path.name}[{self.sheet}]" if self.sheet else self.path.name

    @property
    def restore(self) -> bool:
        return self.fmt != "jsonl" and is_export_header(self.kind, self.headers)

    def rows(self) -> Iterator[tuple[int, RawRow]]:
        """Yield ``(row_number, {original header: value})``; rows are 1-based as in Excel
        (the header is row 1) for CSV/XLSX and line numbers for JSONL. Empty rows are skipped.

        A malformed record (unclosed quote, invalid JSON, too deep, too long, a cell over
        the cell limit) is yielded as a row with an ``__error__`` reason, never merged with
        the next one. More rows than ``limits.max_rows`` raise :class:`TableTooLarge`.
        """
        reader = (
            _csv_rows if self.fmt == "csv" else _xlsx_rows if self.fmt == "xlsx" else _jsonl_rows
        )
        n = 0
        for index, row in reader(self):
            n += 1
            if n > self.limits.max_rows:
                raise TableTooLarge(
                    f"{self.label}：超过 {self.limits.max_rows} 行的上限（第{index}行处停止读取），"
                    "请拆分文件后导入（或用 --max-rows 提高上限）"
                )
            yield index, _check_cells(row, self.limits.max_cell_chars)


def _check_cells(row: RawRow, limit: int) -> RawRow:
    """The row, or an error row when a cell is longer than ``limit`` (values shortened)."""
    long = [k for k, v in row.items() if isinstance(v, str) and len(v) > limit]
    if not long or "__error__" in row:
        return row
    out: RawRow = {k: (v[:200] + "…" if k in long else v) for k, v in row.items()}
    sizes = "、".join(f"「{k}」{len(row[k])}字" for k in long)
    out["__error__"] = f"单元格过长：{sizes}（每格上限{limit}字），该行未导入"
    return out


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


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _RecordTooLong(Exception):
    """A CSV record (or one physical line) is longer than the record limit."""


_OVERLONG = "\x00overlong\x00"


class _Lines:
    """Physical lines of a CSV file for :func:`csv.reader`.

    Keeps the lines of the record being read, so that a malformed record (an unclosed quote
    that would swallow the following rows) can be given back: its first line is reported as
    one bad row and the lines after it are read again as rows of their own.
    """

    def __init__(self, fh: TextIO, max_chars: int) -> None:
        self._fh = fh
        self._back: list[str] = []  # lines to read again, last first
        self.pending: list[str] = []
        self._pending_chars = 0
        self.max_chars = max_chars
        self.consumed = 0  # physical lines of finished records

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back:
            line = self._back.pop()
        else:
            line = self._fh.readline(self.max_chars + 1)
            if not line:
                raise StopIteration
            if len(line) > self.max_chars:
                while line and not line.endswith(("\n", "\r")):  # skip the rest of the line
                    line = self._fh.readline(1 << 20)
                line = _OVERLONG
        self.pending.append(line)
        self._pending_chars += len(line)
        if line is _OVERLONG or self._pending_chars > self.max_chars:
            raise _RecordTooLong
        return line

    def finish(self) -> int:
        """The record was read: return its first physical line number."""
        start = self.consumed + 1
        self.consumed += len(self.pending)
        self.pending, self._pending_chars = [], 0
        return start

    def reject_first(self) -> int:
        """Drop the first line of the current record and re-read the others; its line number."""
        start = self.consumed + 1
        self._back.extend(reversed(self.pending[1:]))
        self.consumed += 1
        self.pending, self._pending_chars = [], 0
        return start


def _csv_records(src: Source) -> Iterator[tuple[int, list[str] | str]]:
    """``(physical line, fields)`` per record, or ``(line, reason)`` for a malformed one."""
    width = len(src.headers)
    # Cells are bounded by the record limit here and by the cell limit in Source.rows (with
    # a clear message); the csv module's own limit (128 KiB) would only raise mid-file.
    if csv.field_size_limit() < src.limits.max_record_chars:
        csv.field_size_limit(src.limits.max_record_chars)
    with src.path.open("r", encoding=src.encoding or "utf-8-sig", newline="") as fh:
        lines = _Lines(fh, src.limits.max_record_chars)
        reader = csv.reader(lines, delimiter=src.delimiter, strict=True)
        first = True
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except (csv.Error, _RecordTooLong) as exc:
                spanned = len(lines.pending) > 1
                line = lines.reject_first()
                yield line, _csv_reason(exc, spanned, src.limits.max_record_chars)
                reader = csv.reader(lines, delimiter=src.delimiter, strict=True)
                continue
            if not first and len(lines.pending) > 1 and len(record) != width:
                # A quoted cell over several lines that also breaks the column count: an
                # unclosed quote swallowed the rows after it.
                line = lines.reject_first()
                yield line, "引号未闭合（该行的引号一直延续到后面的行），该行未导入"
                reader = csv.reader(lines, delimiter=src.delimiter, strict=True)
                continue
            first = False
            yield lines.finish(), record


def _csv_reason(exc: Exception, spanned: bool, max_chars: int) -> str:
    if isinstance(exc, _RecordTooLong):
        if spanned:
            return f"引号未闭合或该行过长（超过{max_chars}字），该行未导入"
        return f"该行过长（超过{max_chars}字），该行未导入"
    if spanned or "end of data" in str(exc):
        return "引号未闭合（该行的引号一直延续到后面的行），该行未导入"
    return f"CSV 格式错误：引号使用不当（{exc}），该行未导入"


def _csv_open(src: Source) -> Iterator[list[str]]:
    with src.path.open("r", encoding=src.encoding or "utf-8-sig", newline="") as fh:
        yield from csv.reader(fh, delimiter=src.delimiter)


def _csv_rows(src: Source) -> Iterator[tuple[int, RawRow]]:
    restore = restore_cell if src.restore else _same
    records = _csv_records(src)
    next(records, None)  # header (always the first record; see open_sources)
    for index, (line, record) in enumerate(records, start=2):
        where = "" if line == index else f"（文件第{line}行）"
        if isinstance(record, str):
            yield index, {"__error__": record + where}
            continue
        if all(is_blank(v) for v in record):
            continue
        row: RawRow = {
            h: restore(record[i]) if i < len(record) else None for i, h in enumerate(src.headers)
        }
        if len(record) > len(src.headers) and any(
            not is_blank(v) for v in record[len(src.headers) :]
        ):
            row["__extra__"] = record[len(src.headers) :]
        yield index, row


def _same(value: Any) -> Any:
    return value


def _xlsx_rows(src: Source) -> Iterator[tuple[int, RawRow]]:
    from openpyxl import load_workbook

    restore = restore_cell if src.restore else _same
    wb = load_workbook(src.path, read_only=True, data_only=True)
    try:
        ws = wb[src.sheet] if src.sheet else wb.worksheets[0]
        ws.reset_dimensions()  # never pad up to a declared (possibly bogus) size
        header_seen = False
        width = len(src.headers)
        for index, record in enumerate(ws.iter_rows(values_only=True), start=1):
            if index > src.limits.max_rows + 1:  # also bounds the empty rows of a gap
                raise TableTooLarge(
                    f"{src.label}：超过 {src.limits.max_rows} 行的上限（第{index}行处停止读取），"
                    "请拆分文件后导入（或用 --max-rows 提高上限）"
                )
            if all(is_blank(v) for v in record):
                continue
            if not header_seen:
                header_seen = True
                continue
            row: RawRow = {
                h: restore(record[i]) if i < len(record) else None
                for i, h in enumerate(src.headers)
            }
            for i in range(width, len(record)):  # cells right of the header row: kept
                if not is_blank(record[i]):
                    row[column_name(i)] = restore(record[i])
            yield index, row
    finally:
        wb.close()


def _json_object(line: str, max_chars: int) -> dict[str, Any] | str:
    """A JSONL line as an object, or the reason it is not one."""
    if len(line) > max_chars:
        return f"该行过长（超过{max_chars}字），该行未导入"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"不是有效的 JSON：{exc.msg}（第{exc.colno}列）"
    except RecursionError:
        return "JSON 嵌套层数过多，该行未导入"
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return f"不是有效的 JSON：{exc}"
    if not isinstance(obj, dict):
        return "每行必须是一个 JSON 对象"
    return obj


def _jsonl_lines(src: Source) -> Iterator[tuple[int, str]]:
    """Lines of a JSONL file; an overlong line is cut (and then reported) without reading it
    into memory whole."""
    limit = src.limits.max_record_chars
    with src.path.open("r", encoding=src.encoding or "utf-8-sig") as fh:
        index = 0
        while line := fh.readline(limit + 1):
            index += 1
            if len(line) > limit:
                while line and not line.endswith("\n"):
                    line = fh.readline(1 << 20)
                yield index, "x" * (limit + 1)
                continue
            yield index, line


def _jsonl_rows(src: Source) -> Iterator[tuple[int, RawRow]]:
    limit = src.limits.max_record_chars
    for index, line in _jsonl_lines(src):
        if not line.strip():
            continue
        obj = _json_object(line, limit)
        yield index, {"__error__": obj} if isinstance(obj, str) else obj


def open_sources(
    path: Path,
    kind: str = "auto",
    encoding: str | None = None,
    limits: ReadLimits | None = None,
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
    limits = limits or ReadLimits()
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt", ".jsonl", ".ndjson"):
        encoding = _checked_encoding(path, encoding) if encoding else detect_encoding(path)
        opener = _open_jsonl if suffix in (".jsonl", ".ndjson") else _open_csv
        src = opener(path, encoding, limits)
        src.kind = kind if kind != "auto" else detect_kind(src.headers)
        lines = _count_lines(path)
        src.approx_rows = lines if src.fmt == "jsonl" else max(lines - 1, 0)  # minus the header
        return [src], encoding
    if suffix == ".xlsx":
        return _open_xlsx(path, kind, limits), None
    raise ImportFileError(
        f"{path.name}：不支持的文件类型 {suffix or '(无扩展名)'}（支持 CSV、XLSX、JSONL）"
    )


def _count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def _open_csv(path: Path, encoding: str, limits: ReadLimits) -> Source:
    with path.open("r", encoding=encoding, newline="") as fh:
        first = fh.readline(limits.max_record_chars)
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    src = Source(path, "csv", [], encoding=encoding, delimiter=delimiter, limits=limits)
    header = next(_csv_records(src), None)
    if header is None or isinstance(header[1], str) or all(is_blank(h) for h in header[1]):
        raise ImportFileError(f"{path.name}：文件为空或缺少表头（或表头行格式错误）")
    src.headers = _name_blank_headers([str(h).strip() for h in header[1]])
    return src


def _open_jsonl(path: Path, encoding: str, limits: ReadLimits) -> Source:
    src = Source(path, "jsonl", [], encoding=encoding, limits=limits)
    keys: dict[str, None] = {}
    for n, (_index, line) in enumerate(_jsonl_lines(src)):
        if n >= 200:
            break
        obj = _json_object(line, limits.max_record_chars) if line.strip() else None
        if isinstance(obj, dict):
            keys.update(dict.fromkeys(obj))
    src.headers = list(keys)
    return src


def _check_xlsx_archive(path: Path) -> None:
    """Refuse a workbook whose parts unpack to more than the limit (a zip bomb)."""
    try:
        with zipfile.ZipFile(path) as zf:
            total = sum(info.file_size for info in zf.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFileError(f"{path.name}：无法读取 XLSX 文件（{exc}）") from exc
    if total > MAX_XLSX_UNCOMPRESSED_BYTES:
        raise ImportFileError(
            f"{path.name}：XLSX 解压后 {total / 2**30:.1f} GB，超过上限 "
            f"{MAX_XLSX_UNCOMPRESSED_BYTES / 2**30:.0f} GB，请拆分后导入"
        )


def _open_xlsx(path: Path, kind: str, limits: ReadLimits) -> list[Source]:
    from openpyxl import load_workbook

    _check_xlsx_archive(path)
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
            declared = ws.max_row  # from the sheet's <dimension>, before reading any row
            if declared is not None and declared > limits.max_rows + 1:
                raise TableTooLarge(
                    f"{path.name}[{ws.title}]：工作表声明了 {declared} 行，超过 {limits.max_rows} "
                    "行的上限，未读取；请拆分文件（或用 --max-rows 提高上限）"
                )
            header = _xlsx_header(ws, limits)
            if not header:
                continue
            src = Source(path, "xlsx", header, sheet=ws.title, limits=limits)
            src.kind = kind if kind != "auto" else named[ws.title] or detect_kind(header)
            src.approx_rows = declared - 1 if declared else None
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


def _xlsx_header(ws: Any, limits: ReadLimits) -> list[str]:
    """The first non-empty row of a sheet, without trailing empty cells."""
    ws.reset_dimensions()
    header: list[str] = []
    for index, record in enumerate(ws.iter_rows(values_only=True), start=1):
        if index > limits.max_rows:
            break
        if not all(is_blank(v) for v in record):
            header = ["" if v is None else str(v).strip() for v in record]
            break
    while header and not header[-1]:
        header.pop()
    return _name_blank_headers(header)


def column_name(index: int) -> str:
    """The name of an unnamed column (0-based index): ``列C`` as Excel letters it."""
    from openpyxl.utils import get_column_letter

    return f"列{get_column_letter(index + 1)}"


def _name_blank_headers(headers: list[str]) -> list[str]:
    """Unnamed columns are named after their position, so their values are kept (as extra
    attributes) instead of being dropped."""
    return [h or column_name(i) for i, h in enumerate(headers)]


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
    "ReadLimits",
    "Source",
    "TableTooLarge",
    "detect_encoding",
    "encoding_label",
    "expand_paths",
    "is_blank",
    "open_sources",
]
