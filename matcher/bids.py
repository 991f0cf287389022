"""Bid scoring for bounty lists (揭榜择优): a composite of quality and price, ranked.

The formula is documented in ``docs/bid_scoring.md``; in short, for bid *b*::

    total_b = w_aff * affinity_b + w_sim * similarity_b + w_mat * maturity_b + w_price * P_b

with every component in [0, 1] (inputs are clipped), weights >= 0 summing to 1, and the price
score ``P_b`` by the lowest-valid-price benchmark (低价基准法, default)::

    P_b = min(1, p_min / p_b),   p_min = lowest price among eligible bids

or the budget-relative variant (``method="budget"``, 差值扣分)::

    P_b = clip(1 - (p_b - p_min) / budget, 0, 1).

Eligibility: a bid with a non-positive price (``INVALID_PRICE``) or a price above the budget
(``OVER_BUDGET``, the 最高限价 rule) is ineligible, as is any bid for which the caller's
eligibility check returns reason codes (e.g. ``SAME_GROUP``: the respondent is in the poster's
corporate group; see :meth:`matcher.constraints.EligibilityPolicy.check_bounty`). Ineligible
bids are ranked after every eligible one (or excluded), always with their reasons.

Funding priority (优先支持): a project led by an enterprise in which universities and institutes
receive at least ``PriorityRule.threshold`` (20 %) of the public funding is flagged, and its
total gains ``PriorityRule.bonus`` (a separate ``priority_part`` of the breakdown), so among
bids of equal merit the prioritised one ranks first. The flag never makes an ineligible bid
eligible.

Pure numpy: proposal similarities and respondent affinities are precomputed by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from matcher.errors import InvalidParameter
from matcher.types import REASON_LABELS, BidInfo

PriceMethod = Literal["lowest", "budget"]
IneligiblePolicy = Literal["rank_last", "exclude"]
PRICE_METHODS: tuple[PriceMethod, ...] = ("lowest", "budget")

INVALID_PRICE = "INVALID_PRICE"
OVER_BUDGET = "OVER_BUDGET"
BID_REASON_LABELS: dict[str, str] = {
    INVALID_PRICE: "报价无效",
    OVER_BUDGET: "报价超出预算(最高限价)",
}

Eligibility = Callable[[BidInfo], Iterable[str]] | Mapping[str, Iterable[str]]
PRIORITY_LABEL = "优先支持"
ENTERPRISE_LEAD_KINDS: frozenset[str] = frozenset({"enterprise", "company"})
# Shares are usually computed from two amounts (万元): a tolerance far below any real split
# keeps 20.0 / 100.0 on the right side of a 0.20 threshold.
_SHARE_TOL = 1e-9


@dataclass(frozen=True)
class FundingSplit:
    """How a bid splits the public funding: does an enterprise lead, and what share goes to
    universities/institutes (``academic_share`` in [0, 1], None when not declared)."""

    enterprise_led: bool
    academic_share: float | None

    @classmethod
    def from_amounts(
        cls, lead_kind: str | None, enterprise: float | None, academic: float | None
    ) -> FundingSplit:
        """From the declared amounts (万元) of the enterprise side and the academic side."""
        led = (lead_kind or "") in ENTERPRISE_LEAD_KINDS
        if enterprise is None or academic is None:
            return cls(led, None)
        total = float(enterprise) + float(academic)
        if total <= 0 or enterprise < 0 or academic < 0:
            return cls(led, None)
        return cls(led, float(academic) / total)


@dataclass(frozen=True)
class PriorityRule:
    """The 优先支持 rule: enterprise lead and academic share >= ``threshold``; ``bonus`` is
    added to the total of a flagged bid (0 = flag only, ranking unchanged)."""

    threshold: float = 0.20
    bonus: float = 0.05

    def validate(self) -> PriorityRule:
        if not (np.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0):
            raise InvalidParameter(f"priority threshold must be in [0, 1]; got {self.threshold}")
        if not (np.isfinite(self.bonus) and 0.0 <= self.bonus <= 1.0):
            raise InvalidParameter(f"priority bonus must be in [0, 1]; got {self.bonus}")
        return self

    def flag(self, split: FundingSplit | None) -> bool:
        """True when ``split`` qualifies for 优先支持."""
        if split is None or not split.enterprise_led or split.academic_share is None:
            return False
        return split.academic_share >= self.threshold - _SHARE_TOL


def reason_label(code: str) -> str:
    """Chinese label of a reason code (the code itself when unknown)."""
    return BID_REASON_LABELS.get(code) or REASON_LABELS.get(code, code)  # type: ignore[call-overload]


@dataclass(frozen=True)
class BidWeights:
    """Weights of the composite score; each >= 0, summing to 1 (checked by :meth:`validate`).

    Defaults: quality 60 % (affinity 25, proposal similarity 25, maturity/track record 10),
    price 40 % — the usual 综合评分法 split where technical quality outweighs price.
    """

    affinity: float = 0.25
    similarity: float = 0.25
    maturity: float = 0.10
    price: float = 0.40

    def as_array(self) -> NDArray[np.float64]:
        """(affinity, similarity, maturity, price) as float64 of shape (4,)."""
        return np.array([self.affinity, self.similarity, self.maturity, self.price], float)

    def validate(self) -> BidWeights:
        """Raise :class:`~matcher.errors.InvalidParameter` unless finite, >= 0, sum 1."""
        w = self.as_array()
        if not np.isfinite(w).all() or (w < 0).any():
            raise InvalidParameter(f"bid weights must be finite and >= 0; got {self}")
        if abs(w.sum() - 1.0) > 1e-9:
            raise InvalidParameter(f"bid weights must sum to 1; got {w.sum():.6g} ({self})")
        return self


@dataclass(frozen=True)
class BidScores:
    """Matrix-level result of :func:`score_matrix`; every array has shape (n,).

    price_score : P in [0, 1]; quality : weighted quality part; price_part : w_price * P;
    total : quality + price_part; eligible : bool.
    benchmark : p_min, the lowest eligible price (None when no bid is eligible).
    """

    price_score: NDArray[np.float64]
    quality: NDArray[np.float64]
    price_part: NDArray[np.float64]
    total: NDArray[np.float64]
    eligible: NDArray[np.bool_]
    invalid_price: NDArray[np.bool_]
    over_budget: NDArray[np.bool_]
    benchmark: float | None


def score_matrix(
    prices: ArrayLike,
    affinity: ArrayLike,
    similarity: ArrayLike,
    maturity: ArrayLike,
    *,
    eligible: ArrayLike | None = None,
    budget: float | None = None,
    weights: BidWeights | None = None,
    method: PriceMethod = "lowest",
) -> BidScores:
    """Composite bid scores from arrays (the documented formula).

    Parameters
    ----------
    prices, affinity, similarity, maturity : array_like of float, shape (n,)
        Quality components are clipped to [0, 1].
    eligible : array_like of bool, shape (n,), optional
        The caller's eligibility; price validity and the budget cap are added here.
    budget : float, optional
        Bounty budget (最高限价); required by ``method="budget"``.
    weights : BidWeights, optional
    method : "lowest" or "budget"
    """
    w = (weights or BidWeights()).validate()
    if method not in PRICE_METHODS:
        raise InvalidParameter(f"method must be one of {', '.join(PRICE_METHODS)}; got {method!r}")
    p = np.asarray(prices, dtype=np.float64).ravel()
    n = len(p)
    comps = []
    for name, x in (("affinity", affinity), ("similarity", similarity), ("maturity", maturity)):
        a = np.asarray(x, dtype=np.float64).ravel()
        if a.shape != (n,):
            raise InvalidParameter(f"{name} must have shape ({n},); got {a.shape}")
        if np.isnan(a).any():
            raise InvalidParameter(f"{name} contains NaN")
        comps.append(np.clip(a, 0.0, 1.0))
    ok = np.ones(n, bool) if eligible is None else np.asarray(eligible, bool).ravel().copy()
    if ok.shape != (n,):
        raise InvalidParameter(f"eligible must have shape ({n},); got {ok.shape}")
    if budget is not None and not (np.isfinite(budget) and budget > 0):
        raise InvalidParameter(f"budget must be a positive number; got {budget!r}")
    if method == "budget" and budget is None:
        raise InvalidParameter("method='budget' needs a budget")
    invalid = ~np.isfinite(p) | (p <= 0)
    over = np.zeros(n, bool) if budget is None else (~invalid & (p > budget))
    ok &= ~invalid & ~over
    valid_p = np.where(invalid, np.inf, p)
    benchmark = float(valid_p[ok].min()) if ok.any() else None
    if benchmark is None:
        ps = np.zeros(n)
    elif method == "lowest":
        ps = np.minimum(1.0, benchmark / valid_p)
    else:
        ps = np.clip(1.0 - (valid_p - benchmark) / float(budget), 0.0, 1.0)  # type: ignore[arg-type]
    ps[invalid] = 0.0
    quality = w.affinity * comps[0] + w.similarity * comps[1] + w.maturity * comps[2]
    price_part = w.price * ps
    return BidScores(ps, quality, price_part, quality + price_part, ok, invalid, over, benchmark)


@dataclass(frozen=True)
class ScoredBid:
    """One row of the ranked bid table, with the score breakdown.

    rank : 1-based position (eligible bids first); None for excluded bids.
    reasons : reason codes of an ineligible bid; reason_text : their Chinese labels.
    """

    bid_id: str
    respondent_org_id: str
    rank: int | None
    eligible: bool
    reasons: tuple[str, ...]
    reason_text: str
    price: float
    price_score: float
    affinity: float
    similarity: float
    maturity: float
    quality: float
    price_part: float
    total: float
    priority: bool = False
    academic_share: float | None = None
    priority_part: float = 0.0


@dataclass(frozen=True)
class BidRanking:
    """Ranked bids: ``ranked`` (eligible first, then ineligible unless excluded)."""

    ranked: tuple[ScoredBid, ...]
    excluded: tuple[ScoredBid, ...]
    benchmark_price: float | None
    weights: BidWeights
    method: PriceMethod

    def table(self) -> list[dict[str, object]]:
        """Rows for display/export (one dict per ranked bid, then excluded ones)."""
        return [
            {
                "rank": b.rank,
                "bid": b.bid_id,
                "respondent": b.respondent_org_id,
                "eligible": b.eligible,
                "price": b.price,
                "price_score": round(b.price_score, 4),
                "affinity": round(b.affinity, 4),
                "similarity": round(b.similarity, 4),
                "maturity": round(b.maturity, 4),
                "quality": round(b.quality, 4),
                "total": round(b.total, 4),
                "priority": PRIORITY_LABEL if b.priority else "",
                "academic_share": None if b.academic_share is None else round(b.academic_share, 4),
                "reasons": b.reason_text,
            }
            for b in (*self.ranked, *self.excluded)
        ]


def _lookup(values: Mapping[str, float] | None, ids: Sequence[str], name: str) -> list[float]:
    if values is None:
        return [0.0] * len(ids)
    missing = [i for i in ids if i not in values]
    if missing:
        raise InvalidParameter(f"{name} is missing bids: {', '.join(missing[:5])}")
    return [float(values[i]) for i in ids]


def _caller_reasons(
    bids: Sequence[BidInfo], eligibility: Eligibility | None
) -> list[tuple[str, ...]]:
    """The caller's reason codes per bid (deduplicated, in order); empty = eligible."""
    out: list[tuple[str, ...]] = []
    for b in bids:
        if eligibility is None:
            codes: Iterable[str] = ()
        elif callable(eligibility):
            codes = eligibility(b)
        else:
            codes = eligibility.get(b.id, ())
        out.append(tuple(dict.fromkeys(str(c) for c in codes)))
    return out


