"""Score and eligibility matrices for the solvers: (need or capability) × organisation and
enterprise × organisation, each cell the score the pair has in a ranked list.

Used through :meth:`matcher.pipeline.Recommender.pair_matrix` and
:meth:`~matcher.pipeline.Recommender.enterprise_matrix`.

A campaign row (one enterprise × every institute) scores ~1,000 organisations of which a
query retrieves documents of at most ``fetch_k``. An organisation none of whose documents was
retrieved has only organisation-level features (field match with the query, region, load, past
outcomes; see :meth:`matcher.features.FeatureBuilder.org_features` with no candidates), so its
score depends on the query's field alone: :class:`_Unretrieved` scores each (field,
organisation) once per matrix and the rows reuse it, and only retrieved organisations are
featurised per query. The cells are the ones the per-organisation path gives (tested).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from matcher.constraints import CAPABILITY_ORG_KINDS
from matcher.content import technical_text
from matcher.errors import UnknownEntity
from matcher.features import OrgMatch, Query, Scored
from matcher.gcpause import gc_paused
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
    # Scored from their documents when not retrieved: every cell needs the per-org path.
    per_org = scorer.score_unretrieved
    unretrieved = _Unretrieved(scorer, org_ids)
    # ~1,000 result objects per need stay alive: no collection passes over them meanwhile.
    with gc_paused():
        for i, ent in enumerate(enterprise_ids):
            if i % PREFETCH_ROWS == 0:
                _prefetch_queries(scorer, enterprise_ids[i : i + PREFETCH_ROWS])
            needs = [d for d in scorer.needs_of(ent) if scorer.active(d)]
            row_keys.append([d.id for d in needs])
            if not needs or not scorer.orgs[ent].active:
                empty.append(i)
                continue
            queries = [Query.from_document(d) for d in needs]
            if per_org:
                scored = scorer.score_queries(queries, "capabilities", ent, org_ids)
                cells = [scored[o] for o in org_ids]
            else:
                cells = _best_cells(scorer, queries, ent, org_ids, unretrieved)
            scores[i] = [c.score for c in cells]
            best[i] = [c.query.id for c in cells]
            matches[i] = cells
    forbidden = forbidden_mask(scorer, enterprise_ids, row_keys, org_ids, kinds, require_in_region)
    forbidden[empty] = True
    return PairMatrix(tuple(enterprise_ids), tuple(org_ids), scores, forbidden, best, matches)


#: Enterprises whose need texts are encoded in one batch ahead of their retrievals.
PREFETCH_ROWS = 64


def _prefetch_queries(scorer: OrgScorer, enterprise_ids: Sequence[str]) -> None:
    """Encode the query texts of these enterprises' active needs in one call.

    Only for an encoder that keeps query vectors (``memoises_queries``, e.g. the service's
    ``embeddings.serving.MemoQueryEncoder``): each retrieval then finds its vector, and a
    model that batches (padding, threads) encodes the block at its batch rate instead of one
    call per need.
    """
    encoder = getattr(scorer.retrievers.get("capabilities"), "encoder", None)
    if not getattr(encoder, "memoises_queries", False):
        return
    texts = [
        technical_text(Query.from_document(d).text)
        for ent in enterprise_ids
        if scorer.orgs[ent].active
        for d in scorer.needs_of(ent)
        if scorer.active(d)
    ]
    if texts:
        encoder.encode_queries(list(dict.fromkeys(texts)))  # type: ignore[union-attr]


class _Unretrieved:
    """Scores of organisations none of whose documents a query retrieved, per query field.

    Such an organisation's features are its organisation-level ones (the query enters only
    through its field), so each (field, organisation) is featurised and scored once.
    """

    def __init__(self, scorer: OrgScorer, org_ids: Sequence[str]) -> None:
        self.scorer = scorer
        self.org_ids = list(org_ids)
        self.column = {o: j for j, o in enumerate(self.org_ids)}
        self._by_field: dict[str | None, tuple[list[Any], ...]] = {}

    def row(self, query: Query) -> list[Scored]:
        """One :class:`Scored` per organisation (in ``org_ids`` order) for ``query``."""
        columns = self._by_field.get(query.field)
        if columns is None:
            features = self.scorer.features
            matches = [
                features.org_features(query, o, [], lexical_max=0.0, query_keywords=frozenset())
                for o in self.org_ids
            ]
            base = self.scorer.score(query, matches)
            columns = (
                [b.match for b in base],
                [b.score for b in base],
                [b.contributions for b in base],
                [b.bias for b in base],
            )
            self._by_field[query.field] = columns
        # The field's cells with this query as theirs (a thousand per need: built column-wise).
        return list(map(Scored, repeat(query), *columns))


def _query_row(
    scorer: OrgScorer, query: Query, ent: str, unretrieved: _Unretrieved
) -> list[Scored]:
    """One query's cells: retrieved organisations featurised, the others from ``unretrieved``."""
    (cands,) = scorer.retrieve("capabilities", [technical_text(query.text)])
    retrieved: list[OrgMatch] = scorer.match_orgs(query, cands, "capabilities", ent)
    row = unretrieved.row(query)
    for s in scorer.score(query, retrieved):
        j = unretrieved.column.get(s.match.org_id)
        if j is not None:
            row[j] = s
    return row


def _best_cells(
    scorer: OrgScorer,
    queries: Sequence[Query],
    ent: str,
    org_ids: Sequence[str],
    unretrieved: _Unretrieved,
) -> list[Scored]:
    """Per organisation the best cell over ``queries`` (ties: the earlier query), as
    :meth:`OrgScorer.score_queries` picks it."""
    best = _query_row(scorer, queries[0], ent, unretrieved)
    for q in queries[1:]:
        for j, s in enumerate(_query_row(scorer, q, ent, unretrieved)):
            if s.score > best[j].score:
                best[j] = s
    return best
