"""The old staff address of the account page: ``/staff/accounts/new`` redirects to the one
account page, ``/portal/staff/accounts`` (:mod:`service.web.portal_accounts`), which opens
enterprise and institute accounts alike.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse

from service.web.common import StaffUserDep, page_router

router = page_router("/staff")


@router.get("/accounts/new", name="staff_account_new")
def new_account(request: Request, user: StaffUserDep, q: str = "") -> RedirectResponse:
    """303 to the account page (a name search ``q`` is carried over)."""
    target = request.url_for("portal_staff_accounts").path
    if q:
        target += "?" + urlencode({"q": q[:50]})
    return RedirectResponse(target, status_code=303)
