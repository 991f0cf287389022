"""The nightly needs digest (需求推送): one in-app message per institute listing the new open
needs that rank it above ``settings.digest_threshold``.

"New" means approved (or created, for needs that never went through vetting) after the
institute's previous digest message, or within ``FIRST_WINDOW_DAYS`` for the first one. Only
open, vetted, non-confidential needs of active enterprises are considered
(:func:`service.institute.public_need_ids`). Scores come from
:meth:`matcher.pipeline.Recommender.pair_matrix`: the score the institute has in the need's
own ranked list of partners, with the eligibility rules applied (a need of the institute's own
corporate group is never sent). Each institute's users get one message; an institute without a
match gets none, so a quiet night sends nothing.

Runs as ``duijie digest`` or as the last step of ``duijie reindex --digest``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from matcher.encoding import need_key
from service import models as m
from service.institute import public_need_ids
from service.portal_crud import notify_org

log = logging.getLogger(__name__)

DIGEST_KIND = "digest.needs"
FIRST_WINDOW_DAYS = 7
MAX_LISTED = 10
INSTITUTE_KINDS = ("university", "institute", "company", "other")


@dataclass(frozen=True, slots=True)
class DigestSummary:
    """What one digest run did."""

    institutes: int  # institutes with at least one active institute user
    new_needs: int  # distinct new public needs considered
    messages: int  # messages written (one per user of a matched institute)
    matched: dict[str, list[str]]  # institute external id -> need external ids sent


def _as_utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _institutes(session: Session) -> dict[int, str]:
    """Organisations with an active institute-role user: id -> external id."""
    rows = session.execute(
        select(m.Organisation.id, m.Organisation.external_id)
        .join(m.User, m.User.org_id == m.Organisation.id)
        .where(
            m.User.role == "institute",
            m.User.active.is_(True),
            m.Organisation.kind.in_(INSTITUTE_KINDS),
            m.Organisation.status == "active",
        )
        .distinct()
    )
    return {int(i): str(e) for i, e in rows}


def _last_digest(session: Session, org_id: int) -> datetime | None:
    last = session.scalar(
        select(func.max(m.Message.created_at))
        .join(m.User, m.User.id == m.Message.user_id)
        .where(m.User.org_id == org_id, m.Message.kind == DIGEST_KIND)
    )
    return _as_utc(last) if last is not None else None


def _published_at(need: m.Need) -> datetime:
    """When the need became public: its approval, or its creation if it never needed one."""
    return _as_utc(need.reviewed_at or need.created_at)


def _body(needs: list[tuple[m.Need, float]]) -> str:
    lines = [f"有 {len(needs)} 条新发布的技术需求与贵单位的能力相匹配："]
    for need, _score in needs[:MAX_LISTED]:
        where = f"（{need.field}）" if need.field else ""
        lines.append(f"· {need.title}{where} — {need.org.name}")
    if len(needs) > MAX_LISTED:
        lines.append(f"……另有 {len(needs) - MAX_LISTED} 条，请在“匹配需求”页查看。")
    return "\n".join(lines)


def run_digest(
    session: Session,
    recommender: Any,
    *,
    threshold: float,
    now: datetime | None = None,
) -> DigestSummary:
    """Write tonight's digest messages (the caller commits)."""
    now = _as_utc(now or datetime.now(UTC))
    institutes = {i: e for i, e in _institutes(session).items() if e in recommender.orgs}
    if not institutes:
        return DigestSummary(0, 0, 0, {})
    since = {
        org_id: _last_digest(session, org_id) or now - timedelta(days=FIRST_WINDOW_DAYS)
        for org_id in institutes
    }
    earliest = min(since.values())
    public = public_need_ids(session)
    needs = [
        n
        for n in session.scalars(select(m.Need).where(m.Need.external_id.in_(public)))
        if earliest < _published_at(n) <= now and need_key(n.external_id) in recommender.documents
    ]
    if not needs:
        return DigestSummary(len(institutes), 0, 0, {})
    org_ids = sorted(institutes)
    matrix = recommender.pair_matrix(
        [need_key(n.external_id) for n in needs], [institutes[o] for o in org_ids]
    )
    matched: dict[str, list[str]] = {}
    messages = 0
    for j, org_id in enumerate(org_ids):
        hits = sorted(
            (
                (n, float(matrix.scores[i, j]))
                for i, n in enumerate(needs)
                if _published_at(n) > since[org_id]
                and not matrix.forbidden[i, j]
                and matrix.scores[i, j] >= threshold
            ),
            key=lambda t: (-t[1], t[0].id),
        )
        if not hits:
            continue
        matched[institutes[org_id]] = [n.external_id for n, _ in hits]
        messages += notify_org(
            session,
            org_id=org_id,
            kind=DIGEST_KIND,
            title=f"需求推送：{len(hits)} 条新需求与贵单位匹配",
            body=_body(hits),
            link="/portal/institute/needs",
        )
    log.info(
        "digest: %d institutes, %d new needs, %d messages", len(institutes), len(needs), messages
    )
    return DigestSummary(len(institutes), len(needs), messages, matched)


def digest_step(
    settings: Any,
    *,
    encoder: Any | None = None,
    recommender_factory: Callable[[Any, sessionmaker[Session]], Any] | None = None,
) -> DigestSummary:
    """Open the store and the current index, run the digest and commit (the nightly step)."""
    from service.db import open_store, session_scope
    from service.recommender import RecommenderHandle

    engine, factory = open_store(settings.resolved_database_url, upgrade=False)
    try:
        if recommender_factory is not None:
            recommender = recommender_factory(settings, factory)
        else:
            recommender = RecommenderHandle(settings, factory, encoder=encoder).get()
        with session_scope(factory) as session:
            return run_digest(session, recommender, threshold=settings.digest_threshold)
    finally:
        engine.dispose()


def cmd_digest(_args: argparse.Namespace) -> int:
    from matcher.errors import IndexNotReady
    from service.settings import get_settings

    try:
        summary = digest_step(get_settings())
    except IndexNotReady as exc:
        sys.stderr.write(f"digest: {exc}\n")
        return 1
    sys.stdout.write(
        f"digest: {summary.institutes} institutes, {summary.new_needs} new needs, "
        f"{summary.messages} messages\n"
    )
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "digest",
        help="send each institute its digest of new matching needs (in-app messages)",
        description="Send each institute user one in-app message listing the new open needs "
        "(since its previous digest) that rank the institute above DUIJIE_DIGEST_THRESHOLD.",
    )
    p.set_defaults(func=cmd_digest)
