"""Relational model: organisations, needs, capabilities, bounties, bids, the staff-side
tables (users, API keys, campaigns, shortlists, decisions, audit log) and the portal's
introductions (对接申请) and in-app messages (站内信).

A need carries a vetting state (``review_status``): a need created or edited by its enterprise
is ``pending`` (待审核) until staff approve it; only ``approved`` needs take part in matching.

Every content record carries created/updated timestamps and ``content_hash``: a SHA-256 of
its text fields, kept current by a ``before_flush`` hook, which the re-index job compares with
the current index build to encode only what changed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from service.validation import normalise_text


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Hashed(Timestamped):
    """Records whose text is indexed; ``HASHED_FIELDS`` feed ``content_hash``.

    ``extra`` keeps the columns of an imported file that have no attribute of their own
    (``{header: value}``, e.g. 联系人); it is exported again and never indexed.
    """

    HASHED_FIELDS: tuple[str, ...] = ()
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)

    def clean_text(self) -> None:
        """Pass every text attribute (and list of texts) through
        :func:`service.validation.normalise_text`, whoever wrote it (API, pages, import)."""
        loaded = self.__dict__  # only loaded attributes can have been written
        for column in self.__table__.columns:  # type: ignore[attr-defined]
            value = loaded.get(column.key)
            if isinstance(value, str):
                cleaned: Any = normalise_text(value)
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                cleaned = [normalise_text(v) for v in value]
            else:
                continue
            if cleaned != value:
                setattr(self, column.key, cleaned)

    def compute_hash(self) -> str:
        payload = [getattr(self, f) for f in self.HASHED_FIELDS]
        raw = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class Organisation(Base, Hashed):
    __tablename__ = "organisations"
    HASHED_FIELDS = ("name", "kind", "province", "city", "fields")

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # enterprise|university|institute|company|other
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True, nullable=True)
    province: Mapped[str | None] = mapped_column(String(32), nullable=True)
    city: Mapped[str | None] = mapped_column(String(32), nullable=True)
    in_region: Mapped[bool] = mapped_column(Boolean, default=False)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), nullable=True, index=True
    )
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|inactive
    # 企业规模 micro|small|medium|large (None = not declared); dispatch serves the first three
    scale: Mapped[str | None] = mapped_column(String(16), nullable=True)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id])


class Need(Base, Hashed):
    """技术需求: an enterprise's technology need."""

    __tablename__ = "needs"
    HASHED_FIELDS = ("title", "description", "field", "keywords")

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    field: Mapped[str | None] = mapped_column(String(64), nullable=True)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    budget: Mapped[float | None] = mapped_column(Float, nullable=True)  # 万元
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|matched|closed|withdrawn
    # Vetting (审核): pending|approved|returned. Imported and staff-entered needs are approved;
    # a need entered or edited by its enterprise waits as pending for staff.
    review_status: Mapped[str] = mapped_column(String(16), default="approved", index=True)
    review_reason: Mapped[str] = mapped_column(Text, default="")  # why staff returned it
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # 征集批次: the collection round the need was gathered in (guideline condensation)
    round: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # A near-duplicate merged by staff points at the need it was merged into; both stay.
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("needs.id", ondelete="SET NULL"), nullable=True
    )

    org: Mapped[Organisation] = relationship(foreign_keys=[org_id])


class Capability(Base, Hashed):
    """能力/成果: an achievement, patent, paper, team, lab or service of an organisation."""

    __tablename__ = "capabilities"
    HASHED_FIELDS = ("title", "description", "field", "keywords")

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # achievement|patent|paper|team|lab|service
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    field: Mapped[str | None] = mapped_column(String(64), nullable=True)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    trl: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1–9
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|inactive

    org: Mapped[Organisation] = relationship()


