"""Database reads and writes for the API (keyword-only functions), with visibility rules.

Visibility for enterprise callers (``Principal.role == "enterprise"``):

* needs: only their own organisation's (other enterprises' needs, confidential or not, are
  never listed, fetched, suggested from or shown as evidence);
* organisations and capabilities: their own plus every non-enterprise organisation
  (universities, institutes, companies: the partner directory);
* bounties: the published list (揭榜 lists are public by design); bids: only their own;
* campaigns, shortlists, audit log, users, index admin: none.

A resource an enterprise may not see answers 404 (not 403), so ids do not leak existence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session

from service import auth
from service.errors import Conflict, InvalidRequest, NotFound
from service.models import (
    ApiKey,
    AuditLog,
    Bid,
    Bounty,
    Campaign,
    Capability,
    Need,
    Organisation,
    ShortlistItem,
    User,
)

R = TypeVar("R")


def paginate(session: Session, stmt: Select[R], *, limit: int, offset: int) -> tuple[list[R], int]:
    """One page of ``stmt`` and the total row count."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = list(session.scalars(stmt.limit(limit).offset(offset)))
    return rows, int(total)


def audit(
    session: Session,
    *,
    user: auth.Principal | None,
    action: str,
    entity: str,
    entity_id: str | int,
    detail: dict[str, Any] | None = None,
    user_id: int | None = None,
) -> None:
    """Append an audit entry (committed with the caller's transaction); ``user_id`` names the
    actor when there is no principal yet (login)."""
    session.add(
        AuditLog(
            user_id=user.user_id if user else user_id,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            detail=detail or {},
        )
    )


# --- organisations ------------------------------------------------------------------------


def _org_visible_clause(viewer: auth.Principal) -> Any:
    if viewer.is_staff:
        return True
    return or_(Organisation.kind != "enterprise", Organisation.id == viewer.org_id)


def org_by_external_id(session: Session, *, external_id: str) -> Organisation:
    """The organisation with ``external_id``; NotFound otherwise (no visibility check)."""
    org = session.scalar(select(Organisation).where(Organisation.external_id == external_id))
    if org is None:
        raise NotFound(f"organisation {external_id!r} not found")
    return org


def get_organisation(session: Session, *, viewer: auth.Principal, external_id: str) -> Organisation:
    """A visible organisation, else NotFound."""
    org = session.scalar(
        select(Organisation).where(
            Organisation.external_id == external_id, _org_visible_clause(viewer)
        )
    )
    if org is None:
        raise NotFound(f"organisation {external_id!r} not found")
    return org


def list_organisations(
    session: Session,
    *,
    viewer: auth.Principal,
    limit: int,
    offset: int,
    kind: str | None = None,
    q: str | None = None,
) -> tuple[list[Organisation], int]:
    stmt = select(Organisation).where(_org_visible_clause(viewer)).order_by(Organisation.id)
    if kind:
        stmt = stmt.where(Organisation.kind == kind)
    if q:
        stmt = stmt.where(Organisation.name.contains(q))
    return paginate(session, stmt, limit=limit, offset=offset)


def create_organisation(session: Session, *, data: dict[str, Any]) -> Organisation:
    if session.scalar(
        select(Organisation.id).where(Organisation.external_id == data["external_id"])
    ):
        raise Conflict(f"organisation {data['external_id']!r} exists", code="duplicate")
    parent_ext = data.pop("parent_external_id", None)
    org = Organisation(**data)
    if parent_ext:
        org.parent_id = org_by_external_id(session, external_id=parent_ext).id
    if data.get("credit_code") and session.scalar(
        select(Organisation.id).where(Organisation.credit_code == data["credit_code"])
    ):
        raise Conflict("credit_code already registered", code="duplicate")
    session.add(org)
    session.flush()
    return org


