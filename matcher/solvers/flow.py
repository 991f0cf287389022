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
    n_nodes = n_e + n_i + 2
    arc_limit = _INT_LIMIT // (n_nodes + 1)
    # Longest simple cycle in the residual network visits at most this many institute arcs;
    # the tier cost must exceed the affinity cost such a cycle can change (see module doc).
    cycle = int(min(len(active), int((prep.cap_free > 0).sum()), len(idx)))

    scale = 0.0
    edge_cost = np.zeros(len(idx), np.int64)
    if weights is not None:
        w = weights[idx]
        w_max, span = float(w.max()), float(w.max() - w.min())
        units = int(cost_units)
        if tiered:
            units = min(units, (arc_limit - 1) // max(cycle, 1) - 1)
        units = max(1, min(units, arc_limit))
        if span > 0:
            scale = units / span
            edge_cost = np.rint((w_max - w) * scale).astype(np.int64)
    tier_cost = int(edge_cost.max(initial=0)) * cycle + 1 if tiered else 0

    src, sink = n_e + n_i, n_e + n_i + 1
    has_first = active[first[active] > 0]
    has_rest = active[rest[active] > 0]
    inst = np.flatnonzero(prep.cap_free > 0)
    tails = np.concatenate(
        [np.full(len(has_first) + len(has_rest), src), prep.rows[idx], n_e + inst]
    )
    heads = np.concatenate([has_first, has_rest, n_e + prep.cols[idx], np.full(len(inst), sink)])
    caps = np.concatenate(
        [np.ones(len(has_first), np.int64), rest[has_rest], np.ones(len(idx), np.int64),
         prep.cap_free[inst]]
    )  # fmt: skip
    costs = np.concatenate(
        [np.zeros(len(has_first), np.int64), np.full(len(has_rest), tier_cost, np.int64),
         edge_cost, np.zeros(len(inst), np.int64)]
    )  # fmt: skip
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32), heads.astype(np.int32), caps.astype(np.int64), costs
    )
    supply = int(caps[: len(has_first) + len(has_rest)].sum())
    mcf.set_node_supply(src, supply)
    mcf.set_node_supply(sink, -supply)
    status = mcf.solve_max_flow_with_min_cost()
    if status != mcf.OPTIMAL:
        raise NoFeasibleAssignment(f"min-cost flow failed with status {status!r}")
    flows = mcf.flows(np.arange(mcf.num_arcs(), dtype=np.int32))
    n_src = len(has_first) + len(has_rest)
    edge_flow = flows[n_src : n_src + len(idx)]
    chosen[idx[edge_flow > 0]] = True
    n_first = int(flows[: len(has_first)].sum())
    return FlowResult(chosen, int(edge_flow.sum()), n_first, scale)


def coverage(prep: Prepared, edges: BoolArray) -> tuple[int, int]:
    """Best (pairs, first units) reachable with ``edges``; see :func:`solve_flow`.

    Uses plain max flow when no enterprise has a second free unit (then the two counts
    coincide), otherwise a min-cost flow with the tier cost only.
    """
    first, rest, active = _source_arcs(prep)
    idx = np.flatnonzero(edges)
    if len(idx) == 0 or len(active) == 0:
        return 0, 0
    if (rest[active] > 0).any():
        res = solve_flow(prep, edges, None)
        return res.n_pairs, res.n_first
    n_e, n_i = prep.n_e, prep.n_i
    src, sink = n_e + n_i, n_e + n_i + 1
    inst = np.flatnonzero(prep.cap_free > 0)
    tails = np.concatenate([np.full(len(active), src), prep.rows[idx], n_e + inst])
    heads = np.concatenate([active, n_e + prep.cols[idx], np.full(len(inst), sink)])
    caps = np.concatenate([prep.k_free[active], np.ones(len(idx), np.int64), prep.cap_free[inst]])
    mf = max_flow.SimpleMaxFlow()
    mf.add_arcs_with_capacity(tails.astype(np.int32), heads.astype(np.int32), caps.astype(np.int64))
    status = mf.solve(src, sink)
    if status != mf.OPTIMAL:
        raise NoFeasibleAssignment(f"max flow failed with status {status!r}")
    f = int(mf.optimal_flow())
    return f, f
