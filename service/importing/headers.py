"""Header recognition: normalised header keys, alias lookup, kind detection, header mapping."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from service.formats import COLUMNS, KIND_LABELS, KINDS, Column

log = logging.getLogger(__name__)


def header_key(header: object) -> str:
    """Normalise a header for alias lookup: NFKC, lower case, no spaces or ``*`` marks."""
    text = unicodedata.normalize("NFKC", str(header or "")).lower()
    return "".join(ch for ch in text if not ch.isspace() and ch not in "*＊:：\ufeff")


ALIAS_TABLES: Final[dict[str, dict[str, Column]]] = {
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
        hits = [k for k in KINDS if key in ALIAS_TABLES[k]]
        if len(hits) == 1:
            scores[hits[0]] += 1
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if ranked[0][1] == 0 or ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


@dataclass
class HeaderMap:
    """How the headers of one table map to the columns of its kind."""

    header_of: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def map_headers(kind: str, headers: Sequence[str], label: str) -> HeaderMap:
    """Map ``headers`` (as in the file) to the canonical keys of ``kind``.

    ``header_of`` maps canonical keys to the original header; ``missing`` lists the labels of
    required columns that no header maps to.
    """
    table = ALIAS_TABLES[kind]
    out = HeaderMap()
    for h in headers:
        col = table.get(header_key(h))
        if col is None:
            if h:
                out.unknown.append(h)
        elif col.key in out.header_of:
            log.warning("%s: column %r duplicates %r; ignored", label, h, out.header_of[col.key])
        else:
            out.header_of[col.key] = h
    if out.unknown:
        log.warning("%s: unknown columns ignored: %s", label, ", ".join(out.unknown))
    out.missing = [c.label for c in COLUMNS[kind] if c.required and c.key not in out.header_of]
    return out


def missing_column_reason(kind: str, label: str) -> str:
    return f"缺少必填列「{label}」（{KIND_LABELS[kind]}表），整个文件未导入"


__all__ = ["ALIAS_TABLES", "HeaderMap", "detect_kind", "header_key", "map_headers"]