def update_fields(obj: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Set the given attributes; returns the ones that changed (old, new).

    An explicit null for a non-nullable column is refused (InvalidRequest), not written.
    """
    columns = obj.__table__.columns
    for key, value in data.items():
        if value is None and key in columns and not columns[key].nullable:
            raise InvalidRequest(f"{key} cannot be null")
    changed: dict[str, Any] = {}
    for key, value in data.items():
        old = getattr(obj, key)
        if old != value:
            changed[key] = [str(old) if old is not None else None, str(value)]
            setattr(obj, key, value)
    return changed


# --- needs --------------------------------------------------------------------------------


def _need_visible_clause(viewer: auth.Principal) -> Any:
    if viewer.is_staff:
        return True
    return Need.org_id == viewer.org_id


def get_need(session: Session, *, viewer: auth.Principal, external_id: str) -> Need:
    need = session.scalar(
        select(Need).where(Need.external_id == external_id, _need_visible_clause(viewer))
    )
    if need is None:
        raise NotFound(f"need {external_id!r} not found")
    return need


def list_needs(
    session: Session,
    *,
    viewer: auth.Principal,
    limit: int,
    offset: int,
    org_external_id: str | None = None,
    status: str | None = None,
) -> tuple[list[Need], int]:
    stmt = select(Need).where(_need_visible_clause(viewer)).order_by(Need.id)
    if org_external_id:
        stmt = stmt.join(Organisation, Need.org_id == Organisation.id).where(
            Organisation.external_id == org_external_id
        )
    if status:
        stmt = stmt.where(Need.status == status)
    return paginate(session, stmt, limit=limit, offset=offset)


def create_need(session: Session, *, data: dict[str, Any]) -> Need:
    if session.scalar(select(Need.id).where(Need.external_id == data["external_id"])):
        raise Conflict(f"need {data['external_id']!r} exists", code="duplicate")
    org = org_by_external_id(session, external_id=data.pop("org_external_id"))
    need = Need(org_id=org.id, **data)
    session.add(need)
    session.flush()
    return need


# --- capabilities -------------------------------------------------------------------------


def _cap_visible_clause(viewer: auth.Principal) -> Any:
    if viewer.is_staff:
        return True
    visible_orgs = select(Organisation.id).where(_org_visible_clause(viewer))
    return Capability.org_id.in_(visible_orgs)


def get_capability(session: Session, *, viewer: auth.Principal, external_id: str) -> Capability:
    cap = session.scalar(
        select(Capability).where(Capability.external_id == external_id, _cap_visible_clause(viewer))
    )
    if cap is None:
        raise NotFound(f"capability {external_id!r} not found")
    return cap


def list_capabilities(
    session: Session,
    *,
    viewer: auth.Principal,
    limit: int,
    offset: int,
    org_external_id: str | None = None,
    kind: str | None = None,
) -> tuple[list[Capability], int]:
    stmt = select(Capability).where(_cap_visible_clause(viewer)).order_by(Capability.id)
    if org_external_id:
        stmt = stmt.join(Organisation, Capability.org_id == Organisation.id).where(
            Organisation.external_id == org_external_id
        )
    if kind:
        stmt = stmt.where(Capability.kind == kind)
    return paginate(session, stmt, limit=limit, offset=offset)


def create_capability(session: Session, *, data: dict[str, Any]) -> Capability:
    if session.scalar(select(Capability.id).where(Capability.external_id == data["external_id"])):
        raise Conflict(f"capability {data['external_id']!r} exists", code="duplicate")
    org = org_by_external_id(session, external_id=data.pop("org_external_id"))
    cap = Capability(org_id=org.id, **data)
    session.add(cap)
    session.flush()
    return cap


# --- bounties and bids --------------------------------------------------------------------


def get_bounty(session: Session, *, external_id: str) -> Bounty:
    bounty = session.scalar(select(Bounty).where(Bounty.external_id == external_id))
    if bounty is None:
        raise NotFound(f"bounty {external_id!r} not found")
    return bounty


def list_bounties(
    session: Session,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
    kind: str | None = None,
    viewer: auth.Principal | None = None,
) -> tuple[list[Bounty], int]:
    """Bounties; a non-staff ``viewer`` sees proposals (not yet published) only of its own."""
    stmt = select(Bounty).order_by(Bounty.id)
    if viewer is not None and not viewer.is_staff:
        unpublished = ("proposed", "assessing")  # service.bounty_lifecycle.UNPUBLISHED
        stmt = stmt.where(
            or_(Bounty.status.not_in(unpublished), Bounty.poster_org_id == viewer.org_id)
        )
    if status:
        stmt = stmt.where(Bounty.status == status)
    if kind:
        stmt = stmt.where(Bounty.kind == kind)
    return paginate(session, stmt, limit=limit, offset=offset)


def bid_counts(session: Session, *, bounty_ids: Sequence[int]) -> dict[int, int]:
    if not bounty_ids:
        return {}
    rows = session.execute(
        select(Bid.bounty_id, func.count())
        .where(Bid.bounty_id.in_(bounty_ids))
        .group_by(Bid.bounty_id)
    )
    return {int(b): int(n) for b, n in rows}


def list_bids(
    session: Session, *, viewer: auth.Principal, bounty: Bounty, limit: int, offset: int
) -> tuple[list[Bid], int]:
    stmt = select(Bid).where(Bid.bounty_id == bounty.id).order_by(Bid.id)
    if not viewer.is_staff:
        stmt = stmt.where(Bid.respondent_org_id == viewer.org_id)
    return paginate(session, stmt, limit=limit, offset=offset)


# --- campaigns and shortlists -------------------------------------------------------------


def get_campaign(session: Session, *, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def create_campaign(
    session: Session, *, name: str, params: dict[str, Any], previous_id: int | None
) -> Campaign:
    if session.scalar(select(Campaign.id).where(Campaign.name == name)):
        raise Conflict(f"campaign {name!r} exists", code="duplicate")
    if previous_id is not None:
        get_campaign(session, campaign_id=previous_id)
    campaign = Campaign(name=name, params=params, previous_id=previous_id)
    session.add(campaign)
    session.flush()
    return campaign


def list_shortlist(
    session: Session,
    *,
    campaign_id: int | None,
    limit: int,
    offset: int,
    status: str | None = None,
    enterprise_external_id: str | None = None,
) -> tuple[list[ShortlistItem], int]:
    stmt = select(ShortlistItem).order_by(
        ShortlistItem.campaign_id, ShortlistItem.enterprise_id, ShortlistItem.rank, ShortlistItem.id
    )
    if campaign_id is not None:
        stmt = stmt.where(ShortlistItem.campaign_id == campaign_id)
    if status:
        stmt = stmt.where(ShortlistItem.status == status)
    if enterprise_external_id:
        org = org_by_external_id(session, external_id=enterprise_external_id)
        stmt = stmt.where(ShortlistItem.enterprise_id == org.id)
    return paginate(session, stmt, limit=limit, offset=offset)


def get_shortlist_item(session: Session, *, item_id: int) -> ShortlistItem:
    item = session.get(ShortlistItem, item_id)
    if item is None:
        raise NotFound(f"shortlist item {item_id} not found")
    return item


# --- users --------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    username: str,
    role: str,
    org_external_id: str | None = None,
    password: str | None = None,
    with_api_key: bool = True,
    must_change_password: bool = False,
) -> tuple[User, str | None]:
    """Create a user (and an API key, returned in clear once).

    Enterprise and institute users must be bound to an organisation of a fitting kind
    (``auth.ORG_KINDS_OF_ROLE``); ``must_change_password`` makes the first page login ask for
    a new password (set it when staff hand out the initial one).
    """
    if role not in auth.ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(auth.ROLES)}")
    if role in auth.ORG_ROLES and not org_external_id:
        raise InvalidRequest(f"{role} users must be bound to an organisation (org)")
    if session.scalar(select(User.id).where(User.username == username)):
        raise Conflict(f"user {username!r} exists", code="duplicate")
    org_id = None
    if org_external_id:
        org = org_by_external_id(session, external_id=org_external_id)
        kinds = auth.ORG_KINDS_OF_ROLE.get(role)
        if kinds is not None and org.kind not in kinds:
            raise InvalidRequest(
                f"a {role} user cannot be bound to organisation {org_external_id!r} "
                f"of kind {org.kind!r} (allowed: {', '.join(kinds)})"
            )
        org_id = org.id
    user = User(
        username=username,
        role=role,
        org_id=org_id,
        password_hash=auth.hash_password(password) if password else None,
        must_change_password=bool(must_change_password and password),
    )
    session.add(user)
    session.flush()
    key = issue_api_key(session, user=user) if with_api_key else None
    return user, key


def issue_api_key(session: Session, *, user: User) -> str:
    new = auth.generate_api_key()
    session.add(ApiKey(user_id=user.id, prefix=new.prefix, key_hash=new.key_hash))
    session.flush()
    return new.key


def get_user(session: Session, *, user_id: int | None = None, username: str | None = None) -> User:
    if user_id is not None:
        user = session.get(User, user_id)
    else:
        user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"user {user_id if user_id is not None else username!r} not found")
    return user


def list_users(session: Session, *, limit: int, offset: int) -> tuple[list[User], int]:
    return paginate(session, select(User).order_by(User.id), limit=limit, offset=offset)


def active_key_prefixes(session: Session, *, user_ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if not user_ids:
        return out
    rows = session.execute(
        select(ApiKey.user_id, ApiKey.prefix)
        .where(ApiKey.user_id.in_(user_ids), ApiKey.revoked.is_(False))
        .order_by(ApiKey.id)
    )
    for uid, prefix in rows:
        out.setdefault(int(uid), []).append(prefix)
    return out


def revoke_user(session: Session, *, user: User) -> int:
    """Deactivate a user and revoke all their keys; returns the number of keys revoked."""
    user.active = False
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked.is_(False))
        .values(revoked=True)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def list_audit(
    session: Session,
    *,
    limit: int,
    offset: int,
    entity: str | None = None,
    action: str | None = None,
    user_id: int | None = None,
) -> tuple[list[AuditLog], int]:
    stmt = select(AuditLog).order_by(AuditLog.id.desc())
    if entity:
        stmt = stmt.where(AuditLog.entity == entity)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if user_id is not None:
        stmt = stmt.where(AuditLog.user_id == user_id)
    return paginate(session, stmt, limit=limit, offset=offset)


def verify_login(session: Session, *, username: str, password: str) -> User | None:
    """The active user with this username and password, else None (runs the hash either way
    so response time does not reveal which usernames exist)."""
    user = session.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None else _DUMMY_HASH
    ok = auth.verify_password(password, stored)
    if user is None or not ok or not user.active or not user.password_hash:
        return None
    return user


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def set_password(session: Session, *, user: User, password: str, must_change: bool = False) -> None:
    """Set a user's password (ends their existing sessions); ``must_change`` when staff set it
    for someone else, so their next page login asks for a new one."""
    user.password_hash = auth.hash_password(password)
    user.must_change_password = must_change
