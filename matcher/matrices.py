"""Score and eligibility matrices for the solvers: (need or capability) × organisation and
enterprise × organisation, each cell the score the pair has in a ranked list.

Used through :meth:`matcher.pipeline.Recommender.pair_matrix` and
:meth:`~matcher.pipeline.Recommender.enterprise_matrix`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.constraints import CAPABILITY_ORG_KINDS
from matcher.errors import UnknownEntity
from matcher.features import Query
from matcher.orgscoring import OrgScorer
from matcher.types import OrgKind


class PairMatrix(NamedTuple):
    """Scores and hard constraints of rows × organisations, for the solvers.

    row_ids : need/capability ids (:func:`pair_matrix`) or enterprise ids
        (:func:`enterprise_matrix`), length n.
    org_ids : candidate organisations, length m.
    scores : float64 (n, m): the same score ``score_pairs`` / the ranked lists give.
    forbidden : bool (n, m): True where the pair is ineligible (group/same org, inactive,
        staff block, kind, region; whole row for an inactive or need-less row).
    best_query : object (n, m): the need id behind each enterprise score (None if the
        enterprise has no active need); equals the row id for :func:`pair_matrix`.
    best_match : object (n, m): the :class:`~matcher.features.Scored` match behind each
        score (None where ``best_query`` is None), for
        :meth:`~matcher.pipeline.Recommender.explain_match`: explaining a cell needs no
        second retrieval. Keep only the cells you will explain (each holds its features
        and documents).
    """

    row_ids: tuple[str, ...]
    org_ids: tuple[str, ...]
    scores: NDArray[np.float64]
    forbidden: NDArray[np.bool_]
    best_query: NDArray[np.object_]
    best_match: NDArray[np.object_]


def forbidden_mask(
    scorer: OrgScorer,
    owners: Sequence[str],
    row_keys: Sequence[Collection[str]],
    org_ids: Sequence[str],
    kinds: Sequence[OrgKind] | None,
    require_in_region: bool,
) -> NDArray[np.bool_]:
    """bool (n, m): group conflicts of each row's owner, staff blocks naming one of the
    row's keys (need/capability ids), and columns of the wrong kind or out of region."""
    mask = scorer.policy.conflict_mask(list(owners), list(org_ids))
    cols = {o: j for j, o in enumerate(org_ids)}
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, keys in enumerate(row_keys):
        for key in keys:
            by_key[key].append(i)
    for a, b in scorer.policy.blocks:  # blocks naming a row's need/capability id
        for key, org in ((a, b), (b, a)):
            if org in cols:
                for i in by_key.get(key, []):
                    mask[i, cols[org]] = True
    col_bad = np.array(
        [
            (kinds is not None and scorer.orgs[o].kind not in kinds)
            or (require_in_region and not scorer.orgs[o].in_region)
            for o in org_ids
        ],
        dtype=bool,
    ).reshape(len(org_ids))
    return np.asarray(mask | col_bad[None, :], dtype=bool)


def pair_matrix(
    scorer: OrgScorer,
    query_ids: Sequence[str],
    org_ids: Sequence[str],
    *,
    kinds: Sequence[OrgKind] | None = None,
    require_in_region: bool = False,
) -> PairMatrix:
    """Scores and eligibility of every (need or capability, organisation) pair.

    Row i, column j equals ``score_pairs([(query_ids[i], org_ids[j])])`` and
    ``forbidden[i, j]`` is True iff the per-pair check (with ``kinds`` and
    ``require_in_region``) reports an exclusion or the query is inactive.
    """
    for o in org_ids:
        if o not in scorer.orgs:
            raise UnknownEntity(f"unknown organisation {o!r}")
    n, m = len(query_ids), len(org_ids)
    scores = np.zeros((n, m), dtype=np.float64)
    best = np.empty((n, m), dtype=object)
    matches = np.full((n, m), None, dtype=object)
    owners: list[str] = []
    for i, qid in enumerate(query_ids):
        query, collection = scorer.pair_query(qid, None)
        scored = scorer.score_queries([query], collection, query.owner_org_id, org_ids)
        scores[i] = [scored[o].score for o in org_ids]
        best[i] = qid
        matches[i] = [scored[o] for o in org_ids]
        owners.append(scorer.doc(qid).org_id)
    forbidden = forbidden_mask(
        scorer, owners, [[q] for q in query_ids], org_ids, kinds, require_in_region
    )
    for i, qid in enumerate(query_ids):
        if not scorer.active(scorer.doc(qid)):
            forbidden[i] = True
    return PairMatrix(tuple(query_ids), tuple(org_ids), scores, forbidden, best, matches)


def enterprise_matrix(
    scorer: OrgScorer,
    enterprise_ids: Sequence[str],
    org_ids: Sequence[str],
    *,
    kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
    require_in_region: bool = False,
) -> PairMatrix:
    """Enterprise × partner scores for pairing campaigns (结对子): each cell is the best
    score over the enterprise's active needs (as in ``suggest_for_enterprise``),
    ``best_query`` names that need. An enterprise without active needs gets a forbidden
    row of zeros."""
    for o in [*enterprise_ids, *org_ids]:
        if o not in scorer.orgs:
            raise UnknownEntity(f"unknown organisation {o!r}")
    n, m = len(enterprise_ids), len(org_ids)
    scores = np.zeros((n, m), dtype=np.float64)
    best = np.full((n, m), None, dtype=object)
    matches = np.full((n, m), None, dtype=object)
    row_keys: list[list[str]] = []
    empty: list[int] = []
    for i, ent in enumerate(enterprise_ids):
        needs = [d for d in scorer.needs_of(ent) if scorer.active(d)]
        row_keys.append([d.id for d in needs])
        if not needs or not scorer.orgs[ent].active:
            empty.append(i)
            continue
        queries = [Query.from_document(d) for d in needs]
        scored = scorer.score_queries(queries, "capabilities", ent, org_ids)
        scores[i] = [scored[o].score for o in org_ids]
        best[i] = [scored[o].query.id for o in org_ids]
        matches[i] = [scored[o] for o in org_ids]
    forbidden = forbidden_mask(scorer, enterprise_ids, row_keys, org_ids, kinds, require_in_region)
    forbidden[empty] = True
    return PairMatrix(tuple(enterprise_ids), tuple(org_ids), scores, forbidden, best, matches)