class Bounty(Base, Hashed):
    """揭榜榜单: ``tackle`` (技术攻关类) or ``transfer`` (成果转化类)."""

    __tablename__ = "bounties"
    HASHED_FIELDS = ("title", "description")

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    poster_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id"), nullable=True)
    capability_id: Mapped[int | None] = mapped_column(ForeignKey("capabilities.id"), nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    budget: Mapped[float | None] = mapped_column(Float, nullable=True)  # 万元
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True)
    # Lifecycle state (service.bounty_lifecycle): proposed 征集 | assessing 论证 | published 发榜
    # | open 申报中 | screening 资格审查 | reviewing 评审 | negotiating 洽谈 | awarded 已立项
    # | notice 公示 | completed 结项 | withdrawn 撤榜
    status: Mapped[str] = mapped_column(String(16), default="open")
    status_changed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    # The award (立项): the chosen bid, the agreed price (万元), when; and when 公示 began.
    # (no foreign key: bids already point at bounties, and SQLite cannot add a cycle later)
    awarded_bid_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    awarded_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    awarded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    noticed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Staff opened the bid ranking to the poster (service.applications.open_ranking).
    ranking_open: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    poster: Mapped[Organisation] = relationship()
    bids: Mapped[list[Bid]] = relationship(back_populates="bounty")


class Bid(Base, Hashed):
    """揭榜申报: a respondent (optionally leading a consortium), a price and a proposal."""

    __tablename__ = "bids"
    HASHED_FIELDS = ("proposal",)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    bounty_id: Mapped[int] = mapped_column(ForeignKey("bounties.id"), index=True)
    respondent_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    members: Mapped[list[str]] = mapped_column(JSON, default=list)  # consortium member ext ids
    price: Mapped[float] = mapped_column(Float)  # 万元
    proposal: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # submitted|qualified|disqualified|awarded|not_awarded|withdrawn (service.applications)
    status: Mapped[str] = mapped_column(String(16), default="submitted", server_default="submitted")
    status_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Split of the public funding (万元): enterprise side vs universities/institutes (优先支持)
    funding_enterprise: Mapped[float | None] = mapped_column(Float, nullable=True)
    funding_academic: Mapped[float | None] = mapped_column(Float, nullable=True)

    bounty: Mapped[Bounty] = relationship(back_populates="bids")
    respondent: Mapped[Organisation] = relationship()


class StaffBlock(Base, Timestamped):
    """An explicit staff block: ``blocked_org`` is never suggested for ``org`` (or its need)."""

    __tablename__ = "staff_blocks"
    __table_args__ = (UniqueConstraint("org_id", "blocked_org_id", "need_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    blocked_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id"), nullable=True)
    reason: Mapped[str] = mapped_column(String(300), default="")


class User(Base, Timestamped):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # enterprise|institute|staff|admin
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set when staff hand out an initial password: the next page login must change it.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)

    org: Mapped[Organisation | None] = relationship()


class ApiKey(Base, Timestamped):
    """API keys are stored as SHA-256 hashes; ``prefix`` finds the row without the secret."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


class UserSession(Base):
    """A server-side login session: the cookie carries ``sid``, only ``sha256(sid)`` is stored.

    Every cookie-authenticated request looks its row up, so logging out, an admin's revoke or
    deactivating the user ends the session at once (service.sessions).
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    client: Mapped[str] = mapped_column(String(64), default="")


class LoginThrottleEntry(Base):
    """Failed-login counter of one username (``user:<name>``) or client address
    (``addr:<ip>``), shared by every worker through the store (service.sessions)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Campaign(Base, Timestamped):
    """A pairing campaign (结对子): parameters, run status and progress."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="created")
    # created|running|done|failed|cancelled
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="pairing")  # pairing|dispatch


class ShortlistItem(Base, Timestamped):
    """One proposed pairing (or uncovered enterprise) for staff review.

    ``version`` implements optimistic locking: a decision must quote the version it saw.
    """

    __tablename__ = "shortlist_items"
    __table_args__ = (Index("ix_shortlist_campaign_enterprise", "campaign_id", "enterprise_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    institute_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    # dispatch campaigns: the commissioner (institute_id is then their employer)
    commissioner_id: Mapped[int | None] = mapped_column(
        ForeignKey("commissioners.id", ondelete="SET NULL"), nullable=True
    )
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id"), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    rank: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(
        String(16), default="assigned"
    )  # assigned|alternate|uncovered
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    features: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    problem: Mapped[str | None] = mapped_column(Text, nullable=True)  # coverage diagnosis
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # pending|approved|rejected
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    enterprise: Mapped[Organisation] = relationship(foreign_keys=[enterprise_id])
    institute: Mapped[Organisation | None] = relationship(foreign_keys=[institute_id])


class Commissioner(Base, Timestamped):
    """科技专员: a person sent to enterprises, with an expertise profile and a load limit."""

    __tablename__ = "commissioners"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(64))
    employer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(String(64), default="")  # 职称
    field: Mapped[str | None] = mapped_column(String(64), nullable=True)
    expertise: Mapped[str] = mapped_column(Text, default="")  # 研究方向 / 专长
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    papers: Mapped[list[str]] = mapped_column(JSON, default=list)  # titles
    patents: Mapped[list[str]] = mapped_column(JSON, default=list)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)  # past services
    load_limit: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|inactive

    employer: Mapped[Organisation] = relationship()

    def profile_texts(self) -> list[str]:
        """The documents of the expertise profile (one per paper, patent, past service)."""
        head = "；".join(x for x in (self.expertise, "、".join(self.keywords or ())) if x)
        docs = [head] if head else []
        return docs + [t for t in (*self.papers, *self.patents, *self.services) if t]


