"""Shortlist rows as the review page and the export show them: filters, display rows, evidence.

Evidence snippets are shown inside the text they were taken from (highlighted with ``<mark>``),
so staff can judge a pairing from the matching sentences of both sides.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from matcher.encoding import external_of
from service.models import Capability, Need, Organisation, ShortlistItem, User
from service.web.common import STATUS_LABELS

_Row = TypeVar("_Row", Need, Capability)


def status_counts(db: Session, campaign_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per campaign: pending / approved / rejected suggestion rows and uncovered rows."""
    ids = list(campaign_ids)
    counts: dict[int, dict[str, int]] = {
        cid: {"pending": 0, "approved": 0, "rejected": 0, "uncovered": 0} for cid in ids
    }
    if not ids:
        return counts
    rows = db.execute(
        select(ShortlistItem.campaign_id, ShortlistItem.kind, ShortlistItem.status, func.count())
        .where(ShortlistItem.campaign_id.in_(ids))
        .group_by(ShortlistItem.campaign_id, ShortlistItem.kind, ShortlistItem.status)
    ).all()
    for cid, kind, status, n in rows:
        if kind == "uncovered":
            counts[cid]["uncovered"] += n
        elif status in counts[cid]:
            counts[cid][status] += n
    return counts


@dataclass(slots=True)
class ShortlistFilters:
    """The shortlist filters of the query string (also used by the export)."""

    status: str = ""
    field: str = ""
    min_score: float | None = None
    max_score: float | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Any) -> ShortlistFilters:
        """Read filters from query/form parameters, ignoring malformed values."""
        status = params.get("status") or ""
        return cls(
            status=status if status in STATUS_LABELS else "",
            field=(params.get("field") or "")[:64],
            min_score=_float_or_none(params.get("min_score")),
            max_score=_float_or_none(params.get("max_score")),
            page=max(1, int_or(params.get("page"), 1)),
        )

    def query(self, *, page: bool = True) -> str:
        """The canonical query string of these filters."""
        params: dict[str, str] = {}
        if self.status:
            params["status"] = self.status
        if self.field:
            params["field"] = self.field
        if self.min_score is not None:
            params["min_score"] = f"{self.min_score:g}"
        if self.max_score is not None:
            params["max_score"] = f"{self.max_score:g}"
        if page and self.page > 1:
            params["page"] = str(self.page)
        return urlencode(params)


