"""The pairing engine (结对子): campaign parameters, what a solve gets, and the solve itself.

One engine for ``duijie pair``, ``POST /api/v1/campaigns`` and the background runner
(:class:`service.jobs.campaign_runner.CampaignRunner`): :class:`PairingParams` is validated
where a campaign enters (a 422 from the API, an error message from the CLI), and
:func:`pairing_solve` writes the shortlist staff review.

Scores come from ``Recommender.enterprise_matrix`` (each cell the score the suggestion pages
show, with the best match behind it); the pairing is a solver of :data:`matcher.registry.SOLVERS`
(min-cost flow, or fair mode); each proposed pair is explained from the match the matrix already
scored, so explanations make no second retrieval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from matcher.constraints import CAPABILITY_ORG_KINDS
from matcher.encoding import external_of
from matcher.errors import InvalidParameter, MatcherError, NoFeasibleAssignment, UnknownEntity
from matcher.gcpause import gc_paused
from matcher.registry import SOLVERS, get_solver
from matcher.solvers import PairingEncoder, SolveStatus
from matcher.solvers.problem import top_candidates
from service.db import session_scope
from service.models import Campaign, Need, Organisation, ShortlistItem

if TYPE_CHECKING:
    from matcher.features import Scored
    from matcher.pipeline import Recommender
    from matcher.solvers.results import Assignment

log = logging.getLogger(__name__)

# Rows of the score matrix computed per recommender call (progress and cancel granularity).
CHUNK = 200
INELIGIBLE = "INELIGIBLE"

OrgId = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
Pair = tuple[OrgId, OrgId]


class PairingParams(BaseModel):
    """Parameters of a pairing campaign (the API's ``params``, the CLI's options).

    Every value is bounded, so a campaign that starts can run; unknown keys are refused.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(default=1, ge=1, le=20, description="partners per enterprise")
    capacity: int = Field(default=5, ge=1, le=10_000, description="enterprises per institute")
    capacity_overrides: dict[OrgId, Annotated[int, Field(ge=0, le=10_000)]] = Field(
        default_factory=dict, max_length=10_000, description="institute external id -> capacity"
    )
    fair: bool = Field(
        default=False, description="max-min affinity first, then total (solver 'fair')"
    )
    solver: str | None = Field(
        default=None,
        max_length=32,
        description="solver name (default: 'fair' if fair else mincostflow)",
    )
    floor: float | None = Field(
        default=None, ge=-1000, le=1000, allow_inf_nan=False, description="minimum score of a pair"
    )
    top: int = Field(default=50, ge=1, le=1000, description="candidate institutes per enterprise")
    alternates: int = Field(default=3, ge=0, le=20, description="alternates per enterprise")
    previous: str | None = Field(
        default=None, min_length=1, max_length=100, description="previous campaign by name"
    )
    stability_bonus: float | None = Field(
        default=None, ge=0, le=1, allow_inf_nan=False, description="bonus of last campaign's pairs"
    )
    locked: list[Pair] = Field(default_factory=list, max_length=10_000)
    forbidden: list[Pair] = Field(default_factory=list, max_length=10_000)
    max_enterprises: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _known_solver(self) -> PairingParams:
        if self.solver is not None and self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; valid: {sorted(SOLVERS)}")
        if self.fair and self.solver not in (None, "fair"):
            raise ValueError(f"fair=true contradicts solver {self.solver!r}")
        return self

    @property
    def solver_name(self) -> str:
        """The registry name of the solver to run."""
        return self.solver or ("fair" if self.fair else "mincostflow")

    def stored(self) -> dict[str, Any]:
        """The JSON form kept on the campaign row (only what was set)."""
        return self.model_dump(mode="json", exclude_unset=True)


class CampaignCancelled(Exception):
    """Raised inside a solve when staff cancelled the run."""


