"""The exchange formats of the store: kinds, their columns, limits and the formula guard.

This module owns what the importer and the exporter must agree on, so that neither depends on
the other:

* the five kinds in dependency order (:data:`KINDS`), their Chinese labels and models;
* the column spec of each kind (:data:`COLUMNS`): canonical key, the Chinese label the export
  writes, the header aliases the import accepts, and whether the column is required;
* size limits of files, rows, cells and fields;
* the spreadsheet formula guard: :func:`neutralise_cell` (export) and its exact inverse
  :func:`restore_cell` (import of a file the export wrote).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final, Literal

from service.models import Base, Bid, Bounty, Capability, Need, Organisation

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

# --------------------------------------------------------------------------- limits

DEFAULT_MAX_FILE_BYTES: Final[int] = 512 * 1024 * 1024
#: Rows of one table (Excel's own sheet limit); larger tables must be split.
DEFAULT_MAX_ROWS: Final[int] = 1_048_576
#: Characters of one cell (Excel's own cell limit); descriptions may be longer when
#: ``max_text_chars`` is set higher, see :func:`cell_limit`.
MAX_CELL_CHARS: Final[int] = 32_767
#: Characters of one record (CSV row or JSONL line) before it is parsed.
MAX_RECORD_CHARS: Final[int] = 1_000_000
#: Uncompressed size of an XLSX file (zip bombs are refused before parsing).
MAX_XLSX_UNCOMPRESSED_BYTES: Final[int] = 2 * 1024 * 1024 * 1024
MAX_TITLE_CHARS: Final[int] = 300
MAX_NAME_CHARS: Final[int] = 200
MAX_ID_CHARS: Final[int] = 64
MAX_SHORT_CHARS: Final[int] = 64
MAX_LIST_ITEMS: Final[int] = 50


def cell_limit(max_text_chars: int) -> int:
    """The longest cell accepted: Excel's cell limit, or the description limit if higher."""
    return max(MAX_CELL_CHARS, max_text_chars)


# --------------------------------------------------------------------------- formula guard

#: Leading characters that spreadsheets treat as a formula (or that hide one): exports prefix
#: such text with ``'``. A leading ``'`` is guarded too, so that the prefix is unambiguous:
#: every exported text starting with ``'`` carries exactly one added quote.
FORMULA_PREFIXES: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r", "\n", "'")