def _checked_ids(bids: Sequence[BidInfo], ineligible: str) -> list[str]:
    if ineligible not in ("rank_last", "exclude"):
        raise InvalidParameter(f"ineligible must be 'rank_last' or 'exclude'; got {ineligible!r}")
    ids = [b.id for b in bids]
    if len(set(ids)) != len(ids):
        raise InvalidParameter("duplicate bid ids")
    return ids


def _priority(
    bids: Sequence[BidInfo],
    funding: Mapping[str, FundingSplit] | None,
    priority: PriorityRule | None,
) -> tuple[list[FundingSplit | None], list[bool], list[float]]:
    """Per bid: its funding split, whether it earns the 优先支持 flag, and the bonus."""
    rule = (priority or PriorityRule()).validate()
    splits = [(funding or {}).get(b.id) for b in bids]
    flagged = [rule.flag(sp) for sp in splits]
    return splits, flagged, [rule.bonus if f else 0.0 for f in flagged]


def _score(
    bids: Sequence[BidInfo],
    ids: list[str],
    caller: list[tuple[str, ...]],
    values: tuple[Mapping[str, float], Mapping[str, float], Mapping[str, float] | None],
    *,
    budget: float | None,
    weights: BidWeights | None,
    method: PriceMethod,
) -> BidScores:
    """:func:`score_matrix` over the bids (values: affinity, similarity, maturity by bid id)."""
    affinity, similarity, maturity = values
    return score_matrix(
        [b.price for b in bids],
        _lookup(affinity, ids, "affinity"),
        _lookup(similarity, ids, "similarity"),
        _lookup(maturity, ids, "maturity"),
        eligible=[not c for c in caller],
        budget=budget,
        weights=weights,
        method=method,
    )