@dataclass
class CampaignContext:
    """What a solve function gets.

    report(progress) stores progress in [0, 1] and raises CampaignCancelled once the run
    was cancelled; call it regularly. recommender() returns the current Recommender.
    """

    campaign_id: int
    params: PairingParams
    session_factory: sessionmaker[Session]
    recommender: Callable[[], Recommender]
    cancel_event: threading.Event = field(default_factory=threading.Event)
    _last: float = -1.0
    _started: float = field(default_factory=time.monotonic)
    _logged: float = 0.0

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def _log_progress(self, progress: float, every_s: float = 5.0) -> None:
        """A log line with the elapsed time and an ETA, at most every ``every_s`` seconds."""
        now = time.monotonic()
        if now - self._logged < every_s and progress < 1.0:
            return
        self._logged = now
        elapsed = now - self._started
        eta = f", ETA {elapsed * (1 - progress) / progress:.0f} s" if 0 < progress < 1 else ""
        log.info(
            "campaign %s: %.0f%% after %.0f s%s", self.campaign_id, 100 * progress, elapsed, eta
        )

    def report(self, progress: float) -> None:
        if self.cancelled():
            raise CampaignCancelled(f"campaign {self.campaign_id} cancelled")
        progress = min(max(float(progress), 0.0), 1.0)
        if progress - self._last < 0.02 and progress < 1.0:
            return  # write progress at most every 2 %
        self._last = progress
        self._log_progress(progress)
        with session_scope(self.session_factory) as s:
            res = s.execute(
                update(Campaign)
                .where(Campaign.id == self.campaign_id, Campaign.status == "running")
                .values(progress=progress)
            )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            # Cancelled through the database (e.g. by another API worker process).
            self.cancel_event.set()
            raise CampaignCancelled(f"campaign {self.campaign_id} cancelled")


SolveFn = Callable[[CampaignContext], dict[str, Any]]


@dataclass
class _Inputs:
    """The store's side of a run: who is paired, row ids, the previous campaign's pairs."""

    enterprises: list[str]
    institutes: list[str]
    org_pk: dict[str, int]
    need_pk: dict[str, int]
    previous_id: int | None
    previous: list[tuple[str, str]]


@dataclass
class _Candidates:
    """Sparse top candidates of every enterprise, and the match behind each."""

    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    excluded: list[np.ndarray] = field(default_factory=list)
    matches: dict[tuple[int, int], Scored] = field(default_factory=dict)


def _load_inputs(ctx: CampaignContext, rec: Recommender) -> _Inputs:
    p = ctx.params
    with session_scope(ctx.session_factory) as s:
        stmt = (
            select(Organisation.external_id)
            .where(
                Organisation.kind == "enterprise",
                Organisation.status == "active",
                Organisation.id.in_(select(Need.org_id).where(Need.status == "open")),
            )
            .order_by(Organisation.id)
        )
        enterprises = [str(e) for e in s.scalars(stmt) if str(e) in rec.orgs]
        org_pk = {
            str(e): int(i) for i, e in s.execute(select(Organisation.id, Organisation.external_id))
        }
        need_pk = {str(e): int(i) for i, e in s.execute(select(Need.id, Need.external_id))}
        # The previous campaign: by name in params (CLI) or the row's previous_id (API).
        prev_id = (
            _campaign_id(s, p.previous)
            if p.previous
            else s.scalar(select(Campaign.previous_id).where(Campaign.id == ctx.campaign_id))
        )
        previous = _previous_pairs(s, prev_id) if prev_id is not None else []
    if p.max_enterprises is not None:
        enterprises = enterprises[: p.max_enterprises]
    institutes = sorted(
        o.id for o in rec.orgs.values() if o.kind in CAPABILITY_ORG_KINDS and o.active
    )
    unknown = sorted({x for pair in (*p.locked, *p.forbidden) for x in pair} - set(rec.orgs))
    if unknown:
        raise UnknownEntity(f"locked/forbidden pairs name unknown organisations: {unknown[:10]}")
    return _Inputs(enterprises, institutes, org_pk, need_pk, prev_id, previous)


def _score(ctx: CampaignContext, rec: Recommender, inputs: _Inputs) -> _Candidates:
    """Dense scores chunk by chunk, kept as the sparse top-N the solver works on."""
    out = _Candidates()
    enterprises, institutes = inputs.enterprises, inputs.institutes
    if not institutes:
        return out
    for lo in range(0, len(enterprises), CHUNK):
        ctx.report(0.8 * lo / max(len(enterprises), 1))
        # A chunk makes ~1,000 cells per enterprise and keeps the top few: with the collector
        # paused until the rest are freed, no collection walks the run's objects for them.
        with gc_paused():
            pm = rec.enterprise_matrix(enterprises[lo : lo + CHUNK], institutes)
            r, c, v, ex = top_candidates(pm.scores, ctx.params.top, forbidden=pm.forbidden)
            out.rows.append(r + lo)
            out.cols.append(c)
            out.vals.append(v)
            out.excluded.append(ex + np.array([lo, 0]))
            cells = pm.best_match[r, c].tolist()
            del pm
            out.matches.update(
                ((i, j), m)
                for i, j, m in zip((r + lo).tolist(), c.tolist(), cells, strict=True)
                if m is not None
            )
            del cells
    return out


