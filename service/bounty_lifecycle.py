"""The bounty lifecycle (揭榜挂帅流程): states, the transition table, who may move each step.

States, in order::

    征集 proposed → 论证 assessing → 发榜 published → 申报中 open → 资格审查 screening
    → 评审 reviewing → 洽谈 negotiating → 已立项 awarded → 公示 notice → 结项 completed

and 撤榜 ``withdrawn`` from any state before 已立项. An award can be revoked (撤销立项, e.g. after
an objection during 公示): 已立项 or 公示 → 洽谈, with a reason; every bid gets back the status it
had before the award. ``proposed`` is also the state of an enterprise's own proposal; only
``open`` accepts applications, and only until the closing date.

This module owns the rules in one place:

* :data:`TRANSITIONS` (the table) and :func:`check_transition`, a pure function over plain
  facts (:class:`BountyFacts`, :class:`Actor`) that returns every reason a move is refused
  (empty = allowed), testable without a database;
* :func:`check_can_apply`, the application-period check called by the single application
  entry point;
* :func:`transition`, which loads the facts of a stored bounty, checks, applies the move
  (recording the winner, price and funding split on award, marking the other bids 未中榜 and
  telling every applicant in the inbox; undoing all of it on a revocation) and writes one
  audit row;
* :func:`advance`, several moves along the main line in one request (staff publishing an
  enterprise's proposal: 征集 → 论证 → 发榜 → 申报中), each one checked and audited by
  :func:`transition`;
* the application (bid) statuses (:data:`BID_STATUS_LABELS`) and the applicant's message when
  one changes (:func:`notify_bid_status`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import auth, crud
from service import models as m
from service.errors import Forbidden, InvalidRequest, NotFound
from service.portal_crud import notify_org

log = logging.getLogger(__name__)

PROPOSED: Final = "proposed"
ASSESSING: Final = "assessing"
PUBLISHED: Final = "published"
OPEN: Final = "open"
SCREENING: Final = "screening"
REVIEWING: Final = "reviewing"
NEGOTIATING: Final = "negotiating"
AWARDED: Final = "awarded"
NOTICE: Final = "notice"
COMPLETED: Final = "completed"
WITHDRAWN: Final = "withdrawn"

STATE_LABELS: Final[dict[str, str]] = {
    PROPOSED: "征集",
    ASSESSING: "论证",
    PUBLISHED: "发榜",
    OPEN: "申报中",
    SCREENING: "资格审查",
    REVIEWING: "评审",
    NEGOTIATING: "洽谈",
    AWARDED: "已立项",
    NOTICE: "公示",
    COMPLETED: "结项",
    WITHDRAWN: "撤榜",
}
STATES: Final[tuple[str, ...]] = tuple(STATE_LABELS)
FORWARD: Final[tuple[str, ...]] = STATES[:-1]  # the main line, 征集 … 结项
TERMINAL: Final = frozenset({COMPLETED, WITHDRAWN})
#: States that can still be withdrawn (撤榜): everything before the award.
WITHDRAWABLE: Final = frozenset(FORWARD[: FORWARD.index(AWARDED)])
#: States not yet published: only staff and the poster should see such a bounty.
UNPUBLISHED: Final = frozenset({PROPOSED, ASSESSING})
#: States shown on the public notice page (公示).
PUBLIC_STATES: Final = frozenset({AWARDED, NOTICE, COMPLETED})
#: States in which the poster enterprise may still withdraw its own bounty.
POSTER_WITHDRAWABLE: Final = frozenset({PROPOSED, ASSESSING, PUBLISHED})
#: Legacy values of ``bounties.status`` and the state each became.
LEGACY_STATES: Final[dict[str, str]] = {"closed": COMPLETED}

#: The transition table: state -> the states it may move to.
TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    **{s: (FORWARD[i + 1],) for i, s in enumerate(FORWARD[:-1])},
    COMPLETED: (),
    WITHDRAWN: (),
}
for _s in WITHDRAWABLE:
    TRANSITIONS[_s] = (*TRANSITIONS[_s], WITHDRAWN)
#: States whose award can be revoked (撤销立项): the bounty goes back to 洽谈.
REVOCABLE: Final = frozenset({AWARDED, NOTICE})
for _s in REVOCABLE:
    TRANSITIONS[_s] = (*TRANSITIONS[_s], NEGOTIATING)

#: The verb on a button for each target state.
ACTION_LABELS: Final[dict[str, str]] = {
    ASSESSING: "提交论证",
    PUBLISHED: "论证通过，发榜",
    OPEN: "开始申报",
    SCREENING: "截止申报，资格审查",
    REVIEWING: "进入评审",
    NEGOTIATING: "进入洽谈",
    AWARDED: "确定揭榜方，立项",
    NOTICE: "公示",
    COMPLETED: "结项",
    WITHDRAWN: "撤榜",
}
REVOKE_LABEL: Final = "撤销立项，退回洽谈"

#: Application (bid) statuses and their Chinese names.
BID_STATUS_LABELS: Final[dict[str, str]] = {
    "submitted": "已提交",
    "qualified": "资格审查通过",
    "disqualified": "资格审查未通过",
    "awarded": "中榜",
    "not_awarded": "未中榜",
    "withdrawn": "已撤回",
}
#: Application (bid) statuses that take a bid out of the running.
INELIGIBLE_BID_STATUSES: Final = frozenset({"disqualified", "withdrawn"})
PRICE_MAX: Final = 100_000.0  # 万元
REASON_MAX: Final = 2_000


class TransitionRefused(InvalidRequest):
    """A lifecycle move that the rules refuse; ``reasons`` are complete Chinese sentences."""

    code = "illegal_transition"

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("；".join(reasons))
        self.reasons = list(reasons)


class ApplicationClosed(InvalidRequest):
    """An application outside the application period (state or closing date)."""

    code = "application_closed"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for a move: ``role`` and the organisation the account is bound to."""

    role: str
    org_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in auth.STAFF_ROLES


