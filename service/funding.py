"""Funding priority (优先支持) in the service: the rule from settings, the splits from the store.

:func:`funding_splits` reads each bid's declared split of the public funding (enterprise side
vs universities/institutes, 万元) and its lead's kind; :func:`priority_rule` builds the
:class:`matcher.bids.PriorityRule` from ``DUIJIE_PRIORITY_SHARE`` and
``DUIJIE_PRIORITY_BONUS``. The CLI, the API and the bounty page all rank with both.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.bids import FundingSplit, PriorityRule
from service.models import Bid, Bounty, Organisation
from service.settings import Settings


def priority_rule(settings: Settings) -> PriorityRule:
    """The configured 优先支持 rule (threshold share and ranking bonus)."""
    return PriorityRule(threshold=settings.priority_share, bonus=settings.priority_bonus)


def funding_splits(session: Session, bounty: Bounty) -> dict[str, FundingSplit]:
    """Bid external id -> its funding split, for every bid of ``bounty``."""
    rows = session.execute(
        select(Bid.external_id, Organisation.kind, Bid.funding_enterprise, Bid.funding_academic)
        .join(Organisation, Organisation.id == Bid.respondent_org_id)
        .where(Bid.bounty_id == bounty.id)
    ).all()
    return {str(b): FundingSplit.from_amounts(k, e, a) for b, k, e, a in rows}
