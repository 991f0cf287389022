"""Bounties (揭榜榜单): the published list for every role; bids (enterprises see only their
own); recommended respondents (staff, or the poster) and bid ranking (staff; the poster once
staff opened it). Applications (揭榜申报) go through :func:`service.applications.submit_application`;
enterprises propose tackle bounties from their needs, staff publish them. Lifecycle moves
(:mod:`service.bounty_lifecycle`): staff; the poster may withdraw before applications open."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field

from service import applications, auth, crud, schemas
from service import bounty_lifecycle as bl
from service.api import convert
from service.api.deps import (
    CurrentUser,
    Pagination,
    RecommenderDep,
    SessionDep,
    StaffUser,
    release_connection,
)
from service.api.routes.suggestions import _visible_suggestions
from service.enums import BountyState
from service.errors import Forbidden, InvalidRequest, NotFound, error_response
from service.forms import FormErrors
from service.snapshot import bid_infos, bounty_info

log = logging.getLogger(__name__)

router = APIRouter(prefix="/bounties", tags=["bounties"])

ExtId = Annotated[str, Path(min_length=1, max_length=64)]


def _visible_bounty(session: SessionDep, user: auth.Principal, external_id: str) -> Any:
    """A bounty the caller may see: proposals only for their poster and staff."""
    bounty = crud.get_bounty(session, external_id=external_id)
    if (
        bl.state_of(bounty.status) in bl.UNPUBLISHED
        and not user.is_staff
        and bounty.poster_org_id != user.org_id
    ):
        raise NotFound(f"bounty {external_id!r} not found")
    return bounty


def _for_viewer(
    user: auth.Principal, items: list[schemas.BountyPublic]
) -> list[schemas.BountyPublic]:
    """Enterprises other than the poster do not learn which need/capability backs a bounty."""
    if user.is_staff:
        return items
    return [
        b
        if b.poster_org_external_id == user.org_external_id
        else b.model_copy(update={"need_external_id": None, "capability_external_id": None})
        for b in items
    ]


@router.get("", response_model=schemas.Page[schemas.BountyPublic], summary="List bounties")
def list_bounties(
    session: SessionDep,
    user: CurrentUser,
    page: Pagination,
    status: Annotated[BountyState | None, Query()] = None,
    kind: Annotated[Literal["tackle", "transfer"] | None, Query()] = None,
) -> schemas.Page[schemas.BountyPublic]:
    rows, total = crud.list_bounties(
        session, limit=page.limit, offset=page.offset, status=status, kind=kind, viewer=user
    )
    counts = crud.bid_counts(session, bounty_ids=[b.id for b in rows])
    return schemas.Page(
        items=_for_viewer(user, convert.bounties(session, rows, counts)),
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{external_id}", response_model=schemas.BountyPublic, summary="One bounty")
def get_bounty(external_id: ExtId, session: SessionDep, user: CurrentUser) -> schemas.BountyPublic:
    bounty = _visible_bounty(session, user, external_id)
    counts = crud.bid_counts(session, bounty_ids=[bounty.id])
    return _for_viewer(user, convert.bounties(session, [bounty], counts))[0]


@router.get(
    "/{external_id}/bids",
    response_model=schemas.Page[schemas.BidPublic],
    summary="Bids on a bounty (enterprises: only their own)",
)
def list_bids(
    external_id: ExtId, session: SessionDep, user: CurrentUser, page: Pagination
) -> schemas.Page[schemas.BidPublic]:
    bounty = _visible_bounty(session, user, external_id)
    rows, total = crud.list_bids(
        session, viewer=user, bounty=bounty, limit=page.limit, offset=page.offset
    )
    return schemas.Page(
        items=convert.bids(session, rows), total=total, limit=page.limit, offset=page.offset
    )


@router.get(
    "/{external_id}/respondents",
    response_model=schemas.SuggestionsResponse,
    summary="Recommended respondents for a bounty (staff, or the posting enterprise)",
)
def respondents(
    external_id: ExtId,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    recommender: RecommenderDep,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> schemas.SuggestionsResponse:
    bounty = crud.get_bounty(session, external_id=external_id)
    if not user.is_staff and bounty.poster_org_id != user.org_id:
        raise NotFound(f"bounty {external_id!r} has no respondents visible to you")
    info = bounty_info(session, bounty)
    release_connection(session)
    with request.app.state.metrics.time_suggestion("bounty"):
        ranked = recommender.respondents_for_bounty(info, k)
    excluded = [convert.exclusion(e) for e in ranked.excluded] if user.is_staff else []
    return schemas.SuggestionsResponse(
        suggestions=_visible_suggestions(session, user, list(ranked.suggestions)),
        excluded=excluded,
    )


@router.get(
    "/{external_id}/bid-ranking",
    response_model=schemas.BidRanking,
    summary="Rank the bids of a bounty (staff): affinity, proposal similarity, price",
)
def bid_ranking(
    external_id: ExtId,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    recommender: RecommenderDep,
    method: Annotated[Literal["lowest", "budget"], Query(description="price scoring")] = "lowest",
) -> schemas.BidRanking:
    """Respondent affinity comes from the recommender (consortium members checked by the
    group rule), proposal similarity from the sentence encoder when available; the ranking
    is :func:`matcher.bids.rank_bids` (ineligible bids last, with reason codes). Staff always;
    the posting enterprise once staff opened the ranking to it."""
    bounty = crud.get_bounty(session, external_id=external_id)
    if not user.is_staff:
        if bounty.poster_org_id != user.org_id:
            raise Forbidden("requires role: staff")
        if not bounty.ranking_open:
            raise Forbidden("the ranking is not open to the poster yet", code="ranking_closed")
    ranking = rank_bounty_bids(request, session, recommender, bounty, method)
    if user.is_staff:
        return ranking
    return poster_ranking(session, bounty, ranking)


def poster_ranking(
    session: SessionDep, bounty: Any, ranking: schemas.BidRanking
) -> schemas.BidRanking:
    """The ranking with bid ids replaced by the application numbers the poster sees
    (``#1`` = first submitted)."""
    numbers = {
        b.external_id: n
        for n, b in enumerate(applications.applications_of(session, bounty=bounty), 1)
    }
    return ranking.model_copy(
        update={
            "ranking": [
                r.model_copy(update={"bid_external_id": f"#{numbers.get(r.bid_external_id, 0)}"})
                for r in ranking.ranking
            ]
        }
    )


def rank_bounty_bids(
    request: Request, session: SessionDep, recommender: Any, bounty: Any, method: str
) -> schemas.BidRanking:
    """The bid ranking of ``bounty`` (shared by the API and the poster's page)."""
    from matcher.bids import rank_bids
    from matcher.pipeline import bid_inputs

    external_id = bounty.external_id
    if method == "budget" and bounty.budget is None:
        raise InvalidRequest("method 'budget' needs a bounty budget", code="invalid_parameter")
    info = bounty_info(session, bounty)
    bids = bid_infos(session, bounty)
    from service.funding import funding_splits, priority_rule

    funding = funding_splits(session, bounty)
    if not bids:
        return schemas.BidRanking(bounty_external_id=external_id, method=method, ranking=[])
    release_connection(session)
    with request.app.state.metrics.time_suggestion("bids"):
        inputs = bid_inputs(recommender, info, bids)
        result = rank_bids(
            bids,
            affinity=inputs.affinity,
            similarity=inputs.similarity,
            budget=info.budget,
            method=method,  # type: ignore[arg-type]
            eligibility=inputs.reasons,
            ineligible="rank_last",
            funding=funding,
            priority=priority_rule(request.app.state.settings),
        )
    out = [
        schemas.RankedBid(
            bid_external_id=b.bid_id,
            respondent_org_external_id=b.respondent_org_id,
            rank=b.rank if b.rank is not None else len(result.ranked) + n + 1,
            score=float(b.total),
            price=float(b.price),
            detail={
                "eligible": b.eligible,
                "reasons": list(b.reasons),
                "reason_text": b.reason_text,
                "affinity": round(b.affinity, 4),
                "similarity": round(b.similarity, 4),
                "maturity": round(b.maturity, 4),
                "price_score": round(b.price_score, 4),
                "quality": round(b.quality, 4),
                "priority": b.priority,
                "priority_part": round(b.priority_part, 4),
                "academic_share": None if b.academic_share is None else round(b.academic_share, 4),
            },
        )
        for n, b in enumerate((*result.ranked, *result.excluded))
    ]
    return schemas.BidRanking(bounty_external_id=external_id, method=method, ranking=out)


# --- applications (揭榜申报) and proposals ----------------------------------------------------


class ApplicationCreate(BaseModel):
    """An application: proposal, price (万元) and consortium members (organisation ids)."""

    proposal: str = Field(min_length=1, max_length=applications.PROPOSAL_MAX)
    price: float = Field(ge=0, le=applications.PRICE_MAX)
    members: list[str] = Field(default_factory=list, max_length=applications.MAX_MEMBERS)


class BountyProposal(BaseModel):
    """A tackle bounty proposed from one of the caller's needs (published by staff)."""

    need_external_id: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=5_000)
    budget: float | None = Field(default=None, ge=0, le=applications.PRICE_MAX)
    deadline: date | None = None


