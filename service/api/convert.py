"""ORM rows and matcher results → public schemas (foreign keys shown as external ids)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.encoding import external_of
from matcher.types import Evidence, Exclusion, Suggestion
from service import schemas
from service.models import (
    Bid,
    Bounty,
    Capability,
    Need,
    Organisation,
    ShortlistItem,
    User,
)


def org_ext_ids(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Map organisation primary keys to external ids (one query)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(Organisation.id, Organisation.external_id).where(Organisation.id.in_(wanted))
    )
    return {int(i): str(e) for i, e in rows}


def _ext_map(session: Session, model: Any, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(model.id, model.external_id).where(model.id.in_(wanted)))
    return {int(i): str(e) for i, e in rows}


def organisations(
    session: Session, rows: Sequence[Organisation]
) -> list[schemas.OrganisationPublic]:
    parents = org_ext_ids(session, (o.parent_id for o in rows))
    return [
        schemas.OrganisationPublic.model_validate(o).model_copy(
            update={"parent_external_id": parents.get(o.parent_id) if o.parent_id else None}
        )
        for o in rows
    ]


def needs(session: Session, rows: Sequence[Need]) -> list[schemas.NeedPublic]:
    orgs = org_ext_ids(session, (n.org_id for n in rows))
    return [
        schemas.NeedPublic(
            external_id=n.external_id,
            org_external_id=orgs[n.org_id],
            title=n.title,
            description=n.description,
            field=n.field,
            keywords=list(n.keywords or []),
            budget=n.budget,
            deadline=n.deadline,
            confidential=n.confidential,
            status=n.status,
            review_status=n.review_status,
            review_reason=n.review_reason or "",
            updated_at=n.updated_at,
        )
        for n in rows
    ]


def capabilities(session: Session, rows: Sequence[Capability]) -> list[schemas.CapabilityPublic]:
    orgs = org_ext_ids(session, (c.org_id for c in rows))
    return [
        schemas.CapabilityPublic(
            external_id=c.external_id,
            org_external_id=orgs[c.org_id],
            kind=c.kind,
            title=c.title,
            description=c.description,
            field=c.field,
            keywords=list(c.keywords or []),
            trl=c.trl,
            year=c.year,
            status=c.status,
        )
        for c in rows
    ]


def bounties(
    session: Session, rows: Sequence[Bounty], counts: dict[int, int]
) -> list[schemas.BountyPublic]:
    orgs = org_ext_ids(session, (b.poster_org_id for b in rows))
    need_ids = _ext_map(session, Need, (b.need_id for b in rows))
    cap_ids = _ext_map(session, Capability, (b.capability_id for b in rows))
    return [
        schemas.BountyPublic(
            external_id=b.external_id,
            kind=b.kind,
            poster_org_external_id=orgs[b.poster_org_id],
            need_external_id=need_ids.get(b.need_id) if b.need_id else None,
            capability_external_id=cap_ids.get(b.capability_id) if b.capability_id else None,
            title=b.title,
            description=b.description,
            budget=b.budget,
            deadline=b.deadline,
            status=b.status,
            bid_count=counts.get(b.id, 0),
        )
        for b in rows
    ]


def bids(session: Session, rows: Sequence[Bid]) -> list[schemas.BidPublic]:
    orgs = org_ext_ids(session, (b.respondent_org_id for b in rows))
    bounty_ids = _ext_map(session, Bounty, (b.bounty_id for b in rows))
    return [
        schemas.BidPublic(
            external_id=b.external_id,
            bounty_external_id=bounty_ids[b.bounty_id],
            respondent_org_external_id=orgs[b.respondent_org_id],
            members=list(b.members or []),
            price=b.price,
            proposal=b.proposal,
            submitted_at=b.submitted_at,
            status=b.status,
            status_note=b.status_note or "",
        )
        for b in rows
    ]


def shortlist_items(
    session: Session, rows: Sequence[ShortlistItem]
) -> list[schemas.ShortlistItemPublic]:
    orgs = org_ext_ids(session, [i.enterprise_id for i in rows] + [i.institute_id for i in rows])
    need_ids = _ext_map(session, Need, (i.need_id for i in rows))
    return [
        schemas.ShortlistItemPublic(
            id=i.id,
            campaign_id=i.campaign_id,
            enterprise_external_id=orgs[i.enterprise_id],
            institute_external_id=orgs.get(i.institute_id) if i.institute_id else None,
            need_external_id=need_ids.get(i.need_id) if i.need_id else None,
            score=i.score,
            rank=i.rank,
            kind=i.kind,
            evidence=dict(i.evidence or {}),
            features=dict(i.features or {}),
            problem=i.problem,
            status=i.status,
            locked=i.locked,
            note=i.note,
            version=i.version,
            decided_by=i.decided_by,
            decided_at=i.decided_at,
        )
        for i in rows
    ]


def users(
    session: Session, rows: Sequence[User], keys: dict[int, list[str]]
) -> list[schemas.UserPublic]:
    orgs = org_ext_ids(session, (u.org_id for u in rows))
    return [
        schemas.UserPublic(
            id=u.id,
            username=u.username,
            role=u.role,
            org_external_id=orgs.get(u.org_id) if u.org_id else None,
            active=u.active,
            has_password=bool(u.password_hash),
            must_change_password=bool(u.must_change_password),
            api_keys=keys.get(u.id, []),
        )
        for u in rows
    ]


def evidence(ev: Evidence) -> schemas.EvidencePublic:
    """A matcher.types.Evidence as the public schema (document keys as external ids)."""
    return schemas.EvidencePublic(
        query_doc_id=external_of(ev.query_doc_id) if ev.query_doc_id else None,
        doc_id=external_of(ev.doc_id),
        score=float(ev.score),
        query_snippet=ev.query_snippet,
        doc_snippet=ev.doc_snippet,
        shared_keywords=list(ev.shared_keywords),
    )


def suggestion(s: Suggestion, names: Mapping[str, str]) -> schemas.SuggestionPublic:
    """A matcher.types.Suggestion as the public schema (``names``: org id -> name)."""
    return schemas.SuggestionPublic(
        org_id=s.org_id,
        org_name=names.get(s.org_id),
        score=float(s.score),
        rank=int(s.rank),
        features={k: float(v) for k, v in s.features.items()},
        contributions={k: float(v) for k, v in s.contributions.items()},
        evidence=[evidence(e) for e in s.evidence],
        shared_keywords=list(s.shared_keywords),
        query_id=external_of(s.query_id) if s.query_id else None,
        reasons=list(s.reasons),
    )


def exclusion(e: Exclusion) -> schemas.ExclusionPublic:
    """A matcher.types.Exclusion as the public schema (with its Chinese label)."""
    return schemas.ExclusionPublic(
        org_id=e.org_id,
        code=str(e.code),
        label=e.label,
        member_id=e.member_id,
        detail=e.detail,
        score=e.score,
    )
