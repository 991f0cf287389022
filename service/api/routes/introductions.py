"""Introductions (对接申请) through the API, with the rules of the portal pages
(:mod:`service.portal_crud`: who sees which request, the steps and who takes each one).

* ``GET /introductions``: the caller's view (an enterprise its own requests, an institute
  those forwarded to it, staff every one; ``status`` filters);
* ``POST /introductions``: an enterprise (or staff on its behalf) asks for an introduction
  about one of its approved, open needs;
* ``GET /introductions/{id}``;
* ``POST /introductions/{id}/actions``: one step — staff ``forward`` / ``close``, the
  institute ``accept`` / ``decline`` (reason required), the enterprise ``signed`` /
  ``failed``. Each step messages the other parties, as on the pages.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status

from service import auth, crud, schemas
from service import portal_crud as pc
from service.api.deps import CurrentUser, Pagination, SessionDep
from service.errors import Forbidden
from service.models import Introduction

router = APIRouter(prefix="/introductions", tags=["introductions"])

IntroId = Annotated[int, Path(ge=1, le=2**31)]
Status = Literal["submitted", "forwarded", "negotiating", "signed", "failed"]


def public(intro: Introduction, viewer: auth.Principal) -> schemas.IntroductionPublic:
    """The introduction as ``viewer`` may see it (a confidential need's id and title withheld
    from institutes; the staff note not shown to the enterprise; the score to staff only)."""
    need = intro.need
    hide_need = viewer.is_institute and bool(need.confidential)
    return schemas.IntroductionPublic(
        id=intro.id,
        need_external_id=None if hide_need else need.external_id,
        need_title=None if hide_need else need.title,
        enterprise_external_id=intro.enterprise.external_id,
        enterprise_name=intro.enterprise.name,
        institute_external_id=intro.institute.external_id,
        institute_name=intro.institute.name,
        status=intro.status,
        status_label=pc.INTRO_LABELS.get(intro.status, intro.status),
        message=intro.message or "",
        staff_note=intro.staff_note if (viewer.is_staff or viewer.is_institute) else None,
        answer=intro.answer or "",
        outcome_reason=intro.outcome_reason or "",
        score=intro.score if viewer.is_staff else None,
        created_at=intro.created_at,
        forwarded_at=intro.forwarded_at,
        answered_at=intro.answered_at,
        outcome_at=intro.outcome_at,
    )


@router.get(
    "",
    response_model=schemas.Page[schemas.IntroductionPublic],
    summary="Introductions I may see (enterprise: mine; institute: forwarded to us; staff: all)",
)
def list_introductions(
    session: SessionDep,
    user: CurrentUser,
    page: Pagination,
    status: Annotated[list[Status] | None, Query(max_length=5)] = None,
) -> schemas.Page[schemas.IntroductionPublic]:
    if not (user.is_staff or user.org_id is not None):
        raise Forbidden("only staff or users bound to an organisation have introductions")
    rows, total = pc.list_introductions(
        session, viewer=user, limit=page.limit, offset=page.offset, status=status or None
    )
    return schemas.Page(
        items=[public(r, user) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post(
    "",
    response_model=schemas.IntroductionPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Request an introduction to an institute about my approved need (enterprise)",
)
def request_introduction(
    body: schemas.IntroductionCreate, session: SessionDep, user: CurrentUser
) -> schemas.IntroductionPublic:
    if not (user.is_enterprise or user.is_staff):
        raise Forbidden("requires role: enterprise or staff")
    need = crud.get_need(session, viewer=user, external_id=body.need_external_id)
    intro = pc.request_introduction(
        session,
        user=user,
        need=need,
        institute_external_id=body.institute_external_id,
        message=body.message,
    )
    session.commit()
    return public(intro, user)


@router.get("/{intro_id}", response_model=schemas.IntroductionPublic, summary="One introduction")
def get_introduction(
    intro_id: IntroId, session: SessionDep, user: CurrentUser
) -> schemas.IntroductionPublic:
    return public(pc.get_introduction(session, viewer=user, intro_id=intro_id), user)


@router.post(
    "/{intro_id}/actions",
    response_model=schemas.IntroductionPublic,
    summary="One step: forward/close (staff), accept/decline (institute), signed/failed",
)
def act(
    intro_id: IntroId, body: schemas.IntroductionAction, session: SessionDep, user: CurrentUser
) -> schemas.IntroductionPublic:
    """409 ``wrong_state`` when the request is not at that step, 403 when the caller is not
    the party that takes it, 422 for a missing reason (decline, failed, close)."""
    intro = pc.get_introduction(session, viewer=user, intro_id=intro_id)
    pc.advance_introduction(session, user=user, intro=intro, action=body.action, note=body.note)
    session.commit()
    return public(intro, user)