def form_error_response(exc: FormErrors) -> Any:
    """422 with one ``errors`` entry per field (the pages' Chinese messages)."""
    return error_response(
        422,
        exc.detail,
        exc.code,
        errors=[
            {"loc": ["body", k], "msg": v, "type": "value_error"} for k, v in exc.fields.items()
        ],
    )


@router.post(
    "/{external_id}/applications",
    response_model=schemas.BidPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Apply to a bounty (揭榜申报; institute or enterprise users)",
    responses={422: {"description": "invalid field, or ineligible (code `ineligible`)"}},
)
def apply(
    external_id: ExtId, body: ApplicationCreate, session: SessionDep, user: CurrentUser
) -> Any:
    """Eligibility (corporate group, bounty kind, region) is checked at submission; a refusal
    (422, code ``ineligible``) says why in Chinese and stores nothing."""
    try:
        bid = applications.submit_application(
            session,
            applicant=user,
            bounty_external_id=external_id,
            proposal=body.proposal,
            price=body.price,
            members=body.members,
        )
    except FormErrors as exc:
        return form_error_response(exc)
    except applications.ApplicationRefused as exc:
        session.rollback()
        return error_response(422, exc.detail, exc.code, reasons=exc.reasons, codes=exc.codes)
    session.commit()
    return convert.bids(session, [bid])[0]


