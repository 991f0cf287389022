"""Precision of need → institute suggestions on the demo data, and the quality of their evidence.

The demo generator (scripts/gen_demo.py) writes every need and capability about one topic of
its field (:data:`TOPICS`); the topic is recovered here from the text (object term and
keywords), as in ``org_aggregation_demo.py``. The ranking never sees these labels. For every
active demo need whose topic is recovered:

* on-topic institute: an eligible organisation (capability-holder kinds, not the need's
  corporate group, active) holding an active capability on the need's topic;
* P@5 / P@10: on-topic organisations among the top 5 / 10, divided by 5 / 10 (``raw``) and by
  ``min(k, on-topic organisations available)`` (``attainable``: a topic with two on-topic
  institutes cannot fill five places);
* missing@10: needs with an on-topic institute available but none in the top 10;
* cross-need: per institute, how well its pair scores order all the needs (relevant: it
  holds a capability on the need's topic), mean AUC and nDCG@10 (``--no-cross`` skips it);
* on-topic evidence: of the evidence shown for the on-topic institutes of the top 5, the share
  of entries (and of first entries) whose document is itself on the need's topic;
* evidence: evidence entries shown at similarity <= 0.001, entries whose snippets are
  administrative text (cooperation mode, period, budget, contact, company profile), and
  shared keywords that are function words or requirement boilerplate.

Then the hand-written regression needs of ``data/regression/needs.jsonl`` (written the way an
enterprise writes them: a friction-stir welding deformation need, an aluminium die-casting
porosity need, a need heavy with company profile, cooperation mode, period, budget and
contact) are ranked on the same data and printed with their top 5 and evidence.

Runs in-process through :class:`service.recommender.RecommenderHandle` on the configured
store (``DUIJIE_DATA_DIR``; build it with ``duijie demo`` and ``duijie reindex``)::

    DUIJIE_DATA_DIR=var python benchmarks/precision_demo.py [--show 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matcher.constraints import CAPABILITY_ORG_KINDS
from matcher.pipeline import Recommender
from matcher.types import Document, Suggestion
from service.commands.match import open_handle
from service.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]

#: Administrative text (independent of the matcher's own classifier, so the benchmark does not
#: grade the component with itself).
ADMIN_TEXT = re.compile(
    r"合作方式|项目周期|周期\s*\d|个月|工作日|预算|万元|联系人|联系电话|电话|邮箱|公司位于|"
    r"主要从事|年产值|成立于|知识产权|优先考虑|CMA"
)
#: Words that carry no technical meaning as "shared keywords" (the issue's list plus common
#: function words and requirement boilerplate).
NON_KEYWORDS = frozenset(
    "以内 以上 以下 满足 达到 方式 采用 测试 要求 目前 现有 同时 通过 进行 实现 提高 提升 "
    "解决 合作 项目 周期 个月 左右 改善 稳定 控制 现状 条件 问题 技术 需求 企业 公司 生产 "
    "产线 改造 优化 研究 应用 开发 委托 咨询 服务 转让 联合 承担 基础 经验 相关 领域 团队 "
    "高校 院所 单位 我们 可以 能够 提供 具有 完成 验证 已经 一种 方法 及其 以及 对于 关于 "
    "现场 使用 利用 基于 主要 其中 较 为 的 了 和 与 及".split()
)

#: Hand-written regression needs (id, title, text, field, on-topic [field, topic object]): a
#: friction-stir welding deformation need, an aluminium die-casting porosity need and a need
#: heavy with boilerplate, as enterprises write them. The matcher tests use the same file.
REGRESSION_FILE = ROOT / "data" / "regression" / "needs.jsonl"


def regression_needs() -> list[dict[str, Any]]:
    """The rows of :data:`REGRESSION_FILE`."""
    with REGRESSION_FILE.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_topics() -> dict[str, Any]:
    """``TOPICS`` of scripts/gen_demo.py (the generator's topic labels)."""
    spec = importlib.util.spec_from_file_location("gen_demo", ROOT / "scripts" / "gen_demo.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["gen_demo"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.TOPICS  # type: ignore[no-any-return]


def topic_of(doc: Document, topics: dict[str, Any]) -> tuple[str, str] | None:
    """(field, topic object) the generator wrote ``doc`` about, None if not recoverable."""
    if doc.field not in topics:
        return None
    text = doc.full_text + " ".join(doc.keywords)
    scored = [
        (10 * (t.obj in text) + sum(k in text for k in t.keywords), -i, t.obj)
        for i, t in enumerate(topics[doc.field])
    ]
    best = max(scored)
    return (doc.field, best[2]) if best[0] > 0 else None


@dataclass
class NeedResult:
    need_id: str
    available: int
    hits5: int
    hits10: int
    evidence: int
    zero_evidence: int
    admin_evidence: int
    keywords: int
    bad_keywords: list[str]
    on_topic_evidence: int = 0  # evidence entries of on-topic institutes on the need's topic
    on_topic_org_evidence: int = 0  # all evidence entries of on-topic institutes
    first_on_topic: int = 0  # on-topic institutes whose first evidence entry is on topic
    on_topic_shown: int = 0  # on-topic institutes in the top 5 with evidence


def on_topic_orgs(
    rec: Recommender, need: Document, topic: tuple[str, str], cap_topic: dict[str, Any]
) -> set[str]:
    """Eligible organisations holding an active capability on ``topic``."""
    holders = {
        rec.documents[c].org_id
        for c, t in cap_topic.items()
        if t == topic and rec.active(rec.documents[c])
    }
    return {
        o
        for o in holders
        if not rec.policy.check([need.org_id], o, keys=[need.id], kinds=CAPABILITY_ORG_KINDS)
    }


def grade(
    rec: Recommender,
    need: Document,
    on: set[str],
    sugg: list[Suggestion],
    topic: object = None,
    cap_topic: dict[str, Any] | None = None,
) -> NeedResult:
    top = [s.org_id for s in sugg]
    evs = [e for s in sugg[:5] for e in s.evidence]
    kws = [k for s in sugg[:5] for k in s.shared_keywords]
    shown = [s for s in sugg[:5] if s.org_id in on and s.evidence]
    cap_topic = cap_topic or {}

    def on_topic(doc_id: str) -> bool:
        return topic is not None and cap_topic.get(doc_id) == topic

    return NeedResult(
        need.id,
        len(on),
        sum(o in on for o in top[:5]),
        sum(o in on for o in top[:10]),
        len(evs),
        sum(e.score <= 0.001 for e in evs),
        sum(
            bool(ADMIN_TEXT.search(e.doc_snippet) or ADMIN_TEXT.search(e.query_snippet))
            for e in evs
        ),
        len(kws),
        [k for k in kws if k in NON_KEYWORDS or len(k) < 2],
        sum(on_topic(e.doc_id) for s in shown for e in s.evidence),
        sum(len(s.evidence) for s in shown),
        sum(on_topic(s.evidence[0].doc_id) for s in shown),
        len(shown),
    )


def summarise(results: list[NeedResult]) -> dict[str, float]:
    avail = [r for r in results if r.available]
    ev = sum(r.evidence for r in results) or 1
    kw = sum(r.keywords for r in results) or 1
    return {
        "needs": len(results),
        "needs_with_on_topic": len(avail),
        "p@5_raw": float(np.mean([r.hits5 / 5 for r in avail])),
        "p@10_raw": float(np.mean([r.hits10 / 10 for r in avail])),
        "p@5": float(np.mean([r.hits5 / min(5, r.available) for r in avail])),
        "p@10": float(np.mean([r.hits10 / min(10, r.available) for r in avail])),
        "missing@10": sum(r.hits10 == 0 for r in avail),
        "zero_evidence": sum(r.zero_evidence for r in results) / ev,
        "admin_evidence": sum(r.admin_evidence for r in results) / ev,
        "bad_keywords": sum(len(r.bad_keywords) for r in results) / kw,
        "on_topic_evidence": sum(r.on_topic_evidence for r in results)
        / (sum(r.on_topic_org_evidence for r in results) or 1),
        "first_evidence_on_topic": sum(r.first_on_topic for r in results)
        / (sum(r.on_topic_shown for r in results) or 1),
    }


def cross_need(
    rec: Recommender, needs: list[Document], cap_topic: dict[str, Any], topics: dict[str, Any]
) -> dict[str, float]:
    """Per institute, how well its scores order the needs (relevant: the institute holds a
    capability on the need's topic): mean AUC and nDCG@10 over institutes, from one
    :meth:`Recommender.pair_matrix` of every demo need × every capability-holding institute.
    """
    org_topics: dict[str, set[tuple[str, str]]] = {}
    for c, t in cap_topic.items():
        d = rec.documents[c]
        if t is not None and rec.active(d) and rec.orgs[d.org_id].kind in CAPABILITY_ORG_KINDS:
            org_topics.setdefault(d.org_id, set()).add(t)
    org_ids = sorted(org_topics)
    rows = [(n, topic_of(n, topics)) for n in needs]
    rows = [(n, t) for n, t in rows if t is not None]
    pm = rec.pair_matrix([n.id for n, _ in rows], org_ids)
    aucs, ndcgs = [], []
    for j, o in enumerate(org_ids):
        keep = ~pm.forbidden[:, j]
        rel = np.array([t in org_topics[o] for _, t in rows])[keep]
        sc = pm.scores[keep, j]
        if rel.any() and (~rel).any():
            pos, neg = sc[rel], sc[~rel]
            aucs.append(
                float(
                    (pos[:, None] > neg[None, :]).mean()
                    + 0.5 * (pos[:, None] == neg[None, :]).mean()
                )
            )
            top = np.argsort(-sc, kind="stable")[:10]
            disc = 1.0 / np.log2(np.arange(2, 12))
            ideal = disc[: min(10, int(rel.sum()))].sum()
            ndcgs.append(float((rel[top] * disc[: top.size]).sum() / ideal))
    return {"cross_need_auc": float(np.mean(aucs)), "cross_need_ndcg@10": float(np.mean(ndcgs))}


def show(rec: Recommender, need: Document, sugg: list[Suggestion], on: set[str], n: int) -> None:
    print(f"\n## {need.id} 「{need.title}」 on-topic available: {len(on)}")
    for s in sugg[:n]:
        mark = "on-topic" if s.org_id in on else "off-topic"
        print(f"{s.rank}. {rec.orgs[s.org_id].name} ({s.org_id}) {s.score:.3f} [{mark}]")
        for e in s.evidence:
            doc = rec.documents[e.doc_id]
            print(f"   - {e.doc_id}「{doc.title}」 sim {e.score:.3f}")
            print(f"     need: {e.query_snippet}")
            print(f"     doc:  {e.doc_snippet}")
        print(f"   shared keywords: {'、'.join(s.shared_keywords)}")


def regression_recommender(rec: Recommender, owner: str) -> tuple[Recommender, list[Document]]:
    """The same recommender with the hand-written needs added as documents of ``owner``."""
    extra = [
        Document(f"N:{r['id']}", owner, "need", r["title"], r["text"], field=r["field"])
        for r in regression_needs()
    ]
    docs = {**rec.documents, **{d.id: d for d in extra}}
    clone = Recommender(
        retrievers=rec.retrievers,
        documents=docs,
        orgs=rec.orgs,
        policy=rec.policy,
        ranker=rec.ranker,
        load=rec.features.load,
        outcomes=rec.features.outcomes,
        fetch_k=rec.fetch_k,
        evidence_k=rec.evidence_k,
        sentence_encoder=rec.sentence_encoder,
    )
    return clone, extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", type=int, default=5, help="top entries printed per regression need")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-cross", action="store_true", help="skip the cross-need pair matrix")
    ap.add_argument("--weights", default=None, help='scoring weight overrides, JSON {"name": w}')
    args = ap.parse_args()
    t0 = time.perf_counter()
    rec = open_handle(load_settings()).get()
    if args.weights:
        from matcher.rankers import ScoringRanker

        rec.ranker = ScoringRanker(weights=json.loads(args.weights))
    topics = load_topics()
    cap_topic = {d.id: topic_of(d, topics) for d in rec.documents.values() if d.kind != "need"}
    needs = sorted(
        (d for d in rec.documents.values() if d.kind == "need" and rec.active(d)),
        key=lambda d: d.id,
    )
    results: list[NeedResult] = []
    for need in needs:
        topic = topic_of(need, topics)
        if topic is None:
            continue
        on = on_topic_orgs(rec, need, topic, cap_topic)
        results.append(grade(rec, need, on, rec.suggest_for_need(need.id, 10), topic, cap_topic))
    demo = summarise(results)
    if not args.no_cross:
        demo.update(cross_need(rec, needs, cap_topic, topics))

    owner = next(d.org_id for d in needs if d.field == "机械")
    reg_rec, extra = regression_recommender(rec, owner)
    reg_results = []
    topic_of_reg = {f"N:{r['id']}": tuple(r["topic"]) for r in regression_needs()}
    for doc in extra:
        topic = topic_of_reg[doc.id]
        on = on_topic_orgs(reg_rec, doc, topic, cap_topic)
        sugg = reg_rec.suggest_for_need(doc.id, 10)
        reg_results.append(grade(reg_rec, doc, on, sugg, topic, cap_topic))
        show(reg_rec, doc, sugg, on, args.show)
    print("\nneed | on-topic available | top5 hits | top10 hits | zero-sim ev | admin ev | bad kw")
    print("---|---|---|---|---|---|---")
    for r in reg_results:
        print(
            f"{r.need_id} | {r.available} | {r.hits5} | {r.hits10} | {r.zero_evidence} | "
            f"{r.admin_evidence}/{r.evidence} | {'、'.join(r.bad_keywords) or '-'}"
        )
    print(f"\n`python {' '.join(sys.argv)}`\n")
    print("metric | value")
    print("---|---")
    for key, value in demo.items():
        print(f"{key} | {value:.3f}" if isinstance(value, float) else f"{key} | {value}")
    reg_ok = sum(r.hits5 > 0 for r in reg_results)
    if args.json is not None:
        args.json.write_text(
            json.dumps({"demo": demo, "regression": [r.__dict__ for r in reg_results]}, indent=2)
        )
    print(
        f"\nprecision_demo: needs={demo['needs_with_on_topic']} P@5={demo['p@5']:.3f} "
        f"(raw {demo['p@5_raw']:.3f}) P@10={demo['p@10']:.3f} (raw {demo['p@10_raw']:.3f}) "
        f"missing@10={demo['missing@10']} zero-sim-evidence={demo['zero_evidence']:.3f} "
        f"admin-evidence={demo['admin_evidence']:.3f} bad-keywords={demo['bad_keywords']:.3f} "
        f"on-topic-evidence={demo['on_topic_evidence']:.3f} "
        f"(first {demo['first_evidence_on_topic']:.3f}) "
        f"regression top5-on-topic={reg_ok}/{len(reg_results)} "
        f"cross-need AUC={demo.get('cross_need_auc', float('nan')):.3f} "
        f"time={time.perf_counter() - t0:.0f}s"
    )


if __name__ == "__main__":
    main()