def rank_bids(
    bids: Sequence[BidInfo],
    *,
    affinity: Mapping[str, float],
    similarity: Mapping[str, float],
    maturity: Mapping[str, float] | None = None,
    budget: float | None = None,
    weights: BidWeights | None = None,
    method: PriceMethod = "lowest",
    eligibility: Eligibility | None = None,
    ineligible: IneligiblePolicy = "rank_last",
    funding: Mapping[str, FundingSplit] | None = None,
    priority: PriorityRule | None = None,
) -> BidRanking:
    """Score and rank the bids of one bounty.

    Parameters
    ----------
    bids : sequence of BidInfo
    affinity : bid id -> respondent affinity to the bounty (from the matcher), in [0, 1]
    similarity : bid id -> proposal-to-bounty text similarity (caller-encoded), in [0, 1]
    maturity : bid id -> maturity / track record in [0, 1]; None = 0 for all
    budget : the bounty budget (最高限价); bids above it are ineligible (``OVER_BUDGET``)
    weights : BidWeights (validated: >= 0, sum 1)
    method : "lowest" (低价基准法, default) or "budget" (差值扣分, needs ``budget``)
    eligibility : callable(bid) -> reason codes, or mapping bid id -> reason codes; empty
        means eligible
    ineligible : "rank_last" (after all eligible bids) or "exclude" (listed apart)
    funding : bid id -> FundingSplit; bids without one are never flagged
    priority : PriorityRule (default threshold 0.20, bonus 0.05)

    Ties in the total are broken by lower price, then bid id (deterministic).
    """
    ids = _checked_ids(bids, ineligible)
    caller = _caller_reasons(bids, eligibility)
    values = (affinity, similarity, maturity)
    res = _score(bids, ids, caller, values, budget=budget, weights=weights, method=method)
    w = (weights or BidWeights()).validate()
    splits, flagged, bonus = _priority(bids, funding, priority)
    total = [float(res.total[n]) + bonus[n] for n in range(len(bids))]
    order = sorted(
        range(len(bids)),
        key=lambda n: (not res.eligible[n], -total[n], bids[n].price, bids[n].id),
    )
    ranked: list[ScoredBid] = []
    excluded: list[ScoredBid] = []
    for n in order:
        b = bids[n]
        reasons = [
            *([OVER_BUDGET] if res.over_budget[n] else []),
            *([INVALID_PRICE] if res.invalid_price[n] else []),
            *caller[n],
        ]
        eligible = bool(res.eligible[n])
        skip = not eligible and ineligible == "exclude"
        row = ScoredBid(
            bid_id=b.id,
            respondent_org_id=b.respondent_org_id,
            rank=None if skip else len(ranked) + 1,
            eligible=eligible,
            reasons=tuple(reasons),
            reason_text="；".join(reason_label(c) for c in reasons),
            price=float(b.price),
            price_score=float(res.price_score[n]),
            affinity=float(np.clip(affinity[b.id], 0, 1)),
            similarity=float(np.clip(similarity[b.id], 0, 1)),
            maturity=float(np.clip(maturity[b.id], 0, 1)) if maturity is not None else 0.0,
            quality=float(res.quality[n]),
            price_part=float(res.price_part[n]),
            total=total[n],
            priority=flagged[n],
            academic_share=None if splits[n] is None else splits[n].academic_share,  # type: ignore[union-attr]
            priority_part=bonus[n],
        )
        (excluded if skip else ranked).append(row)
    return BidRanking(tuple(ranked), tuple(excluded), res.benchmark, w, method)
