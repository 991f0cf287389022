"""Min-cost flow over the sparse candidate graph (OR-Tools ``SimpleMinCostFlow``).

Network: source → enterprise i (capacity k_i minus its locks) → institute j (one unit per
usable candidate edge) → sink (capacity minus locks). ``solve_max_flow_with_min_cost``
maximises the number of pairs first, then minimises cost, which gives the documented
priority:

1. the number of pairs (coverage);
2. the number of enterprises with at least one partner — the source arc of an enterprise is
   split into its first unit (cost 0) and the rest (cost ``V``), so spreading partners over
   enterprises beats giving one a third partner. Two max flows differ by residual cycles, each
   moving one unit between enterprises (changing that count by at most one) and crossing at
   most ``L = min(#enterprises, #institutes)`` candidate arcs, so ``V = L * max_edge_cost + 1``
   makes the count strictly dominate affinity;
3. total affinity (plus the stability bonus): edge cost ``round((w_max - w) * scale)``.

Costs must be integers: ``scale`` is as large as int64 allows (affinity span mapped to up to
1e9 units), so the rounding loss is below ``pairs / scale`` — far below openreview-matcher's
×100 rounding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from ortools.graph.python import max_flow, min_cost_flow

from matcher.errors import NoFeasibleAssignment
from matcher.solvers.problem import BoolArray, FloatArray, Prepared

logger = logging.getLogger(__name__)

DEFAULT_COST_UNITS = 10**9
# OR-Tools' cost scaling multiplies costs by (num_nodes + 1); keep products inside int64.
_INT_LIMIT = 2**62


@dataclass(frozen=True)
class FlowResult:
    """Edges chosen by a flow solve and the counts it achieved."""

    chosen: BoolArray  # shape (m,), over all prepared edges
    n_pairs: int  # solver-chosen pairs (locks excluded)
    n_first: int  # enterprises without a lock that got at least one chosen pair
    scale: float  # cost units per unit of affinity (0 when costs were not used)


def _source_arcs(prep: Prepared) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Split each enterprise's free demand into its first unit and the rest.

    Returns first (n_e,) in {0, 1}, rest (n_e,), and the enterprises with any free demand.
    """
    first = ((prep.n_locked_e == 0) & (prep.k_free > 0)).astype(np.int64)
    rest = prep.k_free - first
    active = np.flatnonzero(prep.k_free > 0)
    return first, rest, active


def _edge_costs(
    weights: FloatArray | None, idx: NDArray[np.int64], units: int
) -> tuple[NDArray[np.int64], float]:
    """Integer arc costs of the chosen edges (best weight costs 0) and the scale used."""
    edge_cost = np.zeros(len(idx), np.int64)
    if weights is None:
        return edge_cost, 0.0
    w = weights[idx]
    w_max, span = float(w.max()), float(w.max() - w.min())
    if span <= 0:
        return edge_cost, 0.0
    scale = units / span
    return np.rint((w_max - w) * scale).astype(np.int64), scale


