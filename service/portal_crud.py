"""Reads and writes of the two-sided portal: need vetting (审核), introductions (对接申请) and
in-app messages (站内信). Keyword-only functions; the caller commits.

Rules kept here, in one place, for the API and the pages alike:

* **Vetting.** A need created or edited by its enterprise is ``pending`` (待审核); only staff
  approve (已通过) or return it (已退回, with a reason). Matching sees approved needs only
  (:func:`service.snapshot.need_document`). Staff-entered and imported needs are approved.
* **Introductions.** An enterprise asks for an introduction to an institute about one of its
  own approved, open needs. ``submitted`` (已提交) → staff ``forward`` → ``forwarded`` (已转交)
  → the institute ``accept`` → ``negotiating`` (洽谈中) or ``decline`` → ``failed`` (未达成);
  from ``negotiating`` the enterprise or staff record ``signed`` (已签约) or ``failed``. Staff
  may close a request at any unfinished step. The institute sees a request only once it has
  been forwarded; anyone else's introductions answer 404.
* **Messages.** Every transition above leaves a message for the people concerned.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from matcher.encoding import need_key
from matcher.types import StaffDecision
from service import auth
from service.crud import audit, org_by_external_id, paginate, update_fields
from service.errors import Conflict, Forbidden, InvalidRequest, NotFound
from service.models import Introduction, Message, Need, Organisation, User
from service.validation import normalise_text

REVIEW_LABELS = {"pending": "待审核", "approved": "已通过", "returned": "已退回"}
NEED_STATUS_LABELS = {
    "open": "征集中",
    "matched": "已对接",
    "closed": "已关闭",
    "withdrawn": "已撤回",
}
INTRO_LABELS = {
    "submitted": "已提交",
    "forwarded": "已转交",
    "negotiating": "洽谈中",
    "signed": "已签约",
    "failed": "未达成",
}
INTRO_FINAL = frozenset({"signed", "failed"})
INTRO_OPEN = frozenset(INTRO_LABELS) - INTRO_FINAL
MAX_MESSAGE = 500  # characters of a request, answer, note or reason
INSTITUTE_KINDS = auth.ORG_KINDS_OF_ROLE["institute"]


def _now() -> datetime:
    return datetime.now(UTC)


def clean_note(text: str | None, *, field: str, required: bool = False) -> str:
    """``text`` normalised and stripped; InvalidRequest when too long, or empty but required."""
    value = normalise_text(text or "").strip()
    if required and not value:
        raise InvalidRequest(f"请填写{field}")
    if len(value) > MAX_MESSAGE:
        raise InvalidRequest(f"{field}不能超过 {MAX_MESSAGE} 字")
    return value


# --- messages -----------------------------------------------------------------------------


def send_message(
    session: Session,
    *,
    user_id: int,
    kind: str,
    title: str,
    body: str = "",
    link: str | None = None,
) -> Message:
    """Leave one in-app message for ``user_id`` (unread)."""
    msg = Message(user_id=user_id, kind=kind, title=title[:200], body=body, link=link)
    session.add(msg)
    return msg


def notify_org(
    session: Session, *, org_id: int, kind: str, title: str, body: str = "", link: str | None = None
) -> int:
    """A message to every active user bound to organisation ``org_id``; returns how many."""
    ids = session.scalars(select(User.id).where(User.org_id == org_id, User.active.is_(True)))
    n = 0
    for uid in ids:
        send_message(session, user_id=uid, kind=kind, title=title, body=body, link=link)
        n += 1
    return n


def notify_staff(
    session: Session, *, kind: str, title: str, body: str = "", link: str | None = None
) -> int:
    """A message to every active staff and admin user; returns how many."""
    ids = session.scalars(
        select(User.id).where(User.role.in_(auth.STAFF_ROLES), User.active.is_(True))
    )
    n = 0
    for uid in ids:
        send_message(session, user_id=uid, kind=kind, title=title, body=body, link=link)
        n += 1
    return n


def list_messages(
    session: Session, *, user_id: int, limit: int, offset: int, unread_only: bool = False
) -> tuple[list[Message], int]:
    """A user's messages, newest first."""
    stmt = select(Message).where(Message.user_id == user_id)
    if unread_only:
        stmt = stmt.where(Message.read_at.is_(None))
    return paginate(session, stmt.order_by(Message.id.desc()), limit=limit, offset=offset)


