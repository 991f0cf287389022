"""Guideline condensation (指南凝练): the needs of a collection round grouped into directions.

Within each field the need vectors (the e5 document vectors the index already holds) are
clustered; each cluster becomes a *direction* with a Chinese label made of its own most
distinctive keywords (class-based TF-IDF against the other clusters of the field), its size,
its representative needs (closest to the centroid), the enterprises behind it and its
cohesion. The caller adds the in-region institutes able to serve it (from the ranking).

Method choice. Ward linkage on the mean-centred, re-normalised e5 vectors is the default
because it needs no cluster count (a round's number of directions is unknown; the cut is a
distance threshold that sets the granularity), places every need (HDBSCAN leaves many
384-d points as noise, which a direction list cannot have; noise is attached to the nearest
cluster here when it is chosen), and is deterministic, so a re-run gives the same directions
(k-means needs k and depends on its seed). The default cut was chosen on the demo rounds for
directions of about 3–10 needs without singletons. ``benchmarks/bench_guideline.py`` compares
every method, with the true count and without, against a TF-IDF + k-means baseline on the CSL
disciplines in one run (NMI, V-measure). Fields with more needs than ``max_exact`` are first
reduced to k-means micro-clusters whose centroids Ward then merges (the exact tree is O(n²)
in memory).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InvalidParameter
from matcher.textutil import tokens

logger = logging.getLogger(__name__)

Method = Literal["ward", "average", "kmeans", "hdbscan"]
METHODS: tuple[Method, ...] = ("ward", "average", "kmeans", "hdbscan")
UNFIELDED = "未分类"

# Default Ward cut on centred unit vectors, chosen on the demo rounds for directions of
# ~3–10 needs with no singleton (187 needs of 12 fields -> 42 directions).
DEFAULT_THRESHOLD = 2.0
# Average linkage cuts a cosine distance (0..2), not a Ward merge cost.
AVERAGE_THRESHOLD = 0.8
# Words that say nothing about a direction (they occur in every need text).
LABEL_STOPWORDS = frozenset(
    "技术 需求 企业 公司 研究 开发 问题 希望 通过 解决 提高 提升 要求 合作 方式 项目 周期 "
    "目前 现有 现状 生产 产品 工艺 系统 应用 改造 优化 关键 主要 从事 年产值 左右 以上 以内 "
    "达到 改善 满足 产线 条件 环节 随着 订单 增长 近年来 逐渐 成为 瓶颈 同时 手段 加以 "
    "委托 联合 转让 咨询 服务 入股 共建 平台 研发 人员 参与 提供 中试 场地 数据 配套 "
    "基于 方法 一种 及其 以及 进行 实现 采用 设计 分析 结果 表明 本文 关键技术 攻关 技术需求 "
    "质量提升 智能化 数字化 降本增效 提质增效 节能降耗 工艺优化 技术升级 升级".split()
)


@dataclass(frozen=True, slots=True)
class NeedItem:
    """One need as the condensation sees it.

    ``keywords`` are the curated keywords of the record (weighted above text tokens).
    """

    id: str
    org_id: str
    field: str | None
    title: str
    text: str = ""
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Direction:
    """One condensed direction (指南方向) of a field.

    ``need_ids`` are ordered by closeness to the centroid (the first are the
    representatives); ``org_ids`` are the distinct enterprises behind it, most needs first;
    ``cohesion`` is the mean cosine of the needs to their (normalised) centroid.
    """

    field: str
    label: str
    keywords: tuple[str, ...]
    need_ids: tuple[str, ...]
    representatives: tuple[str, ...]
    org_ids: tuple[str, ...]
    cohesion: float
    centroid: NDArray[np.float32] = dc_field(repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.need_ids)


def _unit(x: NDArray[np.float64]) -> NDArray[np.float64]:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(n, 1e-12), dtype=np.float64)


def prepare_vectors(vectors: NDArray[np.floating], *, center: bool = True) -> NDArray[np.float64]:
    """Unit rows, mean-centred first when ``center`` (e5 vectors share a large common
    component; removing it spreads the cosines and helps every clustering method)."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise InvalidParameter(f"vectors must be 2-D; got shape {x.shape}")
    if center and len(x) > 1:
        x = x - x.mean(axis=0, keepdims=True)
    return _unit(x)