def _solve(
    ctx: CampaignContext, rec: Recommender, inputs: _Inputs, cands: _Candidates
) -> Assignment:
    """Encode the candidates with the campaign's constraints, solve, decode to ids."""
    p = ctx.params
    enterprises, institutes = inputs.enterprises, inputs.institutes
    names = {o.id: o.name for o in rec.orgs.values()}
    enc = PairingEncoder(enterprises, institutes, institute_names=names)
    ex_all = np.concatenate(cands.excluded) if cands.excluded else np.zeros((0, 2), np.int64)
    rr = np.concatenate(cands.rows) if cands.rows else np.zeros(0, np.int64)
    cc = np.concatenate(cands.cols) if cands.cols else np.zeros(0, np.int64)
    vv = np.concatenate(cands.vals) if cands.vals else np.zeros(0)
    bonus = p.stability_bonus
    if bonus is None:
        bonus = 0.05 if inputs.previous_id is not None else 0.0
    # The candidates are rows and columns of the encoder's own order already: handed over
    # as arrays (no per-pair id lookups; ~650k pairs at 13,000 enterprises x top 50).
    problem = enc.encode_rows(
        rr.astype(np.int64, copy=False),
        cc.astype(np.int64, copy=False),
        vv.astype(np.float64, copy=False),
        excluded=ex_all.astype(np.int64, copy=False),
        excluded_reasons=(INELIGIBLE,) * len(ex_all),
        k=p.k,
        capacity=p.capacity,
        capacity_overrides=dict(p.capacity_overrides),
        floor=p.floor if p.floor is not None else float("-inf"),
        locked=list(p.locked),
        forbidden=list(p.forbidden),
        previous=inputs.previous,
        stability_bonus=bonus,
    )
    # Few tracked objects are made here but the 52,000 decoded ones: a full collection of
    # the run's objects (the recommender's, the candidates') is left to the shortlist stage.
    with gc_paused():
        result = enc.decode(get_solver(p.solver_name, n_alternates=p.alternates).solve(problem))
    if result.status is SolveStatus.INFEASIBLE:
        raise NoFeasibleAssignment(
            "锁定配对无法满足: "
            + "; ".join(f"{c.enterprise}–{c.institute}: {c.message}" for c in result.lock_conflicts)
        )
    return result


