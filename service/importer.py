"""Bulk import of organisations, needs, capabilities, bounties and bids.

Readers stream rows from CSV (UTF-8, UTF-8 with BOM or GB18030/GBK, detected), XLSX (first
sheet, or one sheet per kind named after it) and JSONL. Headers are mapped through the column
tables in :data:`COLUMNS` (English names and Chinese aliases, documented in
``docs/import_format.md``); the kind of a sheet is detected from its headers unless given.

Each file is imported in one transaction and in two passes over its rows:

1. *validate*: parse every row (:mod:`service.validation`), resolve references against the
   store, detect duplicate ids, unknown parents and parent cycles. Only the ids, parent links
   and the original values of rejected rows are kept, so memory stays bounded for big files.
2. *write*: re-read the file and upsert the valid rows by external id, in batches. Only
   attributes whose value changes are assigned, so an unchanged row keeps its ``updated_at``
   and ``content_hash``; a column absent from the file never overwrites stored values.

By default any rejected row cancels the whole file (nothing written); ``partial=True`` writes
the valid rows; ``dry_run=True`` validates and rolls everything back.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Literal, cast

from sqlalchemy import delete, false, select
from sqlalchemy.orm import Session, sessionmaker

from service.models import Base, Bid, Bounty, Capability, Need, Organisation
from service.validation import (
    BOUNTY_KIND_ALIASES,
    BOUNTY_STATUS_ALIASES,
    CAPABILITY_KIND_ALIASES,
    CAPABILITY_STATUS_ALIASES,
    NEED_STATUS_ALIASES,
    ORG_KIND_ALIASES,
    ORG_STATUS_ALIASES,
    FieldError,
    check_length,
    in_home_region,
    normalise_code,
    normalise_text,
    parse_bool,
    parse_date,
    parse_datetime,
    parse_enum,
    parse_int,
    parse_number,
    province_from_city,
    province_from_credit_code,
    split_list,
    validate_credit_code,
)

log = logging.getLogger(__name__)

Kind = Literal["organisations", "needs", "capabilities", "bounties", "bids"]
#: Dependency order: a kind only references kinds before it.
KINDS: Final[tuple[Kind, ...]] = ("organisations", "needs", "capabilities", "bounties", "bids")
KIND_LABELS: Final[dict[str, str]] = {
    "organisations": "单位",
    "needs": "技术需求",
    "capabilities": "成果",
    "bounties": "揭榜榜单",
    "bids": "揭榜申报",
}
MODELS: Final[dict[str, type[Base]]] = {
    "organisations": Organisation,
    "needs": Need,
    "capabilities": Capability,
    "bounties": Bounty,
    "bids": Bid,
}

SUPPORTED_SUFFIXES: Final[tuple[str, ...]] = (".csv", ".tsv", ".txt", ".xlsx", ".jsonl", ".ndjson")
DEFAULT_MAX_FILE_BYTES: Final[int] = 512 * 1024 * 1024
MAX_TITLE_CHARS: Final[int] = 300
MAX_NAME_CHARS: Final[int] = 200
MAX_ID_CHARS: Final[int] = 64
MAX_SHORT_CHARS: Final[int] = 64
MAX_LIST_ITEMS: Final[int] = 50
#: Leading characters that spreadsheets treat as formulas; exports prefix them with ``'``.
FORMULA_PREFIXES: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")
BATCH_SIZE: Final[int] = 500
#: Rejected rows whose reasons and original values are kept for the report (per table); the
#: rest are only counted, so a file of millions of bad rows cannot exhaust memory.
MAX_KEPT_REJECTED_ROWS: Final[int] = 20_000
#: Tables up to this many rows keep their parsed rows between the two passes.
CACHED_ROWS: Final[int] = 20_000


class ImportFileError(RuntimeError):
    """A whole file cannot be read (missing, too big, unknown format or encoding)."""


# --------------------------------------------------------------------------- column tables


@dataclass(frozen=True, slots=True)
class Column:
    """One importable column: canonical ``key``, Chinese ``label`` (export header), aliases."""

    key: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False


def _c(key: str, label: str, *aliases: str, required: bool = False) -> Column:
    return Column(key, label, (key, label, *aliases), required)


COLUMNS: Final[dict[str, tuple[Column, ...]]] = {
    "organisations": (
        _c(
            "external_id", "单位编号", "id", "编号", "机构编号", "企业编号", "org_id", required=True
        ),
        _c("name", "单位名称", "企业名称", "机构名称", "名称", "高校名称", required=True),
        _c("kind", "单位类型", "机构类型", "类型", "单位性质", required=True),
        _c("credit_code", "统一社会信用代码", "信用代码", "社会信用代码"),
        _c("province", "所在省份", "省份", "所在省", "省"),
        _c("city", "所在城市", "城市", "所在地市", "地市"),
        _c("parent", "上级单位", "上级单位编号", "parent_id", "母公司", "上级机构", "主管单位"),
        _c("fields", "所属领域", "所属行业", "行业", "领域", "行业领域", "industries"),
        _c("status", "状态"),
    ),
    "needs": (
        _c("external_id", "需求编号", "id", "编号", "need_id", required=True),
        _c(
            "org",
            "单位编号",
            "需求单位",
            "需求单位编号",
            "企业名称",
            "单位名称",
            "org_id",
            required=True,
        ),
        _c("title", "需求名称", "需求标题", "名称", "标题", required=True),
        _c("description", "需求描述", "需求内容", "描述", "详细描述", "内容"),
        _c("field", "所属领域", "领域", "技术领域", "行业领域"),
        _c("keywords", "关键词", "关键字"),
        _c("budget", "预算(万元)", "预算", "预算金额", "拟投入资金(万元)", "投入资金(万元)"),
        _c("deadline", "截止日期", "截止时间", "期限"),
        _c("confidential", "是否保密", "保密"),
        _c("status", "状态"),
    ),
    "capabilities": (
        _c("external_id", "成果编号", "id", "编号", "capability_id", required=True),
        _c(
            "org",
            "单位编号",
            "完成单位",
            "所属单位",
            "持有单位",
            "单位名称",
            "org_id",
            required=True,
        ),
        _c("kind", "成果类型", "类型", "类别"),
        _c("title", "成果名称", "名称", "标题", "专利名称", "论文题目", required=True),
        _c("description", "成果简介", "简介", "描述", "摘要", "abstract", "成果描述"),
        _c("field", "所属领域", "领域", "技术领域", "行业领域"),
        _c("keywords", "关键词", "关键字"),
        _c("trl", "技术成熟度", "成熟度", "maturity"),
        _c("year", "年份", "完成年份", "成果年份"),
        _c("status", "状态"),
    ),
    "bounties": (
        _c("external_id", "榜单编号", "id", "编号", "bounty_id", required=True),
        _c("kind", "榜单类型", "类型", "类别", required=True),
        _c(
            "poster",
            "发榜单位编号",
            "发榜单位",
            "单位编号",
            "poster_org",
            "poster_id",
            required=True,
        ),
        _c("need", "关联需求编号", "关联需求", "需求编号", "need_id"),
        _c("capability", "关联成果编号", "关联成果", "成果编号", "capability_id"),
        _c("title", "榜单名称", "名称", "标题", "项目名称", required=True),
        _c("description", "榜单描述", "榜单内容", "描述", "内容"),
        _c("budget", "榜单金额(万元)", "预算(万元)", "预算", "榜额(万元)", "揭榜金额(万元)"),
        _c("deadline", "截止日期", "截止时间", "期限"),
        _c("status", "状态"),
    ),
    "bids": (
        _c("external_id", "申报编号", "id", "编号", "bid_id", required=True),
        _c("bounty", "所揭榜单编号", "榜单编号", "所揭榜单", "bounty_id", required=True),
        _c(
            "respondent",
            "揭榜单位编号",
            "揭榜单位",
            "申报单位",
            "牵头单位",
            "单位编号",
            "respondent_id",
            required=True,
        ),
        _c("members", "联合体成员", "联合申报单位", "合作单位", "consortium"),
        _c("price", "报价(万元)", "报价", "申报金额(万元)", required=True),
        _c("proposal", "申报方案", "方案", "实施方案", "方案简介"),
        _c("submitted_at", "申报时间", "提交时间", "申报日期"),
    ),
}

SHEET_KIND_NAMES: Final[dict[str, str]] = {
    name: kind
    for kind, names in {
        "organisations": ("organisations", "organizations", "orgs", "单位", "机构", "单位信息"),
        "needs": ("needs", "技术需求", "需求"),
        "capabilities": ("capabilities", "成果", "科技成果", "能力", "能力成果"),
        "bounties": ("bounties", "榜单", "揭榜榜单"),
        "bids": ("bids", "揭榜申报", "申报"),
    }.items()
    for name in names
}


def header_key(header: object) -> str:
    """Normalise a header for alias lookup: NFKC, lower case, no spaces or ``*`` marks."""
    text = unicodedata.normalize("NFKC", str(header or "")).lower()
    return "".join(ch for ch in text if not ch.isspace() and ch not in "*＊:：\ufeff")


_ALIAS_TABLES: Final[dict[str, dict[str, Column]]] = {
    kind: {header_key(a): col for col in cols for a in col.aliases}
    for kind, cols in COLUMNS.items()
}


def detect_kind(headers: Sequence[str]) -> str | None:
    """The kind whose *distinctive* columns best match ``headers``, or None if unclear.

    A header counts for a kind only when it maps to a column of that kind and of no other
    kind (``需求名称`` counts for needs; ``编号`` or ``所属领域`` count for nothing).
    """
    scores = dict.fromkeys(KINDS, 0)
    for h in headers:
        key = header_key(h)
        hits = [k for k in KINDS if key in _ALIAS_TABLES[k]]
        if len(hits) == 1:
            scores[hits[0]] += 1
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if ranked[0][1] == 0 or ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


# --------------------------------------------------------------------------- readers

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


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _csv_open(src: Source) -> Iterator[list[str]]:
    with src.path.open("r", encoding=src.encoding or "utf-8-sig", newline="") as fh:
        yield from csv.reader(fh, delimiter=src.delimiter)


def _csv_rows(src: Source) -> Iterator[tuple[int, RawRow]]:
    reader = _csv_open(src)
    next(reader, None)  # header (always the first record; see _open_csv)
    for index, record in enumerate(reader, start=2):
        if all(_is_blank(v) for v in record):
            continue
        row = {
            h: _restore_neutralised(record[i]) if i < len(record) else None
            for i, h in enumerate(src.headers)
        }
        if len(record) > len(src.headers) and any(
            not _is_blank(v) for v in record[len(src.headers) :]
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
            if all(_is_blank(v) for v in record):
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
        if header is None or all(_is_blank(h) for h in header):
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
                if not all(_is_blank(v) for v in record):
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


# --------------------------------------------------------------------------- results


@dataclass
class Issue:
    """One problem: ``row`` None means a file-level problem (nothing from the table is used)."""

    file: str
    reason: str
    row: int | None = None
    column: str | None = None
    sheet: str | None = None
    external_id: str | None = None

    def format(self) -> str:
        where = self.file + (f"[{self.sheet}]" if self.sheet else "")
        if self.row is not None:
            where += f" 第{self.row}行"
        if self.column:
            where += f" 列「{self.column}」"
        return f"{where}：{self.reason}"


@dataclass
class RejectedRow:
    file: str
    sheet: str | None
    row: int
    values: dict[str, Any]
    reasons: list[str]


@dataclass
class TableResult:
    """Counts for one table (file or sheet)."""

    file: str
    sheet: str | None
    kind: str | None
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    fatal: bool = False


@dataclass
class FileResult:
    path: Path
    encoding: str | None = None
    tables: list[TableResult] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    rejected_rows: list[RejectedRow] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.issues


@dataclass
class ImportReport:
    """Everything an import run did and found."""

    files: list[FileResult] = field(default_factory=list)
    dry_run: bool = False
    partial: bool = False

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def issues(self) -> list[Issue]:
        return [i for f in self.files for i in f.issues]

    def totals(self) -> dict[str, int]:
        out = {"rows": 0, "created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
        for f in self.files:
            for t in f.tables:
                for k in out:
                    out[k] += getattr(t, k)
        return out

    def write_rejected_csv(self, path: Path) -> int:
        """Write rejected rows (original columns plus 文件/工作表/行号/原因) as UTF-8 with BOM.

        File-level issues are written as rows without original values. Returns the number
        of lines written.
        """
        from service.exporter import neutralise_cell

        headers: dict[str, None] = {}
        for f in self.files:
            for r in f.rejected_rows:
                headers.update(dict.fromkeys(k for k in r.values if not k.startswith("__")))
        fixed = ["文件", "工作表", "行号", "原因"]
        path.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(fixed + [h for h in headers if h not in fixed])
            for f in self.files:
                for issue in f.issues:
                    if issue.row is None:
                        writer.writerow([issue.file, issue.sheet or "", "", issue.format()])
                        n += 1
                for r in f.rejected_rows:
                    values = [neutralise_cell(_cell_text(r.values.get(h))) for h in headers]
                    writer.writerow([r.file, r.sheet or "", r.row, "；".join(r.reasons), *values])
                    n += 1
        return n


def _cell_text(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


# --------------------------------------------------------------------------- directory


@dataclass
class OrgEntry:
    id: int | None
    kind: str
    in_region: bool
    parent: str | None  # external id


class Directory:
    """External id lookups against the store, refreshed after each table is written."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.orgs: dict[str, OrgEntry] = {}
        self.org_by_code: dict[str, str] = {}
        self.org_by_name: dict[str, str | None] = {}
        self.needs: dict[str, int] = {}
        self.capabilities: dict[str, int] = {}
        self.bounties: dict[str, tuple[int, str]] = {}
        self.loaded: set[str] = set()

    def load(self, *kinds: str) -> None:
        s = self.session
        if "organisations" in kinds:
            rows = s.execute(
                select(
                    Organisation.id,
                    Organisation.external_id,
                    Organisation.kind,
                    Organisation.in_region,
                    Organisation.parent_id,
                    Organisation.credit_code,
                    Organisation.name,
                )
            ).all()
            ext_by_id = {r.id: r.external_id for r in rows}
            self.orgs = {
                r.external_id: OrgEntry(r.id, r.kind, r.in_region, ext_by_id.get(r.parent_id))
                for r in rows
            }
            self.org_by_code = {r.credit_code: r.external_id for r in rows if r.credit_code}
            self.org_by_name = {}
            for r in rows:
                self.org_by_name[r.name] = None if r.name in self.org_by_name else r.external_id
        if "needs" in kinds:
            self.needs = dict(s.execute(select(Need.external_id, Need.id)).all())
        if "capabilities" in kinds:
            self.capabilities = dict(s.execute(select(Capability.external_id, Capability.id)).all())
        if "bounties" in kinds:
            self.bounties = {
                ext: (i, k)
                for i, ext, k in s.execute(select(Bounty.id, Bounty.external_id, Bounty.kind))
            }
        self.loaded.update(kinds)

    def resolve_org(self, ref: str) -> str | None:
        """An organisation's external id from its external id, credit code or unique name."""
        if ref in self.orgs:
            return ref
        code = normalise_code(ref).upper()
        if code in self.org_by_code:
            return self.org_by_code[code]
        return self.org_by_name.get(ref)


