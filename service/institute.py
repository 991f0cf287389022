"""An institute's own work: its capabilities (能力/成果) and the needs that match them.

This module owns

* validation and writes of an organisation's own capabilities (create, edit, retire,
  restore): :func:`parse_capability`, :func:`save_capability`, :func:`set_capability_status`.
  An edit changes the record's ``content_hash`` (``service.models``), so the next
  ``duijie reindex`` re-encodes exactly the edited records; :func:`pending_reindex` tells a
  page which records the current index build has not encoded yet (content hashes).
* :func:`matching_needs`: open needs ranked for the organisation, with evidence. Candidates
  come from the recommender's capability → needs direction
  (:meth:`matcher.pipeline.Recommender.enterprises_for_capability`, one query per active
  capability); each candidate need is then scored for this organisation with
  :meth:`~matcher.pipeline.Recommender.pair_matrix` (the score the organisation has in that
  need's ranked list of partners, eligibility applied) and explained with
  :meth:`~matcher.pipeline.Recommender.explain_pair`. Only needs that are open, vetted and
  not confidential in the store are ever returned: the store is checked after the
  recommender, so a stale index cannot leak a need that was since made confidential.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.encoding import external_of
from matcher.types import CAPABILITY_KINDS
from service import auth, crud
from service import models as m
from service.errors import Forbidden, InvalidRequest, NotFound
from service.forms import (
    FormErrors,
    parse_choice_field,
    parse_int_field,
    parse_keywords_field,
    parse_text_field,
)
from service.snapshot import capability_document

log = logging.getLogger(__name__)

CAPABILITY_KIND_LABELS: dict[str, str] = {
    "achievement": "科技成果",
    "patent": "专利",
    "paper": "论文",
    "team": "科研团队",
    "lab": "实验室/平台",
    "service": "技术服务",
}
PORTAL_CAPABILITY_KINDS = ("achievement", "patent", "team", "lab", "service", "paper")
YEAR_MIN = 1950
TRL_LABEL = "技术成熟度(TRL)"
DESCRIPTION_MAX = 5_000


def _year_max() -> int:
    return datetime.now(UTC).year + 1


# --- capabilities -------------------------------------------------------------------------


def parse_capability(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate the fields of a capability form (FormErrors with Chinese messages)."""
    errors = FormErrors()
    kinds: dict[str, str] = {
        k: CAPABILITY_KIND_LABELS[k] for k in PORTAL_CAPABILITY_KINDS if k in CAPABILITY_KINDS
    }
    out: dict[str, Any] = {
        "kind": parse_choice_field(errors, "kind", raw.get("kind"), "类别", kinds),
        "title": parse_text_field(errors, "title", raw.get("title"), "名称", max_len=300),
        "description": parse_text_field(
            errors,
            "description",
            raw.get("description"),
            "简介",
            max_len=DESCRIPTION_MAX,
            min_len=10,
        ),
        "field": parse_text_field(
            errors, "field", raw.get("field"), "所属领域", max_len=64, required=False
        ),
        "keywords": parse_keywords_field(errors, "keywords", raw.get("keywords"), "关键词"),
        "trl": parse_int_field(
            errors, "trl", raw.get("trl"), TRL_LABEL, minimum=1, maximum=9, required=False
        ),
        "year": parse_int_field(
            errors,
            "year",
            raw.get("year"),
            "年份",
            minimum=YEAR_MIN,
            maximum=_year_max(),
            required=False,
        ),
    }
    errors.raise_if_any()
    return out


def _own_org_id(user: auth.Principal) -> int:
    if user.org_id is None or user.role not in ("institute", "staff", "admin"):
        raise Forbidden("requires an institute user bound to an organisation")
    return user.org_id


def own_capability(session: Session, *, user: auth.Principal, external_id: str) -> m.Capability:
    """A capability of the caller's organisation (staff: any); others NotFound."""
    cap = session.scalar(select(m.Capability).where(m.Capability.external_id == external_id))
    if cap is None or (not user.is_staff and cap.org_id != user.org_id):
        raise NotFound(f"capability {external_id!r} not found")
    return cap