def match_evidence(
    rec: Recommender, match: Scored | None, extra: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    """The stored evidence and features of one proposed pair, from its scored match.

    Evidence is ``{"documents": [{doc_id, score, query_snippet, doc_snippet}, ...],
    "shared_keywords", "reasons", **extra}`` (what the staff pages and the API show);
    without a match (or when it cannot be explained) only ``extra``.
    """
    if match is None:
        return extra, {}
    try:
        sg = rec.explain_match(match)
    except (MatcherError, KeyError):
        return extra, {}
    docs = [
        {
            "doc_id": external_of(ev.doc_id),
            "score": float(ev.score),
            "query_snippet": ev.query_snippet,
            "doc_snippet": ev.doc_snippet,
        }
        for ev in sg.evidence
    ]
    evidence = {
        "documents": docs,
        "shared_keywords": list(sg.shared_keywords),
        "reasons": list(sg.reasons),
        **extra,
    }
    return evidence, {name: float(v) for name, v in sg.features.items()}


def _items(
    ctx: CampaignContext,
    rec: Recommender,
    inputs: _Inputs,
    cands: _Candidates,
    result: Assignment,
) -> list[ShortlistItem]:
    """Shortlist rows: ``assigned`` (rank 1..k), ``alternate`` after them, ``uncovered``."""
    e_row = {e: n for n, e in enumerate(inputs.enterprises)}
    i_col = {x: n for n, x in enumerate(inputs.institutes)}
    items: list[ShortlistItem] = []
    rank: dict[str, int] = {}

    def item(ent: str, inst: str, score: float, kind: str, extra: dict[str, Any]) -> None:
        rank[ent] = rank.get(ent, 0) + 1
        match = cands.matches.get((e_row[ent], i_col[inst]))
        evidence, features = match_evidence(rec, match, extra)
        need = inputs.need_pk.get(external_of(match.query.id or "")) if match else None
        items.append(
            ShortlistItem(
                campaign_id=ctx.campaign_id,
                enterprise_id=inputs.org_pk[ent],
                institute_id=inputs.org_pk.get(inst),
                need_id=need,
                score=score,
                rank=rank[ent],
                kind=kind,
                evidence=evidence,
                features=features,
            )
        )

    for pr in result.pairs:
        item(pr.enterprise, pr.institute, pr.score, "assigned", {"solver": result.solver})
        items[-1].locked = pr.locked
    for ent, alts in result.alternates.items():
        for a in alts:
            item(ent, a.institute, a.score, "alternate", {"spare_capacity": a.spare})
    for u in result.uncovered:
        items.append(
            ShortlistItem(
                campaign_id=ctx.campaign_id,
                enterprise_id=inputs.org_pk[str(u.enterprise)],
                kind="uncovered",
                rank=rank.get(str(u.enterprise), 0) + 1,
                problem=u.message,
                evidence={
                    "reason_code": str(u.code),
                    "institutes": list(u.institutes),
                    "reasons": list(u.reasons),
                    "wanted": u.wanted,
                    "got": u.got,
                },
            )
        )
    return items


def _summary(
    params: PairingParams, inputs: _Inputs, result: Assignment, n_items: int
) -> dict[str, Any]:
    by_code: dict[str, int] = {}
    for u in result.uncovered:
        by_code[str(u.code)] = by_code.get(str(u.code), 0) + 1
    churn = result.churn
    return {
        "solver": result.solver,
        "status": str(result.status),
        "enterprises": len(inputs.enterprises),
        "institutes": len(inputs.institutes),
        "k": params.k,
        "capacity": params.capacity,
        "pairs": len(result.pairs),
        "uncovered": len(result.uncovered),
        "uncovered_by_reason": by_code,
        "objective": round(result.objective, 6),
        "min_affinity": result.min_affinity,
        "threshold": result.threshold,
        "churn": None
        if churn is None
        else {
            "kept": churn.kept,
            "changed": churn.changed,
            "new": churn.new,
            "dropped": churn.dropped,
        },
        "items": n_items,
    }


def pairing_solve(ctx: CampaignContext) -> dict[str, Any]:
    """Solve a campaign with a registered solver and write its shortlist.

    Items: ``assigned`` (rank 1..k by score, ``locked`` set for locks), ``alternate``
    (rank after them, ``alternates`` per enterprise), ``uncovered`` (``problem`` = the Chinese
    diagnosis). Items are written in one transaction at the end, so a cancelled run leaves
    none. Raises :class:`~matcher.errors.NoFeasibleAssignment` listing the locks that cannot
    be honoured, :class:`~matcher.errors.UnknownEntity` for locks naming unknown ids.

    Returns
    -------
    dict
        The run summary stored on the campaign (solver, status, counts, objective, churn).
    """
    rec = ctx.recommender()
    inputs = _load_inputs(ctx, rec)
    cands = _score(ctx, rec, inputs)
    ctx.report(0.85)
    result = _solve(ctx, rec, inputs, cands)
    ctx.report(0.95)
    items = _items(ctx, rec, inputs, cands, result)
    with session_scope(ctx.session_factory) as s:
        s.add_all(items)
    return _summary(ctx.params, inputs, result, len(items))


def _campaign_id(session: Session, name: str) -> int:
    cid = session.scalar(select(Campaign.id).where(Campaign.name == name))
    if cid is None:
        raise InvalidParameter(f"previous campaign {name!r} not found")
    return int(cid)


def _previous_pairs(session: Session, campaign_id: int) -> list[tuple[str, str]]:
    """Assigned, not rejected pairs of a campaign, as (enterprise, institute) external ids."""
    ent = aliased(Organisation)
    inst = aliased(Organisation)
    rows = session.execute(
        select(ent.external_id, inst.external_id)
        .select_from(ShortlistItem)
        .join(ent, ent.id == ShortlistItem.enterprise_id)
        .join(inst, inst.id == ShortlistItem.institute_id)
        .where(
            ShortlistItem.campaign_id == campaign_id,
            ShortlistItem.kind == "assigned",
            ShortlistItem.status != "rejected",
        )
    ).all()
    return [(str(e), str(i)) for e, i in rows]
