"""Frozen value types shared by retrieval, ranking, eligibility and solvers.

The service builds these from database rows; the matcher never sees ORM objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OrgKind = Literal["enterprise", "university", "institute", "company", "other"]
DocKind = Literal["need", "achievement", "patent", "paper", "team", "lab", "service"]
BountyKind = Literal["tackle", "transfer"]

ORG_KINDS: tuple[OrgKind, ...] = ("enterprise", "university", "institute", "company", "other")
CAPABILITY_KINDS: tuple[DocKind, ...] = ("achievement", "patent", "paper", "team", "lab", "service")
BOUNTY_KINDS: tuple[BountyKind, ...] = ("tackle", "transfer")


@dataclass(frozen=True, slots=True)
class OrgInfo:
    """An organisation as the matcher sees it.

    parent_id links to the parent organisation; the corporate group is the transitive
    parent chain (ancestors and descendants).
    """

    id: str
    name: str
    kind: OrgKind
    in_region: bool
    parent_id: str | None = None
    fields: tuple[str, ...] = ()
    active: bool = True


@dataclass(frozen=True, slots=True)
class Document:
    """A need or a capability: the unit that is embedded and indexed."""

    id: str
    org_id: str
    kind: DocKind
    title: str
    text: str
    field: str | None = None
    keywords: tuple[str, ...] = ()
    trl: int | None = None
    year: int | None = None
    active: bool = True
    confidential: bool = False

    @property
    def full_text(self) -> str:
        """The text that is embedded: title, then description."""
        return f"{self.title}。{self.text}" if self.text else self.title


@dataclass(frozen=True, slots=True)
class BountyInfo:
    """A bounty list entry (揭榜榜单)."""

    id: str
    kind: BountyKind
    poster_org_id: str
    title: str
    text: str
    budget: float | None = None
    need_id: str | None = None
    capability_id: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class BidInfo:
    """A bid (揭榜申报): a respondent, optional consortium members, a price and a proposal."""

    id: str
    bounty_id: str
    respondent_org_id: str
    price: float
    proposal: str = ""
    members: tuple[str, ...] = field(default_factory=tuple)


# --- Eligibility and ranking results (matcher/constraints.py, matcher/pipeline.py) ---------

ReasonCode = Literal[
    "SAME_ORG",
    "SAME_GROUP",
    "NOT_IN_REGION",
    "WRONG_KIND",
    "INACTIVE",
    "STAFF_BLOCK",
    "CONFIDENTIAL",
]
"""Why a candidate (or a document) is excluded. Labels for staff screens: REASON_LABELS."""

REASON_CODES: tuple[ReasonCode, ...] = (
    "SAME_ORG",
    "SAME_GROUP",
    "NOT_IN_REGION",
    "WRONG_KIND",
    "INACTIVE",
    "STAFF_BLOCK",
    "CONFIDENTIAL",
)

REASON_LABELS: dict[ReasonCode, str] = {
    "SAME_ORG": "同一单位",
    "SAME_GROUP": "同一集团(上下级)",
    "NOT_IN_REGION": "非区内企业",
    "WRONG_KIND": "主体类型不符",
    "INACTIVE": "已关闭/失效",
    "STAFF_BLOCK": "人工屏蔽",
    "CONFIDENTIAL": "保密需求",
}


@dataclass(frozen=True, slots=True)
class Exclusion:
    """One reason why ``org_id`` may not be suggested.

    member_id is set when the conflict comes from a consortium member (the consortium is
    reported under its lead ``org_id``); score is the ranking score the candidate would have
    had (None when it was never scored).
    """

    org_id: str
    code: ReasonCode
    member_id: str | None = None
    detail: str = ""
    score: float | None = None

    @property
    def label(self) -> str:
        """The Chinese label of the reason code (e.g. 同一集团(上下级))."""
        return REASON_LABELS[self.code]


@dataclass(frozen=True, slots=True)
class Evidence:
    """A document behind a suggestion, with the best-matching snippet of each side.

    query_doc_id : the query-side document (None for free text).
    doc_id : the candidate-side document.
    score : the document's retrieval similarity (dense cosine if available, else fused).
    query_snippet, doc_snippet : verbatim substrings of the query text and of the document's
        ``full_text`` (the best-matching sentence of each side).
    shared_keywords : keywords occurring on both sides.
    """

    query_doc_id: str | None
    doc_id: str
    score: float
    query_snippet: str
    doc_snippet: str
    shared_keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A ranked organisation.

    features : named feature values of the (query, org) pair (matcher.features.FEATURE_NAMES).
    contributions : the ranker's per-feature share of ``score`` (same keys as features; the
        remainder, e.g. an intercept, is under ``"bias"``).
    query_id : the need/capability/bounty id the score refers to (for multi-need queries,
        the need that produced the best score).
    """

    org_id: str
    score: float
    rank: int
    features: dict[str, float] = field(default_factory=dict)
    contributions: dict[str, float] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    shared_keywords: tuple[str, ...] = ()
    query_id: str | None = None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RankedOrgs:
    """Eligible suggestions (best first) and the excluded high scorers with reason codes."""

    suggestions: tuple[Suggestion, ...]
    excluded: tuple[Exclusion, ...] = ()


@dataclass(frozen=True, slots=True)
class StaffDecision:
    """A staff review of one shortlisted pair: approved (1) or rejected (0)."""

    query_id: str
    org_id: str
    approved: bool
