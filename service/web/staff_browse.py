"""Staff browsers (需求库 / 单位库): needs and organisations with text search, filters
(field, city, status, kind, vetting) and pagination. Queries: :mod:`service.browse`."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from service import browse
from service.api.deps import SessionDep
from service.web.common import StaffUserDep, page_router, render

router = page_router("/staff")


def _links(request: Request, route: str, f: browse.Filters, pages: int) -> dict[str, str]:
    base = request.url_for(route).path
    out = {}
    if f.page > 1:
        out["prev"] = base + "?" + urlencode(f.query(page=f.page - 1))
    if f.page < pages:
        out["next"] = base + "?" + urlencode(f.query(page=f.page + 1))
    return out


@router.get("/needs", name="staff_needs", response_class=HTMLResponse)
def needs(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    """需求库: every need (confidential ones marked), newest first."""
    f = browse.Filters.parse(dict(request.query_params))
    page = browse.browse_needs(db, f)
    context = {
        "f": f,
        "page": page,
        "links": _links(request, "staff_needs", f, page.pages),
        "facets": browse.facet_values(db),
        "statuses": browse.NEED_STATUSES,
        "reviews": browse.REVIEW_STATUSES,
    }
    return render(request, "staff/browse_needs.html", context, user=user)


@router.get("/organisations", name="staff_organisations", response_class=HTMLResponse)
def organisations(request: Request, db: SessionDep, user: StaffUserDep) -> Response:
    """单位库: enterprises, universities, institutes, with their need and capability counts."""
    f = browse.Filters.parse(dict(request.query_params))
    page = browse.browse_organisations(db, f)
    ids = [o.id for o in page.rows]
    context = {
        "f": f,
        "page": page,
        "links": _links(request, "staff_organisations", f, page.pages),
        "facets": browse.facet_values(db),
        "kinds": browse.ORG_KINDS,
        "statuses": browse.ORG_STATUSES,
        "need_counts": browse.need_counts(db, ids),
        "cap_counts": browse.capability_counts(db, ids),
    }
    return render(request, "staff/browse_orgs.html", context, user=user)
