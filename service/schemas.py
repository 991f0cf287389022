"""API request/response models (Create / Update / Public per resource), all size-bounded.

Resources are addressed by their ``external_id`` (the id used in imports and by the matcher);
staff-side records (campaigns, shortlist items, users, audit entries) by integer id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from matcher.types import BOUNTY_KINDS, CAPABILITY_KINDS, ORG_KINDS  # noqa: F401 (documented sets)
from service.jobs.pairing import PairingParams

T = TypeVar("T")

ExternalId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
MAX_TEXT = 20_000
MAX_MATCH_TEXT = 2_000
MAX_LIMIT = 200

OrgKind = Literal["enterprise", "university", "institute", "company", "other"]
CapabilityKind = Literal["achievement", "patent", "paper", "team", "lab", "service"]
Keyword = Field(min_length=1, max_length=50)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list: ``total`` counts every matching row."""

    items: list[T]
    total: int
    limit: int
    offset: int


# --- organisations ------------------------------------------------------------------------


class OrganisationBase(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind
    province: str | None = Field(default=None, max_length=32)
    city: str | None = Field(default=None, max_length=32)
    in_region: bool = False
    fields: list[str] = Field(default_factory=list, max_length=50)
    status: Literal["active", "inactive"] = "active"

    @field_validator("fields")
    @classmethod
    def _short_fields(cls, v: list[str]) -> list[str]:
        if any(len(x) > 64 or not x for x in v):
            raise ValueError("each field must be 1..64 characters")
        return v


class OrganisationCreate(OrganisationBase):
    external_id: str = ExternalId
    credit_code: str | None = Field(default=None, min_length=18, max_length=18)
    parent_external_id: str | None = Field(default=None, max_length=64)


class OrganisationUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    province: str | None = Field(default=None, max_length=32)
    city: str | None = Field(default=None, max_length=32)
    in_region: bool | None = None
    fields: list[str] | None = Field(default=None, max_length=50)
    status: Literal["active", "inactive"] | None = None


class OrganisationPublic(_Out):
    external_id: str
    name: str
    kind: str
    province: str | None
    city: str | None
    in_region: bool
    fields: list[str]
    status: str
    parent_external_id: str | None = None


# --- needs --------------------------------------------------------------------------------


class NeedCreate(BaseModel):
    """A new need. Staff name the organisation; an enterprise's need is its own and waits for
    vetting. Without ``external_id`` one is generated."""

    external_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$"
    )
    org_external_id: str | None = Field(default=None, min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=MAX_TEXT)
    field: str | None = Field(default=None, max_length=64)
    keywords: list[str] = Field(default_factory=list, max_length=50)
    budget: float | None = Field(default=None, ge=0, le=1e7)
    deadline: date | None = None
    confidential: bool = False
    status: Literal["open", "matched", "closed"] = "open"


class NeedUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    field: str | None = Field(default=None, max_length=64)
    keywords: list[str] | None = Field(default=None, max_length=50)
    budget: float | None = Field(default=None, ge=0, le=1e7)
    deadline: date | None = None
    confidential: bool | None = None
    status: Literal["open", "matched", "closed"] | None = None


class NeedPublic(_Out):
    external_id: str
    org_external_id: str
    title: str
    description: str
    field: str | None
    keywords: list[str]
    budget: float | None
    deadline: date | None
    confidential: bool
    status: str
    review_status: str = "approved"  # pending|approved|returned (待审核/已通过/已退回)
    review_reason: str = ""
    updated_at: datetime | None = None


class NeedReview(BaseModel):
    """Staff vetting of a pending need: approve, or return with a reason."""

    action: Literal["approve", "return"]
    reason: str = Field(default="", max_length=500)


# --- capabilities -------------------------------------------------------------------------


class CapabilityCreate(BaseModel):
    external_id: str = ExternalId
    org_external_id: str = Field(min_length=1, max_length=64)
    kind: CapabilityKind
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=MAX_TEXT)
    field: str | None = Field(default=None, max_length=64)
    keywords: list[str] = Field(default_factory=list, max_length=50)
    trl: int | None = Field(default=None, ge=1, le=9)
    year: int | None = Field(default=None, ge=1900, le=2100)
    status: Literal["active", "inactive"] = "active"


class CapabilityUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    field: str | None = Field(default=None, max_length=64)
    keywords: list[str] | None = Field(default=None, max_length=50)
    trl: int | None = Field(default=None, ge=1, le=9)
    year: int | None = Field(default=None, ge=1900, le=2100)
    status: Literal["active", "inactive"] | None = None


