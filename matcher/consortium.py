"""Consortium suggestions (联合体揭榜) for a tackle bounty spanning several technical aspects.

Input: ``similarity`` of shape (n_aspects, n_orgs), each aspect text against each candidate
organisation's evidence (computed by the caller). The coverage of a team T is::

    coverage(T) = sum_a w_a * max_{o in T} max(similarity[a, o], 0),   sum_a w_a = 1

i.e. the (weighted) mean over aspects of the best member's similarity. We search exhaustively
over teams of 1 + up to ``max_partners`` members drawn from a pool (the ``top_n`` organisations
by their own coverage, plus the ``per_aspect`` best specialists of each aspect — a specialist
can be the best partner while ranking low alone). A team is valid when every member is
eligible, its lead is allowed to lead (``lead_allowed``: e.g. a transfer bounty needs an
in-region enterprise as lead), and every member adds at least ``min_gain`` coverage (removing
it would lose that much: no passenger members). The lead is the lead-allowed member with the highest own coverage.
Teams are ranked by coverage; only those beating the best single respondent by ``min_gain`` are
suggested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matcher.errors import InvalidParameter


@dataclass(frozen=True)
class AspectCover:
    """Which member covers an aspect best, and how well."""

    aspect: int
    label: str
    org_id: str
    similarity: float


@dataclass(frozen=True)
class Team:
    """A suggested respondent team (a single respondent has no partners).

    coverage : coverage(T) in [0, 1] (with non-negative similarities).
    marginal : per partner, the coverage lost if that partner is removed.
    gain : coverage minus the best single respondent's coverage.
    covers : one entry per aspect: the member with the highest similarity.
    """

    lead: str
    partners: tuple[str, ...]
    coverage: float
    gain: float
    marginal: tuple[float, ...]
    covers: tuple[AspectCover, ...]

    @property
    def members(self) -> tuple[str, ...]:
        return (self.lead, *self.partners)


@dataclass(frozen=True)
class ConsortiumResult:
    """Suggested teams (best first) and the best single respondent they are compared with."""

    teams: tuple[Team, ...]
    best_single: Team | None


def _mask(x: ArrayLike | None, n: int, name: str) -> NDArray[np.bool_]:
    if x is None:
        return np.ones(n, bool)
    a = np.asarray(x, dtype=bool).ravel()
    if a.shape != (n,):
        raise InvalidParameter(f"{name} must have shape ({n},); got {a.shape}")
    return a


def suggest_consortia(
    similarity: ArrayLike,
    org_ids: Sequence[str],
    *,
    eligible: ArrayLike | None = None,
    lead_allowed: ArrayLike | None = None,
    aspect_weights: ArrayLike | None = None,
    aspect_labels: Sequence[str] | None = None,
    max_partners: int = 2,
    min_gain: float = 0.05,
    top_n: int = 15,
    per_aspect: int = 3,
    n_suggestions: int = 3,
) -> ConsortiumResult:
    """Propose a lead plus one or two complementary partners.

    Parameters
    ----------
    similarity : array_like of float, shape (n_aspects, n_orgs)
        Aspect-to-organisation evidence similarity (negative values count as 0).
    org_ids : sequence of str, length n_orgs
    eligible : bool array (n_orgs,), optional
        Every member must be eligible (e.g. not in the poster's corporate group).
    lead_allowed : bool array (n_orgs,), optional
        Who may lead (transfer bounties: in-region enterprises). Default: every eligible org.
    aspect_weights : float array (n_aspects,), optional
        Non-negative importance of each aspect; normalised to sum 1 (default uniform).
    aspect_labels : sequence of str, optional
        Aspect names for :class:`AspectCover` (default ``"aspect <i>"``).
    max_partners : int in {0, 1, 2, 3}
    min_gain : float >= 0
        Minimum coverage each partner must add, and the minimum gain over the best single
        respondent for a team to be suggested.
    top_n, per_aspect : int
        Pool size: the best ``top_n`` organisations alone plus the best ``per_aspect`` per aspect.
    n_suggestions : int
        Teams returned at most.

    Returns
    -------
    ConsortiumResult
        ``teams`` is empty when no team beats the best single respondent by ``min_gain``.
    """
    s = np.asarray(similarity, dtype=np.float64)
    _check_options(s, len(org_ids), max_partners, min_gain, top_n, per_aspect, n_suggestions)
    n_a, n_o = s.shape
    ok = _mask(eligible, n_o, "eligible")
    lead = _mask(lead_allowed, n_o, "lead_allowed") & ok
    w = _aspect_weights(aspect_weights, n_a)
    labels = (
        list(aspect_labels) if aspect_labels is not None else [f"aspect {a}" for a in range(n_a)]
    )
    if len(labels) != n_a:
        raise InvalidParameter(f"aspect_labels must have {n_a} entries")
    if n_a == 0 or not lead.any():
        return ConsortiumResult((), None)

    sp = np.clip(s, 0.0, None)
    single = w @ sp  # (n_orgs,)
    pool_ix = _pool(sp, single, ok, lead, top_n, per_aspect)
    leads = np.flatnonzero(lead)
    best_lead = int(leads[np.argmax(single[leads])])
    best_single_cov = float(single[best_lead])
    found = _search(sp, w, lead, pool_ix, max_partners, best_single_cov + min_gain, min_gain)
    ctx = _TeamContext(s, sp, w, single, lead, org_ids, labels, best_single_cov)
    teams = tuple(ctx.team(m) for _, m in found[:n_suggestions])
    return ConsortiumResult(teams, ctx.team((best_lead,)))


def _check_options(
    s: NDArray[np.float64],
    n_orgs: int,
    max_partners: int,
    min_gain: float,
    top_n: int,
    per_aspect: int,
    n_suggestions: int,
) -> None:
    if s.ndim != 2 or s.shape[1] != n_orgs:
        raise InvalidParameter(f"similarity must have shape (n_aspects, {n_orgs}); got {s.shape}")
    if not np.isfinite(s).all():
        raise InvalidParameter("similarity must be finite")
    if not (isinstance(max_partners, int) and 0 <= max_partners <= 3):
        raise InvalidParameter(f"max_partners must be an int in 0..3; got {max_partners!r}")
    if not (np.isfinite(min_gain) and min_gain >= 0):
        raise InvalidParameter(f"min_gain must be >= 0; got {min_gain!r}")
    for name, v in (("top_n", top_n), ("per_aspect", per_aspect), ("n_suggestions", n_suggestions)):
        if not isinstance(v, int) or v < 0:
            raise InvalidParameter(f"{name} must be an int >= 0; got {v!r}")


def _aspect_weights(aspect_weights: ArrayLike | None, n_a: int) -> NDArray[np.float64]:
    if aspect_weights is None:
        return np.full(n_a, 1.0 / max(n_a, 1))
    w = np.asarray(aspect_weights, dtype=np.float64).ravel()
    if w.shape != (n_a,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InvalidParameter("aspect_weights must be n_aspects non-negative numbers, not all 0")
    return np.asarray(w / w.sum(), dtype=np.float64)


def _pool(
    sp: NDArray[np.float64],
    single: NDArray[np.float64],
    ok: NDArray[np.bool_],
    lead: NDArray[np.bool_],
    top_n: int,
    per_aspect: int,
) -> NDArray[np.int64]:
    """Candidate members: the best ``top_n`` alone and as leads, plus the best per aspect."""
    cand = np.flatnonzero(ok)
    pool = set(cand[np.argsort(-single[cand], kind="stable")][:top_n].tolist())
    leads = np.flatnonzero(lead)
    pool |= set(leads[np.argsort(-single[leads], kind="stable")][: max(1, top_n)].tolist())
    if per_aspect:
        for a in range(sp.shape[0]):
            pool |= set(cand[np.argsort(-sp[a, cand], kind="stable")][:per_aspect].tolist())
    return np.array(sorted(pool), dtype=np.int64)


def _search(
    sp: NDArray[np.float64],
    w: NDArray[np.float64],
    lead: NDArray[np.bool_],
    pool_ix: NDArray[np.int64],
    max_partners: int,
    threshold: float,
    min_gain: float,
) -> list[tuple[float, tuple[int, ...]]]:
    """Teams of 2 .. max_partners + 1 from the pool covering at least ``threshold``, in which
    every member adds ``min_gain``; best coverage first, then smaller, then by rows."""
    found: list[tuple[float, tuple[int, ...]]] = []
    for size in range(2, max_partners + 2):
        combos = np.array(list(combinations(pool_ix.tolist(), size)), dtype=np.int64)
        if len(combos) == 0:
            continue
        combos = combos[lead[combos].any(axis=1)]
        # coverage of every combo at once: (n_combos,)
        cov = np.einsum("a,ca->c", w, sp[:, combos].max(axis=2).T)
        good = cov >= threshold - 1e-12
        for c, v in zip(combos[good], cov[good], strict=True):
            members = tuple(int(x) for x in c)
            # every member must add min_gain: removing it loses at least that much
            drop = [float(w @ sp[:, [x for x in members if x != p]].max(axis=1)) for p in members]
            if all(v - d >= min_gain - 1e-12 for d in drop):
                found.append((float(v), members))
    found.sort(key=lambda t: (-t[0], len(t[1]), t[1]))
    return found


@dataclass(frozen=True)
class _TeamContext:
    """What describing a team needs: raw and clipped similarity, weights, single coverage."""

    s: NDArray[np.float64]
    sp: NDArray[np.float64]
    w: NDArray[np.float64]
    single: NDArray[np.float64]
    lead: NDArray[np.bool_]
    org_ids: Sequence[str]
    labels: list[str]
    best_single_cov: float

    def team(self, members: tuple[int, ...]) -> Team:
        sp, w = self.sp, self.w
        mem = np.array(members)
        cov = float(w @ sp[:, mem].max(axis=1))
        ld = max((m for m in members if self.lead[m]), key=lambda m: (self.single[m], -m))
        partners = tuple(m for m in members if m != ld)
        marginal = tuple(
            cov - float(w @ sp[:, [x for x in members if x != p]].max(axis=1)) for p in partners
        )
        best = mem[np.argmax(sp[:, mem], axis=1)]
        covers = tuple(
            AspectCover(a, self.labels[a], self.org_ids[int(best[a])], float(self.s[a, best[a]]))
            for a in range(sp.shape[0])
        )
        return Team(
            lead=self.org_ids[ld],
            partners=tuple(self.org_ids[p] for p in partners),
            coverage=cov,
            gain=cov - self.best_single_cov,
            marginal=marginal,
            covers=covers,
        )
