"""Latency of the Recommender's own work (aggregation, features, eligibility, explanations).

Synthetic corpus: ``--docs`` capability documents of ``--orgs`` organisations with random
Chinese texts drawn from a technical vocabulary, random unit vectors, and a numpy
brute-force retrieval done at setup (so encoder and index time are excluded: they are
measured by the embeddings/retrieval benchmarks). Cold = first request per need (keyword tokenisation not cached yet),
warm = repeated.

    python benchmarks/recommender_latency.py [--docs 20000] [--orgs 2000] [--queries 100]
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import resource
import time

import numpy as np

from matcher.pipeline import Recommender
from matcher.protocols import Candidate
from matcher.types import Document, OrgInfo

VOCAB = (
    "制糖 废水 厌氧 反应器 蔗渣 复合材料 发酵 酵母 甘蔗 收获机 刀片 耐磨 涂层 桥梁 监测 光纤 "
    "传感 锂电池 正极 材料 稀土 冶炼 铝合金 轧制 桑蚕 丝绸 茶叶 加工 芒果 保鲜 冷链 物流 中药 "
    "提取 罗汉果 甜苷 木薯 淀粉 乙醇 生物质 气化 锰矿 尾矿 综合利用 汽车 零部件 焊接 机器人 "
    "视觉 检测 算法 大数据 平台 北斗 定位 海洋 养殖 红树林 修复 土壤 重金属 污染 治理"
).split()


class Precomputed:
    """Brute-force retrieval done at setup, so the timings exclude it."""

    def __init__(self, results: dict[str, list[Candidate]]) -> None:
        self.results = results

    def retrieve(self, queries, k):  # type: ignore[no-untyped-def]
        return [self.results[q][:k] for q in queries]


def text(rng: np.random.Generator, n_sent: int) -> str:
    return "".join(
        "".join(rng.choice(VOCAB, size=rng.integers(3, 8))) + "。" for _ in range(n_sent)
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=20000)
    p.add_argument("--orgs", type=int, default=2000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--fetch", type=int, default=200)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--warm-up", action="store_true", help="precompute keyword sets first")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    kinds = ("university", "institute", "company", "enterprise")
    orgs = {
        f"o{i}": OrgInfo(
            f"o{i}",
            f"单位{i}",
            kinds[i % 4],
            bool(i % 3),
            parent_id=f"o{i - 1}" if i % 10 == 1 else None,
        )
        for i in range(args.orgs)
    }
    docs = {
        f"d{i}": Document(
            f"d{i}",
            f"o{int(rng.integers(args.orgs))}",
            "achievement",
            text(rng, 1),
            text(rng, 4),
            trl=int(rng.integers(1, 10)),
        )
        for i in range(args.docs)
    }
    needs = {
        f"n{i}": Document(f"n{i}", f"o{4 * i % args.orgs + 3}", "need", text(rng, 1), text(rng, 3))
        for i in range(args.queries)
    }
    documents = {**docs, **needs}
    vecs = rng.standard_normal((args.docs, args.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = list(docs)
    results = {}
    for n in needs.values():
        v = vecs[rng.integers(args.docs)]
        v = v + 0.5 * rng.standard_normal(args.dim).astype(np.float32) / np.sqrt(args.dim)
        sims = vecs @ (v / np.linalg.norm(v))
        top = np.argsort(-sims, kind="stable")[: args.fetch]
        results[n.full_text] = [
            Candidate(ids[j], float(sims[j]), dense=float(sims[j]), lexical=10.0 * float(sims[j]))
            for j in top
        ]
    retr = Precomputed(results)
    rec = Recommender(
        retrievers={"capabilities": retr}, documents=documents, orgs=orgs, fetch_k=args.fetch
    )
    t = time.perf_counter()
    if args.warm_up:
        rec.warm_up()
    warm_s = time.perf_counter() - t
    lat = {"cold": [], "warm": []}
    for phase in ("cold", "warm"):
        for nid in needs:
            t = time.perf_counter()
            rec.suggest_for_need(nid, 10, kinds=None)
            lat[phase].append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for phase, xs in lat.items():
        a = np.array(xs) * 1000
        print(f"{phase}: p50={np.percentile(a, 50):.1f} ms p99={np.percentile(a, 99):.1f} ms")
    c, w = (np.array(lat[k]) * 1000 for k in ("cold", "warm"))
    print(
        f"recommender_latency: docs={args.docs} orgs={args.orgs} fetch={args.fetch} "
        f"cold p50={np.percentile(c, 50):.1f}ms p99={np.percentile(c, 99):.1f}ms "
        f"warm p50={np.percentile(w, 50):.1f}ms p99={np.percentile(w, 99):.1f}ms "
        f"warm_up={warm_s:.1f}s maxrss={peak:.0f}MiB (excl. encoder/index time)"
    )


if __name__ == "__main__":
    main()