def _float_or_none(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def int_or(value: Any, default: int) -> int:
    """``int(value)``, or ``default`` when it is not an integer."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(slots=True)
class EvidenceView:
    """One evidence entry prepared for display (HTML already escaped and highlighted)."""

    query_html: Markup | None
    doc_html: Markup | None
    doc_label: str
    keywords: list[str]
    doc_id: str | None = None
    query_snippet: str = ""
    doc_snippet: str = ""


@dataclass(slots=True)
class ItemView:
    """A shortlist row as the page and the export show it."""

    id: int
    rank: int
    kind: str
    status: str
    locked: bool
    version: int
    score: float | None
    enterprise_name: str
    institute_name: str
    need_title: str
    field: str
    problem: str
    note: str
    decided_by_name: str
    evidence: list[EvidenceView] = dataclasses.field(default_factory=list)


def _partner_name(it: ShortlistItem) -> str:
    """The institute, or for a dispatch campaign the commissioner with their employer."""
    employer = it.institute.name if it.institute else ""
    person = (it.evidence or {}).get("commissioner") if it.commissioner_id else None
    return f"{person}（{employer}）" if person else employer


def evidence_entries(raw: Any) -> list[dict[str, Any]]:
    """Normalise the stored evidence JSON to a list of dicts.

    Accepts a list of entries, or a dict holding one under ``documents`` (what the campaign
    runner writes), ``evidence``, ``items`` or ``snippets``, or a single entry dict (keys of
    :class:`matcher.types.Evidence`). Pair-level ``shared_keywords`` of the dict are given to
    entries that have none of their own.
    """
    shared: list[Any] = []
    if isinstance(raw, dict):
        shared = raw.get("shared_keywords") or []
        for key in ("documents", "evidence", "items", "snippets"):
            if isinstance(raw.get(key), list):
                raw = raw[key]
                break
        else:
            raw = [raw] if ("doc_snippet" in raw or "query_snippet" in raw) else []
    if not isinstance(raw, list):
        return []
    entries = [e for e in raw if isinstance(e, dict)]
    if shared and isinstance(shared, list):
        entries = [
            e if e.get("shared_keywords") else {**e, "shared_keywords": shared} for e in entries
        ]
    return entries


def highlight(text: str, snippet: str, *, window: int = 80) -> Markup:
    """Escape ``text`` and wrap the first occurrence of ``snippet`` in ``<mark>``.

    Only ``window`` characters either side of the snippet are kept (with ellipses), so a
    long description shows the matching sentence in context. When the snippet does not occur
    in the text, the snippet itself is shown highlighted.

    Parameters
    ----------
    text : str
        The full document text.
    snippet : str
        A verbatim substring of ``text`` (the best-matching sentence).
    window : int
        Context characters kept on each side.

    Returns
    -------
    Markup
        Safe HTML.
    """
    snippet = snippet.strip()
    if not snippet:
        return Markup(escape(clip(text, 2 * window)))
    pos = text.find(snippet) if text else -1
    if pos < 0:
        return Markup("<mark>{}</mark>").format(snippet)
    start = max(0, pos - window)
    end = min(len(text), pos + len(snippet) + window)
    before = ("…" if start > 0 else "") + text[start:pos]
    after = text[pos + len(snippet) : end] + ("…" if end < len(text) else "")
    return Markup("{}<mark>{}</mark>{}").format(before, snippet, after)


def clip(text: str, n: int) -> str:
    """``text`` cut to ``n`` characters with an ellipsis."""
    return text if len(text) <= n else text[:n] + "…"


def _full_text(row: Need | Capability) -> str:
    # Mirrors matcher.types.Document.full_text, so snippets taken from it are found verbatim.
    return f"{row.title}。{row.description}" if row.description else row.title


def _doc_ext(doc_id: Any) -> str:
    """External id of an evidence document id (index keys carry an ``N:``/``C:`` prefix)."""
    return external_of(str(doc_id or ""))


def _containing(snippet: str, rows: Iterable[_Row]) -> tuple[_Row, str] | None:
    """The first ``(row, text)`` whose full text contains ``snippet`` verbatim."""
    if not snippet:
        return None
    for row in rows:
        text = _full_text(row)
        if snippet in text:
            return row, text
    return None


@dataclass(slots=True)
class _Context:
    """Needs, capabilities and deciders of a batch of shortlist rows, loaded in bulk."""

    users: dict[int, str]
    need_by_id: dict[int, Need]
    need_by_ext: dict[str, Need]
    cap_by_ext: dict[str, Capability]
    needs_of: dict[int, list[Need]]
    caps_of: dict[int, list[Capability]]


def _load_context(
    db: Session, items: Sequence[ShortlistItem], entries: dict[int, list[dict[str, Any]]]
) -> _Context:
    user_ids = {i.decided_by for i in items if i.decided_by is not None}
    users = {u.id: u.username for u in db.scalars(select(User).where(User.id.in_(user_ids)))}
    org_ids = {i.enterprise_id for i in items} | {
        i.institute_id for i in items if i.institute_id is not None
    }
    doc_ids = {_doc_ext(e.get("doc_id")) for es in entries.values() for e in es}
    q_ids = {_doc_ext(e.get("query_doc_id")) for es in entries.values() for e in es}
    need_ids = {i.need_id for i in items if i.need_id is not None}
    needs = db.scalars(
        select(Need).where(
            Need.org_id.in_(org_ids) | Need.id.in_(need_ids) | Need.external_id.in_(q_ids)
        )
    ).all()
    caps = db.scalars(
        select(Capability).where(
            Capability.org_id.in_(org_ids) | Capability.external_id.in_(doc_ids)
        )
    ).all()
    ctx = _Context(
        users=users,
        need_by_id={n.id: n for n in needs},
        need_by_ext={n.external_id: n for n in needs},
        cap_by_ext={c.external_id: c for c in caps},
        needs_of={},
        caps_of={},
    )
    for n in needs:
        ctx.needs_of.setdefault(n.org_id, []).append(n)
    for c in caps:
        ctx.caps_of.setdefault(c.org_id, []).append(c)
    return ctx


def _evidence_view(
    ctx: _Context, item: ShortlistItem, need: Need | None, entry: dict[str, Any]
) -> tuple[EvidenceView, Need | None]:
    """One entry's display form, and the need its query snippet was found in (if any)."""
    q_snip = str(entry.get("query_snippet") or "").strip()
    d_snip = str(entry.get("doc_snippet") or "").strip()
    q_first = ctx.need_by_ext.get(_doc_ext(entry.get("query_doc_id")))
    q_rows = [r for r in (q_first, need) if r is not None]
    q_rows += ctx.needs_of.get(item.enterprise_id, [])
    q_hit = _containing(q_snip, q_rows)
    d_first = ctx.cap_by_ext.get(_doc_ext(entry.get("doc_id")))
    d_rows = [d_first] if d_first is not None else []
    d_rows += ctx.caps_of.get(item.institute_id, []) if item.institute_id is not None else []
    d_hit = _containing(d_snip, d_rows)
    cap = d_hit[0] if d_hit is not None else d_first
    view = EvidenceView(
        query_html=highlight(q_hit[1] if q_hit else "", q_snip) if q_snip else None,
        doc_html=highlight(d_hit[1] if d_hit else "", d_snip) if d_snip else None,
        doc_label=f"成果《{clip(cap.title, 30)}》" if cap is not None else "机构成果",
        keywords=[str(k) for k in (entry.get("shared_keywords") or [])][:10],
        doc_id=_doc_ext(entry.get("doc_id")) or None,
        query_snippet=q_snip,
        doc_snippet=d_snip,
    )
    return view, (q_hit[0] if q_hit is not None else None)


def item_views(db: Session, items: Sequence[ShortlistItem]) -> list[ItemView]:
    """Build display rows, loading needs, capabilities and deciders in bulk.

    Each evidence snippet is shown inside the text it was taken from: the evidence's own
    query/candidate document when recorded, else the item's need, else whichever need of the
    enterprise (capability of the institute) contains the snippet verbatim.
    """
    entries = {i.id: evidence_entries(i.evidence) for i in items}
    ctx = _load_context(db, items, entries)
    views: list[ItemView] = []
    for it in items:
        own_need = ctx.need_by_id.get(it.need_id) if it.need_id is not None else None
        need = own_need
        evs: list[EvidenceView] = []
        for entry in entries[it.id]:
            view, found_in = _evidence_view(ctx, it, need, entry)
            if need is None and found_in is not None:
                need = found_in
            if view.query_html is not None or view.doc_html is not None or view.keywords:
                evs.append(view)  # an entry with nothing to show would be an empty bullet
        views.append(
            ItemView(
                id=it.id,
                rank=it.rank,
                kind=it.kind,
                status=it.status,
                locked=it.locked,
                version=it.version,
                score=it.score,
                enterprise_name=it.enterprise.name if it.enterprise else str(it.enterprise_id),
                institute_name=_partner_name(it),
                need_title=need.title if need is not None else "",
                field=_item_field(it, own_need),
                problem=it.problem or "",
                note=it.note or "",
                decided_by_name=ctx.users.get(it.decided_by, "") if it.decided_by else "",
                evidence=evs,
            )
        )
    return views


def _field_of(need_field: str | None, org_fields: Sequence[Any] | None) -> str:
    """The field (领域) of a row: its need's, else the enterprise's first field."""
    if need_field:
        return need_field
    return str(org_fields[0]) if org_fields else ""


def _item_field(item: ShortlistItem, need: Need | None) -> str:
    return _field_of(
        need.field if need is not None else None,
        item.enterprise.fields if item.enterprise is not None else None,
    )


def filtered_ids(db: Session, campaign_id: int, filters: ShortlistFilters) -> list[int]:
    """Ids of a campaign's rows matching ``filters``, in display order (enterprise, rank).

    Reads only the columns the filters need, so a large campaign pages quickly.
    """
    stmt = (
        select(ShortlistItem.id, Need.field, Organisation.fields)
        .join(Organisation, Organisation.id == ShortlistItem.enterprise_id)
        .outerjoin(Need, Need.id == ShortlistItem.need_id)
        .where(ShortlistItem.campaign_id == campaign_id)
        .order_by(
            Organisation.name, ShortlistItem.enterprise_id, ShortlistItem.rank, ShortlistItem.id
        )
    )
    if filters.status:
        stmt = stmt.where(ShortlistItem.status == filters.status)
    if filters.min_score is not None:
        stmt = stmt.where(ShortlistItem.score >= filters.min_score)
    if filters.max_score is not None:
        stmt = stmt.where(ShortlistItem.score <= filters.max_score)
    rows = db.execute(stmt).all()
    return [
        item_id
        for item_id, need_field, org_fields in rows
        if not filters.field or _field_of(need_field, org_fields) == filters.field
    ]


def load_items(db: Session, ids: Sequence[int], *, chunk: int = 5000) -> list[ShortlistItem]:
    """The rows ``ids`` (with enterprise and institute), in the order given."""
    found: dict[int, ShortlistItem] = {}
    for start in range(0, len(ids), chunk):
        stmt = (
            select(ShortlistItem)
            .where(ShortlistItem.id.in_(ids[start : start + chunk]))
            .options(selectinload(ShortlistItem.enterprise), selectinload(ShortlistItem.institute))
        )
        found.update({i.id: i for i in db.scalars(stmt)})
    return [found[i] for i in ids if i in found]


def filtered_views(db: Session, campaign_id: int, filters: ShortlistFilters) -> list[ItemView]:
    """Display rows of every item matching ``filters`` (the export: no pagination)."""
    return item_views(db, load_items(db, filtered_ids(db, campaign_id, filters)))


def campaign_fields(db: Session, campaign_id: int) -> list[str]:
    """The distinct fields (领域) of a campaign's rows, for the filter's choices."""
    need_fields = db.scalars(
        select(Need.field)
        .join(ShortlistItem, ShortlistItem.need_id == Need.id)
        .where(ShortlistItem.campaign_id == campaign_id, Need.field.is_not(None))
        .distinct()
    ).all()
    # Each organisation once, without DISTINCT on the JSON column (PostgreSQL has no
    # equality operator for json).
    org_fields = db.scalars(
        select(Organisation.fields).where(
            Organisation.id.in_(
                select(ShortlistItem.enterprise_id).where(
                    ShortlistItem.campaign_id == campaign_id, ShortlistItem.need_id.is_(None)
                )
            )
        )
    ).all()
    out = {f for f in need_fields if f}
    out.update(fs[0] for fs in org_fields if fs)
    return sorted(out)
