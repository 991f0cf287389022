"""Read the store into the matcher's value types.

The matcher keys documents by one string per document; needs and capabilities come from two
tables whose external ids may collide, so their keys carry a prefix (built and parsed only by
:mod:`matcher.encoding`: ``need_key`` / ``cap_key`` / ``external_of``). The
re-index job (``service.jobs.reindex``) and :func:`load_snapshot` both build documents with
:func:`need_document` / :func:`capability_document`, so the ids in an index build always match
the documents the matcher is given.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from matcher.encoding import cap_key, need_key
from matcher.types import BidInfo, BountyInfo, Document, OrgInfo
from service import models as m

CLOSED_NEED_STATUSES = frozenset({"closed", "withdrawn"})


def need_document(n: m.Need, org_ext: str) -> Document:
    return Document(
        id=need_key(n.external_id),
        org_id=org_ext,
        kind="need",
        title=n.title,
        text=n.description or "",
        field=n.field,
        keywords=tuple(n.keywords or ()),
        # A need takes part in matching once staff have approved it (vetting, 审核).
        active=n.status not in CLOSED_NEED_STATUSES and n.review_status == "approved",
        confidential=bool(n.confidential),
    )


def capability_document(c: m.Capability, org_ext: str) -> Document:
    return Document(
        id=cap_key(c.external_id),
        org_id=org_ext,
        kind=c.kind,  # type: ignore[arg-type]  # validated on import
        title=c.title,
        text=c.description or "",
        field=c.field,
        keywords=tuple(c.keywords or ()),
        trl=c.trl,
        year=c.year,
        active=c.status == "active",
    )


def _org_ext_by_id(session: Session) -> dict[int, str]:
    return dict(session.execute(select(m.Organisation.id, m.Organisation.external_id)).all())


@dataclass
class Snapshot:
    """Everything the recommender needs from the store, keyed by external ids."""

    documents: dict[str, Document] = field(default_factory=dict)
    orgs: dict[str, OrgInfo] = field(default_factory=dict)
    blocks: list[tuple[str, str]] = field(default_factory=list)
    load: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, tuple[int, int]] = field(default_factory=dict)
    stamp: tuple[object, ...] = ()  # data_stamp when read
    decisions: tuple[object, ...] = ()  # decision_stamp when read


# The tables a Recommender is built from (documents, organisations, eligibility). Shortlist
# decisions are not among them: they only feed the load/outcome features (pairing_load).
MATCHING_TABLES: tuple[type[m.Base], ...] = (m.Organisation, m.Need, m.Capability, m.StaffBlock)


def _count_and_latest(session: Session, model: type[m.Base]) -> tuple[object, ...]:
    updated = model.updated_at  # type: ignore[attr-defined]
    return tuple(session.execute(select(func.count(), func.max(updated)).select_from(model)).one())


def data_stamp(session: Session) -> tuple[object, ...]:
    """A cheap fingerprint of the data matching is built from: changes whenever a row of
    :data:`MATCHING_TABLES` is added, edited or removed (not on shortlist decisions)."""
    parts: list[object] = []
    for model in MATCHING_TABLES:
        parts.extend(_count_and_latest(session, model))
    return tuple(parts)


def decision_stamp(session: Session) -> tuple[object, ...]:
    """A cheap fingerprint of the shortlist decisions (what :func:`pairing_load` reads)."""
    return _count_and_latest(session, m.ShortlistItem)


def pairing_load(session: Session) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """Per institute (external id): approved pairings (load), and (approved, decided) of
    its past pairings (outcomes), from the staff decisions on shortlists."""
    rows = session.execute(
        select(m.Organisation.external_id, m.ShortlistItem.status, func.count())
        .join(m.Organisation, m.Organisation.id == m.ShortlistItem.institute_id)
        .where(m.ShortlistItem.status != "pending")
        .group_by(m.Organisation.external_id, m.ShortlistItem.status)
    ).all()
    decided: Counter[str] = Counter()
    approved: Counter[str] = Counter()
    for org, status, n in rows:
        decided[str(org)] += int(n)
        if status == "approved":
            approved[str(org)] += int(n)
    return dict(approved), {o: (approved[o], decided[o]) for o in decided}


def load_snapshot(session: Session) -> Snapshot:
    """Read organisations, documents, staff blocks, pairing load and past outcomes."""
    snap = Snapshot(stamp=data_stamp(session), decisions=decision_stamp(session))
    rows = session.scalars(select(m.Organisation)).all()
    ext = {o.id: o.external_id for o in rows}
    for o in rows:
        snap.orgs[o.external_id] = OrgInfo(
            id=o.external_id,
            name=o.name,
            kind=o.kind,  # type: ignore[arg-type]
            in_region=bool(o.in_region),
            parent_id=ext.get(o.parent_id) if o.parent_id else None,
            fields=tuple(o.fields or ()),
            active=o.status == "active",
        )
    for n in session.scalars(select(m.Need)):
        d = need_document(n, ext[n.org_id])
        snap.documents[d.id] = d
    for c in session.scalars(select(m.Capability)):
        d = capability_document(c, ext[c.org_id])
        snap.documents[d.id] = d
    need_ext = dict(session.execute(select(m.Need.id, m.Need.external_id)).all())
    for b in session.scalars(select(m.StaffBlock)):
        key = need_key(need_ext[b.need_id]) if b.need_id else ext[b.org_id]
        snap.blocks.append((key, ext[b.blocked_org_id]))
    snap.load, snap.outcomes = pairing_load(session)
    return snap


def bounty_info(session: Session, bounty: m.Bounty) -> BountyInfo:
    """The matcher's view of a bounty row (org ids external; attached documents as
    :mod:`service.snapshot` document keys, like the recommender's documents)."""
    need_ext = (
        session.scalar(select(m.Need.external_id).where(m.Need.id == bounty.need_id))
        if bounty.need_id
        else None
    )
    cap_ext = (
        session.scalar(
            select(m.Capability.external_id).where(m.Capability.id == bounty.capability_id)
        )
        if bounty.capability_id
        else None
    )
    return BountyInfo(
        id=bounty.external_id,
        kind=bounty.kind,  # type: ignore[arg-type]
        poster_org_id=bounty.poster.external_id,
        title=bounty.title,
        text=bounty.description,
        budget=bounty.budget,
        need_id=need_key(need_ext) if need_ext else None,
        capability_id=cap_key(cap_ext) if cap_ext else None,
        active=bounty.status == "open",
    )


def bid_infos(session: Session, bounty: m.Bounty) -> list[BidInfo]:
    """The bids of a bounty as the matcher sees them, in submission order."""
    rows = session.scalars(
        select(m.Bid)
        .where(m.Bid.bounty_id == bounty.id)
        .options(selectinload(m.Bid.respondent))
        .order_by(m.Bid.id)
    )
    return [
        BidInfo(
            id=b.external_id,
            bounty_id=bounty.external_id,
            respondent_org_id=b.respondent.external_id,
            price=b.price,
            proposal=b.proposal or "",
            members=tuple(b.members or ()),
        )
        for b in rows
    ]
