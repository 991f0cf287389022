"""Bulk import of organisations, needs, capabilities, bounties and bids.

Readers (:mod:`~service.importing.readers`) stream rows from CSV (UTF-8, UTF-8 with BOM or
GB18030/GBK, detected), XLSX (first sheet, or one sheet per kind named after it) and JSONL.
Headers are mapped (:mod:`~service.importing.headers`) through the column spec of
:mod:`service.formats`; rows are parsed (:mod:`~service.importing.parse`), validated
(:mod:`~service.importing.validate`) and written (:mod:`~service.importing.write`) by the
:class:`Importer` (:mod:`~service.importing.engine`), which reports what it did
(:mod:`~service.importing.report`).
"""

from __future__ import annotations

from service.importing.engine import Importer
from service.importing.headers import detect_kind, header_key
from service.importing.readers import (
    ImportFileError,
    Source,
    detect_encoding,
    expand_paths,
    open_sources,
)
from service.importing.report import (
    FileResult,
    ImportReport,
    Issue,
    TableResult,
    default_progress,
)

__all__ = [
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
