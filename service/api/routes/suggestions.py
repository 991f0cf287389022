"""Partner suggestions: for a need or an enterprise, for free text, and explicit pair scores.

Enterprises may ask only about their own organisation and needs (others answer 404), never see
the excluded list, and get evidence only from documents they may see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.encoding import external_of, need_key
from service import auth, crud, schemas
from service.api import convert
from service.api.deps import CurrentUser, RecommenderDep, SessionDep, release_connection
from service.errors import NotFound
from service.models import Need, Organisation

router = APIRouter(tags=["suggestions"])


def org_names(session: Session, org_ids: Sequence[str]) -> dict[str, str]:
    if not org_ids:
        return {}
    rows = session.execute(
        select(Organisation.external_id, Organisation.name).where(
            Organisation.external_id.in_(set(org_ids))
        )
    )
    return {str(e): str(n) for e, n in rows}


def _visible_suggestions(
    session: Session, user: auth.Principal, suggestions: Sequence[Any]
) -> list[schemas.SuggestionPublic]:
    """Public suggestions; for enterprise callers, evidence that cites another organisation's
    need is removed (defence in depth: the recommender already filters confidential needs)."""
    names = org_names(session, [str(s.org_id) for s in suggestions])
    out = [convert.suggestion(s, names) for s in suggestions]
    if user.is_staff:
        return out
    cited = {e.doc_id for s in out for e in s.evidence} | {
        e.query_doc_id for s in out for e in s.evidence if e.query_doc_id
    }
    cited |= {s.query_id for s in out if s.query_id}
    foreign = set()
    if cited:
        foreign = {
            str(x)
            for x in session.scalars(
                select(Need.external_id).where(
                    Need.external_id.in_(cited), Need.org_id != user.org_id
                )
            )
        }
    if not foreign:
        return out
    cleaned = []
    for s in out:
        evidence = [
            e for e in s.evidence if e.doc_id not in foreign and e.query_doc_id not in foreign
        ]
        query_id = None if s.query_id in foreign else s.query_id
        cleaned.append(s.model_copy(update={"evidence": evidence, "query_id": query_id}))
    return cleaned


@router.post(
    "/suggestions",
    response_model=schemas.SuggestionsResponse,
    summary="Suggested partner organisations for a need or an enterprise",
)
def suggestions(
    body: schemas.SuggestionRequest,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    recommender: RecommenderDep,
) -> schemas.SuggestionsResponse:
    metrics = request.app.state.metrics
    excluded: list[schemas.ExclusionPublic] = []
    if body.need_id is not None:
        need = crud.get_need(session, viewer=user, external_id=body.need_id)
        release_connection(session)
        with metrics.time_suggestion("need"):
            ranked = recommender.rank_for_need(need_key(need.external_id), body.k)
        found = list(ranked.suggestions)
        if user.is_staff:
            excluded = [convert.exclusion(e) for e in ranked.excluded]
    else:
        enterprise_id = body.enterprise_id or ""  # SuggestionRequest guarantees exactly one
        if not user.is_staff and enterprise_id != user.org_external_id:
            raise NotFound(f"organisation {enterprise_id!r} not found")
        crud.org_by_external_id(session, external_id=enterprise_id)
        release_connection(session)
        with metrics.time_suggestion("enterprise"):
            found = list(recommender.suggest_for_enterprise(enterprise_id, body.k))
    return schemas.SuggestionsResponse(
        suggestions=_visible_suggestions(session, user, found), excluded=excluded
    )


@router.post(
    "/match",
    response_model=schemas.SuggestionsResponse,
    summary="Suggested partner organisations for a free-text description (≤ 2000 chars)",
)
def match_text(
    body: schemas.MatchRequest,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    recommender: RecommenderDep,
) -> schemas.SuggestionsResponse:
    viewer = None if user.is_staff else user.org_external_id
    release_connection(session)
    with request.app.state.metrics.time_suggestion("text"):
        found = list(recommender.suggest_for_text(body.text, body.k, viewer_org_id=viewer))
    return schemas.SuggestionsResponse(suggestions=_visible_suggestions(session, user, found))


@router.post(
    "/pair-scores",
    response_model=schemas.PairScoresResponse,
    summary="Scores of explicit (need, organisation) pairs, as they would rank",
)
def pair_scores(
    body: schemas.PairScoresRequest,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    recommender: RecommenderDep,
) -> schemas.PairScoresResponse:
    for need_id in {p.need_id for p in body.pairs}:
        crud.get_need(session, viewer=user, external_id=need_id)  # 404 unless visible
    pairs = [(need_key(p.need_id), p.org_id) for p in body.pairs]
    viewer = None if user.is_staff else user.org_external_id
    release_connection(session)
    with request.app.state.metrics.time_suggestion("pairs"):
        scores = recommender.score_pairs(pairs, viewer_org_id=viewer)
    return schemas.PairScoresResponse(
        scores=[
            schemas.PairScore(need_id=external_of(q), org_id=o, score=float(s))
            for (q, o), s in zip(pairs, scores, strict=True)
        ]
    )