def cluster_vectors(
    vectors: NDArray[np.floating],
    *,
    method: Method = "ward",
    threshold: float | None = None,
    n_clusters: int | None = None,
    target_size: int = 8,
    min_cluster_size: int = 3,
    max_exact: int = 4000,
    center: bool = True,
    random_state: int = 0,
) -> NDArray[np.int64]:
    """Cluster labels (0..c-1, every row labelled) of float ``vectors`` (n, d).

    Parameters
    ----------
    method : "ward" (default), "average" (cosine), "kmeans" or "hdbscan"
    threshold : Ward/average distance cut, used when ``n_clusters`` is None (default
        :data:`DEFAULT_THRESHOLD` for Ward, :data:`AVERAGE_THRESHOLD` for average)
    n_clusters : a fixed number of clusters (ward, average, kmeans)
    target_size : kmeans without ``n_clusters``: k = ceil(n / target_size)
    min_cluster_size : hdbscan's minimum cluster size (noise joins its nearest cluster)
    max_exact : above this many rows, ward/average cluster k-means micro-centroids
    center : mean-centre before normalising (see :func:`prepare_vectors`)
    random_state : seed of k-means and of the micro-clusters
    """
    if method not in METHODS:
        raise InvalidParameter(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    x = prepare_vectors(vectors, center=center)
    n = len(x)
    if n_clusters is not None and n_clusters < 1:
        raise InvalidParameter(f"n_clusters must be >= 1; got {n_clusters}")
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    if threshold is None:
        threshold = AVERAGE_THRESHOLD if method == "average" else DEFAULT_THRESHOLD
    if n_clusters is not None and n_clusters >= n:
        return np.arange(n, dtype=np.int64)
    if method == "kmeans":
        k = n_clusters if n_clusters is not None else max(1, math.ceil(n / target_size))
        return _kmeans(x, min(k, n), random_state)
    if method == "hdbscan":
        return _hdbscan(x, min_cluster_size)
    if n > max_exact:
        micro = _kmeans(x, max_exact // 2, random_state)
        cents = _unit(np.stack([x[micro == c].mean(axis=0) for c in range(micro.max() + 1)]))
        top = _agglomerative(cents, method, threshold, n_clusters)
        return _compact(top[micro])
    return _agglomerative(x, method, threshold, n_clusters)


def _kmeans(x: NDArray[np.float64], k: int, seed: int) -> NDArray[np.int64]:
    from sklearn.cluster import KMeans

    if k <= 1:
        return np.zeros(len(x), dtype=np.int64)
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(x)
    return _compact(np.asarray(km.labels_, dtype=np.int64))


def _agglomerative(
    x: NDArray[np.float64], method: Method, threshold: float, n_clusters: int | None
) -> NDArray[np.int64]:
    from sklearn.cluster import AgglomerativeClustering

    linkage = "ward" if method == "ward" else "average"
    model = AgglomerativeClustering(
        n_clusters=n_clusters,
        distance_threshold=None if n_clusters is not None else float(threshold),
        linkage=linkage,
        metric="euclidean" if linkage == "ward" else "cosine",
    )
    return _compact(np.asarray(model.fit_predict(x), dtype=np.int64))


def _hdbscan(x: NDArray[np.float64], min_cluster_size: int) -> NDArray[np.int64]:
    from sklearn.cluster import HDBSCAN

    labels = np.asarray(
        HDBSCAN(min_cluster_size=max(2, min_cluster_size), copy=True).fit_predict(x), dtype=np.int64
    )
    if (labels >= 0).sum() == 0:
        return np.zeros(len(x), dtype=np.int64)
    noise = labels < 0
    if noise.any():  # a direction list places every need: noise joins its nearest cluster
        ids = np.unique(labels[~noise])
        cents = _unit(np.stack([x[labels == c].mean(axis=0) for c in ids]))
        labels[noise] = ids[np.argmax(x[noise] @ cents.T, axis=1)]
    return _compact(labels)


def _compact(labels: NDArray[np.int64]) -> NDArray[np.int64]:
    """Relabel to 0..c-1 in order of first appearance (deterministic ids)."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inv].astype(np.int64)


# --------------------------------------------------------------------------- labels


def need_terms(item: NeedItem, *, keyword_weight: int = 2) -> list[str]:
    """Label terms of a need: its curated keywords (counted ``keyword_weight`` times) and
    the content tokens of its title (descriptions repeat boilerplate, titles do not)."""
    kws = [k.strip().lower() for k in item.keywords if k.strip()]
    out = [k for k in kws for _ in range(keyword_weight)]
    out += list(tokens(item.title))
    return [t for t in out if t not in LABEL_STOPWORDS and not t.isdigit()]


def distinctive_terms(
    term_lists: Sequence[Sequence[str]], labels: NDArray[np.int64], *, top: int = 5
) -> list[tuple[str, ...]]:
    """Most distinctive terms of each cluster (class-based TF-IDF, BERTopic's c-TF-IDF).

    ``score(t, c) = tf(t, c) / |c| · log(1 + A / f(t))`` with ``A`` the mean number of terms
    per cluster and ``f(t)`` the frequency of ``t`` over all clusters; a term must occur in
    at least two needs of a cluster of two or more. Terms contained in a better term of the
    same cluster are dropped (热管理 under 整车热管理).
    """
    n_c = int(labels.max()) + 1 if len(labels) else 0
    tf = [Counter() for _ in range(n_c)]  # type: list[Counter[str]]
    docs = [Counter() for _ in range(n_c)]  # type: list[Counter[str]]
    for terms, c in zip(term_lists, labels.tolist(), strict=True):
        tf[c].update(terms)
        docs[c].update(set(terms))
    total: Counter[str] = Counter()
    for counts in tf:
        total.update(counts)
    avg = sum(total.values()) / max(n_c, 1)
    sizes = np.bincount(labels, minlength=n_c)
    out: list[tuple[str, ...]] = []
    for c in range(n_c):
        need_docs = 2 if sizes[c] >= 2 else 1
        scored = sorted(
            (
                (tf[c][t] / max(sum(tf[c].values()), 1) * math.log(1 + avg / total[t]), t)
                for t in tf[c]
                if docs[c][t] >= need_docs
            ),
            key=lambda p: (-p[0], p[1]),
        )
        if not scored:  # nothing shared: fall back to the most frequent terms
            scored = [(float(v), t) for t, v in tf[c].most_common()]
        chosen: list[str] = []
        for _, t in scored:
            if any(t in b or b in t for b in chosen):
                continue
            chosen.append(t)
            if len(chosen) == top:
                break
        out.append(tuple(chosen))
    return out


def make_label(keywords: Sequence[str], field_name: str | None = None, *, n: int = 3) -> str:
    """A Chinese direction label from its keywords: ``热泵、整车热管理与电池包温控``."""
    # tokens are lower-cased for counting; Latin acronyms read better upper-cased (NVH)
    kws = [k.upper() if k.isascii() else k for k in keywords if k][:n]
    if not kws:
        return f"{field_name or UNFIELDED}综合方向"
    if len(kws) == 1:
        return f"{kws[0]}关键技术"
    return "、".join(kws[:-1]) + "与" + kws[-1]


# --------------------------------------------------------------------------- condensation


@dataclass(frozen=True)
class Condensation:
    """Result of :func:`condense`: directions per field, biggest first within a field."""

    directions: tuple[Direction, ...]
    params: Mapping[str, object]

    def by_field(self) -> dict[str, list[Direction]]:
        out: dict[str, list[Direction]] = {}
        for d in self.directions:
            out.setdefault(d.field, []).append(d)
        return out


def build_direction(
    items: Sequence[NeedItem],
    vectors: NDArray[np.floating],
    keywords: Sequence[str],
    field_name: str,
    *,
    n_representatives: int = 3,
) -> Direction:
    """One :class:`Direction` from its needs (rows of ``vectors`` align with ``items``)."""
    x = _unit(np.asarray(vectors, dtype=np.float64))
    cent = x.mean(axis=0)
    cent = cent / max(float(np.linalg.norm(cent)), 1e-12)
    sims = x @ cent
    order = np.argsort(-sims, kind="stable")
    ids = tuple(items[i].id for i in order)
    orgs = Counter(it.org_id for it in items)
    org_ids = tuple(o for o, _ in sorted(orgs.items(), key=lambda p: (-p[1], p[0])))
    return Direction(
        field=field_name,
        label=make_label(keywords, field_name),
        keywords=tuple(keywords),
        need_ids=ids,
        representatives=ids[:n_representatives],
        org_ids=org_ids,
        cohesion=float(sims.mean()) if len(sims) else 0.0,
        centroid=cent.astype(np.float32),
    )


def condense(
    items: Sequence[NeedItem],
    vectors: NDArray[np.floating],
    *,
    method: Method = "ward",
    threshold: float | None = None,
    min_field_size: int = 2,
    n_representatives: int = 3,
    random_state: int = 0,
) -> Condensation:
    """Condense needs into directions within each field.

    Parameters
    ----------
    items : sequence of NeedItem, length n
    vectors : float array (n, d), one document vector per need (rows align with ``items``)
    method, threshold, random_state : see :func:`cluster_vectors`
    min_field_size : a field with fewer needs is one direction
    n_representatives : representative needs per direction

    Returns
    -------
    Condensation
        Fields in order of their number of needs (largest first), directions within a field
        by size, then label.
    """
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or len(v) != len(items):
        raise InvalidParameter(f"vectors must have shape ({len(items)}, d); got {v.shape}")
    by_field: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_field.setdefault((it.field or "").strip() or UNFIELDED, []).append(i)
    directions: list[Direction] = []
    for fname, rows in sorted(by_field.items(), key=lambda p: (-len(p[1]), p[0])):
        sub = v[rows]
        if len(rows) < max(min_field_size, 2):
            labels = np.zeros(len(rows), dtype=np.int64)
        else:
            labels = cluster_vectors(
                sub, method=method, threshold=threshold, random_state=random_state
            )
        terms = [need_terms(items[i]) for i in rows]
        kws = distinctive_terms(terms, labels)
        found = [
            build_direction(
                [items[rows[j]] for j in np.flatnonzero(labels == c)],
                sub[labels == c],
                kws[c],
                fname,
                n_representatives=n_representatives,
            )
            for c in range(int(labels.max()) + 1)
        ]
        directions += sorted(found, key=lambda d: (-d.size, d.label))
        logger.info("field %s: %d needs -> %d directions", fname, len(rows), len(found))
    params = {"method": method, "threshold": threshold, "random_state": random_state}
    return Condensation(tuple(directions), params)


def split_labels(
    vectors: NDArray[np.floating], *, parts: int = 2, random_state: int = 0
) -> NDArray[np.int64]:
    """Labels 0..parts-1 that split one direction's needs (Ward with a fixed count)."""
    n = len(vectors)
    if parts < 2:
        raise InvalidParameter(f"parts must be >= 2; got {parts}")
    if n < parts:
        raise InvalidParameter(f"cannot split {n} needs into {parts} parts")
    return cluster_vectors(vectors, method="ward", n_clusters=parts, random_state=random_state)


def relabel(items: Iterable[NeedItem], groups: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """Distinctive keywords of explicit groups of need ids (after a staff merge or split)."""
    by_id = {it.id: it for it in items}
    terms: list[list[str]] = []
    labels: list[int] = []
    for g, ids in enumerate(groups):
        for i in ids:
            terms.append(need_terms(by_id[i]))
            labels.append(g)
    if not labels:
        return [() for _ in groups]
    return distinctive_terms(terms, np.asarray(labels, dtype=np.int64))
