"""Bounty applications (揭榜申报) and the enterprise side of bounties, for pages and API alike.

This module owns:

* :func:`submit_application`, the **single entry point** for a respondent's application to a
  bounty. It validates the fields, checks eligibility with the matcher's bounty rules
  (:meth:`matcher.constraints.EligibilityPolicy.check_bounty`: corporate group of the poster
  and of the need's owner, bounty kind, region scope, staff blocks, consortium members) and
  only then writes a :class:`~service.models.Bid`. A refusal raises :class:`ApplicationRefused`
  with the reasons in Chinese and writes nothing.
* application status changes by staff (:func:`set_application_status`), each one a message
  to the applicant's users;
* an enterprise proposing a tackle bounty from one of its needs (:func:`propose_bounty`),
  staff publishing it (:func:`publish_bounty`: 征集 → 论证 → 发榜 → 申报中, each step a move
  of the lifecycle table, :func:`service.bounty_lifecycle.advance`) and opening the bid
  ranking to the poster (:func:`open_ranking`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.constraints import EligibilityPolicy
from matcher.types import BountyInfo, Document, Exclusion, OrgInfo
from service import auth, crud
from service import bounty_lifecycle as bl
from service import models as m
from service.errors import Conflict, Forbidden, InvalidRequest, NotFound
from service.forms import FormErrors, parse_date_field, parse_number_field, parse_text_field
from service.snapshot import bounty_info, capability_document, need_document

log = logging.getLogger(__name__)

PROPOSED = "proposed"  # an enterprise's proposal, waiting for staff to publish it
OPEN = "open"
PROPOSAL_MAX = 5_000
PRICE_MAX = 100_000.0  # 万元 (10 亿元): far above any provincial bounty
MAX_MEMBERS = 10
DEADLINE_MAX_DAYS = 3 * 366
STATUS_NOTE_MAX = 2_000

APPLICATION_STATUSES: dict[str, str] = bl.BID_STATUS_LABELS
#: What staff may set when they check an application. 中榜 / 未中榜 come only from the award
#: (which ranks every bid at once) and 已撤回 only from the applicant.
REVIEW_STATUSES: frozenset[str] = frozenset({"submitted", "qualified", "disqualified"})
#: Applications that are decided: no status change any more.
FINAL_BID_STATUSES: frozenset[str] = frozenset({"awarded", "not_awarded", "withdrawn"})
BOUNTY_KIND_LABELS: dict[str, str] = {"tackle": "技术攻关类", "transfer": "成果转化类"}
ORG_KIND_LABELS: dict[str, str] = {
    "enterprise": "企业",
    "university": "高校",
    "institute": "科研院所",
    "company": "科技型企业",
    "other": "其他单位",
}
APPLICANT_ROLES: tuple[str, ...] = ("institute", "enterprise")


class ApplicationRefused(InvalidRequest):
    """The applicant (or a consortium member) may not respond to this bounty.

    ``reasons`` are complete Chinese sentences, one per rule broken; ``codes`` the matcher's
    reason codes in the same order.
    """

    code = "ineligible"

    def __init__(self, reasons: Sequence[str], codes: Sequence[str]) -> None:
        super().__init__("不符合揭榜条件：" + "；".join(reasons))
        self.reasons = list(reasons)
        self.codes = list(codes)


@dataclass(frozen=True, slots=True)
class ApplicationInput:
    """A validated application: proposal text, price in 万元, consortium member ids."""

    proposal: str
    price: float
    members: tuple[str, ...]


# --- validation ---------------------------------------------------------------------------


def parse_application(
    session: Session, *, applicant_org_id: int, proposal: object, price: object, members: object
) -> ApplicationInput:
    """Validate the fields of an application; FormErrors (Chinese, per field) if any fail.

    ``members`` is a sequence of organisation external ids (the directory's values); unknown,
    inactive or duplicate ones, and the applicant itself, are field errors.
    """
    errors = FormErrors()
    text = parse_text_field(errors, "proposal", proposal, "申报方案", max_len=PROPOSAL_MAX)
    amount = parse_number_field(errors, "price", price, "报价", minimum=0.0, maximum=PRICE_MAX)
    raw = [members] if isinstance(members, str) else list(members or [])  # type: ignore[call-overload]
    ids = [str(x).strip() for x in raw if str(x).strip()]
    if len(ids) > MAX_MEMBERS:
        errors.add("members", f"联合体成员最多 {MAX_MEMBERS} 家")
    elif len(set(ids)) != len(ids):
        errors.add("members", "联合体成员不能重复")
    elif ids:
        rows = dict(
            session.execute(
                select(m.Organisation.external_id, m.Organisation).where(
                    m.Organisation.external_id.in_(ids)
                )
            ).all()
        )
        unknown = [x for x in ids if x not in rows]
        if unknown:
            errors.add("members", "名录中没有这些单位：" + "、".join(unknown[:5]))
        elif any(rows[x].id == applicant_org_id for x in ids):
            errors.add("members", "申报单位本身不必列为联合体成员")
        elif any(rows[x].status != "active" for x in ids):
            errors.add("members", "联合体成员中有已停用的单位")
    errors.raise_if_any()
    assert text is not None and amount is not None  # guaranteed when no error was recorded
    return ApplicationInput(proposal=text, price=amount, members=tuple(ids))


# --- eligibility --------------------------------------------------------------------------


def _policy(session: Session) -> EligibilityPolicy:
    """The matcher's eligibility rules over the current organisations and staff blocks."""
    rows = session.scalars(select(m.Organisation)).all()
    ext = {o.id: o.external_id for o in rows}
    orgs = {
        o.external_id: OrgInfo(
            id=o.external_id,
            name=o.name,
            kind=o.kind,  # type: ignore[arg-type]
            in_region=bool(o.in_region),
            parent_id=ext.get(o.parent_id) if o.parent_id else None,
            active=o.status == "active",
        )
        for o in rows
    }
    need_ext = dict(session.execute(select(m.Need.id, m.Need.external_id)).all())
    blocks: list[tuple[str, str]] = []
    for b in session.scalars(select(m.StaffBlock)):
        key = f"N:{need_ext[b.need_id]}" if b.need_id else ext[b.org_id]
        blocks.append((key, ext[b.blocked_org_id]))
    return EligibilityPolicy(orgs, blocks=blocks)


def _attached_documents(session: Session, bounty: m.Bounty) -> dict[str, Document]:
    """The need/achievement a bounty is attached to, as a matcher document (its owner's
    group may not respond either)."""
    docs: dict[str, Document] = {}
    if bounty.need_id is not None:
        need = session.get(m.Need, bounty.need_id)
        if need is not None:
            d = need_document(need, need.org.external_id)
            docs[d.id] = d
    if bounty.capability_id is not None:
        cap = session.get(m.Capability, bounty.capability_id)
        if cap is not None:
            d = capability_document(cap, cap.org.external_id)
            docs[d.id] = d
    return docs


def _reason_text(e: Exclusion, info: BountyInfo, names: dict[str, str]) -> str:
    """One Chinese sentence for a broken rule, naming the organisations."""
    who_id = e.member_id or e.org_id
    who = f"{'联合体成员' if e.member_id else '申报单位'}“{names.get(who_id, who_id)}”"
    poster = names.get(info.poster_org_id, info.poster_org_id)
    kind = BOUNTY_KIND_LABELS.get(info.kind, info.kind)
    if e.code == "SAME_ORG":
        return f"{who}就是发榜单位或需求单位本身，不能揭自己的榜"
    if e.code == "SAME_GROUP":
        return f"{who}与发榜单位“{poster}”属于同一集团（上下级或同一母公司），集团内部单位不能揭榜"
    if e.code == "NOT_IN_REGION":
        return f"{kind}榜单只接受区内企业（或由区内企业牵头的联合体）揭榜，{who}不在区内"
    if e.code == "WRONG_KIND":
        return f"{kind}榜单不接受{ORG_KIND_LABELS.get(_kind_of(e.detail), '该类单位')}牵头揭榜"
    if e.code == "INACTIVE":
        if e.member_id is None and e.detail.startswith("榜单"):
            return "该榜单不在申报期（未发布、已截止或已关闭），不接受申报"
        return f"{who}已停用，不能参与申报"
    if e.code == "STAFF_BLOCK":
        return f"{who}已被工作人员限制参与该榜单"
    return f"{who}：{e.label}"


def _kind_of(detail: str) -> str:
    # WRONG_KIND detail is "<kind> ∉ [...]" (matcher.constraints.EligibilityPolicy.check).
    return detail.split(" ", 1)[0] if detail else ""


def check_eligibility(
    session: Session, *, bounty: m.Bounty, applicant_ext: str, members: Sequence[str]
) -> list[Exclusion]:
    """The matcher's exclusions for this applicant and consortium (empty = eligible)."""
    info = bounty_info(session, bounty)
    return _policy(session).check_bounty(
        info, applicant_ext, members=members, documents=_attached_documents(session, bounty)
    )


def refusal(
    session: Session, bounty: m.Bounty, exclusions: Sequence[Exclusion]
) -> ApplicationRefused:
    """The ApplicationRefused for ``exclusions``, with organisations named."""
    info = bounty_info(session, bounty)
    ids = {info.poster_org_id} | {e.org_id for e in exclusions}
    ids |= {e.member_id for e in exclusions if e.member_id}
    names = dict(
        session.execute(
            select(m.Organisation.external_id, m.Organisation.name).where(
                m.Organisation.external_id.in_(ids)
            )
        ).all()
    )
    reasons: list[str] = []
    for e in exclusions:
        text = _reason_text(e, info, names)
        if text not in reasons:
            reasons.append(text)
    return ApplicationRefused(reasons, [e.code for e in exclusions])


# --- applications -------------------------------------------------------------------------


def _bounty_for_applicant(session: Session, external_id: str) -> m.Bounty:
    bounty = session.scalar(select(m.Bounty).where(m.Bounty.external_id == external_id))
    if bounty is None or bl.state_of(bounty.status) in bl.UNPUBLISHED:
        # A proposal (or one under assessment) is not public yet: do not reveal it exists.
        raise NotFound(f"bounty {external_id!r} not found")
    return bounty


def check_accepting(bounty: m.Bounty) -> None:
    """Refuse applications to a bounty that is not in its application period: the lifecycle's
    rule (:func:`service.bounty_lifecycle.check_can_apply`: only 申报中, and not after the
    closing date, by the local calendar)."""
    try:
        bl.check_can_apply(bounty, datetime.now().astimezone())
    except bl.ApplicationClosed as exc:
        code = "DEADLINE_PASSED" if bl.state_of(bounty.status) == bl.OPEN else "INACTIVE"
        raise ApplicationRefused([exc.detail], [code]) from None


def submit_application(
    session: Session,
    *,
    applicant: auth.Principal,
    bounty_external_id: str,
    proposal: object,
    price: object,
    members: object = (),
) -> m.Bid:
    """Validate, check eligibility and store one application (the only way bids are made by
    respondents: the portal page and ``POST /api/v1/bounties/{id}/applications`` call it).

    Raises
    ------
    Forbidden
        The caller is not an institute/enterprise user bound to an organisation.
    NotFound
        No such published bounty.
    FormErrors
        A field is invalid (Chinese message per field).
    Conflict
        The organisation already applied to this bounty.
    ApplicationRefused
        An eligibility rule or the application period refuses it; nothing is written.
    """
    if applicant.role not in APPLICANT_ROLES or applicant.org_id is None:
        raise Forbidden("only institute or enterprise users bound to an organisation may apply")
    bounty = _bounty_for_applicant(session, bounty_external_id)
    data = parse_application(
        session, applicant_org_id=applicant.org_id, proposal=proposal, price=price, members=members
    )
    check_accepting(bounty)
    org = session.get(m.Organisation, applicant.org_id)
    if org is None:
        raise Forbidden("the caller's organisation no longer exists")
    applicant_ext = org.external_id
    exclusions = check_eligibility(
        session, bounty=bounty, applicant_ext=applicant_ext, members=data.members
    )
    if exclusions:
        raise refusal(session, bounty, exclusions)
    if session.scalar(
        select(m.Bid.id).where(
            m.Bid.bounty_id == bounty.id,
            m.Bid.respondent_org_id == applicant.org_id,
            m.Bid.status != "withdrawn",
        )
    ):
        raise Conflict("本单位已经申报过该榜单", code="duplicate")
    bid = m.Bid(
        external_id=f"BID-{secrets.token_hex(6).upper()}",
        bounty_id=bounty.id,
        respondent_org_id=applicant.org_id,
        members=list(data.members),
        price=data.price,
        proposal=data.proposal,
        status="submitted",
    )
    session.add(bid)
    session.flush()
    crud.audit(
        session,
        user=applicant,
        action="application.submit",
        entity="bid",
        entity_id=bid.external_id,
        detail={"bounty": bounty.external_id, "members": list(data.members)},
    )
    return bid


def list_applications(
    session: Session, *, org_id: int, limit: int = 50, offset: int = 0
) -> tuple[list[m.Bid], int]:
    """The applications of one organisation, newest first."""
    stmt = select(m.Bid).where(m.Bid.respondent_org_id == org_id).order_by(m.Bid.id.desc())
    return crud.paginate(session, stmt, limit=limit, offset=offset)


def set_application_status(
    session: Session, *, user: auth.Principal, bid_external_id: str, status: str, note: str = ""
) -> m.Bid:
    """Staff move an application to ``status`` (APPLICATION_STATUSES); the applicant's users
    get a message saying so. The one rule for the staff page (申报审核) and the API. Audited;
    the caller commits.

    Raises
    ------
    Forbidden
        The caller is not staff.
    InvalidRequest
        A status outside REVIEW_STATUSES (中榜 / 未中榜 are set by the award only).
    NotFound
        No such application.
    Conflict
        The application is already decided (FINAL_BID_STATUSES).
    FormErrors
        ``note`` is too long, or missing for 资格审查未通过 (the applicant is told why).
    """
    if not user.is_staff:
        raise Forbidden("requires role: staff")
    if status not in REVIEW_STATUSES:
        allowed = ", ".join(sorted(REVIEW_STATUSES))
        raise InvalidRequest(f"status must be one of {allowed} (中榜/未中榜 are set by the award)")
    bid = session.scalar(select(m.Bid).where(m.Bid.external_id == bid_external_id))
    if bid is None:
        raise NotFound(f"application {bid_external_id!r} not found")
    if bid.status in FINAL_BID_STATUSES:
        label = APPLICATION_STATUSES.get(bid.status, bid.status)
        raise Conflict(f"该申报已是“{label}”，不能再更改审查状态")
    errors = FormErrors()
    note = (
        parse_text_field(errors, "note", note, "说明", max_len=STATUS_NOTE_MAX, required=False)
        or ""
    )
    if status == "disqualified" and not note and "note" not in errors.fields:
        errors.add("note", "请填写资格审查未通过的原因（申报单位会看到）")
    errors.raise_if_any()
    old = bid.status
    if old == status and bid.status_note == note:
        return bid
    bid.status, bid.status_note = status, note
    crud.audit(
        session,
        user=user,
        action="application.status",
        entity="bid",
        entity_id=bid.external_id,
        detail={"from": old, "to": status, **({"note": note} if note else {})},
    )
    notify_application_status(session, bid=bid)
    return bid


def applications_queue(
    session: Session, *, statuses: Sequence[str], limit: int = 200
) -> tuple[list[m.Bid], int]:
    """Applications in ``statuses`` for staff to check, the longest-waiting first."""
    stmt = select(m.Bid).where(m.Bid.status.in_(list(statuses))).order_by(m.Bid.id)
    return crud.paginate(session, stmt, limit=limit, offset=0)


def notify_application_status(session: Session, *, bid: m.Bid) -> int:
    """A message to every user of the applicant organisation about the bid's status
    (:func:`service.bounty_lifecycle.notify_bid_status`, shared with the award)."""
    return bl.notify_bid_status(session, bid=bid)


# --- the enterprise side ------------------------------------------------------------------


def parse_bounty_proposal(
    *, title: object, description: object, budget: object, deadline: object
) -> dict[str, Any]:
    """Validate a tackle-bounty proposal's fields (FormErrors in Chinese)."""
    errors = FormErrors()
    out: dict[str, Any] = {
        "title": parse_text_field(errors, "title", title, "榜单名称", max_len=300),
        "description": parse_text_field(
            errors, "description", description, "榜单内容", max_len=5_000
        ),
        "budget": parse_number_field(
            errors, "budget", budget, "榜单金额", minimum=0.0, maximum=PRICE_MAX, required=False
        ),
        "deadline": parse_date_field(
            errors,
            "deadline",
            deadline,
            "申报截止日期",
            earliest=date.today() + timedelta(days=1),
            latest=date.today() + timedelta(days=DEADLINE_MAX_DAYS),
            required=False,
        ),
    }
    errors.raise_if_any()
    return out


def propose_bounty(
    session: Session, *, user: auth.Principal, need_external_id: str, fields: dict[str, Any]
) -> m.Bounty:
    """An enterprise proposes a tackle bounty (技术攻关类) from one of its own needs; it stays
    ``proposed`` until staff publish it. ``fields`` come from :func:`parse_bounty_proposal`."""
    if user.role != "enterprise" or user.org_id is None:
        raise Forbidden("only enterprise users may propose a bounty from their need")
    need = crud.get_need(session, viewer=user, external_id=need_external_id)  # own needs only
    if need.status in ("closed", "withdrawn"):
        raise InvalidRequest("该需求已关闭或撤回，不能据此发榜", code="need_closed")
    bounty = m.Bounty(
        external_id=f"BT-{secrets.token_hex(5).upper()}",
        kind="tackle",
        poster_org_id=user.org_id,
        need_id=need.id,
        status=PROPOSED,
        **fields,
    )
    session.add(bounty)
    session.flush()
    crud.audit(
        session,
        user=user,
        action="bounty.propose",
        entity="bounty",
        entity_id=bounty.external_id,
        detail={"need": need.external_id},
    )
    return bounty


def publish_bounty(
    session: Session,
    *,
    user: auth.Principal,
    bounty_external_id: str,
    deadline: date | None = None,
) -> m.Bounty:
    """Staff publish a proposed bounty: 征集 → 论证 → 发榜 → 申报中, every step a move of the
    lifecycle table (:func:`service.bounty_lifecycle.advance`, audited one by one), so it
    starts accepting applications. ``deadline`` sets the closing date (else the proposal's).

    Raises
    ------
    Forbidden
        The caller is not staff.
    Conflict
        The bounty is not a proposal (already published).
    TransitionRefused
        A step is refused, e.g. no closing date or one in the past; the caller rolls back.
    """
    if not user.is_staff:
        raise Forbidden("requires role: staff")
    bounty = crud.get_bounty(session, external_id=bounty_external_id)
    if bounty.status != PROPOSED:
        raise Conflict(f"bounty {bounty_external_id!r} is {bounty.status}, not proposed")
    bl.advance(session, user=user, bounty=bounty, target=bl.OPEN, deadline=deadline)
    crud.audit(
        session, user=user, action="bounty.publish", entity="bounty", entity_id=bounty.external_id
    )
    return bounty


def open_ranking(session: Session, *, user: auth.Principal, bounty_external_id: str) -> m.Bounty:
    """Staff open the bid ranking of a bounty to its poster."""
    if not user.is_staff:
        raise Forbidden("requires role: staff")
    bounty = crud.get_bounty(session, external_id=bounty_external_id)
    if not bounty.ranking_open:
        bounty.ranking_open = True
        crud.audit(
            session,
            user=user,
            action="bounty.open_ranking",
            entity="bounty",
            entity_id=bounty.external_id,
        )
    return bounty


def posted_bounties(session: Session, *, org_id: int) -> list[m.Bounty]:
    """Bounties posted (or proposed) by one organisation, newest first."""
    return list(
        session.scalars(
            select(m.Bounty).where(m.Bounty.poster_org_id == org_id).order_by(m.Bounty.id.desc())
        )
    )


def poster_bounty(session: Session, *, user: auth.Principal, bounty_external_id: str) -> m.Bounty:
    """A bounty of the caller's organisation (others: NotFound)."""
    bounty = session.scalar(select(m.Bounty).where(m.Bounty.external_id == bounty_external_id))
    if bounty is None or (not user.is_staff and bounty.poster_org_id != user.org_id):
        raise NotFound(f"bounty {bounty_external_id!r} not found")
    return bounty


def applications_of(session: Session, *, bounty: m.Bounty) -> list[m.Bid]:
    """Every application to ``bounty`` in submission order (for its poster and staff)."""
    return list(
        session.scalars(select(m.Bid).where(m.Bid.bounty_id == bounty.id).order_by(m.Bid.id))
    )