def needs_guard(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula.

    True when the text starts with one of :data:`FORMULA_PREFIXES`, or with spaces followed by
    ``=``, ``+``, ``-`` or ``@`` (some spreadsheets trim leading spaces before evaluating).
    """
    if text.startswith(FORMULA_PREFIXES):
        return True
    stripped = text.lstrip(" \u3000")
    return stripped != text and stripped.startswith(("=", "+", "-", "@"))


def neutralise_cell(value: Any) -> Any:
    """Prefix text that a spreadsheet would treat as a formula with ``'``.

    Parameters
    ----------
    value : Any
        A cell value. Only ``str`` values are changed; numbers (including negative ones),
        dates and None are returned as they are.

    Returns
    -------
    Any
        ``"'" + value`` when :func:`needs_guard` holds, else ``value``.
    """
    if isinstance(value, str) and needs_guard(value):
        return "'" + value
    return value


def restore_cell(value: Any) -> Any:
    """The exact inverse of :func:`neutralise_cell` on the cells it wrote.

    Only for tables written by the export (see :func:`is_export_header`): a user's own
    ``'=x`` in another spreadsheet is data and is kept as it is.
    """
    if isinstance(value, str) and value.startswith("'") and needs_guard(value[1:]):
        return value[1:]
    return value


# --------------------------------------------------------------------------- column spec


@dataclass(frozen=True, slots=True)
class Column:
    """One importable column: canonical ``key``, Chinese ``label`` (export header), aliases."""

    key: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False


def _c(key: str, label: str, *aliases: str, required: bool = False) -> Column:
    return Column(key, label, (key, label, *aliases), required)


_ORG_REF: Final[tuple[str, ...]] = (
    "企业名称",
    "单位名称",
    "企业",
    "单位",
    "org_id",
    "org_name",
)
_TEXT: Final[tuple[str, ...]] = ("描述", "详细描述", "内容", "简介", "说明", "概述")

COLUMNS: Final[dict[str, tuple[Column, ...]]] = {
    "organisations": (
        _c(
            "external_id", "单位编号", "id", "编号", "机构编号", "企业编号", "org_id", required=True
        ),
        _c(
            "name",
            "单位名称",
            "企业名称",
            "机构名称",
            "名称",
            "高校名称",
            "院校名称",
            "单位全称",
            "企业全称",
            required=True,
        ),
        _c(
            "kind",
            "单位类型",
            "机构类型",
            "类型",
            "单位性质",
            "企业类型",
            "单位类别",
            "机构性质",
            required=True,
        ),
        _c("credit_code", "统一社会信用代码", "信用代码", "社会信用代码", "统一信用代码"),
        _c("province", "所在省份", "省份", "所在省", "省", "所在省区"),
        _c("city", "所在城市", "城市", "所在地市", "地市", "所在市"),
        _c("parent", "上级单位", "上级单位编号", "parent_id", "母公司", "上级机构", "主管单位"),
        _c(
            "fields",
            "所属领域",
            "所属行业",
            "行业",
            "领域",
            "行业领域",
            "技术领域",
            "主要领域",
            "industries",
        ),
        _c("status", "状态", "单位状态"),
        _c("scale", "企业规模", "规模", "企业类型规模"),
    ),
    "needs": (
        _c("external_id", "需求编号", "id", "编号", "need_id", "需求id", required=True),
        _c(
            "org",
            "单位编号",
            "需求单位",
            "需求单位编号",
            "需求单位名称",
            "需求企业",
            *_ORG_REF,
            required=True,
        ),
        _c(
            "title",
            "需求名称",
            "技术需求名称",
            "技术需求",
            "需求标题",
            "需求项目名称",
            "名称",
            "标题",
            required=True,
        ),
        _c(
            "description",
            "需求描述",
            "需求简介",
            "需求内容",
            "需求详情",
            "需求说明",
            "需求概述",
            "技术需求描述",
            "技术需求内容",
            "技术需求简介",
            "具体需求",
            "主要技术需求",
            "需解决的技术问题",
            "技术难题",
            *_TEXT,
        ),
        _c(
            "field",
            "所属领域",
            "领域",
            "技术领域",
            "行业领域",
            "需求领域",
            "所属技术领域",
            "所属行业",
            "行业",
        ),
        _c("keywords", "关键词", "关键字", "技术关键词"),
        _c(
            "budget",
            "预算(万元)",
            "预算",
            "预算金额",
            "预算金额(万元)",
            "拟投入资金(万元)",
            "投入资金(万元)",
            "拟投入金额(万元)",
            "计划投入(万元)",
            "资金预算(万元)",
            "经费预算(万元)",
            "研发预算(万元)",
        ),
        _c(
            "deadline",
            "截止日期",
            "截止时间",
            "期限",
            "完成时限",
            "完成期限",
            "完成时间",
            "需求期限",
            "时限",
            "期望完成时间",
            "计划完成时间",
        ),
        _c("confidential", "是否保密", "保密"),
        _c("status", "状态", "需求状态"),
        _c("round", "征集批次", "批次", "征集轮次", "征集批次名称"),
    ),
    "capabilities": (
        _c("external_id", "成果编号", "id", "编号", "capability_id", "成果id", required=True),
        _c(
            "org",
            "单位编号",
            "完成单位",
            "所属单位",
            "持有单位",
            "成果单位",
            "第一完成单位",
            "专利权人",
            *_ORG_REF,
            required=True,
        ),
        _c("kind", "成果类型", "类型", "类别", "成果类别"),
        _c(
            "title",
            "成果名称",
            "名称",
            "标题",
            "专利名称",
            "论文题目",
            "技术名称",
            "成果标题",
            required=True,
        ),
        _c(
            "description",
            "成果简介",
            "简介",
            "描述",
            "摘要",
            "abstract",
            "成果描述",
            "成果内容",
            "成果概述",
            "技术简介",
            "主要内容",
            "详细描述",
            "内容",
            "说明",
        ),
        _c("field", "所属领域", "领域", "技术领域", "行业领域", "应用领域", "所属行业", "行业"),
        _c("keywords", "关键词", "关键字", "技术关键词"),
        _c("trl", "技术成熟度", "成熟度", "maturity", "成熟度等级", "技术就绪度", "trl"),
        _c("year", "年份", "完成年份", "成果年份"),
        _c("status", "状态", "成果状态"),
    ),
    "bounties": (
        _c("external_id", "榜单编号", "id", "编号", "bounty_id", required=True),
        _c("kind", "榜单类型", "类型", "类别", "榜单类别", required=True),
        _c(
            "poster",
            "发榜单位编号",
            "发榜单位",
            "发榜企业",
            "发榜单位名称",
            "单位编号",
            "poster_org",
            "poster_id",
            required=True,
        ),
        _c("need", "关联需求编号", "关联需求", "需求编号", "need_id"),
        _c("capability", "关联成果编号", "关联成果", "成果编号", "capability_id"),
        _c("title", "榜单名称", "名称", "标题", "项目名称", "榜单项目名称", required=True),
        _c("description", "榜单描述", "榜单内容", "榜单简介", "描述", "内容", "简介"),
        _c(
            "budget",
            "榜单金额(万元)",
            "预算(万元)",
            "预算",
            "榜额(万元)",
            "揭榜金额(万元)",
            "榜单金额",
            "发榜金额(万元)",
        ),
        _c("deadline", "截止日期", "截止时间", "期限", "揭榜截止日期", "完成时限"),
        _c("status", "状态", "榜单状态"),
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
            "揭榜单位名称",
            "respondent_id",
            required=True,
        ),
        _c("members", "联合体成员", "联合申报单位", "合作单位", "consortium"),
        _c("price", "报价(万元)", "报价", "申报金额(万元)", "报价金额(万元)", required=True),
        _c("proposal", "申报方案", "方案", "实施方案", "方案简介", "揭榜方案"),
        _c("submitted_at", "申报时间", "提交时间", "申报日期"),
        _c("funding_enterprise", "企业方财政经费(万元)", "企业经费(万元)", "企业方经费(万元)"),
        _c("funding_academic", "高校院所财政经费(万元)", "高校院所经费(万元)", "院所经费(万元)"),
    ),
}

#: Kinds whose rows may leave the id empty: a stable id is derived from the organisation and
#: the title (:func:`generated_id`), so re-importing the same sheet stays idempotent.
GENERATED_ID_PREFIX: Final[dict[str, str]] = {"needs": "NEED-", "capabilities": "CAP-"}
#: Headers that number the rows of a sheet (序号) and carry no data of the record.
ROW_NUMBER_HEADERS: Final[tuple[str, ...]] = ("序号", "行号", "no", "no.", "#")
#: The first columns of the rejected-rows report; a corrected report can be imported again.
REPORT_COLUMNS: Final[tuple[str, ...]] = ("文件", "工作表", "行号", "原因")
#: The key of the extra attributes in JSONL (a JSON object of header → value).
EXTRA_KEY: Final[str] = "extra"


def generated_id(kind: str, org: str, title: str) -> str:
    """A stable external id for a row of ``kind`` without one: prefix + hash of org and title."""
    digest = hashlib.sha256(f"{org}\x1f{title}".encode()).hexdigest()[:12].upper()
    return GENERATED_ID_PREFIX[kind] + digest


#: Sheet names that declare the kind of an XLSX sheet.
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


def export_labels(kind: str) -> list[str]:
    """The header row the export writes for ``kind`` (before any extra columns)."""
    return [c.label for c in COLUMNS[kind]]


def is_export_header(kind: str | None, headers: list[str]) -> bool:
    """Whether ``headers`` start with exactly the export's header row of ``kind`` (or with the
    columns of the rejected-rows report).

    Such a table was written by us (possibly with rows edited since), so its ``'`` prefixes
    are the formula guard and are removed again on import (:func:`restore_cell`).
    """
    if kind not in COLUMNS:
        return False
    labels = export_labels(kind)
    head = [h.strip() for h in headers]
    return head[: len(labels)] == labels or tuple(head[: len(REPORT_COLUMNS)]) == REPORT_COLUMNS


__all__ = [
    "COLUMNS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_ROWS",
    "EXTRA_KEY",
    "FORMULA_PREFIXES",
    "GENERATED_ID_PREFIX",
    "KINDS",
    "KIND_LABELS",
    "MAX_CELL_CHARS",
    "MAX_ID_CHARS",
    "MAX_LIST_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_RECORD_CHARS",
    "MAX_SHORT_CHARS",
    "MAX_TITLE_CHARS",
    "MODELS",
    "REPORT_COLUMNS",
    "ROW_NUMBER_HEADERS",
    "SHEET_KIND_NAMES",
    "SUPPORTED_SUFFIXES",
    "Column",
    "Kind",
    "cell_limit",
    "export_labels",
    "generated_id",
    "is_export_header",
    "needs_guard",
    "neutralise_cell",
    "restore_cell",
]
