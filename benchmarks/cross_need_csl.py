"""Scores comparable across needs, measured on the CSL dev half (title2disc).

The pairing engine compares scores of different needs in one objective and an institute's
"needs that match us" ranks many needs for one organisation, so a pair score must mean the
same whichever need it belongs to. This benchmark builds that situation from CSL:

* organisations: the 7,852 discipline-labelled abstracts (``title2disc.corpus.jsonl``) of
  each discipline shuffled (seeded) and cut into groups of ``--group`` abstracts, one group
  per organisation (its capabilities);
* needs: the title2disc titles (one per paper, 997), owned by one enterprise;
* relevance of (need, organisation): 1 when the organisation's abstracts are of the title's
  discipline (a pair whose organisation holds the title's own abstract is left out);
* scores: :meth:`matcher.pipeline.Recommender.pair_matrix` over the production retriever
  (``embeddings.build`` + the default hybrid preset, as ``duijie eval retrieval``), for
  ``--orgs`` organisations sampled with the seed.

Reported, per organisation (cross-need: how well its scores order the needs): mean AUC
(relevant vs other needs) and mean nDCG@10 of the needs ranked by the organisation's scores;
beside it, per need (the usual direction): mean nDCG@10 of the organisations ranked by the
need's scores; and the share of pairs whose organisation had no document among the need's
retrieved candidates (scored without document evidence)::

    python benchmarks/cross_need_csl.py --cache-dir var/evalcache [--orgs 400] [--group 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from matcher.pipeline import Recommender
from matcher.rankers import ScoringRanker
from matcher.types import Document, OrgInfo
from service.commands.evaluate import (
    build_eval_index,
    make_eval_retriever,
    read_corpus,
    read_queries,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "csl"
ENTERPRISE = "ENT"


def auc(scores: np.ndarray, rel: np.ndarray) -> float:
    """Probability that a relevant item outscores an irrelevant one (ties count half)."""
    pos, neg = scores[rel], scores[~rel]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(order.size, dtype=np.float64)
    allv = np.concatenate([pos, neg])[order]
    # average ranks of ties
    i = 0
    while i < allv.size:
        j = i
        while j + 1 < allv.size and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    r_pos = ranks[: pos.size].sum()
    return float((r_pos - pos.size * (pos.size + 1) / 2.0) / (pos.size * neg.size))


def ndcg10(scores: np.ndarray, rel: np.ndarray) -> float:
    if not rel.any():
        return float("nan")
    top = np.argsort(-scores, kind="stable")[:10]
    disc = 1.0 / np.log2(np.arange(2, 12))
    dcg = float((rel[top] * disc[: top.size]).sum())
    ideal = float(disc[: min(10, int(rel.sum()))].sum())
    return dcg / ideal


def disciplines(queries: list) -> dict[str, int]:  # type: ignore[type-arg]
    """Document id -> discipline label (a title's relevant + excluded = its discipline)."""
    label: dict[str, int] = {}
    keys: dict[str, int] = {}
    for q in queries:
        members = set(q.relevant) | set(q.exclude)
        lab = keys.setdefault(min(members), len(keys))
        for d in members:
            label.setdefault(d, lab)
    return label


def main() -> int:
    from embeddings.cache import CACHE_FILE, EmbeddingCache
    from service.commands.evaluate import copy_cache, merge_cache

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--group", type=int, default=4, help="abstracts per organisation")
    ap.add_argument("--orgs", type=int, default=400, help="organisations evaluated")
    ap.add_argument("--needs", type=int, default=None, help="first N titles (default all)")
    ap.add_argument("--method", default="hybrid")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--first",
        type=int,
        default=None,
        help="keep only abstracts among the first N of corpus.jsonl (a cached prefix)",
    )
    ap.add_argument(
        "--score-unretrieved",
        action="store_true",
        help="score pairs without retrieved documents from their document vectors",
    )
    ap.add_argument("--weights", default=None, help='scoring weight overrides, JSON {"name": w}')
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    corpus = read_corpus(args.data / "title2disc.corpus.jsonl")
    queries = read_queries(args.data / "title2disc.queries.jsonl", args.needs)
    label = disciplines(read_queries(args.data / "title2disc.queries.jsonl"))
    if args.first is not None:
        keep = {i for i, _ in read_corpus(args.data / "corpus.jsonl")[: args.first]}
        corpus = [(i, t) for i, t in corpus if i in keep]
        queries = [q for q in queries if q.exclude and q.exclude[0] in keep]
    rng = random.Random(args.seed)
    by_disc: dict[int, list[str]] = defaultdict(list)
    for doc_id, _ in corpus:
        by_disc[label[doc_id]].append(doc_id)
    org_of: dict[str, str] = {}
    org_disc: dict[str, int] = {}
    for disc, ids in sorted(by_disc.items()):
        rng.shuffle(ids)
        for g in range(0, len(ids), args.group):
            org = f"O{disc:02d}-{g // args.group:03d}"
            org_disc[org] = disc
            for d in ids[g : g + args.group]:
                org_of[d] = org
    orgs = {o: OrgInfo(o, o, "university", True) for o in org_disc}
    orgs[ENTERPRISE] = OrgInfo(ENTERPRISE, ENTERPRISE, "enterprise", True)
    documents: dict[str, Document] = {
        d: Document(d, org_of[d], "paper", text, "") for d, text in corpus
    }
    for q in queries:
        documents[f"N:{q.id}"] = Document(f"N:{q.id}", ENTERPRISE, "need", q.text, "")
    eval_orgs = sorted(rng.sample(sorted(org_disc), min(args.orgs, len(org_disc))))

    with tempfile.TemporaryDirectory(prefix="duijie-xneed-") as tmp:
        index_dir = Path(tmp) / "index"
        index_dir.mkdir()
        cache_file = index_dir / CACHE_FILE
        if args.cache_dir is not None:
            copy_cache(args.cache_dir / CACHE_FILE, cache_file)
        try:
            with EmbeddingCache(cache_file) as cache:
                run = build_eval_index(corpus, index_dir, cache=cache)
                ranker = None
                if args.weights:
                    ranker = ScoringRanker(weights=json.loads(args.weights))
                rec = Recommender(
                    retrievers={"capabilities": make_eval_retriever(run, args.method)},
                    documents=documents,
                    orgs=orgs,
                    ranker=ranker,
                    evidence_k=0,
                    score_unretrieved=args.score_unretrieved,
                )
                t1 = time.perf_counter()
                need_ids = [f"N:{q.id}" for q in queries]
                pm = rec.pair_matrix(need_ids, eval_orgs)
                no_doc = 0
                for qid in need_ids[:100]:
                    (cands,) = rec.retrieve("capabilities", [documents[qid].title])
                    hit = {org_of.get(c.doc_id) for c in cands}
                    no_doc += sum(o not in hit for o in eval_orgs)
                t_score = time.perf_counter() - t1
        finally:
            if args.cache_dir is not None:
                merge_cache(cache_file, args.cache_dir / CACHE_FILE)

    q_disc = np.array([label[q.exclude[0]] if q.exclude else label[q.relevant[0]] for q in queries])
    o_disc = np.array([org_disc[o] for o in eval_orgs])
    rel = q_disc[:, None] == o_disc[None, :]
    own = np.array(
        [[bool(q.exclude) and org_of[q.exclude[0]] == o for o in eval_orgs] for q in queries]
    )
    scores = pm.scores
    org_auc, org_ndcg, need_ndcg = [], [], []
    for j in range(len(eval_orgs)):
        keep = ~own[:, j]
        org_auc.append(auc(scores[keep, j], rel[keep, j]))
        org_ndcg.append(ndcg10(scores[keep, j], rel[keep, j]))
    for i in range(len(queries)):
        keep = ~own[i]
        need_ndcg.append(ndcg10(scores[i, keep], rel[i, keep]))
    res = {
        "org_auc": float(np.nanmean(org_auc)),
        "org_ndcg@10": float(np.nanmean(org_ndcg)),
        "need_ndcg@10": float(np.nanmean(need_ndcg)),
        "pairs_without_docs": no_doc / (min(100, len(need_ids)) * len(eval_orgs)),
        "score_ties": 1.0 - len(np.unique(scores)) / scores.size,
    }
    print(f"\n`python {' '.join(sys.argv)}`\n")
    print("metric | value")
    print("---|---")
    for k, v in res.items():
        print(f"{k} | {v:.4f}")
    first = f" first={args.first}" if args.first is not None else ""
    print(
        f"\ncross_need_csl{first}: needs={len(queries)} orgs={len(eval_orgs)} (of {len(org_disc)}, "
        f"{args.group} abstracts each) per-org AUC={res['org_auc']:.4f} "
        f"per-org nDCG@10={res['org_ndcg@10']:.4f} per-need nDCG@10={res['need_ndcg@10']:.4f} "
        f"pairs-without-docs={res['pairs_without_docs']:.3f} score={t_score:.0f}s "
        f"total={time.perf_counter() - t0:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
