"""Staff decisions on shortlist items: the rules, written once for the API and the pages.

Actions
-------
``approve`` / ``reject``
    Set ``status`` and record who decided and when (what the learned ranker trains on).
``reset``
    Back to ``pending``; ``decided_by``/``decided_at`` are cleared.
``lock`` / ``unlock``
    A locked pair is kept by the next run of the campaign; locking changes no status.
``note``
    Set the note (an empty note clears it).

Rules
-----
* The caller quotes the ``version`` it saw. A different current version is a
  :class:`StaleVersion` (409, ``version_conflict``), checked before any other rule; the
  update is a compare-and-set in one UPDATE, so of two concurrent decisions on one version
  exactly one applies.
* An ``uncovered`` row names no institute: only ``note`` applies (409, ``uncovered``).
* A locked pair cannot be rejected (unlock it first); a rejected pair cannot be locked
  (409, ``locked`` / ``rejected``). Approving a locked pair is allowed: both say "keep it".
* A note sent with any action is saved with it (cleaned by
  :func:`service.validation.normalise_text`, at most :data:`NOTE_MAX` characters after
  cleaning, else 422); ``note`` without a note is 422. No note (None) leaves it unchanged.
* Every applied decision bumps ``version`` and writes one audit entry
  ``shortlist.<action>`` with the state before and after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Protocol, get_args

from sqlalchemy import update
from sqlalchemy.orm import Session

from service import auth
from service.errors import Conflict, InvalidRequest, NotFound, VersionConflict
from service.models import AuditLog, ShortlistItem
from service.validation import normalise_text

Action = Literal["approve", "reject", "reset", "lock", "unlock", "note"]
ACTIONS: tuple[Action, ...] = get_args(Action)
NOTE_MAX = 2000


class DecisionRefused(Conflict):
    """A decision that is valid as a request but not for the item's current state (409).

    ``message`` is the Chinese sentence the staff pages show.
    """

    def __init__(self, detail: str, *, code: str, message: str) -> None:
        super().__init__(detail, code=code)
        self.message = message


class StaleVersion(VersionConflict):
    """The item changed since the caller read it; ``current`` is its version now (or None
    when it vanished)."""

    def __init__(self, detail: str, *, seen: int, current: int | None) -> None:
        super().__init__(detail)
        self.seen = seen
        self.current = current


class ItemState(Protocol):
    """What the rules read of an item."""

    kind: str
    status: str
    locked: bool


def decision_values(
    state: ItemState, action: str, *, user_id: int, now: datetime
) -> dict[str, Any]:
    """The columns ``action`` sets on an item in ``state`` (without note and version).

    Raises
    ------
    DecisionRefused
        The rules above forbid ``action`` in this state.
    InvalidRequest
        ``action`` is not one of :data:`ACTIONS`.
    """
    if action not in ACTIONS:
        raise InvalidRequest(f"action must be one of {', '.join(ACTIONS)}; got {action!r}")
    if state.kind == "uncovered" and action != "note":
        raise DecisionRefused(
            "an uncovered row names no institute: only a note can be added",
            code="uncovered",
            message="未覆盖企业没有建议机构,只能填写备注。",
        )
    if action == "reject" and state.locked:
        raise DecisionRefused(
            "the pair is locked: unlock it before rejecting",
            code="locked",
            message="该配对已锁定,请先解锁再驳回。",
        )
    if action == "lock" and state.status == "rejected":
        raise DecisionRefused(
            "a rejected pair cannot be locked",
            code="rejected",
            message="已驳回的配对不能锁定。",
        )
    if action in ("approve", "reject"):
        status = "approved" if action == "approve" else "rejected"
        return {"status": status, "decided_by": user_id, "decided_at": now}
    if action == "reset":
        return {"status": "pending", "decided_by": None, "decided_at": None}
    if action in ("lock", "unlock"):
        return {"locked": action == "lock"}
    return {}


def clean_note(note: str | None, action: str) -> str | None:
    """The note to store (None: unchanged); 422 when too long or missing for ``note``."""
    if note is None:
        if action == "note":
            raise InvalidRequest("action 'note' needs a note")
        return None
    cleaned = normalise_text(note)
    if len(cleaned) > NOTE_MAX:
        raise InvalidRequest(f"note exceeds {NOTE_MAX} characters")
    return cleaned


def decide(
    session: Session,
    *,
    user: auth.Principal,
    item_id: int,
    action: str,
    version: int,
    note: str | None = None,
    campaign_id: int | None = None,
) -> ShortlistItem:
    """Apply one staff decision (the rules of this module) and commit it.

    Parameters
    ----------
    user : the staff member deciding.
    item_id, version : the item and the version the caller saw.
    note : saved with the action when given (see :func:`clean_note`).
    campaign_id : when given, the item must belong to this campaign (else NotFound).

    Returns
    -------
    ShortlistItem
        The item as stored after the decision.

    Raises
    ------
    NotFound, StaleVersion, DecisionRefused, InvalidRequest
    """
    item = session.get(ShortlistItem, item_id)
    if item is None or (campaign_id is not None and item.campaign_id != campaign_id):
        raise NotFound(f"shortlist item {item_id} not found")
    if item.version != version:
        raise _stale(item_id, version, item.version)
    now = datetime.now(UTC)
    values = decision_values(item, action, user_id=user.user_id, now=now)
    cleaned = clean_note(note, action)
    if cleaned is not None:
        values["note"] = cleaned
    before = {"status": item.status, "locked": item.locked, "note": item.note}
    result = session.execute(
        update(ShortlistItem)
        .where(ShortlistItem.id == item_id, ShortlistItem.version == version)
        .values(**values, version=version + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        session.expire_all()
        current = session.get(ShortlistItem, item_id)
        raise _stale(item_id, version, current.version if current is not None else None)
    session.add(
        AuditLog(
            user_id=user.user_id,
            action=f"shortlist.{action}",
            entity="shortlist_item",
            entity_id=str(item_id),
            detail={
                "campaign_id": item.campaign_id,
                "from_version": version,
                "version": version + 1,
                "before": before,
                "after": {k: v for k, v in values.items() if k != "decided_at"},
                "via": user.via,
            },
        )
    )
    session.commit()
    session.refresh(item)
    return item


def _stale(item_id: int, seen: int, current: int | None) -> StaleVersion:
    return StaleVersion(
        f"shortlist item {item_id} is at version {current}, not {seen}; reload it",
        seen=seen,
        current=current,
    )