# --------------------------------------------------------------------------- row parsing


class RowErrors(Exception):
    """Collected ``(column label, reason)`` pairs of one row."""

    def __init__(self, errors: list[tuple[str | None, str]]) -> None:
        super().__init__("; ".join(r for _, r in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int
    max_title_chars: int = MAX_TITLE_CHARS


class RowParser:
    """Turns raw rows of one table into clean value dicts for the model's attributes.

    ``header_of`` maps canonical keys to the original header (for messages); keys absent
    from the table are absent from the result, so they never overwrite stored values.
    """

    def __init__(
        self,
        kind: str,
        header_of: dict[str, str],
        directory: Directory,
        limits: Limits,
        home_region: str,
    ) -> None:
        self.kind = kind
        self.header_of = header_of
        self.directory = directory
        self.limits = limits
        self.home_region = home_region

    def parse(self, raw: RawRow) -> dict[str, Any]:
        """Clean values keyed by model attribute; raises :class:`RowErrors`."""
        if "__error__" in raw:
            raise RowErrors([(None, str(raw["__error__"]))])
        errors: list[tuple[str | None, str]] = []
        values: dict[str, Any] = {}
        if "__extra__" in raw:
            errors.append((None, "该行的列数多于表头（可能有未加引号的逗号）"))
        getter = getattr(self, f"_{self.kind}")
        for key in self.header_of:
            value = raw.get(self.header_of[key])
            try:
                getter(key, value, values)
            except FieldError as exc:
                errors.append((self.header_of[key], str(exc)))
        for col in COLUMNS[self.kind]:
            if col.required and col.key in self.header_of and col.key not in values:
                if not any(c == self.header_of[col.key] for c, _ in errors):
                    errors.append((self.header_of[col.key], f"必填项「{col.label}」为空"))
        if not errors:
            try:
                self._cross_fields(values)
            except FieldError as exc:
                errors.append((None, str(exc)))
        if errors:
            raise RowErrors(errors)
        return values

    # -- shared pieces
    def _text(self, value: Any, limit: int, what: str) -> str:
        return check_length(normalise_text(value), limit, what)

    def _id(self, value: Any, what: str) -> str | None:
        text = normalise_code(value)
        if not text:
            return None
        return check_length(text, MAX_ID_CHARS, what)

    def _org_ref(self, value: Any, what: str) -> str | None:
        ref = normalise_text(value)
        if not ref:
            return None
        ext = self.directory.resolve_org(ref)
        if ext is None:
            if ref in self.directory.org_by_name:
                raise FieldError(
                    f"{what}「{ref}」对应多个同名单位，请改填单位编号或统一社会信用代码"
                )
            raise FieldError(f"{what}「{ref}」不存在（请先导入单位，或检查编号）")
        return ext

    def _common(self, key: str, value: Any, out: dict[str, Any], table: dict[str, str]) -> bool:
        lim = self.limits
        if key == "external_id":
            if (ext := self._id(value, "编号")) is not None:
                out["external_id"] = ext
        elif key == "title":
            text = self._text(value, lim.max_title_chars, "标题")
            if text:
                out["title"] = text
        elif key in ("description", "proposal"):
            out[key] = self._text(value, lim.max_text_chars, "描述")
        elif key == "field":
            out["field"] = self._text(value, MAX_SHORT_CHARS, "领域") or None
        elif key == "keywords":
            items = split_list(value)
            if len(items) > MAX_LIST_ITEMS:
                raise FieldError(f"关键词过多：{len(items)}个，上限{MAX_LIST_ITEMS}个")
            out["keywords"] = [check_length(k, MAX_SHORT_CHARS, "关键词") for k in items]
        elif key == "budget":
            out["budget"] = None if _is_blank(value) else parse_number(value, "预算")
        elif key == "deadline":
            out["deadline"] = None if _is_blank(value) else parse_date(value, "截止日期")
        elif key == "status":
            if not _is_blank(value):
                out["status"] = parse_enum(value, table, "状态")
        else:
            return False
        return True

    # -- per kind
    def _organisations(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, ORG_STATUS_ALIASES):
            return
        if key == "name":
            if text := self._text(value, MAX_NAME_CHARS, "单位名称"):
                out["name"] = text
        elif key == "kind":
            if not _is_blank(value):
                out["kind"] = parse_enum(value, ORG_KIND_ALIASES, "单位类型")
        elif key == "credit_code":
            out["credit_code"] = None if _is_blank(value) else validate_credit_code(str(value))
        elif key in ("province", "city"):
            out[key] = self._text(value, 32, "省份" if key == "province" else "城市") or None
        elif key == "parent":
            out["parent"] = self._id(value, "上级单位")
        elif key == "fields":
            out["fields"] = [check_length(f, MAX_SHORT_CHARS, "领域") for f in split_list(value)]

    def _needs(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, NEED_STATUS_ALIASES):
            return
        if key == "org":
            if (ext := self._org_ref(value, "需求单位")) is not None:
                out["org"] = ext
        elif key == "confidential":
            out["confidential"] = parse_bool(value)

    def _capabilities(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, CAPABILITY_STATUS_ALIASES):
            return
        if key == "org":
            if (ext := self._org_ref(value, "成果单位")) is not None:
                out["org"] = ext
        elif key == "kind":
            out["kind"] = (
                "achievement"
                if _is_blank(value)
                else parse_enum(value, CAPABILITY_KIND_ALIASES, "成果类型")
            )
        elif key == "trl":
            out["trl"] = (
                None if _is_blank(value) else parse_int(value, "技术成熟度", minimum=1, maximum=9)
            )
        elif key == "year":
            out["year"] = (
                None if _is_blank(value) else parse_int(value, "年份", minimum=1900, maximum=2100)
            )

    def _bounties(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if self._common(key, value, out, BOUNTY_STATUS_ALIASES):
            return
        if key == "kind":
            if not _is_blank(value):
                out["kind"] = parse_enum(value, BOUNTY_KIND_ALIASES, "榜单类型")
        elif key == "poster":
            if (ext := self._org_ref(value, "发榜单位")) is not None:
                out["poster"] = ext
        elif key == "need":
            ref = self._id(value, "关联需求")
            if ref is not None and ref not in self.directory.needs:
                raise FieldError(f"关联需求「{ref}」不存在")
            out["need"] = ref
        elif key == "capability":
            ref = self._id(value, "关联成果")
            if ref is not None and ref not in self.directory.capabilities:
                raise FieldError(f"关联成果「{ref}」不存在")
            out["capability"] = ref

    def _bids(self, key: str, value: Any, out: dict[str, Any]) -> None:
        if key in ("external_id", "proposal"):
            self._common(key, value, out, {})
        elif key == "bounty":
            ref = self._id(value, "榜单编号")
            if ref is not None:
                if ref not in self.directory.bounties:
                    raise FieldError(f"榜单「{ref}」不存在")
                out["bounty"] = ref
        elif key == "respondent":
            if (ext := self._org_ref(value, "揭榜单位")) is not None:
                out["respondent"] = ext
        elif key == "members":
            members = []
            for ref in split_list(value):
                ext = self.directory.resolve_org(ref)
                if ext is None:
                    raise FieldError(f"联合体成员「{ref}」不存在")
                if ext not in members:
                    members.append(ext)
            out["members"] = members
        elif key == "price":
            if not _is_blank(value):
                out["price"] = parse_number(value, "报价")
        elif key == "submitted_at" and not _is_blank(value):
            out["submitted_at"] = parse_datetime(value, "申报时间")

    def _cross_fields(self, values: dict[str, Any]) -> None:
        if self.kind == "organisations":
            # A missing province is derived from the credit code, else from a known city.
            if values.get("province") is None:
                derived = None
                if values.get("credit_code"):
                    derived = province_from_credit_code(values["credit_code"])
                derived = derived or province_from_city(values.get("city"))
                if derived or "province" in values:
                    values["province"] = derived
            if "province" in values:
                values["in_region"] = in_home_region(values["province"], self.home_region)
            if values.get("parent") is not None and values["parent"] == values.get("external_id"):
                raise FieldError("上级单位不能是本单位")
        elif self.kind == "bounties":
            poster = self.directory.orgs.get(values.get("poster", ""))
            if values.get("kind") == "tackle" and poster is not None:
                if poster.kind not in ("enterprise", "company") or not poster.in_region:
                    raise FieldError(
                        f"技术攻关类榜单的发榜单位必须是区内企业（{values['poster']} 为"
                        f"{'区内' if poster.in_region else '区外'}{poster.kind}）"
                    )
        elif self.kind == "bids":
            respondent = values.get("respondent")
            if respondent and respondent in values.get("members", []):
                values["members"] = [m for m in values["members"] if m != respondent]


# --------------------------------------------------------------------------- importer


def _as_utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) or isinstance(b, datetime):
        return bool(_as_utc(a) == _as_utc(b))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and float(a) == float(b)
    if isinstance(a, date) and isinstance(b, date):
        return a == b
    return bool(a == b)


ProgressFactory = Callable[[Iterable[Any], str], Iterable[Any]]


def default_progress(enabled: bool | None = None) -> ProgressFactory:
    """tqdm when stderr is a terminal (or ``enabled``), otherwise periodic log lines."""
    use_tqdm = sys.stderr.isatty() if enabled is None else enabled

    def wrap(items: Iterable[Any], desc: str) -> Iterable[Any]:
        if use_tqdm:
            from tqdm import tqdm

            return cast(Iterable[Any], tqdm(items, desc=desc, unit="行", leave=False))
        return _log_every(items, desc)

    return wrap


def _log_every(items: Iterable[Any], desc: str, every: int = 10_000) -> Iterator[Any]:
    n = 0
    for n, item in enumerate(items, start=1):
        if n % every == 0:
            log.info("%s: %d rows", desc, n)
        yield item


class Importer:
    """Validate and upsert tables into the store.

    Parameters
    ----------
    session_factory : sessionmaker
        From :func:`service.db.open_store`.
    home_region : str
        ``Settings.home_region``; decides ``Organisation.in_region``.
    max_text_chars : int
        ``Settings.max_text_chars``; limit of descriptions and proposals.
    partial : bool
        Write the valid rows of a file even when others are rejected.
    dry_run : bool
        Validate only; every change is rolled back.
    encoding : str or None
        Force the text encoding of CSV/JSONL files (e.g. ``big5``, which GB18030 would
        otherwise decode as the wrong characters); None detects it.
    max_file_bytes : int
        Larger files are refused before reading.
    progress : callable or None
        ``progress(iterable, description)``; default :func:`default_progress`.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        home_region: str = "广西",
        max_text_chars: int = 20_000,
        partial: bool = False,
        dry_run: bool = False,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        encoding: str | None = None,
        progress: ProgressFactory | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.home_region = home_region
        self.max_text_chars = max_text_chars
        self.partial = partial
        self.dry_run = dry_run
        self.max_file_bytes = max_file_bytes
        self.encoding = encoding
        self.progress = progress

    # -- public
    def import_paths(self, paths: Sequence[Path | str], kind: str = "auto") -> ImportReport:
        """Import files (directories are expanded to their supported files) in dependency
        order: organisations first, bids last. Each file commits on its own unless dry-run.
        """
        report = ImportReport(dry_run=self.dry_run, partial=self.partial)
        planned: list[tuple[int, Path, list[Source], FileResult]] = []
        for path in expand_paths(paths):
            result = FileResult(path=path)
            report.files.append(result)
            try:
                self._check_file(path)
                sources, encoding = open_sources(path, kind, self.encoding)
            except ImportFileError as exc:
                result.issues.append(Issue(path.name, str(exc)))
                continue
            result.encoding = encoding_label(path, encoding) if encoding else "XLSX"
            order = min((KINDS.index(s.kind) for s in sources if s.kind in KINDS), default=0)
            planned.append((order, path, sources, result))
        planned.sort(key=lambda p: p[0])
        # A dry run shares one session so later files see the (uncommitted) earlier ones.
        shared = self.session_factory() if self.dry_run else None
        if shared is not None:
            # Open a real transaction first: pysqlite only BEGINs before DML, and a SAVEPOINT
            # issued outside a transaction would make its RELEASE a COMMIT.
            shared.execute(delete(Organisation).where(false()))
        try:
            for _, _path, sources, result in planned:
                session = shared or self.session_factory()
                try:
                    self._import_file(session, sources, result)
                finally:
                    if shared is None:
                        session.close()
        finally:
            if shared is not None:
                shared.rollback()
                shared.close()
        return report

    def _check_file(self, path: Path) -> None:
        if not path.is_file():
            raise ImportFileError(f"{path}：文件不存在")
        size = path.stat().st_size
        if size > self.max_file_bytes:
            raise ImportFileError(
                f"{path.name}：文件过大（{size / 2**20:.0f} MB，上限 "
                f"{self.max_file_bytes / 2**20:.0f} MB），请拆分后导入"
            )
        if size == 0:
            raise ImportFileError(f"{path.name}：文件为空")

    # -- one file
    def _import_file(self, session: Session, sources: list[Source], result: FileResult) -> None:
        sources = sorted(sources, key=lambda s: KINDS.index(s.kind) if s.kind in KINDS else -1)
        directory = Directory(session)
        # In a dry run all files share one session; each file is a savepoint that a failed
        # file rolls back, so later files see exactly what a real run would have written.
        savepoint = session.begin_nested() if self.dry_run else None
        try:
            for src in sources:
                table = TableResult(src.path.name, src.sheet, src.kind)
                result.tables.append(table)
                header_of = self._map_headers(src, result)
                if header_of is None:
                    table.fatal = True
                    continue
                directory.load(*KINDS)
                validation = self._validate(src, header_of, directory, result, table)
                if table.fatal:
                    break
                # Valid rows are written (flushed) even when others were rejected, so later
                # sheets validate against them; without --partial the file is rolled back.
                self._write(session, src, header_of, directory, validation, table)
            failed = any(t.fatal for t in result.tables) or (result.issues and not self.partial)
            if failed:
                (savepoint or session).rollback()
                for t in result.tables:
                    t.created = t.updated = t.unchanged = 0
                return
            if savepoint is not None:
                savepoint.commit()  # RELEASE: kept until the dry run's final rollback
            else:
                session.commit()
                result.written = True
        except Exception as exc:
            (savepoint or session).rollback()
            log.exception("import of %s failed", result.path)
            result.issues.append(Issue(result.path.name, f"写入数据库失败，已回滚：{exc}"))
            for t in result.tables:
                t.fatal = True
                t.created = t.updated = t.unchanged = 0

    def _map_headers(self, src: Source, result: FileResult) -> dict[str, str] | None:
        issue = Issue(src.path.name, "", sheet=src.sheet)
        if src.kind not in KINDS:
            issue.reason = (
                "无法从表头识别数据类型（单位/技术需求/成果/榜单/申报），请用 --kind 指定"
                if src.kind is None
                else f"未知的数据类型 {src.kind}"
            )
            result.issues.append(issue)
            return None
        table = _ALIAS_TABLES[src.kind]
        header_of: dict[str, str] = {}
        unknown = []
        for h in src.headers:
            col = table.get(header_key(h))
            if col is None:
                if h:
                    unknown.append(h)
            elif col.key in header_of:
                log.warning(
                    "%s: column %r duplicates %r; ignored", src.label, h, header_of[col.key]
                )
            else:
                header_of[col.key] = h
        if unknown:
            log.warning("%s: unknown columns ignored: %s", src.label, ", ".join(unknown))
        missing = [c.label for c in COLUMNS[src.kind] if c.required and c.key not in header_of]
        if missing:
            for label in missing:
                result.issues.append(
                    Issue(
                        src.path.name,
                        f"缺少必填列「{label}」（{KIND_LABELS[src.kind]}表），整个文件未导入",
                        column=label,
                        sheet=src.sheet,
                    )
                )
            return None
        return header_of

    def _parser(self, src: Source, header_of: dict[str, str], directory: Directory) -> RowParser:
        return RowParser(
            str(src.kind),
            header_of,
            directory,
            Limits(self.max_text_chars, MAX_TITLE_CHARS),
            self.home_region,
        )

    def _progress(self, items: Iterable[Any], desc: str) -> Iterable[Any]:
        return (self.progress or default_progress())(items, desc)

    # -- pass 1
    def _validate(
        self,
        src: Source,
        header_of: dict[str, str],
        directory: Directory,
        result: FileResult,
        table: TableResult,
    ) -> _Validation:
        parser = self._parser(src, header_of, directory)
        v = _Validation()
        raw_keep: dict[int, RawRow] = {}
        for row_no, raw in self._progress(src.rows(), f"校验 {src.label}"):
            table.rows += 1
            try:
                values = parser.parse(raw)
            except RowErrors as exc:
                v.reject(row_no, exc.errors, values_ext(raw, header_of))
                if v.rejected[row_no]:
                    raw_keep[row_no] = raw
                continue
            ext = values["external_id"]
            if ext in v.first_row:
                v.reject(
                    row_no,
                    [
                        (
                            header_of["external_id"],
                            f"编号「{ext}」在文件中重复（首次出现于第{v.first_row[ext]}行）",
                        )
                    ],
                    ext,
                )
                if v.rejected[row_no]:
                    raw_keep[row_no] = raw
                continue
            v.first_row[ext] = row_no
            if v.cache is not None:
                if len(v.cache) < CACHED_ROWS:
                    v.cache[row_no] = values
                else:  # too big to keep: the write pass re-reads the file
                    v.cache = None
            if src.kind == "organisations":
                problem = self._check_credit_code(values, v, directory)
                if problem:
                    v.reject(row_no, [(header_of.get("credit_code"), problem)], ext)
                    if v.rejected[row_no]:
                        raw_keep[row_no] = raw
                    continue
                if "parent" in values:
                    v.parents[ext] = (row_no, values["parent"])
        if src.kind == "organisations":
            self._check_parents(src, header_of, directory, v, raw_keep)
        # The rows rejected only for parent problems were not kept above: re-read them.
        missing = [r for r, errors in v.rejected.items() if errors and r not in raw_keep]
        if missing:
            wanted = set(missing)
            for row_no, raw in src.rows():
                if row_no in wanted:
                    raw_keep[row_no] = raw
        untold = 0
        for row_no in sorted(v.rejected):
            errors = v.rejected[row_no]
            if not errors:
                untold += 1
                continue
            for column, reason in errors:
                result.issues.append(
                    Issue(
                        src.path.name,
                        reason,
                        row=row_no,
                        column=column,
                        sheet=src.sheet,
                        external_id=v.ext_of.get(row_no),
                    )
                )
            result.rejected_rows.append(
                RejectedRow(
                    src.path.name,
                    src.sheet,
                    row_no,
                    raw_keep.get(row_no, {}),
                    [f"{c}：{r}" if c else r for c, r in errors],
                )
            )
        if untold:
            result.issues.append(
                Issue(
                    src.path.name,
                    f"另有 {untold} 行被拒绝，未逐行列出（只列出前 {MAX_KEPT_REJECTED_ROWS} 行）",
                    sheet=src.sheet,
                )
            )
        table.rejected = len(v.rejected)
        return v

    def _check_credit_code(
        self, values: dict[str, Any], v: _Validation, directory: Directory
    ) -> str | None:
        code = values.get("credit_code")
        if not code:
            return None
        ext = values["external_id"]
        if code in v.codes:
            return f"统一社会信用代码 {code} 与第{v.codes[code]}行重复"
        owner = directory.org_by_code.get(code)
        if owner is not None and owner != ext:
            return f"统一社会信用代码 {code} 已属于单位「{owner}」"
        v.codes[code] = v.first_row[ext]
        return None

    def _check_parents(
        self,
        src: Source,
        header_of: dict[str, str],
        directory: Directory,
        v: _Validation,
        raw_keep: dict[int, RawRow],
    ) -> None:
        column = header_of.get("parent")
        in_file = {ext: row for ext, row in v.first_row.items() if row not in v.rejected}
        # Parent of every organisation after this import: store first, file overrides.
        graph = {ext: e.parent for ext, e in directory.orgs.items()}
        for ext, (_row, parent) in v.parents.items():
            graph[ext] = parent
        for ext in in_file:
            graph.setdefault(ext, None)
        # Unknown parents (propagating: a child of a rejected row is rejected too).
        changed = True
        while changed:
            changed = False
            for ext, (row, parent) in v.parents.items():
                if row in v.rejected or parent is None:
                    continue
                if parent in v.first_row and v.first_row[parent] in v.rejected:
                    v.reject(row, [(column, f"上级单位「{parent}」所在行被拒绝")], ext)
                    changed = True
                elif parent not in directory.orgs and parent not in in_file:
                    v.reject(
                        row, [(column, f"上级单位「{parent}」不存在（库中和本文件中均无）")], ext
                    )
                    changed = True
        # Cycles through any row of this file.
        for ext, (row, _parent) in v.parents.items():
            if row in v.rejected:
                continue
            seen = [ext]
            cur = graph.get(ext)
            while cur is not None:
                if cur == ext:
                    chain = " → ".join([*seen, ext])
                    v.reject(row, [(column, f"上级单位形成循环：{chain}")], ext)
                    break
                if cur in seen:
                    break  # a cycle not through this row; reported on its own rows
                seen.append(cur)
                cur = graph.get(cur)

    # -- pass 2
    def _write(
        self,
        session: Session,
        src: Source,
        header_of: dict[str, str],
        directory: Directory,
        v: _Validation,
        table: TableResult,
    ) -> None:
        parser = self._parser(src, header_of, directory)
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
        for values in self._progress(valid, f"写入 {src.label}"):
            batch.append(values)
            if len(batch) >= BATCH_SIZE:
                self._upsert(session, kind, batch, directory, table, v)
                batch = []
        if batch:
            self._upsert(session, kind, batch, directory, table, v)
        if kind == "organisations" and v.parents:
            session.flush()
            directory.load("organisations")
            self._link_parents(session, v, directory, table)
        session.flush()
        session.expunge_all()

    def _attrs(self, kind: str, values: dict[str, Any], directory: Directory) -> dict[str, Any]:
        """Model attributes from clean values (references resolved to primary keys)."""
        attrs = {
            k: v
            for k, v in values.items()
            if k not in ("org", "poster", "need", "capability", "bounty", "respondent", "parent")
        }
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

    def _upsert(
        self,
        session: Session,
        kind: str,
        batch: list[dict[str, Any]],
        directory: Directory,
        table: TableResult,
        v: _Validation,
    ) -> None:
        model: Any = MODELS[kind]
        ids = [values["external_id"] for values in batch]
        existing = {
            obj.external_id: obj
            for obj in session.scalars(select(model).where(model.external_id.in_(ids)))
        }
        for values in batch:
            attrs = self._attrs(kind, values, directory)
            obj = existing.get(values["external_id"])
            if obj is None:
                session.add(model(**attrs))
                table.created += 1
                if kind == "organisations":
                    v.status[values["external_id"]] = "created"
                continue
            changed = False
            for name, value in attrs.items():
                if not _same(getattr(obj, name), value):
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

    def _link_parents(
        self, session: Session, v: _Validation, directory: Directory, table: TableResult
    ) -> None:
        wanted = {
            ext: (directory.orgs[parent].id if parent else None)
            for ext, (row, parent) in v.parents.items()
            if row not in v.rejected
        }
        for i in range(0, len(wanted), BATCH_SIZE):
            chunk = list(wanted)[i : i + BATCH_SIZE]
            for obj in session.scalars(
                select(Organisation).where(Organisation.external_id.in_(chunk))
            ):
                if obj.parent_id != wanted[obj.external_id]:
                    obj.parent_id = wanted[obj.external_id]
                    if v.status.get(obj.external_id) == "unchanged":
                        # Only the parent changed: the row counts as updated.
                        v.status[obj.external_id] = "updated"
                        table.unchanged -= 1
                        table.updated += 1
            session.flush()
            session.expunge_all()


@dataclass
class _Validation:
    """Pass-1 state of one table: kept small (ids and row numbers only)."""

    first_row: dict[str, int] = field(default_factory=dict)
    rejected: dict[int, list[tuple[str | None, str]]] = field(default_factory=dict)
    ext_of: dict[int, str | None] = field(default_factory=dict)
    parents: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # organisations only
    #: Parsed values of the valid rows while the table is small (None once it is not).
    cache: dict[int, dict[str, Any]] | None = field(default_factory=dict)
    _valid_rows: set[int] | None = None

    def reject(self, row: int, errors: list[tuple[str | None, str]], ext: str | None) -> None:
        if row in self.rejected or len(self.rejected) < MAX_KEPT_REJECTED_ROWS:
            self.rejected.setdefault(row, []).extend(errors)
            self.ext_of[row] = ext
        else:
            self.rejected[row] = []  # counted and skipped, not detailed
        self._valid_rows = None

    def first_row_set(self) -> set[int]:
        if self._valid_rows is None:
            self._valid_rows = set(self.first_row.values())
        return self._valid_rows


def values_ext(raw: RawRow, header_of: dict[str, str]) -> str | None:
    """The external id of a raw row, for messages (may be unnormalised or missing)."""
    value = raw.get(header_of.get("external_id", ""), None)
    return normalise_code(value) or None if value is not None else None


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
    "COLUMNS",
    "FORMULA_PREFIXES",
    "KINDS",
    "KIND_LABELS",
    "Column",
    "FileResult",
    "ImportFileError",
    "ImportReport",
    "Importer",
    "Issue",
    "Source",
    "TableResult",
    "default_progress",
    "detect_encoding",
    "detect_kind",
    "expand_paths",
    "header_key",
    "open_sources",
]