@dataclass(frozen=True, slots=True)
class BountyFacts:
    """What the rules need to know about a bounty (no database objects)."""

    status: str
    poster_org_id: int
    deadline: date | None = None
    bid_ids: tuple[str, ...] = ()
    eligible_bid_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Award:
    """The award of a bounty: the chosen bid, the agreed price and the funding split (万元)."""

    bid_id: str
    price: float
    funding_enterprise: float | None = None
    funding_academic: float | None = None


@dataclass(frozen=True, slots=True)
class Move:
    """A requested move; ``deadline`` may set the closing date when applications open."""

    target: str
    reason: str = ""
    award: Award | None = None
    deadline: date | None = None


def state_of(status: str) -> str:
    """The lifecycle state of a stored status (legacy values mapped)."""
    return LEGACY_STATES.get(status, status)


def label(status: str) -> str:
    """The Chinese name of a state."""
    state = state_of(status)
    return STATE_LABELS.get(state, state)


def is_revocation(status: str, target: str) -> bool:
    """Whether moving a bounty in ``status`` to ``target`` revokes its award."""
    return state_of(status) in REVOCABLE and target == NEGOTIATING


def action_label(status: str, target: str) -> str:
    """The verb on the button that moves a bounty in ``status`` to ``target``."""
    return REVOKE_LABEL if is_revocation(status, target) else ACTION_LABELS[target]


def _role_reasons(facts: BountyFacts, target: str, actor: Actor) -> list[str]:
    if actor.is_staff:
        return []
    if actor.role == "enterprise" and actor.org_id == facts.poster_org_id:
        if target == WITHDRAWN and state_of(facts.status) in POSTER_WITHDRAWABLE:
            return []
        return ["发榜企业只能在征集、论证或发榜阶段撤回本单位的榜单，其余环节由工作人员办理"]
    return ["只有科技厅工作人员（或发榜企业撤回本单位榜单）可以变更榜单状态"]


def _award_reasons(facts: BountyFacts, award: Award | None) -> list[str]:
    if award is None:
        return ["立项须选定揭榜方（一份有效申报）并填写约定金额"]
    reasons = []
    if award.bid_id not in facts.bid_ids:
        reasons.append("所选申报不属于该榜单")
    elif award.bid_id not in facts.eligible_bid_ids:
        reasons.append("所选申报未通过资格审查或已撤回，不能确定为揭榜方")
    if not 0 < award.price <= PRICE_MAX:
        reasons.append(f"约定金额须大于 0 且不超过 {PRICE_MAX:,.0f} 万元")
    for amount, what in ((award.funding_enterprise, "企业"), (award.funding_academic, "高校院所")):
        if amount is not None and not 0 <= amount <= PRICE_MAX:
            reasons.append(f"{what}经费须在 0 到 {PRICE_MAX:,.0f} 万元之间")
    return reasons


