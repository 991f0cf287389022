"""站内信: every signed-in user's inbox (newest first), read one (marks it read and opens the
page it points to), mark all read. The header of every page shows the unread count."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from service import portal_crud as pc
from service.api.deps import SessionDep
from service.errors import NotFound
from service.models import Message
from service.web.common import page_router
from service.web.portal_common import AnyPortalForm, AnyPortalPage, portal_error, render_portal

router = page_router("/portal")
PAGE_SIZE = 50


@router.get("/messages", name="portal_messages", response_class=HTMLResponse)
def portal_messages(
    request: Request, db: SessionDep, user: AnyPortalPage, page: int = 1
) -> Response:
    """The inbox, PAGE_SIZE messages a page."""
    page = max(1, min(page, 10_000))
    rows, total = pc.list_messages(
        db, user_id=user.user_id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    return render_portal(
        request,
        "portal/messages.html",
        {
            "messages": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
        },
        user=user,
    )


@router.post("/messages/{message_id}/read", name="portal_message_read")
def portal_message_read(
    message_id: int, request: Request, db: SessionDep, user: AnyPortalForm
) -> Response:
    """Mark one message read and go to the page it is about (or back to the inbox)."""
    try:
        pc.mark_read(db, user_id=user.user_id, message_id=message_id)
    except NotFound:
        return portal_error(request, 404, "未找到", "该消息不存在。", user=user)
    link = db.scalar(select(Message.link).where(Message.id == message_id))
    db.commit()
    target = link if link and link.startswith("/") and not link.startswith("//") else None
    return RedirectResponse(target or request.url_for("portal_messages").path, status_code=303)


@router.post("/messages/read-all", name="portal_messages_read_all")
def portal_messages_read_all(request: Request, db: SessionDep, user: AnyPortalForm) -> Response:
    """Mark every message of mine read."""
    pc.mark_read(db, user_id=user.user_id)
    db.commit()
    path = request.url_for("portal_messages").path
    return RedirectResponse(f"{path}?done=messages_read", status_code=303)
