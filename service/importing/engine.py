"""The :class:`Importer`: files → validated tables → batched upserts.

How a file stays all-or-nothing although it is written in many short transactions:

1. *Validate the whole file first* (every table of it), without writing anything: rows are
   parsed, references resolved against the store plus the rows validated before them
   (:class:`~service.importing.directory.Directory`), duplicates, parents and cycles checked.
   Only reads happen, so the store's write lock is not taken. Any rejected row (without
   ``partial``) ends here: nothing of the file is written.
2. *Write in batches* of a few hundred rows, each its own short transaction, so API writes
   and logins never wait for more than one batch. Every committed change is journaled.
3. *If a batch fails* (disk full, a conflicting write by someone else, the store busy for
   longer than the retries), the journal is replayed backwards to revert the committed
   batches and the file is reported as not imported. Should even that fail (or the process
   be killed mid-write), the file is partly written; since an import is an idempotent upsert
   by external id, running the same import again completes it. The summary says so.

Other readers may see a file's rows appear batch by batch while it is being written; that is
the price of never holding the write lock for the length of a big import (staging then one
swap transaction would hold it as long as writing directly does).

Concurrent imports of the same store are serialised by :func:`~service.importing.lock.import_lock`
(validation included, so what a file was validated against is what it is written to).
A dry run takes no lock and writes nothing: it validates, then counts what would be added,
updated or left unchanged by comparing with the store.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.formats import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_ROWS,
    KINDS,
    MAX_TITLE_CHARS,
    cell_limit,
)
from service.importing.directory import Directory
from service.importing.headers import map_headers, missing_column_reason
from service.importing.lock import ImportLockTimeout, import_lock
from service.importing.parse import Limits, RowParser
from service.importing.readers import (
    ImportFileError,
    ReadLimits,
    Source,
    encoding_label,
    expand_paths,
    open_sources,
)
from service.importing.report import (
    FileResult,
    ImportReport,
    Issue,
    ProgressFactory,
    TableResult,
    default_progress,
)
from service.importing.validate import Validation, validate_table
from service.importing.write import Journal, Writer, undo, write_table

log = logging.getLogger(__name__)

#: Errors of reading a file after it was opened (turned into a file-level issue).
READ_ERRORS = (ImportFileError, OSError, UnicodeError, csv.Error, ValueError, KeyError)


@dataclass
class _Table:
    """A validated table waiting to be written."""

    src: Source
    parser: RowParser
    validation: Validation
    result: TableResult


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
        Validate only and count what would change; nothing is written.
    encoding : str or None
        Force the text encoding of CSV/JSONL files (e.g. ``big5``, which GB18030 would
        otherwise decode as the wrong characters); None detects it.
    max_file_bytes : int
        Larger files are refused before reading.
    max_rows : int
        Tables with more rows are refused (XLSX: from the declared size, before reading).
    lock_timeout : float or None
        Seconds to wait for another import of the same store; None waits.
    progress : callable or None
        ``progress(iterable, description, total=None)``; default :func:`default_progress`.
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
        max_rows: int = DEFAULT_MAX_ROWS,
        encoding: str | None = None,
        lock_timeout: float | None = None,
        progress: ProgressFactory | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.home_region = home_region
        self.max_text_chars = max_text_chars
        self.partial = partial
        self.dry_run = dry_run
        self.max_file_bytes = max_file_bytes
        self.max_rows = max_rows
        self.encoding = encoding
        self.lock_timeout = lock_timeout
        self.progress = progress

    # -- public
    def import_paths(self, paths: Sequence[Path | str], kind: str = "auto") -> ImportReport:
        """Import files (directories are expanded to their supported files) in dependency
        order: organisations first, bids last. Each file is all-or-nothing unless ``partial``.
        """
        report = ImportReport(dry_run=self.dry_run, partial=self.partial)
        planned = self._open(paths, kind, report)
        try:
            with self._lock():
                directory = Directory()
                with self.session_factory() as session:
                    directory.load(session, *KINDS)
                for sources, result in planned:
                    try:
                        self._import_file(sources, result, directory)
                    except Exception as exc:  # a bug must still end in the report
                        log.exception("import of %s failed unexpectedly", result.path)
                        result.issues.append(
                            Issue(result.path.name, f"导入出错（{_short(exc)}），整个文件未导入")
                        )
                        result.written = False
        except ImportLockTimeout as exc:
            for _sources, result in planned:
                result.issues.append(Issue(result.path.name, f"{exc}，文件未导入"))
        return report

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        if self.dry_run:
            return contextlib.nullcontext()
        bind = self.session_factory.kw["bind"]
        return import_lock(bind, self.lock_timeout)

    def _open(
        self, paths: Sequence[Path | str], kind: str, report: ImportReport
    ) -> list[tuple[list[Source], FileResult]]:
        limits = ReadLimits(max_rows=self.max_rows, max_cell_chars=cell_limit(self.max_text_chars))
        planned: list[tuple[int, list[Source], FileResult]] = []
        for path in expand_paths(paths):
            result = FileResult(path=path)
            report.files.append(result)
            if path.suffix.lower() in (".jsonl", ".ndjson") and _empty(path):
                result.note = "空文件（没有记录），跳过"  # e.g. the export of an empty kind
                continue
            try:
                self._check_file(path)
                stamp = _stamp(path)
                sources, encoding = open_sources(path, kind, self.encoding, limits)
                for src in sources:
                    src.stamp = stamp
            except READ_ERRORS as exc:
                result.issues.append(Issue(path.name, _read_reason(path, exc)))
                continue
            result.encoding = encoding_label(path, encoding) if encoding else "XLSX"
            order = min((KINDS.index(s.kind) for s in sources if s.kind in KINDS), default=0)
            planned.append((order, sources, result))
        planned.sort(key=lambda p: p[0])
        return [(sources, result) for _, sources, result in planned]

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
    def _import_file(self, sources: list[Source], result: FileResult, directory: Directory) -> None:
        sources = sorted(sources, key=lambda s: KINDS.index(s.kind) if s.kind in KINDS else -1)
        # Rows of this file are made visible to its later tables (and, in a dry run, to later
        # files); a failed file takes them back.
        share = self.dry_run or len(sources) > 1
        snapshot = directory.snapshot() if share else None
        tables = self._validate_file(sources, result, directory, share)
        failed = tables is None or (bool(result.issues) and not self.partial)
        if failed or tables is None:
            if snapshot is not None:
                directory.restore(snapshot)
            for t in result.tables:
                t.created = t.updated = t.unchanged = 0
            return
        self._write_file(tables, result, directory)

    def _validate_file(
        self, sources: list[Source], result: FileResult, directory: Directory, share: bool
    ) -> list[_Table] | None:
        """Validate every table of a file; None when a table cannot be used at all."""
        tables: list[_Table] = []
        for src in sources:
            table = TableResult(src.path.name, src.sheet, src.kind)
            result.tables.append(table)
            parser = self._parser(src, result, directory)
            if parser is None:
                table.fatal = True
                return None
            try:
                v = validate_table(src, parser, directory, result, table, self._progress)
                if share:
                    _share_rows(src, parser, v, directory)
            except READ_ERRORS as exc:
                result.issues.append(
                    Issue(src.path.name, _read_reason(src.path, exc), sheet=src.sheet)
                )
                table.fatal = True
                return None
            tables.append(_Table(src, parser, v, table))
        return tables

    def _write_file(self, tables: list[_Table], result: FileResult, directory: Directory) -> None:
        journal = None if self.dry_run else Journal()
        writer = Writer(self.session_factory, journal)
        try:
            for t in tables:
                if t.validation.cache is None and _stamp(t.src.path) != t.src.stamp:
                    # The write pass reads the file again: it must be what was validated.
                    raise ImportFileError(f"{t.src.path.name}：文件在导入过程中被修改，请重新导入")
                write_table(
                    writer, t.src, t.parser, directory, t.validation, t.result, self._progress
                )
            result.written = journal is not None
        except (SQLAlchemyError, *READ_ERRORS) as exc:
            log.warning("import of %s failed while writing: %s", result.path, exc, exc_info=True)
            result.issues.append(Issue(result.path.name, self._undo(journal, exc)))
            for table in result.tables:
                table.fatal = True
                table.created = table.updated = table.unchanged = 0
        finally:
            if journal is not None:
                journal.close()
                if not result.written:  # reverted or partly written: see what is stored
                    with self.session_factory() as session:
                        directory.load(session, *KINDS)

    def _undo(self, journal: Journal | None, exc: Exception) -> str:
        cause = _short(exc)
        if journal is None or journal.rows == 0:
            return f"写入数据库失败（{cause}），本文件未写入任何数据"
        try:
            undo(self.session_factory, journal)
        except SQLAlchemyError as again:
            log.error("undo failed: %s", again)
            return (
                f"写入数据库失败（{cause}），撤销已写入的 {journal.rows} 行时也失败（{_short(again)}）："
                "库中留有本文件的部分数据；排除原因后重新运行同一导入即可补全（导入按编号更新，可重复运行）"
            )
        return f"写入数据库失败（{cause}），已撤销本文件已写入的 {journal.rows} 行，本文件未导入"

    def _parser(self, src: Source, result: FileResult, directory: Directory) -> RowParser | None:
        if src.kind not in KINDS:
            reason = (
                "无法从表头识别数据类型（单位/技术需求/成果/榜单/申报），请用 --kind 指定"
                if src.kind is None
                else f"未知的数据类型 {src.kind}"
            )
            result.issues.append(Issue(src.path.name, reason, sheet=src.sheet))
            return None
        mapping = map_headers(src.kind, src.headers)
        result.tables[-1].ignored_columns = mapping.ignored
        if mapping.missing:
            for label in mapping.missing:
                result.issues.append(
                    Issue(
                        src.path.name,
                        missing_column_reason(src.kind, label),
                        column=label,
                        sheet=src.sheet,
                    )
                )
            return None
        return RowParser(
            src.kind,
            mapping.header_of,
            directory,
            Limits(self.max_text_chars, MAX_TITLE_CHARS),
            self.home_region,
            ignored=mapping.ignored,
        )

    def _progress(self, items: Iterable[Any], desc: str, total: int | None = None) -> Iterable[Any]:
        return (self.progress or default_progress())(items, desc, total=total)


def _share_rows(src: Source, parser: RowParser, v: Validation, directory: Directory) -> None:
    """Add the valid rows of a validated table to ``directory`` (not written yet)."""
    kind = str(src.kind)
    if v.cache is not None:
        for n, values in v.cache.items():
            if n not in v.rejected:
                directory.add(kind, values)
        return
    valid = v.first_row_set()
    for n, raw in src.rows():
        if n in valid and n not in v.rejected:
            directory.add(kind, parser.parse(raw))


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _empty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size == 0


def _short(exc: BaseException) -> str:
    text = (
        str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
    )
    return text[:200]


def _read_reason(path: Path, exc: BaseException) -> str:
    if isinstance(exc, ImportFileError):
        return str(exc)
    return f"{path.name}：读取失败（{_short(exc)}），整个文件未导入"


__all__ = ["Importer"]
