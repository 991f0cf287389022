"""The :class:`Importer`: files → validated tables → upserts, one transaction per file.

Each file is imported in two passes over its rows: *validate* (:mod:`service.importing.validate`)
then *write* (:mod:`service.importing.write`). By default any rejected row cancels the whole
file (nothing written); ``partial=True`` writes the valid rows; ``dry_run=True`` validates and
rolls everything back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, false
from sqlalchemy.orm import Session, sessionmaker

from service.formats import DEFAULT_MAX_FILE_BYTES, KINDS, MAX_TITLE_CHARS
from service.importing.headers import map_headers, missing_column_reason
from service.importing.parse import Directory, Limits, RowParser
from service.importing.readers import (
    ImportFileError,
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
from service.importing.validate import validate_table
from service.importing.write import write_table
from service.models import Organisation

log = logging.getLogger(__name__)


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
                parser = self._parser(src, header_of, directory)
                validation = validate_table(src, parser, directory, result, table, self._progress)
                if table.fatal:
                    break
                # Valid rows are written (flushed) even when others were rejected, so later
                # sheets validate against them; without --partial the file is rolled back.
                write_table(session, src, parser, directory, validation, table, self._progress)
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
        if src.kind not in KINDS:
            reason = (
                "无法从表头识别数据类型（单位/技术需求/成果/榜单/申报），请用 --kind 指定"
                if src.kind is None
                else f"未知的数据类型 {src.kind}"
            )
            result.issues.append(Issue(src.path.name, reason, sheet=src.sheet))
            return None
        mapping = map_headers(src.kind, src.headers, src.label)
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
        return mapping.header_of

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


__all__ = ["Importer"]
