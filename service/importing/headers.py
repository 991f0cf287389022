"""Header recognition: normalised header keys, alias lookup, kind detection, header mapping.

Headers are compared after :func:`header_key` (NFKC, lower case, no spaces, no brackets or
required-marks), so ``预算金额（万元）``, ``预算金额(万元)``, ``预算金额【万元】`` and
``* 预算金额 (万元)`` are one header. A header no column of the kind knows is *kept*: its values
go to the record's ``extra`` attributes and the summary lists it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from service.formats import (
    COLUMNS,
    EXTRA_KEY,
    GENERATED_ID_PREFIX,
    KIND_LABELS,
    KINDS,
    REPORT_COLUMNS,
    ROW_NUMBER_HEADERS,
    Column,
)

log = logging.getLogger(__name__)

_MARKS = re.compile(r"[(\[【〔<《]\s*(必填|选填|可选|非必填|必须|可不填)\s*[)\]】〕>》]")
_DROPPED = set("*＊:：\ufeff()[]【】〔〕<>《》{}/／_-—'\"“”‘’")


def header_key(header: object) -> str:
    """Normalise a header for alias lookup: NFKC, lower case, no spaces, brackets or marks."""
    text = unicodedata.normalize("NFKC", str(header or "")).lower()
    text = _MARKS.sub("", text)
    return "".join(ch for ch in text if not ch.isspace() and ch not in _DROPPED)


ALIAS_TABLES: Final[dict[str, dict[str, Column]]] = {
    kind: {header_key(a): col for col in cols for a in col.aliases}
    for kind, cols in COLUMNS.items()
}
_ROW_NUMBER_KEYS: Final[frozenset[str]] = frozenset(header_key(h) for h in ROW_NUMBER_HEADERS)


def required_keys(kind: str) -> list[str]:
    """Keys of the columns a table of ``kind`` must have (ids may be generated for some)."""
    optional_id = kind in GENERATED_ID_PREFIX
    return [
        c.key for c in COLUMNS[kind] if c.required and not (optional_id and c.key == "external_id")
    ]


def detect_kind(headers: Sequence[str]) -> str | None:
    """The kind ``headers`` describe, or None if unclear.

    A kind is a candidate when every required column is present; among candidates the one
    matching most headers wins (ties: most *distinctive* headers, those of no other kind,
    e.g. ``需求名称`` or ``confidential``). Without any candidate, the distinctive headers alone
    decide (the missing columns are then reported). English JSONL keys need no ``--kind``.
    """
    keys = [header_key(h) for h in headers]
    matched = {k: {ALIAS_TABLES[k][h].key for h in keys if h in ALIAS_TABLES[k]} for k in KINDS}
    distinctive = dict.fromkeys(KINDS, 0)
    for h in keys:
        hits = [k for k in KINDS if h in ALIAS_TABLES[k]]
        if len(hits) == 1:
            distinctive[hits[0]] += 1
    candidates = [k for k in KINDS if matched[k] and set(required_keys(k)) <= matched[k]]
    if candidates:
        ranked = sorted(candidates, key=lambda k: (-len(matched[k]), -distinctive[k]))
        best = ranked[0]
        if len(ranked) == 1 or (len(matched[best]), distinctive[best]) != (
            len(matched[ranked[1]]),
            distinctive[ranked[1]],
        ):
            return best
        return None
    order = sorted(distinctive.items(), key=lambda kv: -kv[1])
    if order[0][1] == 0 or order[0][1] == order[1][1]:
        return None
    return order[0][0]


@dataclass
class HeaderMap:
    """How the headers of one table map to the columns of its kind.

    Attributes
    ----------
    header_of : dict
        Canonical key → the header as written in the file.
    extra : list of str
        Headers without a column of their own (and repeated columns): kept as ``extra``.
    ignored : list of str
        Row-number columns (序号) and the report columns of a corrected rejected-rows report.
    missing : list of str
        Labels of required columns that no header maps to.
    """

    header_of: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def map_headers(kind: str, headers: Sequence[str]) -> HeaderMap:
    """Map ``headers`` (as in the file) to the canonical keys of ``kind``."""
    table = ALIAS_TABLES[kind]
    out = HeaderMap()
    report = tuple(h.strip() for h in headers[: len(REPORT_COLUMNS)]) == REPORT_COLUMNS
    for i, h in enumerate(headers):
        if not h:
            continue
        key = header_key(h)
        col = table.get(key)
        if (report and i < len(REPORT_COLUMNS)) or (col is None and key in _ROW_NUMBER_KEYS):
            out.ignored.append(h)
        elif col is None or col.key in out.header_of or h == EXTRA_KEY:
            if h != EXTRA_KEY and h not in out.extra:
                out.extra.append(h)
        else:
            out.header_of[col.key] = h
    if EXTRA_KEY in headers:
        out.header_of[EXTRA_KEY] = EXTRA_KEY
    out.missing = [
        c.label
        for c in COLUMNS[kind]
        if c.key in required_keys(kind) and c.key not in out.header_of
    ]
    return out


def missing_column_reason(kind: str, label: str) -> str:
    """The file-level message for a missing required column."""
    return f"缺少必填列「{label}」（{KIND_LABELS[kind]}表），整个文件未导入"


__all__ = [
    "ALIAS_TABLES",
    "HeaderMap",
    "detect_kind",
    "header_key",
    "map_headers",
    "missing_column_reason",
    "required_keys",
]
