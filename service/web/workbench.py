"""Rendering shared by the institute and enterprise-bounty pages (``portal_institute``,
``portal_bounties``): the portal layout's context with safe defaults, so a page renders in
the portal layout (``portal/base.html``) or, where that layout is absent, the staff one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from service import auth
from service.web.common import TEMPLATES_DIR, render

LAYOUT_DEFAULTS: dict[str, Any] = {"nav": [], "portal_role_labels": {}, "unread_messages": 0}


def layout() -> str:
    """The layout the pages extend: the portal's when installed, else the staff one."""
    portal = "portal/base.html"
    return portal if (TEMPLATES_DIR / portal).is_file() else "staff/base.html"


def render_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    user: auth.Principal | None = None,
    status_code: int = 200,
    flashes: Sequence[tuple[str, str]] = (),
) -> HTMLResponse:
    """Render a workbench page with the layout's context keys always present."""
    ctx = {**LAYOUT_DEFAULTS, "layout": layout(), **context}
    return render(request, template, ctx, user=user, status_code=status_code, flashes=flashes)