def unread_count(session: Session, *, user_id: int) -> int:
    """How many of the user's messages are unread."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.user_id == user_id, Message.read_at.is_(None))
        )
        or 0
    )


def mark_read(session: Session, *, user_id: int, message_id: int | None = None) -> int:
    """Mark one message (or, without ``message_id``, all) of ``user_id`` read; returns how many.

    A message of another user is NotFound.
    """
    stmt = update(Message).where(Message.user_id == user_id, Message.read_at.is_(None))
    if message_id is not None:
        owner = session.scalar(select(Message.user_id).where(Message.id == message_id))
        if owner != user_id:
            raise NotFound(f"message {message_id} not found")
        stmt = stmt.where(Message.id == message_id)
    result = session.execute(
        stmt.values(read_at=_now()).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- needs: own needs and vetting -----------------------------------------------------------


def _own_org(user: auth.Principal) -> int:
    if user.org_id is None:
        raise Forbidden("该账号未绑定单位")
    return user.org_id


def new_need_id(session: Session) -> str:
    """A fresh need external id (``NEED-W`` + 8 hex digits)."""
    while True:
        ext = f"NEED-W{secrets.token_hex(4).upper()}"
        if not session.scalar(select(Need.id).where(Need.external_id == ext)):
            return ext


def create_need(session: Session, *, user: auth.Principal, data: dict[str, Any]) -> Need:
    """Create a need. An enterprise creates it for its own organisation and it waits for
    vetting (pending); staff name the organisation (``org_external_id``) and it is approved.

    ``data`` holds Need columns (title, description, field, keywords, budget, deadline,
    confidential, status) and optionally ``external_id`` / ``org_external_id``.
    """
    data = dict(data)
    ext = data.pop("external_id", None) or new_need_id(session)
    if session.scalar(select(Need.id).where(Need.external_id == ext)):
        raise Conflict(f"need {ext!r} exists", code="duplicate")
    org_ext = data.pop("org_external_id", None)
    if user.is_staff:
        if not org_ext:
            raise InvalidRequest("org_external_id is required")
        org_id = org_by_external_id(session, external_id=org_ext).id
        review = "approved"
    else:
        if not user.is_enterprise:
            raise Forbidden("requires role: enterprise or staff")
        org_id = _own_org(user)
        if org_ext and org_ext != user.org_external_id:
            raise NotFound(f"organisation {org_ext!r} not found")
        review = "pending"
    need = Need(external_id=ext, org_id=org_id, review_status=review, **data)
    if review == "approved":
        need.reviewed_by, need.reviewed_at = user.user_id, _now()
    session.add(need)
    session.flush()
    audit(
        session,
        user=user,
        action="need.create",
        entity="need",
        entity_id=ext,
        detail={"review_status": review},
    )
    if review == "pending":
        notify_staff(
            session,
            kind="need.pending",
            title=f"新需求待审核：{need.title}",
            link="/portal/staff/needs",
        )
    return need


def edit_need(
    session: Session, *, user: auth.Principal, need: Need, data: dict[str, Any]
) -> dict[str, Any]:
    """Change a need's fields; an enterprise's change sends it back to vetting (pending).

    Returns the changed fields (old, new). A withdrawn or closed need cannot be edited by
    its enterprise (Conflict).
    """
    if not user.is_staff:
        if need.org_id != _own_org(user):
            raise NotFound(f"need {need.external_id!r} not found")
        if need.status in ("withdrawn", "closed"):
            raise Conflict("已撤回或已关闭的需求不能修改", code="need_closed")
        data = {k: v for k, v in data.items() if k not in ("status", "org_external_id")}
    changed = update_fields(need, data)
    if changed and not user.is_staff:
        need.review_status, need.review_reason = "pending", ""
        need.reviewed_by = need.reviewed_at = None
    if changed:
        audit(
            session,
            user=user,
            action="need.update",
            entity="need",
            entity_id=need.external_id,
            detail={"changed": sorted(changed), "review_status": need.review_status},
        )
        if not user.is_staff:
            notify_staff(
                session,
                kind="need.pending",
                title=f"需求已修改，待审核：{need.title}",
                link="/portal/staff/needs",
            )
    return changed


def withdraw_need(session: Session, *, user: auth.Principal, need: Need) -> None:
    """The enterprise (or staff) withdraws a need: it leaves matching for good."""
    if not user.is_staff and need.org_id != _own_org(user):
        raise NotFound(f"need {need.external_id!r} not found")
    if need.status == "withdrawn":
        return
    need.status = "withdrawn"
    audit(session, user=user, action="need.withdraw", entity="need", entity_id=need.external_id)


def list_own_needs(
    session: Session, *, user: auth.Principal, limit: int, offset: int
) -> tuple[list[Need], int]:
    """The caller's organisation's needs, newest first."""
    stmt = select(Need).where(Need.org_id == _own_org(user)).order_by(Need.id.desc())
    return paginate(session, stmt, limit=limit, offset=offset)


def review_queue(session: Session, *, limit: int, offset: int) -> tuple[list[Need], int]:
    """Needs waiting for vetting, oldest change first."""
    stmt = (
        select(Need)
        .where(Need.review_status == "pending", Need.status != "withdrawn")
        .order_by(Need.updated_at, Need.id)
    )
    return paginate(session, stmt, limit=limit, offset=offset)


def review_need(
    session: Session, *, user: auth.Principal, need: Need, approve: bool, reason: str = ""
) -> None:
    """Staff approve a pending need or return it with a reason; the enterprise is told."""
    if not user.is_staff:
        raise Forbidden("requires role: staff")
    if need.review_status != "pending":
        raise Conflict(
            f"该需求当前为「{REVIEW_LABELS.get(need.review_status, need.review_status)}」，不在待审核状态",
            code="not_pending",
        )
    reason = clean_note(reason, field="退回理由", required=not approve)
    need.review_status = "approved" if approve else "returned"
    need.review_reason = "" if approve else reason
    need.reviewed_by, need.reviewed_at = user.user_id, _now()
    audit(
        session,
        user=user,
        action="need.approve" if approve else "need.return",
        entity="need",
        entity_id=need.external_id,
        detail={"reason": reason} if reason else {},
    )
    notify_org(
        session,
        org_id=need.org_id,
        kind="need.approved" if approve else "need.returned",
        title=(f"需求已通过审核：{need.title}" if approve else f"需求被退回：{need.title}"),
        body="" if approve else f"退回理由：{reason}",
        link=f"/portal/needs/{need.external_id}",
    )


# --- introductions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    """One allowed transition: from ``source`` by ``actor`` to ``target``."""

    source: frozenset[str]
    actor: str  # enterprise|institute|staff
    target: str


STEPS: dict[str, _Step] = {
    "forward": _Step(frozenset({"submitted"}), "staff", "forwarded"),
    "accept": _Step(frozenset({"forwarded"}), "institute", "negotiating"),
    "decline": _Step(frozenset({"forwarded"}), "institute", "failed"),
    "signed": _Step(frozenset({"negotiating"}), "enterprise", "signed"),
    "failed": _Step(frozenset({"negotiating"}), "enterprise", "failed"),
    "close": _Step(frozenset(INTRO_OPEN), "staff", "failed"),
}


def _intro_visible_clause(viewer: auth.Principal) -> Any:
    if viewer.is_staff:
        return True
    if viewer.is_institute:
        return (Introduction.institute_id == viewer.org_id) & (Introduction.status != "submitted")
    return Introduction.enterprise_id == viewer.org_id


def get_introduction(session: Session, *, viewer: auth.Principal, intro_id: int) -> Introduction:
    """An introduction the viewer may see, else NotFound."""
    intro = session.scalar(
        select(Introduction).where(Introduction.id == intro_id, _intro_visible_clause(viewer))
    )
    if intro is None:
        raise NotFound(f"introduction {intro_id} not found")
    return intro


def list_introductions(
    session: Session,
    *,
    viewer: auth.Principal,
    limit: int,
    offset: int,
    status: str | Sequence[str] | None = None,
    need_id: int | None = None,
) -> tuple[list[Introduction], int]:
    """The introductions the viewer may see, newest first (staff: oldest first when filtering
    a queue by status, so the longest-waiting request comes first)."""
    stmt = select(Introduction).where(_intro_visible_clause(viewer))
    if status:
        stmt = stmt.where(
            Introduction.status.in_([status] if isinstance(status, str) else list(status))
        )
    if need_id is not None:
        stmt = stmt.where(Introduction.need_id == need_id)
    order = Introduction.id if (status and viewer.is_staff) else Introduction.id.desc()
    return paginate(session, stmt.order_by(order), limit=limit, offset=offset)


def request_introduction(
    session: Session,
    *,
    user: auth.Principal,
    need: Need,
    institute_external_id: str,
    message: str,
    score: float | None = None,
) -> Introduction:
    """An enterprise (or staff on its behalf) asks to be introduced to an institute."""
    if not user.is_staff:
        if not user.is_enterprise or need.org_id != _own_org(user):
            raise NotFound(f"need {need.external_id!r} not found")
    if need.review_status != "approved" or need.status != "open":
        raise Conflict("只有已通过审核、征集中的需求才能申请对接", code="need_not_open")
    inst = session.scalar(
        select(Organisation).where(Organisation.external_id == institute_external_id)
    )
    if inst is None or inst.kind not in INSTITUTE_KINDS or inst.status != "active":
        raise NotFound(f"organisation {institute_external_id!r} not found")
    body = clean_note(message, field="申请说明")
    if session.scalar(
        select(Introduction.id).where(
            Introduction.need_id == need.id,
            Introduction.institute_id == inst.id,
            Introduction.status.in_(INTRO_OPEN | {"signed"}),
        )
    ):
        raise Conflict(f"已就该需求向「{inst.name}」提出过对接申请", code="duplicate")
    intro = Introduction(
        need_id=need.id,
        enterprise_id=need.org_id,
        institute_id=inst.id,
        message=body,
        score=score,
        status="submitted",
        requested_by=user.user_id,
    )
    session.add(intro)
    session.flush()
    audit(
        session,
        user=user,
        action="intro.request",
        entity="introduction",
        entity_id=intro.id,
        detail={"need": need.external_id, "institute": inst.external_id},
    )
    notify_staff(
        session,
        kind="intro.requested",
        title=f"新的对接申请：{need.title} → {inst.name}",
        link="/portal/staff/introductions",
    )
    return intro


def _actor_may(user: auth.Principal, intro: Introduction, actor: str) -> bool:
    if actor == "staff":
        return user.is_staff
    if user.is_staff and actor == "enterprise":
        return True  # staff may record an outcome on the enterprise's behalf
    if actor == "institute":
        return user.is_institute and intro.institute_id == user.org_id
    return user.is_enterprise and intro.enterprise_id == user.org_id


def advance_introduction(
    session: Session, *, user: auth.Principal, intro: Introduction, action: str, note: str = ""
) -> Introduction:
    """Apply one step of :data:`STEPS` to an introduction, with its message and audit entry.

    ``note`` is the staff note (forward), the institute's answer (accept / decline: required
    to decline) or the outcome reason (required for failed / close).

    Raises
    ------
    InvalidRequest
        Unknown action, or a missing / too long note.
    Forbidden
        The caller is not the party that takes this step.
    Conflict
        The introduction is not at a step where ``action`` applies.
    """
    step = STEPS.get(action)
    if step is None:
        raise InvalidRequest(f"action must be one of {', '.join(STEPS)}")
    if not _actor_may(user, intro, step.actor):
        raise Forbidden("无权进行此操作")
    if intro.status not in step.source:
        raise Conflict(
            f"对接申请当前为「{INTRO_LABELS.get(intro.status, intro.status)}」，不能执行此操作",
            code="wrong_state",
        )
    field = {"forward": "转交说明", "accept": "答复", "decline": "婉拒理由"}.get(action, "原因")
    text = clean_note(note, field=field, required=action in ("decline", "failed", "close"))
    now = _now()
    previous = intro.status
    intro.status = step.target
    if action == "forward":
        intro.staff_note, intro.forwarded_by, intro.forwarded_at = text, user.user_id, now
    elif action in ("accept", "decline"):
        intro.answer, intro.answered_by, intro.answered_at = text, user.user_id, now
    if step.target in INTRO_FINAL:
        intro.outcome_by, intro.outcome_at = user.user_id, now
        intro.outcome_reason = text
    audit(
        session,
        user=user,
        action=f"intro.{action}",
        entity="introduction",
        entity_id=intro.id,
        detail={"from": previous, "to": step.target, **({"note": text} if text else {})},
    )
    _notify_step(session, intro=intro, action=action, text=text)
    return intro


def _notify_step(session: Session, *, intro: Introduction, action: str, text: str) -> None:
    need, inst = intro.need, intro.institute
    pair = f"{need.title} → {inst.name}"
    ent_link = "/portal/introductions"
    inst_link = "/portal/institute/introductions"
    detail = f"说明：{text}" if text else ""
    if action == "forward":
        notify_org(
            session,
            org_id=intro.institute_id,
            kind="intro.forwarded",
            title=f"收到对接申请：{intro.enterprise.name}「{need.title}」",
            body=intro.message,
            link=inst_link,
        )
        notify_org(
            session,
            org_id=intro.enterprise_id,
            kind="intro.forwarded",
            title=f"对接申请已转交院所：{pair}",
            body=detail,
            link=ent_link,
        )
    elif action in ("accept", "decline"):
        verb = "接受" if action == "accept" else "婉拒"
        notify_org(
            session,
            org_id=intro.enterprise_id,
            kind="intro.accepted" if action == "accept" else "intro.declined",
            title=f"「{inst.name}」{verb}了对接申请：{need.title}",
            body=f"答复：{text}" if text else "",
            link=ent_link,
        )
        notify_staff(
            session,
            kind="intro.answered",
            title=f"院所已答复（{verb}）：{pair}",
            link="/portal/staff/introductions",
        )
    else:
        label = INTRO_LABELS[intro.status]
        for org_id, link in ((intro.enterprise_id, ent_link), (intro.institute_id, inst_link)):
            notify_org(
                session,
                org_id=org_id,
                kind=f"intro.{intro.status}",
                title=f"对接结果（{label}）：{pair}",
                body=detail,
                link=link,
            )


def introduction_decisions(session: Session) -> list[StaffDecision]:
    """Finished introductions as ranker training labels: signed = positive, failed = negative
    (the need's document key and the institute's external id, like shortlist decisions)."""
    inst = Organisation.__table__.alias("inst")
    rows = session.execute(
        select(Need.external_id, inst.c.external_id, Introduction.status)
        .join(Need, Need.id == Introduction.need_id)
        .join(inst, inst.c.id == Introduction.institute_id)
        .where(Introduction.status.in_(INTRO_FINAL))
        .order_by(Introduction.id)
    ).all()
    return [StaffDecision(need_key(n), str(o), status == "signed") for n, o, status in rows]
