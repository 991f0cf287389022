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
