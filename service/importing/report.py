"""What an import run reports: issues, rejected rows, per-table counts, progress output."""

from __future__ import annotations

import csv
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from service.formats import neutralise_cell

log = logging.getLogger(__name__)


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
    #: Columns without an attribute of their own, kept as extra attributes.
    extra_columns: list[str] = field(default_factory=list)
    #: Columns not imported on purpose (序号).
    ignored_columns: list[str] = field(default_factory=list)


@dataclass
class FileResult:
    path: Path
    encoding: str | None = None
    tables: list[TableResult] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    rejected_rows: list[RejectedRow] = field(default_factory=list)
    written: bool = False
    #: Why nothing was read although nothing is wrong (e.g. an empty JSONL file).
    note: str | None = None

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


class ProgressFactory(Protocol):
    """``progress(items, description, total=None)`` → the same items, reporting progress."""

    def __call__(
        self, items: Iterable[Any], desc: str, total: int | None = None
    ) -> Iterable[Any]: ...


def default_progress(enabled: bool | None = None) -> ProgressFactory:
    """tqdm (rate and ETA) when stderr is a terminal (or ``enabled``), else log lines."""
    use_tqdm = sys.stderr.isatty() if enabled is None else enabled

    def wrap(items: Iterable[Any], desc: str, total: int | None = None) -> Iterable[Any]:
        if use_tqdm:
            from tqdm import tqdm

            return cast(Iterable[Any], tqdm(items, desc=desc, total=total, unit="行", leave=False))
        return log_progress(items, desc, total)

    return wrap


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}小时{seconds % 3600 // 60}分"
    if seconds >= 60:
        return f"{seconds // 60}分{seconds % 60}秒"
    return f"{seconds}秒"


def log_progress(
    items: Iterable[Any],
    desc: str,
    total: int | None = None,
    every_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Any]:
    """Yield ``items``, logging count, rate and (with ``total``) ETA every ``every_seconds``.

    A log line looks like ``写入 needs.csv：20000/100000 行（20%），3,100 行/秒，预计还需 26秒``.
    """
    start = last = clock()
    n = 0
    for n, item in enumerate(items, start=1):
        yield item
        if n % 64:
            continue
        now = clock()
        if now - last < every_seconds:
            continue
        last = now
        rate = n / max(now - start, 1e-9)
        if total:
            left = max(total - n, 0) / rate if rate else 0.0
            log.info(
                "%s：%d/%d 行（%.0f%%），%s 行/秒，预计还需 %s",
                desc,
                n,
                total,
                100 * n / total,
                f"{rate:,.0f}",
                _duration(left),
            )
        else:
            log.info("%s：%d 行，%s 行/秒", desc, n, f"{rate:,.0f}")
    elapsed = clock() - start
    if elapsed >= every_seconds:
        log.info(
            "%s：完成 %d 行，用时 %s（%s 行/秒）",
            desc,
            n,
            _duration(elapsed),
            f"{n / elapsed:,.0f}",
        )


__all__ = [
    "FileResult",
    "ImportReport",
    "Issue",
    "ProgressFactory",
    "RejectedRow",
    "TableResult",
    "default_progress",
    "log_progress",
]