def _tiered_source_arcs(
    first: NDArray[np.int64], rest: NDArray[np.int64], active: NDArray[np.int64], tier_cost: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Source arcs (heads, capacities, costs): a free first unit, the rest at ``tier_cost``."""
    has_first = active[first[active] > 0]
    has_rest = active[rest[active] > 0]
    heads = np.concatenate([has_first, has_rest])
    caps = np.concatenate([np.ones(len(has_first), np.int64), rest[has_rest]])
    costs = np.concatenate(
        [np.zeros(len(has_first), np.int64), np.full(len(has_rest), tier_cost, np.int64)]
    )
    return heads, caps, costs


def solve_flow(
    prep: Prepared,
    edges: BoolArray,
    weights: FloatArray | None,
    *,
    cost_units: int = DEFAULT_COST_UNITS,
) -> FlowResult:
    """Max-coverage, then max-weight selection of ``edges`` by min-cost flow.

    Parameters
    ----------
    prep : Prepared
        The validated problem.
    edges : bool array, shape (m,)
        Edges the flow may use (a subset of ``prep.usable``).
    weights : float array, shape (m,), or None
        Objective weight per edge (higher is better). None: coverage only (costs are 0 apart
        from the first-unit tier), as used by fair mode's feasibility checks.
    cost_units : int
        Integer cost units that the weight span is mapped to (upper bound; lowered if int64
        would overflow).
    """
    n_e, n_i = prep.n_e, prep.n_i
    idx = np.flatnonzero(edges)
    chosen = np.zeros(len(prep.rows), bool)
    first, rest, active = _source_arcs(prep)
    if len(idx) == 0 or len(active) == 0:
        return FlowResult(chosen, 0, 0, 0.0)
    tiered = bool((rest[active] > 0).any())
    full_flow: int | None = None
    if tiered:
        # A max flow is cheap (~0.15 s at 650k arcs); if it places every unit, every first
        # unit is placed too, the tier is moot and the cheaper untiered network is exact.
        demand = int(prep.k_free[active].sum())
        if max_flow_value(prep, idx, active) == demand:
            tiered, full_flow = False, demand
    n_nodes = n_e + n_i + 2
    arc_limit = _INT_LIMIT // (n_nodes + 1)
    # Longest simple cycle in the residual network visits at most this many institute arcs;
    # the tier cost must exceed the affinity cost such a cycle can change (see module doc).
    cycle = int(min(len(active), int((prep.cap_free > 0).sum()), len(idx)))

    units = int(cost_units)
    if tiered:
        units = min(units, (arc_limit - 1) // max(cycle, 1) - 1)
    units = max(1, min(units, arc_limit))
    edge_cost, scale = _edge_costs(weights, idx, units)
    tier_cost = int(edge_cost.max(initial=0)) * cycle + 1 if tiered else 0

    src, sink = n_e + n_i, n_e + n_i + 1
    if tiered:
        src_heads, src_caps, src_costs = _tiered_source_arcs(first, rest, active, tier_cost)
    else:
        src_heads, src_caps = active, prep.k_free[active]
        src_costs = np.zeros(len(active), np.int64)
    n_src = len(src_heads)
    inst = np.flatnonzero(prep.cap_free > 0)
    tails = np.concatenate([np.full(n_src, src), prep.rows[idx], n_e + inst])
    heads = np.concatenate([src_heads, n_e + prep.cols[idx], np.full(len(inst), sink)])
    caps = np.concatenate([src_caps, np.ones(len(idx), np.int64), prep.cap_free[inst]])
    costs = np.concatenate([src_costs, edge_cost, np.zeros(len(inst), np.int64)])
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32), heads.astype(np.int32), caps.astype(np.int64), costs
    )
    supply = full_flow if full_flow is not None else int(src_caps.sum())
    mcf.set_node_supply(src, supply)
    mcf.set_node_supply(sink, -supply)
    # With every unit placeable, a balanced min-cost flow skips the max-flow phase.
    status = mcf.solve() if full_flow is not None else mcf.solve_max_flow_with_min_cost()
    if status != mcf.OPTIMAL:
        raise NoFeasibleAssignment(f"min-cost flow failed with status {status!r}")
    flows = mcf.flows(np.arange(mcf.num_arcs(), dtype=np.int32))
    edge_flow = flows[n_src : n_src + len(idx)]
    chosen[idx[edge_flow > 0]] = True
    got = np.bincount(src_heads, weights=flows[:n_src], minlength=n_e)
    n_first = int(((got > 0) & (first > 0)).sum())
    return FlowResult(chosen, int(edge_flow.sum()), n_first, scale)


def max_flow_value(
    prep: Prepared,
    idx: NDArray[np.int64],
    active: NDArray[np.int64],
    source_caps: NDArray[np.int64] | None = None,
) -> int:
    """Maximum number of pairs over edges ``idx`` (plain max flow, no costs).

    ``source_caps`` (n_e,) replaces the enterprises' free demand (e.g. 1 to count covered
    enterprises)."""
    n_e, n_i = prep.n_e, prep.n_i
    src_caps = (prep.k_free if source_caps is None else source_caps)[active]
    src, sink = n_e + n_i, n_e + n_i + 1
    inst = np.flatnonzero(prep.cap_free > 0)
    tails = np.concatenate([np.full(len(active), src), prep.rows[idx], n_e + inst])
    heads = np.concatenate([active, n_e + prep.cols[idx], np.full(len(inst), sink)])
    caps = np.concatenate([src_caps, np.ones(len(idx), np.int64), prep.cap_free[inst]])
    mf = max_flow.SimpleMaxFlow()
    mf.add_arcs_with_capacity(tails.astype(np.int32), heads.astype(np.int32), caps.astype(np.int64))
    status = mf.solve(src, sink)
    if status != mf.OPTIMAL:
        raise NoFeasibleAssignment(f"max flow failed with status {status!r}")
    return int(mf.optimal_flow())


def coverage(prep: Prepared, edges: BoolArray) -> tuple[int, int]:
    """Best (pairs, enterprises with a first unit) reachable with ``edges``.

    Two plain max flows suffice: the most pairs, and the most first units (source capacity
    1 for enterprises without a lock). Both optima are reached by one flow: augmenting a
    flow along a source-to-sink path never takes the last unit away from an enterprise
    (interior nodes keep their inflow), so a flow with the most first units can be augmented
    to a maximum flow without losing any (the Mendelsohn–Dulmage argument for b-matchings).
    """
    first, rest, active = _source_arcs(prep)
    idx = np.flatnonzero(edges)
    if len(idx) == 0 or len(active) == 0:
        return 0, 0
    f = max_flow_value(prep, idx, active)
    if f == int(prep.k_free[active].sum()):
        return f, int(first[active].sum())
    if not (rest[active] > 0).any():
        return f, f
    return f, max_flow_value(prep, idx, active, first)