def _step_reasons(facts: BountyFacts, move: Move, today: date) -> list[str]:
    """The rules of the step itself (dates, bids, award, reason)."""
    target = move.target
    if target == OPEN:
        deadline = move.deadline or facts.deadline
        if deadline is None:
            return ["开始申报前须设定申报截止日期"]
        if deadline < today:
            return [f"申报截止日期 {deadline.isoformat()} 已过，请先设定新的截止日期"]
    if target == SCREENING and not facts.bid_ids:
        return ["该榜单尚无申报，不能进入资格审查（可延长截止日期或撤榜）"]
    if target in (REVIEWING, NEGOTIATING) and not facts.eligible_bid_ids:
        return ["该榜单没有通过资格审查的申报，不能进入评审或洽谈（可撤榜）"]
    if target == AWARDED:
        return _award_reasons(facts, move.award)
    if is_revocation(facts.status, target) and not move.reason.strip():
        return ["撤销立项须说明原因（例如公示期异议的处理结果）"]
    if target == WITHDRAWN and not move.reason.strip():
        return ["撤榜须说明原因"]
    return []


def check_transition(facts: BountyFacts, move: Move, actor: Actor, now: datetime) -> list[str]:
    """Every reason the rules refuse ``move`` of a bounty described by ``facts`` (empty = the
    move is allowed). Pure: no database, no clock (``now`` is given).

    Parameters
    ----------
    facts : the bounty's state, poster, closing date and bids.
    move : the target state and what it needs (award, reason, new closing date).
    actor : the caller's role and organisation.
    now : the current time (its date is compared with closing dates).
    """
    current = state_of(facts.status)
    target = move.target
    if current not in STATE_LABELS:
        return [f"榜单状态“{facts.status}”无法识别，请联系管理员"]
    if target not in STATE_LABELS:
        return [f"目标状态“{target}”无法识别（可选：{'、'.join(STATE_LABELS.values())}）"]
    if target == current:
        return [f"榜单已处于“{STATE_LABELS[current]}”状态"]
    if target not in TRANSITIONS[current]:
        allowed = "、".join(STATE_LABELS[s] for s in TRANSITIONS[current]) or "无（流程已结束）"
        return [
            f"不能从“{STATE_LABELS[current]}”直接变更为“{STATE_LABELS[target]}”"
            f"（可变更为：{allowed}）"
        ]
    reasons = _role_reasons(facts, target, actor)
    if reasons:
        return reasons
    return _step_reasons(facts, move, now.date())


def allowed_moves(facts: BountyFacts, actor: Actor) -> tuple[str, ...]:
    """The targets ``actor`` may ask for from the current state (the page's buttons);
    step rules (dates, bids) are checked when the move is made."""
    current = state_of(facts.status)
    return tuple(t for t in TRANSITIONS.get(current, ()) if not _role_reasons(facts, t, actor))


def check_can_apply(bounty: m.Bounty, now: datetime) -> None:
    """Refuse an application to ``bounty`` outside its application period.

    Raises
    ------
    ApplicationClosed
        The bounty is not 申报中, or its closing date (inclusive) is before ``now``'s date.
    """
    state = state_of(bounty.status)
    if state != OPEN:
        raise ApplicationClosed(f"该榜单当前处于“{label(state)}”阶段，不在申报期内，不接受申报")
    if bounty.deadline is not None and bounty.deadline < now.date():
        raise ApplicationClosed(
            f"该榜单的申报截止日期 {bounty.deadline.isoformat()} 已过，不再接受申报"
        )


# --- the stored bounty ----------------------------------------------------------------------


def _bid_status(bid: m.Bid) -> str:
    return str(getattr(bid, "status", "submitted") or "submitted")


def facts_of(session: Session, bounty: m.Bounty) -> BountyFacts:
    """The rule facts of a stored bounty (its bids read from the store)."""
    bids = session.scalars(select(m.Bid).where(m.Bid.bounty_id == bounty.id)).all()
    return BountyFacts(
        status=bounty.status,
        poster_org_id=bounty.poster_org_id,
        deadline=bounty.deadline,
        bid_ids=tuple(b.external_id for b in bids),
        eligible_bid_ids=tuple(
            b.external_id for b in bids if _bid_status(b) not in INELIGIBLE_BID_STATUSES
        ),
    )


def actor_of(user: auth.Principal) -> Actor:
    return Actor(role=user.role, org_id=user.org_id)


