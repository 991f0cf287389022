"""The tokenizer, sentence spans, keyword tokens and overlap helpers.

:func:`tokenize` is the project's one tokenizer (jieba, lower-cased, content tokens only, BM25
stopwords removed): the index build receives it as a callable for the BM25 documents
(``embeddings.build(..., tokenizer=tokenize, tokenizer_id=TOKENIZER_ID)``) and
:class:`matcher.retrieval.HybridRetriever` tokenizes BM25 queries with it. The keyword
tokens of features and explanations (:func:`tokens`) are the same segmentation, filtered for
display (at least 2 characters, boilerplate words removed).

Everything else returns *spans* or substrings of the input so that explanation snippets are
verbatim text of the documents.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

# Sentence terminators (kept with the sentence). Semicolons and newlines also end a clause:
# needs are often written as lists.
_SENTENCE_END = re.compile(r"[。！？!?；;\n]+|\.(?=\s)")

#: Identifies :func:`tokenize`'s output: index builds record it and the token cache is keyed
#: by it. Bump when :func:`tokenize` changes.
TOKENIZER_ID = "jieba-v1"

# Function words that carry no topical signal in technical Chinese text (BM25).
BM25_STOPWORDS: frozenset[str] = frozenset(
    "的 了 和 与 及 或 等 在 是 对 于 为 以 将 把 被 从 由 其 之 并 而 也 就 都 又 该 此 这 那 "
    "一个 一种 一些 我们 本 可 可以 能 能够 进行 通过 具有 以及 并且 其中 所 有 中 上 下 "
    "基于 用于 采用 利用 研究 方法 提出 表明 结果".split()
    # English stopwords that jieba keeps as tokens in mixed text.
    + "a an the of and or in on for to with by from is are was were be as at this that".split()
)

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
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def _is_content(token: str) -> bool:
    return any(unicodedata.category(c)[0] in "LN" for c in token)


def _segment(text: str) -> list[str]:
    """jieba words of the lower-cased text, stripped, without whitespace/punctuation words."""
    out = []
    for w in _jieba().lcut(text.lower()):
        w = w.strip()
        if w and _is_content(w):
            out.append(w)
    return out


def tokenize(text: str) -> list[str]:
    """Tokens of ``text`` for BM25 (documents and queries).

    Parameters
    ----------
    text : str
        Mixed Chinese/English text.

    Returns
    -------
    list of str
        jieba tokens, lowercased, without whitespace/punctuation tokens or
        :data:`BM25_STOPWORDS`, in text order.
    """
    return [w for w in _segment(text) if w not in BM25_STOPWORDS]


@lru_cache(maxsize=4096)
def _query_tokens(text: str) -> tuple[str, ...]:
    return tuple(tokenize(text))


def query_tokens(text: str) -> list[str]:
    """:func:`tokenize` of a query text, memoised (the last 4,096 texts): a need asked again
    is not segmented again."""
    return list(_query_tokens(text))


@lru_cache(maxsize=65536)
def _tokens_cached(text: str) -> tuple[str, ...]:
    return tuple(w for w in _segment(text) if len(w) >= 2 and w not in STOPWORDS)


def tokens(text: str) -> tuple[str, ...]:
    """Keyword tokens of ``text``: the :func:`tokenize` segmentation, at least 2 characters,
    :data:`STOPWORDS` removed.

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
