"""Information-retrieval metrics for ranked candidate lists (binary relevance).

Owns nDCG@k, Recall@k and MRR@k over rankings of external document ids, with per-query
``exclude`` handling (documents dropped from the ranking before scoring, e.g. the query's own
paper in a "find the other papers of this discipline" task). Pure Python/numpy.

Conventions
-----------
* Relevance is binary; a relevant id that is also excluded is not counted as relevant.
* nDCG@k uses gain 1 and discount ``1 / log2(rank + 1)`` (rank from 1); the ideal DCG is that of
  ``min(k, n_relevant)`` relevant documents at the top.
* A query with no relevant documents (after exclusion) is skipped by :func:`evaluate_rankings`
  and counted in ``n_skipped``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

from matcher.errors import InvalidParameter

DEFAULT_METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "mrr@100")
_METRIC_NAMES = ("ndcg", "recall", "mrr", "precision")


def _check_k(k: int) -> None:
    if k < 1:
        raise InvalidParameter(f"k must be >= 1, got {k}")


def apply_exclude(ranking: Sequence[str], exclude: Collection[str] = ()) -> list[str]:
    """Drop excluded ids (and repeated ids, keeping the first) from a ranking.

    Parameters
    ----------
    ranking : sequence of str
        Document ids, best first.
    exclude : collection of str
        Ids to remove.

    Returns
    -------
    list of str
        The ranking without excluded or duplicate ids, order preserved.
    """
    excl = set(exclude)
    seen: set[str] = set()
    out: list[str] = []
    for doc_id in ranking:
        if doc_id in excl or doc_id in seen:
            continue
        seen.add(doc_id)
        out.append(doc_id)
    return out


def ndcg_at_k(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Binary nDCG@k of one ranking.

    Parameters
    ----------
    ranking : sequence of str
        Document ids, best first (already without excluded ids).
    relevant : collection of str
        Relevant ids; must be non-empty.
    k : int
        Cut-off, >= 1.

    Returns
    -------
    float
        In [0, 1].
    """
    _check_k(k)
    rel = set(relevant)
    if not rel:
        raise InvalidParameter("ndcg_at_k needs at least one relevant document")
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranking[:k]) if d in rel)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(rel))))
    return dcg / idcg


def recall_at_k(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Fraction of the relevant ids found in the top ``k``.

    Parameters
    ----------
    ranking : sequence of str
        Document ids, best first.
    relevant : collection of str
        Relevant ids; must be non-empty.
    k : int
        Cut-off, >= 1.

    Returns
    -------
    float
        In [0, 1].
    """
    _check_k(k)
    rel = set(relevant)
    if not rel:
        raise InvalidParameter("recall_at_k needs at least one relevant document")
    return len(rel.intersection(ranking[:k])) / len(rel)


def precision_at_k(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Fraction of the top ``k`` positions holding a relevant id (missing positions count as 0).

    Parameters
    ----------
    ranking : sequence of str
        Document ids, best first.
    relevant : collection of str
        Relevant ids.
    k : int
        Cut-off, >= 1.

    Returns
    -------
    float
        In [0, 1].
    """
    _check_k(k)
    rel = set(relevant)
    return sum(1 for d in ranking[:k] if d in rel) / k


def mrr_at_k(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Reciprocal rank of the first relevant id within the top ``k`` (0 if none).

    Parameters
    ----------
    ranking : sequence of str
        Document ids, best first.
    relevant : collection of str
        Relevant ids.
    k : int
        Cut-off, >= 1.

    Returns
    -------
    float
        In [0, 1].
    """
    _check_k(k)
    rel = set(relevant)
    for i, d in enumerate(ranking[:k]):
        if d in rel:
            return 1.0 / (i + 1)
    return 0.0


def _parse_metric(name: str) -> tuple[str, int]:
    base, sep, cut = name.partition("@")
    if base not in _METRIC_NAMES or not sep or not cut.isdigit():
        raise InvalidParameter(
            f"unknown metric {name!r}; expected <name>@<k> with name in {list(_METRIC_NAMES)}"
        )
    return base, int(cut)


_FUNCS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "mrr": mrr_at_k,
    "precision": precision_at_k,
}


def evaluate_rankings(
    rankings: Mapping[str, Sequence[str]],
    relevant: Mapping[str, Iterable[str]],
    exclude: Mapping[str, Iterable[str]] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, float]:
    """Mean of each metric over the queries that have relevant documents.

    Parameters
    ----------
    rankings : mapping of query id -> sequence of str
        Retrieved document ids per query, best first. A query missing here counts as an empty
        ranking (all metrics 0).
    relevant : mapping of query id -> iterable of str
        Relevant document ids per query; defines the set of evaluated queries.
    exclude : mapping of query id -> iterable of str, optional
        Ids dropped from the ranking (and from the relevant set) before scoring.
    metrics : sequence of str
        Metric names such as ``"ndcg@10"``, ``"recall@100"``, ``"mrr@100"``, ``"precision@10"``.

    Returns
    -------
    dict of str -> float
        One mean per metric, plus ``"n_queries"`` (evaluated) and ``"n_skipped"`` (no relevant
        documents after exclusion).
    """
    parsed = [(m, *_parse_metric(m)) for m in metrics]
    exclude = exclude or {}
    sums = dict.fromkeys(metrics, 0.0)
    n = skipped = 0
    for qid, rel_ids in relevant.items():
        excl = set(exclude.get(qid, ()))
        rel = set(rel_ids) - excl
        if not rel:
            skipped += 1
            continue
        ranking = apply_exclude(rankings.get(qid, ()), excl)
        for name, base, cut in parsed:
            sums[name] += _FUNCS[base](ranking, rel, cut)
        n += 1
    out = {name: (total / n if n else 0.0) for name, total in sums.items()}
    out["n_queries"] = float(n)
    out["n_skipped"] = float(skipped)
    return out
