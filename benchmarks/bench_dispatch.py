"""Commissioner dispatch at the seed's scale: 4,300 commissioners × 13,000 enterprises.

Synthetic, seeded: enterprises hold 1–3 needs, commissioners 2–6 profile documents, all
384-d vectors drawn around 60 shared topics (so the affinities have structure); each
commissioner works for one of 300 universities/institutes, and 3 % of the enterprises belong
to the corporate group of one of them (the conflict rule has work to do). Load limits are
2–5 (total capacity ≈ 1.1 × demand at k=1). Reported: the time of the sparse top-50 scoring
(:func:`matcher.dispatch.profile_scores`), of the min-cost-flow solve, the peak RSS, the
objective gap against the exact HiGHS LP on the same problem, and the number of broken
load limits / group rules (must be 0).

    python benchmarks/bench_dispatch.py [--enterprises 13000] [--commissioners 4300] [--no-lp]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def make_world(n_e: int, n_c: int, d: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((60, d)).astype(np.float32)

    def around(n: int) -> np.ndarray:
        t = topics[rng.integers(0, len(topics), n)]
        v = t + 0.9 * rng.standard_normal((n, d)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    n_needs = rng.integers(1, 4, n_e)
    q_row = np.repeat(np.arange(n_e), n_needs)
    n_docs = rng.integers(2, 7, n_c)
    d_col = np.repeat(np.arange(n_c), n_docs)
    employer = rng.integers(0, 300, n_c)
    # group codes: institutes 0..299; an enterprise is its own group unless it belongs to one
    ent_group = np.arange(1000, 1000 + n_e)
    member = rng.random(n_e) < 0.03
    ent_group[member] = rng.integers(0, 300, member.sum())
    load = rng.integers(2, 6, n_c)
    return around(len(q_row)), q_row, around(len(d_col)), d_col, employer, ent_group, load


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    from matcher.dispatch import check_dispatch, dispatch_problem, profile_scores, solve_dispatch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--enterprises", type=int, default=13_000)
    p.add_argument("--commissioners", type=int, default=4_300)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--top", type=int, default=50)
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-lp", dest="lp", action="store_false")
    args = p.parse_args()
    qv, q_row, dv, d_col, employer, ent_group, load = make_world(
        args.enterprises, args.commissioners, args.dim, args.seed
    )
    rss0 = rss_mb()
    t0 = time.perf_counter()
    cand = profile_scores(qv, q_row, args.enterprises, dv, d_col, args.commissioners, top=args.top)
    t_score = time.perf_counter() - t0
    problem = dispatch_problem(
        cand, args.enterprises, args.commissioners, load_limit=load,
        enterprise_group=ent_group, employer_group=employer, k=args.k,
    )  # fmt: skip
    t1 = time.perf_counter()
    sol = solve_dispatch(problem)
    t_solve = time.perf_counter() - t1
    out: dict[str, float | int | str] = {
        "enterprises": args.enterprises, "commissioners": args.commissioners,
        "need_vectors": len(qv), "profile_docs": len(dv), "edges": len(cand.rows),
        "excluded_same_group": int(len(np.asarray(problem.excluded))),
        "score_s": round(t_score, 2), "solve_s": round(t_solve, 2),
        "pairs": sol.n_pairs, "uncovered": len(sol.uncovered), "objective": sol.objective,
        "violations": len(check_dispatch(problem, sol, ent_group, employer)),
        "rss_before_mb": round(rss0), "peak_rss_mb": round(rss_mb()),
    }  # fmt: skip
    if args.lp:
        t2 = time.perf_counter()
        ref = solve_dispatch(problem, solver="lp")
        out["lp_s"] = round(time.perf_counter() - t2, 1)
        out["lp_objective"] = ref.stats["lp_objective"]
        out["lp_pairs"] = ref.n_pairs
        out["gap_rel"] = (ref.stats["lp_objective"] - sol.objective) / abs(
            ref.stats["lp_objective"]
        )
        out["peak_rss_mb"] = round(rss_mb())
    print(json.dumps(out))
    gap = f" gap vs LP {out['gap_rel']:.1e} (LP {out['lp_s']}s)" if "gap_rel" in out else ""
    print(
        f"bench_dispatch {args.commissioners}x{args.enterprises} top{args.top} k={args.k}: "
        f"scoring {out['score_s']}s, solve {out['solve_s']}s, peak RSS {out['peak_rss_mb']}MB, "
        f"pairs {out['pairs']} uncovered {out['uncovered']}, {out['excluded_same_group']} "
        f"same-group candidates excluded, violations {out['violations']}{gap}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