class GuidelineRun(Base, Timestamped):
    """A condensation of one collection round (or date range) into directions."""

    __tablename__ = "guideline_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    round: Mapped[str | None] = mapped_column(String(64), nullable=True)
    date_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    date_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    directions: Mapped[list[GuidelineDirection]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="GuidelineDirection.position"
    )


class GuidelineDirection(Base, Timestamped):
    """One direction (指南方向) of a run; staff merge, split, rename and drop them.

    ``need_ids`` are need external ids, representatives first; ``institutes`` are
    ``{"org": ext id, "name", "score"}`` in-region suggestions. ``version``: optimistic lock.
    """

    __tablename__ = "guideline_directions"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("guideline_runs.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    field: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    need_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    representatives: Mapped[list[str]] = mapped_column(JSON, default=list)
    org_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    institutes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    cohesion: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|dropped|merged
    note: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)

    run: Mapped[GuidelineRun] = relationship(back_populates="directions")

    @property
    def size(self) -> int:
        return len(self.need_ids or ())


class DuplicatePair(Base, Timestamped):
    """A near-duplicate pair of needs found by a guideline run, for staff decision.

    ``status``: pending | merged (``need_b.duplicate_of_id`` = need_a; both kept) | dismissed.
    """

    __tablename__ = "duplicate_pairs"
    __table_args__ = (UniqueConstraint("run_id", "need_a_id", "need_b_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("guideline_runs.id", ondelete="CASCADE"), index=True
    )
    need_a_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    need_b_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    need_a: Mapped[Need] = relationship(foreign_keys=[need_a_id])
    need_b: Mapped[Need] = relationship(foreign_keys=[need_b_id])


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Introduction(Base, Timestamped):
    """对接申请: an enterprise asks to be introduced to an institute about one of its needs.

    ``status``: submitted (已提交) → forwarded (已转交, by staff) → negotiating (洽谈中, the
    institute accepted) → signed (已签约) | failed (未达成, with ``outcome_reason``). The
    outcome is a training label for the ranker (signed = positive, failed = negative).
    """

    __tablename__ = "introductions"
    __table_args__ = (Index("ix_introductions_need_institute", "need_id", "institute_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"), index=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    institute_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    message: Mapped[str] = mapped_column(Text, default="")  # the enterprise's request
    status: Mapped[str] = mapped_column(String(16), default="submitted", index=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # rank score when asked
    staff_note: Mapped[str] = mapped_column(Text, default="")  # staff's note when forwarding
    answer: Mapped[str] = mapped_column(Text, default="")  # the institute's reply
    outcome_reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    forwarded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    answered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    outcome_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    forwarded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    need: Mapped[Need] = relationship()
    enterprise: Mapped[Organisation] = relationship(foreign_keys=[enterprise_id])
    institute: Mapped[Organisation] = relationship(foreign_keys=[institute_id])


class Message(Base):
    """站内信: one in-app message to one user; ``read_at`` is null while unread."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # e.g. need.approved, intro.forwarded
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(300), nullable=True)  # a page path
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@event.listens_for(Session, "before_flush")
def _refresh_content_hashes(session: Session, _ctx: object, _instances: object) -> None:
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Hashed):
            obj.clean_text()
            obj.content_hash = obj.compute_hash()
