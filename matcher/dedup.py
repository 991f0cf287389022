"""Near-duplicate needs: the same need sent twice, or by an enterprise and by its city bureau.

A pair is a candidate when its document vectors are close (cosine >= ``min_cosine``, found by
chunked matrix products over unit vectors); it is then scored on the text itself, because
two genuinely different needs of one field can be close in embedding space while a re-sent
need shares most of its wording:

* ``jaccard``: Jaccard similarity of character 3-gram sets of the normalised title + text
  (punctuation, spaces and digits removed, so a re-typed budget or date does not count);
* ``containment``: the share of the shorter text's 3-grams found in the longer one (a need
  forwarded with an added cover sentence is still contained);
* ``relation``: how the two submitters are related (same organisation, same corporate group,
  or a public body of the enterprise's city forwarding it), supplied by the caller.

``score = 0.3·cosine' + 0.5·max(jaccard, containment) + 0.2·relation_bonus`` with
``cosine' = (cosine − min_cosine)/(1 − min_cosine)`` clipped to [0, 1]. A pair is reported
when ``max(jaccard, containment) >= min_overlap`` and ``score >= min_score``; each pair
carries its Chinese reasons. The text overlap carries the decision: needs written from one
template (common in a collection round) have e5 cosines of 0.97–0.99 and 55–80 % shared
3-grams, while a re-sent or forwarded need shares 85–100 %. Pure numpy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InvalidParameter

Relation = Callable[[str, str], str | None]
RELATION_REASONS: dict[str, str] = {
    "same_org": "同一单位重复提交",
    "same_group": "同一集团内单位分别提交",
    "forwarded": "企业与所在地市主管部门分别报送",
}
RELATION_BONUS: dict[str, float] = {"same_org": 1.0, "same_group": 0.8, "forwarded": 1.0}
_DROP = re.compile(r"[\s\d\W_]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class DupCandidate:
    """A need as dedup sees it: id, submitting organisation, the text compared."""

    id: str
    org_id: str
    text: str


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """Two needs that are probably one; ``a`` < ``b`` by input order."""

    a: str
    b: str
    score: float
    cosine: float
    jaccard: float
    containment: float
    relation: str | None
    reasons: tuple[str, ...]

    @property
    def reason_text(self) -> str:
        return "；".join(self.reasons)


def normalise(text: str) -> str:
    """Lower-cased text with whitespace, punctuation and digits removed."""
    return _DROP.sub("", text.lower())


def shingles(text: str, n: int = 3) -> frozenset[str]:
    """Character ``n``-grams of :func:`normalise` (the whole string if shorter)."""
    t = normalise(text)
    if len(t) <= n:
        return frozenset([t]) if t else frozenset()
    return frozenset(t[i : i + n] for i in range(len(t) - n + 1))


def overlap(a: frozenset[str], b: frozenset[str]) -> tuple[float, float]:
    """(Jaccard, containment of the smaller set) of two shingle sets; 0 when either is empty."""
    if not a or not b:
        return 0.0, 0.0
    inter = len(a & b)
    return inter / len(a | b), inter / min(len(a), len(b))


def candidate_pairs(
    vectors: NDArray[np.floating], min_cosine: float, *, block: int = 2048, max_per_row: int = 20
) -> list[tuple[int, int, float]]:
    """Row pairs (i < j) with cosine >= ``min_cosine``, at most ``max_per_row`` best per row.

    ``vectors`` (n, d) are normalised here; memory is ``block × n`` floats at a time.
    """
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidParameter(f"vectors must be 2-D; got shape {x.shape}")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(x)
    out: dict[tuple[int, int], float] = {}
    for lo in range(0, n, block):
        s = x[lo : lo + block] @ x.T
        for r in range(len(s)):
            i = lo + r
            s[r, : i + 1] = -1.0  # each unordered pair once, never with itself
            hits = np.flatnonzero(s[r] >= min_cosine)
            if len(hits) > max_per_row:
                hits = hits[np.argsort(-s[r, hits], kind="stable")[:max_per_row]]
            for j in hits.tolist():
                out[(i, j)] = float(s[r, j])
    return [(i, j, c) for (i, j), c in sorted(out.items())]


def find_duplicates(
    items: Sequence[DupCandidate],
    vectors: NDArray[np.floating],
    *,
    relation: Relation | None = None,
    min_cosine: float = 0.90,
    min_overlap: float = 0.85,
    min_score: float = 0.5,
) -> list[DuplicatePair]:
    """Near-duplicate pairs among ``items`` (rows of ``vectors`` align), best score first.

    Parameters
    ----------
    items : sequence of DupCandidate, length n
    vectors : float array (n, d)
    relation : callable(org_a, org_b) -> "same_org" | "same_group" | "forwarded" | None
        How two submitters are related (default: "same_org" for equal ids, else None).
    min_cosine : candidate threshold on the document cosine
    min_overlap : minimum of max(jaccard, containment) of the character 3-grams
    min_score : minimum combined score
    """
    if len(vectors) != len(items):
        raise InvalidParameter(f"{len(items)} items for {len(vectors)} vectors")
    if not 0.0 <= min_cosine < 1.0:
        raise InvalidParameter(f"min_cosine must be in [0, 1); got {min_cosine}")
    rel = relation or (lambda a, b: "same_org" if a == b else None)
    cache: dict[int, frozenset[str]] = {}

    def sh(i: int) -> frozenset[str]:
        if i not in cache:
            cache[i] = shingles(items[i].text)
        return cache[i]

    pairs: list[DuplicatePair] = []
    for i, j, cos in candidate_pairs(vectors, min_cosine):
        jac, cont = overlap(sh(i), sh(j))
        text_sim = max(jac, cont)
        if text_sim < min_overlap:
            continue
        r = rel(items[i].org_id, items[j].org_id)
        cos_part = min(1.0, max(0.0, (cos - min_cosine) / (1.0 - min_cosine)))
        score = 0.3 * cos_part + 0.5 * text_sim + 0.2 * RELATION_BONUS.get(r or "", 0.0)
        if score < min_score:
            continue
        reasons = [f"语义相似度 {cos:.2f}", f"文字重合 {text_sim:.0%}"]
        if cont > jac + 0.2:
            reasons.append("一条需求的文字基本包含在另一条中")
        if r is not None:
            reasons.append(RELATION_REASONS.get(r, r))
        pairs.append(
            DuplicatePair(
                a=items[i].id,
                b=items[j].id,
                score=round(score, 4),
                cosine=round(cos, 4),
                jaccard=round(jac, 4),
                containment=round(cont, 4),
                relation=r,
                reasons=tuple(reasons),
            )
        )
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs
