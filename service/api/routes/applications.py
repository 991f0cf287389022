"""Applications (揭榜申报) across bounties: the caller's organisation's own, and staff status
changes (each one a message to the applicant)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from service import applications, schemas
from service.api import convert
from service.api.deps import CurrentUser, Pagination, SessionDep, StaffUser
from service.api.routes.bounties import form_error_response
from service.errors import Forbidden
from service.forms import FormErrors

router = APIRouter(prefix="/applications", tags=["bounties"])

ExtId = Annotated[str, Path(min_length=1, max_length=64)]
# applications.REVIEW_STATUSES: 中榜/未中榜 come from the award, 已撤回 from the applicant.
Status = Literal["submitted", "qualified", "disqualified"]


class StatusChange(BaseModel):
    status: Status
    note: str = Field(default="", max_length=2_000)


@router.get(
    "",
    response_model=schemas.Page[schemas.BidPublic],
    summary="My organisation's applications with their status",
)
def my_applications(
    session: SessionDep, user: CurrentUser, page: Pagination
) -> schemas.Page[schemas.BidPublic]:
    if user.org_id is None:
        raise Forbidden("only users bound to an organisation have applications")
    rows, total = applications.list_applications(
        session, org_id=user.org_id, limit=page.limit, offset=page.offset
    )
    return schemas.Page(
        items=convert.bids(session, rows), total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "/{bid_external_id}/status",
    response_model=schemas.BidPublic,
    summary="Change an application's status (staff; the applicant gets a message)",
)
def change_status(
    bid_external_id: ExtId, body: StatusChange, session: SessionDep, user: StaffUser
) -> Any:
    """The staff page's rule (:func:`service.applications.set_application_status`): 资格审查
    未通过 needs a ``note``, else 422 with the field's Chinese message."""
    try:
        bid = applications.set_application_status(
            session,
            user=user,
            bid_external_id=bid_external_id,
            status=body.status,
            note=body.note,
        )
    except FormErrors as exc:
        session.rollback()
        return form_error_response(exc)
    session.commit()
    return convert.bids(session, [bid])[0]