class PosterApplication(BaseModel):
    """An application as its bounty's poster sees it: no bid id (those stay with the
    applicant and staff), numbered in submission order."""

    number: int
    respondent_org_external_id: str
    respondent_name: str
    members: list[str]
    price: float
    proposal: str
    status: str
    submitted_at: datetime | None = None


@router.get(
    "/{external_id}/applications",
    response_model=list[PosterApplication],
    summary="Applications to a bounty (its poster and staff)",
)
def bounty_applications(
    external_id: ExtId, session: SessionDep, user: CurrentUser
) -> list[PosterApplication]:
    bounty = applications.poster_bounty(session, user=user, bounty_external_id=external_id)
    return [
        PosterApplication(
            number=n,
            respondent_org_external_id=b.respondent.external_id,
            respondent_name=b.respondent.name,
            members=list(b.members or []),
            price=b.price,
            proposal=b.proposal,
            status=b.status,
            submitted_at=b.submitted_at,
        )
        for n, b in enumerate(applications.applications_of(session, bounty=bounty), start=1)
    ]


@router.post(
    "/proposals",
    response_model=schemas.BountyPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Propose a tackle bounty from one of my needs (enterprise; staff publish it)",
)
def propose(body: BountyProposal, session: SessionDep, user: CurrentUser) -> Any:
    try:
        fields = applications.parse_bounty_proposal(
            title=body.title,
            description=body.description,
            budget=body.budget,
            deadline=body.deadline,
        )
        bounty = applications.propose_bounty(
            session, user=user, need_external_id=body.need_external_id, fields=fields
        )
    except FormErrors as exc:
        return form_error_response(exc)
    session.commit()
    return convert.bounties(session, [bounty], {})[0]


@router.post(
    "/{external_id}/publish",
    response_model=schemas.BountyPublic,
    summary="Publish a proposed bounty (staff)",
)
def publish(
    external_id: ExtId,
    session: SessionDep,
    user: StaffUser,
    body: schemas.BountyPublish | None = None,
) -> schemas.BountyPublic:
    """征集 → 论证 → 发榜 → 申报中 through the lifecycle table (each step audited); a refused
    step (no closing date, or one in the past) is a 422 ``illegal_transition``."""
    deadline = body.deadline if body is not None else None
    bounty = applications.publish_bounty(
        session, user=user, bounty_external_id=external_id, deadline=deadline
    )
    session.commit()
    return convert.bounties(session, [bounty], crud.bid_counts(session, bounty_ids=[bounty.id]))[0]


@router.post(
    "/{external_id}/open-ranking",
    response_model=schemas.BountyPublic,
    summary="Open the bid ranking to the bounty's poster (staff)",
)
def open_ranking(external_id: ExtId, session: SessionDep, user: StaffUser) -> schemas.BountyPublic:
    bounty = applications.open_ranking(session, user=user, bounty_external_id=external_id)
    session.commit()
    return convert.bounties(session, [bounty], crud.bid_counts(session, bounty_ids=[bounty.id]))[0]


@router.post(
    "/{external_id}/transition",
    response_model=schemas.BountyPublic,
    summary="Move a bounty through its lifecycle (staff; the poster may withdraw early)",
)
def transition_bounty(
    external_id: ExtId, body: schemas.BountyTransition, session: SessionDep, user: CurrentUser
) -> schemas.BountyPublic:
    """One move of :mod:`service.bounty_lifecycle` (audited); a refused move is a 422 with
    the reasons in Chinese (``code`` ``illegal_transition``), a move the caller may not make
    a 403."""
    bounty = crud.get_bounty(session, external_id=external_id)
    award = None
    if body.to == bl.AWARDED and body.bid_external_id is not None and body.price is not None:
        award = bl.Award(
            bid_id=body.bid_external_id,
            price=body.price,
            funding_enterprise=body.funding_enterprise,
            funding_academic=body.funding_academic,
        )
    move = bl.Move(target=body.to, reason=body.reason, award=award, deadline=body.deadline)
    bl.transition(session, user=user, bounty=bounty, move=move)
    session.commit()
    counts = crud.bid_counts(session, bounty_ids=[bounty.id])
    return convert.bounties(session, [bounty], counts)[0]
