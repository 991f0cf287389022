"""Pass 1 of an import: validate every row of a table without writing anything.

Only ids, row numbers, parent links and the original values of (the first
:data:`MAX_KEPT_REJECTED_ROWS`) rejected rows are kept, so memory stays bounded; the parsed
values of small tables are cached for the write pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from service.importing.directory import Directory
from service.importing.parse import RowErrors, RowParser
from service.importing.readers import RawRow, Source
from service.importing.report import FileResult, Issue, RejectedRow, TableResult
from service.validation import normalise_code

#: Rejected rows whose reasons and original values are kept for the report (per table); the
#: rest are only counted, so a file of millions of bad rows cannot exhaust memory.
MAX_KEPT_REJECTED_ROWS: Final[int] = 20_000
#: Tables up to this many rows keep their parsed rows between the two passes.
CACHED_ROWS: Final[int] = 20_000

Errors = list[tuple[str | None, str]]


@dataclass
class Validation:
    """Pass-1 state of one table: kept small (ids and row numbers only)."""

    first_row: dict[str, int] = field(default_factory=dict)
    rejected: dict[int, Errors] = field(default_factory=dict)
    ext_of: dict[int, str | None] = field(default_factory=dict)
    parents: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # organisations only
    #: Parsed values of the valid rows while the table is small (None once it is not).
    cache: dict[int, dict[str, Any]] | None = field(default_factory=dict)
    raw_keep: dict[int, RawRow] = field(default_factory=dict)
    _valid_rows: set[int] | None = None

    def reject(self, row: int, errors: Errors, ext: str | None, raw: RawRow | None = None) -> None:
        if row in self.rejected or len(self.rejected) < MAX_KEPT_REJECTED_ROWS:
            self.rejected.setdefault(row, []).extend(errors)
            self.ext_of[row] = ext
            if raw is not None:
                self.raw_keep[row] = raw
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


def validate_table(
    src: Source,
    parser: RowParser,
    directory: Directory,
    result: FileResult,
    table: TableResult,
    progress: Callable[..., Iterable[Any]],
) -> Validation:
    """Parse every row of ``src``; record rejected rows in ``result`` and counts in ``table``."""
    header_of = parser.header_of
    v = Validation()
    for row_no, raw in progress(src.rows(), f"校验 {src.label}", total=src.approx_rows):
        table.rows += 1
        try:
            values = parser.parse(raw)
        except RowErrors as exc:
            v.reject(row_no, exc.errors, values_ext(raw, header_of), raw)
            continue
        ext = values["external_id"]
        if ext in v.first_row:
            first = v.first_row[ext]
            if parser.generated:
                column = header_of.get("title")
                reason = f"同一单位的同名记录在文件中重复（首次出现于第{first}行），且没有编号区分"
            else:
                column = header_of.get("external_id")
                reason = f"编号「{ext}」在文件中重复（首次出现于第{first}行）"
            v.reject(row_no, [(column, reason)], ext, raw)
            continue
        v.first_row[ext] = row_no
        if v.cache is not None:
            if len(v.cache) < CACHED_ROWS:
                v.cache[row_no] = values
            else:  # too big to keep: the write pass re-reads the file
                v.cache = None
        if src.kind == "organisations":
            problem = _check_credit_code(values, v, directory)
            if problem:
                v.reject(row_no, [(header_of.get("credit_code"), problem)], ext, raw)
                continue
            if "parent" in values:
                v.parents[ext] = (row_no, values["parent"])
    if src.kind == "organisations":
        _check_parents(header_of, directory, v)
    _report_rejected(src, v, result)
    table.rejected = len(v.rejected)
    table.extra_columns = list(parser.extra_seen)
    return v


def _report_rejected(src: Source, v: Validation, result: FileResult) -> None:
    # The rows rejected only for parent problems were not kept above: re-read them.
    missing = {r for r, errors in v.rejected.items() if errors and r not in v.raw_keep}
    if missing:
        for row_no, raw in src.rows():
            if row_no in missing:
                v.raw_keep[row_no] = raw
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
                v.raw_keep.get(row_no, {}),
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


def _check_credit_code(values: dict[str, Any], v: Validation, directory: Directory) -> str | None:
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


def _check_parents(header_of: dict[str, str], directory: Directory, v: Validation) -> None:
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
                v.reject(row, [(column, f"上级单位「{parent}」不存在（库中和本文件中均无）")], ext)
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


__all__ = ["CACHED_ROWS", "MAX_KEPT_REJECTED_ROWS", "Validation", "validate_table"]
