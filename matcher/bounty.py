"""Bounty lists (揭榜制) on top of the recommender: eligible respondents, consortium
suggestions (联合体) and the inputs of bid ranking (择优).

Used through :meth:`matcher.pipeline.Recommender.respondents_for_bounty`,
:meth:`~matcher.pipeline.Recommender.consortia_for_bounty` and :func:`bid_inputs`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from matcher.consortium import ConsortiumResult, suggest_consortia
from matcher.content import ADMIN_MARKERS, technical_sentences
from matcher.errors import InvalidParameter
from matcher.features import Query
from matcher.orgscoring import COLLECTION_KINDS, ENTERPRISE_KINDS, CollectionName
from matcher.types import BidInfo, BountyInfo, Exclusion, RankedOrgs

if TYPE_CHECKING:
    from matcher.pipeline import Recommender


class BidInputs(NamedTuple):
    """Per bid id: respondent affinity and proposal similarity in [0, 1], reason codes."""

    affinity: dict[str, float]
    similarity: dict[str, float]
    reasons: dict[str, list[str]]


#: Markers of administrative text (poster, money, terms, deadlines, contact): the one
#: classifier of :mod:`matcher.content`, kept under its former name.
ADMIN_SENTENCE = ADMIN_MARKERS


def _collection(bounty: BountyInfo) -> CollectionName:
    return "capabilities" if bounty.kind == "tackle" else "needs"


def respondents(
    rec: Recommender,
    bounty: BountyInfo,
    k: int = 10,
    *,
    candidates: Collection[str] | None = None,
    members: Mapping[str, Sequence[str]] | None = None,
    k_excluded: int = 10,
) -> RankedOrgs:
    """Bounty → ranked eligible respondents and the excluded high scorers (see
    :meth:`matcher.pipeline.Recommender.respondents_for_bounty`)."""
    members = members or {}
    attached_id = bounty.need_id if bounty.kind == "tackle" else bounty.capability_id
    attached = rec.documents.get(attached_id) if attached_id is not None else None
    text = "。".join(t for t in (bounty.title, bounty.text) if t.strip())
    if not text and attached is not None:
        text = attached.full_text
    if not text:
        raise InvalidParameter(f"bounty {bounty.id!r} has no text")
    query = Query(
        bounty.id,
        text,
        bounty.poster_org_id,
        attached.field if attached is not None else None,
        attached.keywords if attached is not None else (),
    )

    def check(org_id: str) -> list[Exclusion]:
        return rec.policy.check_bounty(
            bounty, org_id, members=members.get(org_id, ()), documents=rec.documents
        )

    return rec.rank_queries(
        [query],
        _collection(bounty),
        viewer_org_id=bounty.poster_org_id,
        check=check,
        k=k,
        k_excluded=k_excluded,
        restrict_to=candidates,
        pools=members,
    )


def consortia(
    rec: Recommender,
    bounty: BountyInfo,
    *,
    n_candidates: int = 15,
    max_aspects: int = 6,
    min_aspect_chars: int = 8,
    **options: Any,
) -> ConsortiumResult:
    """Consortium suggestions (see
    :meth:`matcher.pipeline.Recommender.consortia_for_bounty`)."""
    ranked = respondents(rec, bounty, k=n_candidates)
    org_ids = [s.org_id for s in ranked.suggestions]
    text = bounty.text or bounty.title
    # Aspects are the technical spans of the bounty text (company profile, money, terms
    # and contact left out by the shared classifier of matcher.content).
    aspects = [a for a in technical_sentences(text) if len(a) >= min_aspect_chars][:max_aspects]
    if len(org_ids) < 2 or len(aspects) < 2:
        return ConsortiumResult((), None)
    collection = _collection(bounty)
    kinds = COLLECTION_KINDS[collection]
    retriever = rec.retrievers.get(collection)
    encoder = rec.sentence_encoder or getattr(retriever, "encoder", None)
    if encoder is None:
        raise InvalidParameter("consortium suggestions need a sentence encoder")
    aspect_vecs = encoder.encode_queries(aspects)
    row_of = {d: i for i, d in enumerate(getattr(retriever, "doc_ids", None) or ())}
    stored = getattr(retriever, "doc_vectors", None)
    sim = np.zeros((len(aspects), len(org_ids)), dtype=np.float64)
    for j, org in enumerate(org_ids):
        docs = [
            d
            for d in rec.documents.values()
            if d.org_id == org and d.kind in kinds and rec.active(d)
        ]
        if not docs:
            continue
        if stored is not None and all(d.id in row_of for d in docs):
            vecs = np.asarray(stored)[[row_of[d.id] for d in docs]]
        else:
            vecs = encoder.encode_documents([d.full_text for d in docs])
        sim[:, j] = (aspect_vecs @ vecs.T).max(axis=1)
    lo = np.median(sim, axis=1, keepdims=True)
    hi = sim.max(axis=1, keepdims=True)
    rel = np.clip((sim - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)
    lead_allowed = None
    if bounty.kind == "transfer":
        lead_allowed = np.array(
            [rec.orgs[o].kind in ENTERPRISE_KINDS and rec.orgs[o].in_region for o in org_ids]
        )
    return suggest_consortia(
        rel, org_ids, lead_allowed=lead_allowed, aspect_labels=aspects, **options
    )


def bid_inputs(recommender: Any, bounty: BountyInfo, bids: Sequence[BidInfo]) -> BidInputs:
    """Inputs of :func:`matcher.bids.rank_bids` for the bids of one bounty (择优).

    ``recommender`` is a :class:`~matcher.pipeline.Recommender` (or anything with
    ``respondents_for_bounty``).

    affinity : the respondent's (or consortium's) score for the bounty, relative to the
        best score among the bidders and the recommended respondents (ranker scores are
        unbounded, rank_bids wants [0, 1]); 0 for an ineligible respondent.
    similarity : cosine of each proposal with the bounty text, clipped to [0, 1].
    reasons : the bounty-rule reason codes of each ineligible bid (group conflicts of the
        respondent or of any consortium member, wrong kind, region, ...).
    """
    if not bids:
        return BidInputs({}, {}, {})
    respondent_ids = {b.respondent_org_id for b in bids}
    bidders = recommender.respondents_for_bounty(
        bounty,
        k=len(respondent_ids),
        candidates=respondent_ids,
        members={b.respondent_org_id: list(b.members) for b in bids},
        k_excluded=len(respondent_ids),
    )
    recommended = recommender.respondents_for_bounty(bounty, k=10).suggestions
    best = max((s.score for s in (*bidders.suggestions, *recommended)), default=0.0)
    org_score = {
        s.org_id: max(s.score, 0.0) / best if best > 0 else 0.0 for s in bidders.suggestions
    }
    codes: dict[str, list[str]] = defaultdict(list)
    for e in bidders.excluded:
        codes[e.org_id].append(e.code)
    retriever = getattr(recommender, "retrievers", {}).get("capabilities")
    encoder = getattr(recommender, "sentence_encoder", None) or getattr(retriever, "encoder", None)
    similarity = dict.fromkeys((b.id for b in bids), 0.0)
    if encoder is not None:
        q = encoder.encode_queries(["。".join(t for t in (bounty.title, bounty.text) if t)])
        d = encoder.encode_documents([b.proposal or bounty.title for b in bids])
        similarity = {
            b.id: float(np.clip(x, 0.0, 1.0)) for b, x in zip(bids, d @ q[0], strict=True)
        }
    return BidInputs(
        affinity={b.id: org_score.get(b.respondent_org_id, 0.0) for b in bids},
        similarity=similarity,
        reasons={b.id: list(codes.get(b.respondent_org_id, ())) for b in bids},
    )