def list_own_capabilities(
    session: Session, *, org_id: int, include_retired: bool = True
) -> list[m.Capability]:
    """The capabilities of one organisation, newest edits first."""
    stmt = select(m.Capability).where(m.Capability.org_id == org_id)
    if not include_retired:
        stmt = stmt.where(m.Capability.status == "active")
    return list(session.scalars(stmt.order_by(m.Capability.updated_at.desc(), m.Capability.id)))


def save_capability(
    session: Session,
    *,
    user: auth.Principal,
    data: dict[str, Any],
    external_id: str | None = None,
) -> m.Capability:
    """Create (``external_id`` None) or update one of the caller's capabilities with the
    fields of :func:`parse_capability`. Audited; the caller commits."""
    if external_id is None:
        org_id = _own_org_id(user)
        cap = m.Capability(
            external_id=f"C-{secrets.token_hex(5).upper()}", org_id=org_id, status="active", **data
        )
        session.add(cap)
        session.flush()
        crud.audit(
            session,
            user=user,
            action="capability.create",
            entity="capability",
            entity_id=cap.external_id,
        )
        return cap
    cap = own_capability(session, user=user, external_id=external_id)
    if cap.status != "active":
        raise InvalidRequest("已下架的能力请先恢复再编辑", code="retired")
    changed = crud.update_fields(cap, data)
    if changed:
        crud.audit(
            session,
            user=user,
            action="capability.update",
            entity="capability",
            entity_id=cap.external_id,
            detail={"changed": sorted(changed)},
        )
    return cap


def set_capability_status(
    session: Session, *, user: auth.Principal, external_id: str, active: bool
) -> m.Capability:
    """Retire (下架) or restore one of the caller's capabilities."""
    cap = own_capability(session, user=user, external_id=external_id)
    status = "active" if active else "inactive"
    if cap.status != status:
        cap.status = status
        crud.audit(
            session,
            user=user,
            action="capability.restore" if active else "capability.retire",
            entity="capability",
            entity_id=cap.external_id,
        )
    return cap


@dataclass(frozen=True, slots=True)
class IndexedState:
    """What the current index build holds for capabilities: its build time and, per
    capability document key, the content hash it was encoded from."""

    built_at: datetime | None
    hashes: dict[str, str]
    max_chars: int


def indexed_state(index_dir: Path) -> IndexedState:
    """Read the current build's manifest and capability list (two small JSON files; the
    vectors are not loaded). No build yet: an empty state."""
    import json

    from embeddings import BuildStore
    from embeddings.store import DOCS_FILE, IndexBuild

    build_id = BuildStore(index_dir).current_build_id()
    if build_id is None:
        return IndexedState(None, {}, 0)
    try:
        manifest = IndexBuild.read_manifest(index_dir / build_id)
        docs = json.loads((index_dir / build_id / "capabilities" / DOCS_FILE).read_text("utf-8"))
        created = manifest.get("created_at")
        return IndexedState(
            datetime.fromisoformat(str(created)) if created else None,
            {str(d): str(h) for d, h, _n in docs["docs"]},
            int(manifest["chunker"]["max_chars"]),
        )
    except Exception:  # a broken build is the index's problem, not this page's
        log.warning("cannot read the index state of build %s", build_id, exc_info=True)
        return IndexedState(None, {}, 0)


def pending_reindex(caps: Sequence[m.Capability], state: IndexedState) -> set[str]:
    """External ids of ``caps`` whose current text the index build has not encoded: new or
    edited since the last ``duijie reindex`` (exact: the build's content hashes)."""
    from embeddings.builder import doc_hash
    from service.jobs.reindex import index_text

    out = set()
    for c in caps:
        doc = capability_document(c, "")
        text = index_text(doc.full_text, doc.keywords)
        if state.hashes.get(doc.id) != doc_hash(text, state.max_chars):
            out.add(c.external_id)
    return out


# --- needs that match us ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NeedEvidence:
    """One of our capabilities behind a match, with the best sentence of each side."""

    capability_id: str
    capability_title: str
    capability_snippet: str
    need_snippet: str
    shared_keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NeedMatch:
    """An open need ranked for an organisation."""

    need_id: str
    title: str
    enterprise: str
    field: str | None
    city: str | None
    budget: float | None
    score: float
    reasons: tuple[str, ...]
    evidence: tuple[NeedEvidence, ...]