def _apply_award(
    session: Session, bounty: m.Bounty, award: Award, now: datetime
) -> tuple[m.Bid, list[float | None]]:
    """Record the award; returns the winning bid and the funding split it had before."""
    bid = session.scalar(select(m.Bid).where(m.Bid.external_id == award.bid_id))
    if bid is None:  # checked by the rules already; a concurrent delete lands here
        raise NotFound(f"bid {award.bid_id!r} not found")
    before = [bid.funding_enterprise, bid.funding_academic]
    bounty.awarded_bid_id = bid.id
    bounty.awarded_price = award.price
    bounty.awarded_at = now
    if award.funding_enterprise is not None:
        bid.funding_enterprise = award.funding_enterprise
    if award.funding_academic is not None:
        bid.funding_academic = award.funding_academic
    return bid, before


def _award_record(session: Session, bounty: m.Bounty) -> dict[str, object]:
    """The ``prior`` entry of the bounty's latest award audit row ({} for older awards)."""
    rows = session.scalars(
        select(m.AuditLog)
        .where(
            m.AuditLog.action == "bounty.transition",
            m.AuditLog.entity == "bounty",
            m.AuditLog.entity_id == bounty.external_id,
        )
        .order_by(m.AuditLog.id.desc())
    )
    for row in rows:
        if row.detail.get("to") == AWARDED:
            prior = row.detail.get("prior")
            return prior if isinstance(prior, dict) else {}
    return {}


def _revoke_award(session: Session, bounty: m.Bounty, reason: str) -> dict[str, object]:
    """Undo the award: no winner, price or dates; each bid back to its status before the
    award (已提交 when no record says), the winner's funding split restored; every applicant
    whose bid changed is told why. Returns the audit detail."""
    prior = _award_record(session, bounty)
    raw = prior.get("statuses")
    statuses: dict[str, object] = raw if isinstance(raw, dict) else {}
    winner = session.get(m.Bid, bounty.awarded_bid_id) if bounty.awarded_bid_id else None
    funding = prior.get("funding")
    if winner is not None and isinstance(funding, list) and len(funding) == 2:
        winner.funding_enterprise, winner.funding_academic = funding
    restored: list[str] = []
    bids = session.scalars(select(m.Bid).where(m.Bid.bounty_id == bounty.id).order_by(m.Bid.id))
    for bid in bids:
        if _bid_status(bid) not in ("awarded", "not_awarded"):
            continue
        bid.status = str(statuses.get(bid.external_id, "submitted"))
        restored.append(bid.external_id)
        name = BID_STATUS_LABELS.get(bid.status, bid.status)
        _notify_applicant(
            session,
            bid=bid,
            title=f"榜单立项已撤销：{bounty.title}",
            body=f"榜单“{bounty.title}”的立项已撤销，重新进入洽谈；"
            f"您单位的申报状态恢复为：{name}。\n原因：{reason}",
        )
    detail: dict[str, object] = {
        "revoked_bid": winner.external_id if winner is not None else None,
        "revoked_price": bounty.awarded_price,
        "restored": restored,
    }
    bounty.awarded_bid_id = None
    bounty.awarded_price = None
    bounty.awarded_at = None
    bounty.noticed_at = None
    return detail


def _settle_bids(
    session: Session, bounty: m.Bounty, winner: m.Bid
) -> tuple[list[str], dict[str, str]]:
    """On award: the winner is 中榜, every other bid still in the running 未中榜; each
    applicant whose bid changed gets a message. Returns the losing bids' ids and every
    bid's status before (kept in the award's audit row for a revocation)."""
    losers: list[str] = []
    before: dict[str, str] = {}
    bids = session.scalars(select(m.Bid).where(m.Bid.bounty_id == bounty.id).order_by(m.Bid.id))
    for bid in bids:
        before[bid.external_id] = _bid_status(bid)
        if bid.id == winner.id:
            new = "awarded"
        elif _bid_status(bid) in INELIGIBLE_BID_STATUSES:
            continue  # already out of the running, and told so
        else:
            new = "not_awarded"
            losers.append(bid.external_id)
        if bid.status != new:
            bid.status = new
            notify_bid_status(session, bid=bid)
    return losers, before


def notify_bid_status(session: Session, *, bid: m.Bid) -> int:
    """A message (站内信) to every user of the applicant organisation about the bid's status;
    returns how many were sent."""
    name = BID_STATUS_LABELS.get(bid.status, bid.status)
    body = f"您单位对榜单“{bid.bounty.title}”的揭榜申报状态已更新为：{name}。"
    if bid.status_note:
        body += f"\n说明：{bid.status_note}"
    return _notify_applicant(
        session, bid=bid, title=f"揭榜申报{name}：{bid.bounty.title}", body=body
    )


def _notify_applicant(session: Session, *, bid: m.Bid, title: str, body: str) -> int:
    # Institutes follow their applications on a page of their own; an enterprise applicant
    # has none, so its message carries no link.
    respondent = session.get(m.Organisation, bid.respondent_org_id)
    page = respondent is not None and respondent.kind != "enterprise"
    return notify_org(
        session,
        org_id=bid.respondent_org_id,
        kind="application.status",
        title=title[:200],
        body=body,
        link=f"/portal/institute/applications#{bid.external_id}" if page else None,
    )


def transition(
    session: Session,
    *,
    user: auth.Principal,
    bounty: m.Bounty,
    move: Move,
    now: datetime | None = None,
) -> m.Bounty:
    """Move ``bounty`` as ``move`` asks, if the rules allow it; one audit row per move.

    The caller commits. On award the chosen bid, the agreed price and the funding split are
    recorded; entering 公示 stamps ``noticed_at``.

    Raises
    ------
    Forbidden
        The caller may not make this move (wrong role, or not the poster).
    TransitionRefused
        The table or a step rule refuses it; nothing is changed.
    """
    now = now or datetime.now(UTC)
    facts = facts_of(session, bounty)
    actor = actor_of(user)
    if not actor.is_staff and not (
        actor.role == "enterprise" and actor.org_id == facts.poster_org_id
    ):
        raise Forbidden(_role_reasons(facts, move.target, actor)[0], code="forbidden_transition")
    reasons = check_transition(facts, move, actor, now)
    if reasons:
        legal = move.target in TRANSITIONS.get(state_of(facts.status), ())
        if legal and _role_reasons(facts, move.target, actor):
            raise Forbidden(reasons[0], code="forbidden_transition")
        raise TransitionRefused(reasons)
    old = bounty.status
    detail: dict[str, object] = {"from": state_of(old), "to": move.target}
    if move.target == OPEN and move.deadline is not None:
        bounty.deadline = move.deadline
        detail["deadline"] = move.deadline.isoformat()
    if is_revocation(old, move.target):
        detail.update(_revoke_award(session, bounty, move.reason.strip()[:REASON_MAX]))
    if move.target == AWARDED and move.award is not None:
        bid, funding = _apply_award(session, bounty, move.award, now)
        losers, statuses = _settle_bids(session, bounty, bid)
        detail.update(
            prior={"statuses": statuses, "funding": funding},
            bid=bid.external_id,
            respondent=bid.respondent.external_id,
            price=move.award.price,
            funding_enterprise=bid.funding_enterprise,
            funding_academic=bid.funding_academic,
            not_awarded=losers,
        )
    if move.target == NOTICE:
        bounty.noticed_at = now
    if move.reason.strip():
        detail["reason"] = move.reason.strip()[:REASON_MAX]
    bounty.status = move.target
    bounty.status_changed_at = now
    crud.audit(
        session,
        user=user,
        action="bounty.transition",
        entity="bounty",
        entity_id=bounty.external_id,
        detail=detail,
    )
    log.info("bounty %s: %s -> %s by %s", bounty.external_id, old, move.target, user.username)
    return bounty


def advance(
    session: Session,
    *,
    user: auth.Principal,
    bounty: m.Bounty,
    target: str,
    deadline: date | None = None,
    now: datetime | None = None,
) -> m.Bounty:
    """Move ``bounty`` along the main line up to ``target``, one :func:`transition` per step
    (each checked by the table and audited); ``deadline`` is the closing date set on the step
    into 申报中. The caller commits, or rolls back when a step is refused (the earlier steps
    of this call are then undone with it).

    Raises
    ------
    TransitionRefused
        ``target`` is not ahead of the current state on the main line, or a step is refused
        (e.g. no closing date when applications would open).
    Forbidden
        The caller may not make one of the moves.
    """
    current = state_of(bounty.status)
    if current not in FORWARD or target not in FORWARD:
        raise TransitionRefused([f"不能从“{label(current)}”推进到“{label(target)}”"])
    start, stop = FORWARD.index(current), FORWARD.index(target)
    if stop <= start:
        raise TransitionRefused(
            [f"榜单已处于“{label(current)}”阶段，不能再推进到“{label(target)}”"]
        )
    for step in FORWARD[start + 1 : stop + 1]:
        move = Move(target=step, deadline=deadline if step == OPEN else None)
        transition(session, user=user, bounty=bounty, move=move, now=now)
    return bounty