class CapabilityPublic(_Out):
    external_id: str
    org_external_id: str
    kind: str
    title: str
    description: str
    field: str | None
    keywords: list[str]
    trl: int | None
    year: int | None
    status: str


# --- bounties and bids --------------------------------------------------------------------


class BountyPublic(_Out):
    external_id: str
    kind: str
    poster_org_external_id: str
    need_external_id: str | None = None
    capability_external_id: str | None = None
    title: str
    description: str
    budget: float | None
    deadline: date | None
    status: str
    bid_count: int = 0


class BountyPublish(BaseModel):
    """Publishing a proposal: the closing date of applications (else the proposal's own)."""

    deadline: date | None = None


class BountyTransition(BaseModel):
    """A lifecycle move (service.bounty_lifecycle): the target state and what it needs.

    Opening applications (``open``) may set a new closing date; awarding (``awarded``) names
    the chosen bid, the agreed price and the funding split (万元); 撤榜 needs a reason.
    """

    to: Literal[
        "proposed", "assessing", "published", "open", "screening", "reviewing",
        "negotiating", "awarded", "notice", "completed", "withdrawn",
    ]  # fmt: skip
    reason: str = Field(default="", max_length=2_000)
    deadline: date | None = None
    bid_external_id: str | None = Field(default=None, min_length=1, max_length=64)
    price: float | None = Field(default=None, gt=0)
    funding_enterprise: float | None = Field(default=None, ge=0)
    funding_academic: float | None = Field(default=None, ge=0)


class BidPublic(_Out):
    external_id: str
    bounty_external_id: str
    respondent_org_external_id: str
    members: list[str]
    price: float
    proposal: str
    submitted_at: datetime | None = None
    status: str = "submitted"
    status_note: str = ""


class RankedBid(BaseModel):
    bid_external_id: str
    respondent_org_external_id: str
    rank: int
    score: float
    price: float
    detail: dict[str, Any] = Field(default_factory=dict)


class BidRanking(BaseModel):
    bounty_external_id: str
    method: str
    ranking: list[RankedBid]


# --- suggestions --------------------------------------------------------------------------


class SuggestionRequest(BaseModel):
    """Exactly one of ``need_id`` / ``enterprise_id`` (external ids)."""

    need_id: str | None = Field(default=None, min_length=1, max_length=64)
    enterprise_id: str | None = Field(default=None, min_length=1, max_length=64)
    k: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> SuggestionRequest:
        if (self.need_id is None) == (self.enterprise_id is None):
            raise ValueError("give exactly one of need_id or enterprise_id")
        return self


class MatchRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_MATCH_TEXT)
    k: int = Field(default=10, ge=1, le=100)


class PairRef(BaseModel):
    need_id: str = Field(min_length=1, max_length=64)
    org_id: str = Field(min_length=1, max_length=64)


class PairScoresRequest(BaseModel):
    pairs: list[PairRef] = Field(min_length=1, max_length=MAX_LIMIT)


class EvidencePublic(BaseModel):
    query_doc_id: str | None
    doc_id: str
    score: float
    query_snippet: str
    doc_snippet: str
    shared_keywords: list[str] = Field(default_factory=list)


class SuggestionPublic(BaseModel):
    org_id: str
    org_name: str | None = None
    score: float
    rank: int
    features: dict[str, float] = Field(default_factory=dict)
    contributions: dict[str, float] = Field(default_factory=dict)
    evidence: list[EvidencePublic] = Field(default_factory=list)
    shared_keywords: list[str] = Field(default_factory=list)
    query_id: str | None = None
    reasons: list[str] = Field(default_factory=list)


class ExclusionPublic(BaseModel):
    org_id: str
    code: str
    label: str
    member_id: str | None = None
    detail: str = ""
    score: float | None = None


class SuggestionsResponse(BaseModel):
    """Suggestions best first; ``excluded`` (staff only) lists high scorers ruled out."""

    suggestions: list[SuggestionPublic]
    excluded: list[ExclusionPublic] = Field(default_factory=list)


class PairScore(BaseModel):
    need_id: str
    org_id: str
    score: float | None
    features: dict[str, float] = Field(default_factory=dict)
    contributions: dict[str, float] = Field(default_factory=dict)


class PairScoresResponse(BaseModel):
    scores: list[PairScore]


# --- campaigns and shortlists -------------------------------------------------------------


class CampaignCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    params: PairingParams = Field(
        default_factory=PairingParams, description="pairing parameters (bounded; 422 if not)"
    )
    previous_id: int | None = Field(default=None, ge=1, le=2**31)
    run: bool = Field(default=False, description="start the run immediately")


class CampaignPublic(_Out):
    id: int
    name: str
    params: dict[str, Any]
    status: str
    progress: float
    summary: dict[str, Any]
    error: str | None
    previous_id: int | None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class CampaignResult(BaseModel):
    campaign: CampaignPublic
    items: Page[ShortlistItemPublic]


class ShortlistItemPublic(_Out):
    id: int
    campaign_id: int
    enterprise_external_id: str
    institute_external_id: str | None
    need_external_id: str | None
    score: float | None
    rank: int
    kind: str
    evidence: dict[str, Any]
    features: dict[str, Any]
    problem: str | None
    status: str
    locked: bool
    note: str
    version: int
    decided_by: int | None
    decided_at: datetime | None


class DecisionRequest(BaseModel):
    """A staff decision; ``version`` must equal the item's current version (else 409)."""

    action: Literal["approve", "reject", "reset", "lock", "unlock", "note"]
    version: int = Field(ge=1, le=2**31)
    note: str | None = Field(default=None, max_length=2_000)


# --- audit, index, users, auth ------------------------------------------------------------


class AuditPublic(_Out):
    id: int
    at: datetime
    user_id: int | None
    action: str
    entity: str
    entity_id: str
    detail: dict[str, Any]


class IndexStatus(BaseModel):
    ready: bool
    detail: dict[str, Any] = Field(default_factory=dict)
    reindex: dict[str, Any] = Field(default_factory=dict)


class ReindexAccepted(BaseModel):
    started: bool
    detail: str


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$")
    role: Literal["enterprise", "institute", "staff", "admin"]
    org_external_id: str | None = Field(default=None, max_length=64)
    password: str | None = Field(default=None, min_length=8, max_length=256)
    with_api_key: bool = True


class UserPublic(_Out):
    id: int
    username: str
    role: str
    org_external_id: str | None = None
    active: bool
    has_password: bool = False
    must_change_password: bool = False
    api_keys: list[str] = Field(default_factory=list, description="prefixes of active keys")


class UserCreated(BaseModel):
    user: UserPublic
    api_key: str | None = Field(default=None, description="shown once; store it now")


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Me(BaseModel):
    user_id: int
    username: str
    role: str
    org_external_id: str | None
    via: str
    csrf_token: str | None = None
    must_change_password: bool = Field(
        default=False,
        description="the password was issued by staff: every other API call answers 403 "
        "password_change_required until POST /auth/password",
    )
    notice: str | None = Field(default=None, description="what to do next (Chinese)")


class PasswordChange(BaseModel):
    current: str = Field(min_length=1, max_length=512)
    new: str = Field(min_length=1, max_length=512)
    again: str = Field(min_length=1, max_length=512)


class IntroductionCreate(BaseModel):
    """An enterprise asks to be introduced to an institute about one of its approved needs."""

    need_external_id: str = Field(min_length=1, max_length=64)
    institute_external_id: str = Field(min_length=1, max_length=64)
    message: str = Field(default="", max_length=2_000, description="at most 500 characters kept")


class IntroductionAction(BaseModel):
    """One step of an introduction: staff ``forward`` / ``close``, the institute ``accept`` /
    ``decline`` (a reason is required), the enterprise (or staff) ``signed`` / ``failed``."""

    action: Literal["forward", "accept", "decline", "signed", "failed", "close"]
    note: str = Field(default="", max_length=2_000)


class IntroductionPublic(BaseModel):
    """对接申请 as its viewer may see it: an institute does not see a confidential need's
    id and title; ``staff_note`` is for staff and the institute, ``score`` for staff only."""

    id: int
    need_external_id: str | None
    need_title: str | None
    enterprise_external_id: str
    enterprise_name: str
    institute_external_id: str
    institute_name: str
    status: str
    status_label: str
    message: str = ""
    staff_note: str | None = None
    answer: str = ""
    outcome_reason: str = ""
    score: float | None = None
    created_at: datetime
    forwarded_at: datetime | None = None
    answered_at: datetime | None = None
    outcome_at: datetime | None = None


class MessagePublic(_Out):
    id: int
    kind: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class Inbox(Page[MessagePublic]):
    """A page of the caller's messages (newest first) and the unread count."""

    unread: int


class MarkedRead(BaseModel):
    marked: int
    unread: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    index: dict[str, Any]


CampaignResult.model_rebuild()