def public_need_ids(session: Session, candidates: Collection[str] | None = None) -> set[str]:
    """External ids of needs anyone may see: open, vetted, not confidential, active owner."""
    stmt = (
        select(m.Need.external_id)
        .join(m.Organisation, m.Need.org_id == m.Organisation.id)
        .where(
            m.Need.status == "open",
            m.Need.confidential.is_(False),
            m.Organisation.status == "active",
            m.Need.review_status == "approved",
        )
    )
    if candidates is not None:
        if not candidates:
            return set()
        stmt = stmt.where(m.Need.external_id.in_(list(candidates)))
    return {str(x) for x in session.scalars(stmt)}


def candidate_needs(recommender: Any, org_ext: str, *, per_capability: int = 20) -> list[str]:
    """Need document ids reached from the organisation's active capabilities (best first)."""
    best: dict[str, float] = {}
    caps = [
        d
        for d in getattr(recommender, "documents", {}).values()
        if d.org_id == org_ext and d.kind in CAPABILITY_KINDS and d.active
    ]
    for cap in sorted(caps, key=lambda d: d.id):
        for s in recommender.enterprises_for_capability(cap.id, per_capability, kinds=None):
            for e in s.evidence:
                if e.doc_id.startswith("N:"):
                    best[e.doc_id] = max(best.get(e.doc_id, -1e9), float(s.score))
    return sorted(best, key=lambda d: (-best[d], d))


def matching_needs(
    session: Session, recommender: Any, *, org_ext: str, k: int = 20, max_candidates: int = 60
) -> list[NeedMatch]:
    """Open, vetted, non-confidential needs ranked for organisation ``org_ext``.

    Returns at most ``k`` matches, best score first; each carries the capabilities of ours
    that matched it (evidence) and the ranker's reasons.
    """
    if org_ext not in getattr(recommender, "orgs", {}):
        return []
    docs = candidate_needs(recommender, org_ext)
    allowed = public_need_ids(session, [external_of(d) for d in docs])
    docs = [
        d for d in docs if external_of(d) in allowed and not recommender.documents[d].confidential
    ][:max_candidates]
    if not docs:
        return []
    matrix = recommender.pair_matrix(docs, [org_ext])
    order = sorted(
        (i for i in range(len(docs)) if not matrix.forbidden[i, 0]),
        key=lambda i: (-float(matrix.scores[i, 0]), docs[i]),
    )[:k]
    ranked = [(docs[i], float(matrix.scores[i, 0])) for i in order]
    return _describe(session, recommender, org_ext, ranked)


def _describe(
    session: Session, recommender: Any, org_ext: str, ranked: Sequence[tuple[str, float]]
) -> list[NeedMatch]:
    ext_ids = [external_of(d) for d, _ in ranked]
    rows = {
        n.external_id: n
        for n in session.scalars(select(m.Need).where(m.Need.external_id.in_(ext_ids)))
    }
    cap_titles = dict(session.execute(select(m.Capability.external_id, m.Capability.title)).all())
    out: list[NeedMatch] = []
    for doc_id, score in ranked:
        need = rows.get(external_of(doc_id))
        if need is None:
            continue
        explained = recommender.explain_pair(doc_id, org_ext)
        evidence = tuple(
            NeedEvidence(
                capability_id=external_of(e.doc_id),
                capability_title=cap_titles.get(external_of(e.doc_id), external_of(e.doc_id)),
                capability_snippet=e.doc_snippet,
                need_snippet=e.query_snippet,
                shared_keywords=tuple(e.shared_keywords),
            )
            for e in explained.evidence
            if e.doc_id.startswith("C:")
        )
        out.append(
            NeedMatch(
                need_id=need.external_id,
                title=need.title,
                enterprise=need.org.name,
                field=need.field,
                city=need.org.city,
                budget=need.budget,
                score=score,
                reasons=tuple(explained.reasons),
                evidence=evidence,
            )
        )
    return out
