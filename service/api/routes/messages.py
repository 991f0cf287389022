"""The caller's inbox (站内信) through the API, the same rows and rules as the portal's
inbox page (:mod:`service.portal_crud`): list (``unread_only`` filters), mark one read, mark
all read. A message of another user is a 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service import portal_crud as pc
from service import schemas
from service.api.deps import CurrentUser, Pagination, SessionDep

router = APIRouter(prefix="/messages", tags=["messages"])

MessageId = Annotated[int, Path(ge=1, le=2**31)]


@router.get("", response_model=schemas.Inbox, summary="My messages, newest first")
def inbox(
    session: SessionDep,
    user: CurrentUser,
    page: Pagination,
    unread_only: Annotated[bool, Query()] = False,
) -> schemas.Inbox:
    rows, total = pc.list_messages(
        session,
        user_id=user.user_id,
        limit=page.limit,
        offset=page.offset,
        unread_only=unread_only,
    )
    return schemas.Inbox(
        items=[schemas.MessagePublic.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
        unread=pc.unread_count(session, user_id=user.user_id),
    )


def _marked(session: SessionDep, user_id: int, n: int) -> schemas.MarkedRead:
    session.commit()
    return schemas.MarkedRead(marked=n, unread=pc.unread_count(session, user_id=user_id))


@router.post(
    "/{message_id}/read", response_model=schemas.MarkedRead, summary="Mark one message read"
)
def read_one(message_id: MessageId, session: SessionDep, user: CurrentUser) -> schemas.MarkedRead:
    n = pc.mark_read(session, user_id=user.user_id, message_id=message_id)
    return _marked(session, user.user_id, n)


@router.post("/read-all", response_model=schemas.MarkedRead, summary="Mark all my messages read")
def read_all(session: SessionDep, user: CurrentUser) -> schemas.MarkedRead:
    n = pc.mark_read(session, user_id=user.user_id)
    return _marked(session, user.user_id, n)
