"""Sentence spans, keyword tokens and overlap helpers for features and explanations.

Everything here returns *spans* or substrings of the input so that explanation snippets are
verbatim text of the documents. Tokenisation uses jieba when it is installed (a guarded
import, as bm25s does for its optional stemmers) and falls back to CJK character bigrams plus
ASCII words otherwise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

# Sentence terminators (kept with the sentence). Semicolons and newlines also end a clause:
# needs are often written as lists.
_SENTENCE_END = re.compile(r"[。！？!?；;\n]+|\.(?=\s)")
_ASCII_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-\+\.]*[A-Za-z0-9]|[A-Za-z]{2,}|\d+(?:\.\d+)?")
_CJK = re.compile(r"[\u4e00-\u9fff]")

# Function words and boilerplate of need/capability texts: they would make every pair share
# "keywords" (需要, 技术, 企业 ...).
STOPWORDS: frozenset[str] = frozenset(
    """
    的 了 和 与 及 或 等 在 是 为 对 将 把 被 由 从 向 以 于 其 之 而 并 且 也 都 就 这 那 该 各
    我们 我司 本公司 公司 企业 单位 需要 需求 希望 寻求 要求 进行 开展 提供 具有 具备 相关 方面
    技术 研究 研发 开发 应用 项目 问题 能力 水平 主要 目前 现有 通过 实现 提高 提升 解决 合作
    一个 一种 可以 能够 用于 以及 包括 基于 针对 领域 方向 工作 情况 我们的 团队 成果
    the a an of and or to in for on with by is are be this that we our from as at
    """.split()
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split ``text`` into sentence spans.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of (start, end)
        Half-open character offsets; ``text[start:end]`` is a sentence with its terminator
        and without surrounding whitespace. Empty sentences are dropped; a text without
        terminators is one span.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end()
        _append_stripped(text, start, end, spans)
        start = end
    _append_stripped(text, start, len(text), spans)
    return spans


def _append_stripped(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    # A span made only of terminators (e.g. "。。") is not a sentence.
    if end > start and _SENTENCE_END.sub("", text[start:end]).strip():
        out.append((start, end))


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` as verbatim substrings (see :func:`sentence_spans`)."""
    return [text[s:e] for s, e in sentence_spans(text)]


@lru_cache(maxsize=1)
def _jieba_cut():  # type: ignore[no-untyped-def]
    try:
        import jieba
    except ImportError:  # optional: fall back to bigrams
        logger.info("jieba not installed: keyword tokens fall back to character bigrams")
        return None
    jieba.setLogLevel(logging.WARNING)
    return jieba.lcut


def _fallback_tokens(text: str) -> list[str]:
    out = [m.group(0) for m in _ASCII_WORD.finditer(text)]
    run: list[str] = []
    for ch in text + " ":
        if _CJK.match(ch):
            run.append(ch)
            continue
        out.extend(run[i] + run[i + 1] for i in range(len(run) - 1))
        run = []
    return out


@lru_cache(maxsize=65536)
def _tokens_cached(text: str) -> tuple[str, ...]:
    cut = _jieba_cut()
    raw = cut(text) if cut is not None else _fallback_tokens(text)
    out: list[str] = []
    for tok in raw:
        tok = tok.strip().lower()
        if len(tok) < 2 or tok in STOPWORDS:
            continue
        if not (_CJK.search(tok) or any(c.isalnum() for c in tok)):
            continue
        out.append(tok)
    return tuple(out)


def tokens(text: str) -> tuple[str, ...]:
    """Content tokens of ``text``: lower-cased, at least 2 characters, stopwords removed.

    Every token is a substring of ``text.lower()``.
    """
    return _tokens_cached(text)


def keyword_set(text: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Tokens of ``text`` plus curated ``extra`` keywords (e.g. ``Document.keywords``)."""
    return frozenset(tokens(text)) | frozenset(k.strip().lower() for k in extra if k.strip())


def overlap_coefficient(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    """``|a ∩ b| / min(|a|, |b|)`` in [0, 1]; 0 when either side is empty.

    Chosen over Jaccard because a short query against a long capability text should reach 1
    when all the query's keywords are covered.
    """
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def shared_keywords(a: Iterable[str], b: Iterable[str], *, limit: int = 10) -> tuple[str, ...]:
    """Keywords in both ``a`` and ``b``, longest first then alphabetical (deterministic)."""
    common = set(a) & set(b)
    return tuple(sorted(common, key=lambda t: (-len(t), t))[:limit])


def best_sentence_pair(
    query: str,
    document: str,
    *,
    query_vectors: NDArray[np.floating[Any]] | None = None,
    document_vectors: NDArray[np.floating[Any]] | None = None,
) -> tuple[str, str, float]:
    """The best-matching (query sentence, document sentence) pair.

    Parameters
    ----------
    query, document : str
    query_vectors, document_vectors : optional arrays of shape (n_q, d) and (n_d, d)
        L2-normalised sentence vectors in :func:`sentences` order; when both are given and
        their row counts match the sentences, the pair is chosen by cosine similarity (plus
        a small keyword-overlap tie-breaker), else by keyword overlap.

    Returns
    -------
    (query_snippet, document_snippet, similarity)
        Verbatim substrings of ``query`` and ``document``; empty strings if a side is empty.
    """
    q_sents = sentences(query) or ([query] if query.strip() else [])
    d_sents = sentences(document) or ([document] if document.strip() else [])
    if not q_sents or not d_sents:
        return (q_sents[0] if q_sents else "", d_sents[0] if d_sents else "", 0.0)
    q_kw = [frozenset(tokens(s)) for s in q_sents]
    d_kw = [frozenset(tokens(s)) for s in d_sents]
    lex = np.array([[overlap_coefficient(a, b) for b in d_kw] for a in q_kw], dtype=np.float64)
    use_vectors = (
        query_vectors is not None
        and document_vectors is not None
        and len(query_vectors) == len(q_sents)
        and len(document_vectors) == len(d_sents)
    )
    if use_vectors:
        cos = (
            np.asarray(query_vectors, dtype=np.float64)
            @ np.asarray(document_vectors, dtype=np.float64).T
        )
        sim = cos + 1e-3 * lex
    else:
        # The raw shared count breaks ties between equal coefficients.
        shared = np.array([[len(a & b) for b in d_kw] for a in q_kw], dtype=np.float64)
        sim = lex + 1e-3 * shared
    i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)  # first maximum: deterministic
    return q_sents[int(i)], d_sents[int(j)], max(float(sim[i, j]), 0.0)
