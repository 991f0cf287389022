"""The import API under its historical name; the code lives in :mod:`service.importing`."""

from __future__ import annotations

from service.formats import COLUMNS, FORMULA_PREFIXES, KIND_LABELS, KINDS, Column
from service.importing import (
    FileResult,
    Importer,
    ImportFileError,
    ImportReport,
    Issue,
    Source,
    TableResult,
    default_progress,
    detect_encoding,
    detect_kind,
    expand_paths,
    header_key,
    open_sources,
)

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
