"""BM25 over jieba tokens (``bm25s``), saved as plain files (``.npy`` without pickle + JSON).

Documents are indexed whole (not chunked): BM25 already normalises for length, and the
evidence shown to users comes from the dense best chunk. Tokenisation handles mixed
Chinese/English text: English is lowercased, whitespace/punctuation-only tokens are dropped,
and a small list of Chinese function words is removed.
"""

from __future__ import annotations

import json
import logging
import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.errors import IndexCorrupted
from embeddings.types import Hits

logger = logging.getLogger(__name__)

#: Bump when :func:`tokenize` changes (keys the token cache).
TOKENIZER_VERSION = "jieba-v1"

BM25_DIR = "bm25"
DOC_IDS_FILE = "doc_ids.json"

# Function words that carry no topical signal in technical Chinese text.
CHINESE_STOPWORDS: frozenset[str] = frozenset(
    "的 了 和 与 及 或 等 在 是 对 于 为 以 将 把 被 从 由 其 之 并 而 也 就 都 又 该 此 这 那 "
    "一个 一种 一些 我们 本 可 可以 能 能够 进行 通过 具有 以及 并且 其中 所 有 中 上 下 "
    "基于 用于 采用 利用 研究 方法 提出 表明 结果".split()
)
# English stopwords that jieba keeps as tokens in mixed text.
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    "a an the of and or in on for to with by from is are was were be as at this that".split()
)

_jieba_ready = False


def _jieba() -> Any:
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba_ready = True
    return jieba


def _is_content(token: str) -> bool:
    return any(unicodedata.category(c)[0] in "LN" for c in token)


def tokenize(text: str) -> list[str]:
    """Tokens of ``text`` for BM25.

    Parameters
    ----------
    text : str
        Mixed Chinese/English text.

    Returns
    -------
    list of str
        jieba tokens, lowercased, without whitespace/punctuation tokens or stopwords.
    """
    words = _jieba().lcut(text.lower())
    out = []
    for w in words:
        w = w.strip()
        if w and _is_content(w) and w not in CHINESE_STOPWORDS and w not in ENGLISH_STOPWORDS:
            out.append(w)
    return out


class BM25Index:
    """Lexical index over whole documents.

    Parameters
    ----------
    k1, b : float
        BM25 parameters.
    method : str
        bm25s scoring variant.
    """

    def __init__(self, *, k1: float = 1.5, b: float = 0.75, method: str = "lucene") -> None:
        self.k1 = k1
        self.b = b
        self.method = method
        self.doc_ids_: list[str] = []
        self.retriever_: Any = None

    def __len__(self) -> int:
        return len(self.doc_ids_)

    def fit(self, doc_ids: Sequence[str], tokens: Sequence[list[str]]) -> BM25Index:
        """Index pre-tokenised documents (see :func:`tokenize`); returns self."""
        import bm25s

        if len(doc_ids) != len(tokens):
            raise ValueError(f"{len(doc_ids)} doc ids for {len(tokens)} token lists")
        self.doc_ids_ = list(doc_ids)
        if not self.doc_ids_:
            self.retriever_ = None
            return self
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        retriever.index([list(t) for t in tokens], show_progress=False)
        self.retriever_ = retriever
        return self

    def search_tokens(self, queries: Sequence[list[str]], k: int) -> list[Hits]:
        """BM25 top-k for tokenised queries; documents with score 0 are left out."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        out: list[Hits] = []
        empty = Hits([], np.empty(0, dtype=np.float32), None)
        kk = min(k, len(self.doc_ids_))
        for q in queries:
            if self.retriever_ is None or not q or kk == 0:
                out.append(empty)
                continue
            docs, scores = self.retriever_.retrieve([list(q)], k=kk, show_progress=False)
            keep = scores[0] > 0
            out.append(
                Hits(
                    [self.doc_ids_[int(i)] for i in docs[0][keep]],
                    scores[0][keep].astype(np.float32),
                    None,
                )
            )
        return out

    def search_text(self, queries: Sequence[str], k: int) -> list[Hits]:
        """BM25 top-k for raw query texts (``LexicalSearcher`` protocol)."""
        if isinstance(queries, str):
            raise TypeError("queries must be a sequence of str, not a single str")
        return self.search_tokens([tokenize(q) for q in queries], k)

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every document for one tokenised query: float32 (len(self),)."""
        if self.retriever_ is None:
            return np.zeros(len(self.doc_ids_), dtype=np.float32)
        return np.asarray(self.retriever_.get_scores(list(query_tokens)), dtype=np.float32)

    def save(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write the bm25s files plus ``doc_ids.json`` into ``directory``; returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ids_path = directory / DOC_IDS_FILE
        meta = {"doc_ids": self.doc_ids_, "k1": self.k1, "b": self.b, "method": self.method}
        ids_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        if self.retriever_ is not None:
            self.retriever_.save(str(directory), allow_pickle=False, show_progress=False)
        return sorted(p for p in directory.iterdir() if p.is_file())

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> BM25Index:
        """Read an index written by :meth:`save` (pickle disabled).

        Raises
        ------
        IndexCorrupted
            A file is missing or unreadable (naming it).
        """
        import bm25s

        directory = Path(directory)
        ids_path = directory / DOC_IDS_FILE
        try:
            meta = json.loads(ids_path.read_text(encoding="utf-8"))
            doc_ids = [str(d) for d in meta["doc_ids"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupted(f"{ids_path}: unreadable ({exc})") from exc
        obj = cls(k1=float(meta["k1"]), b=float(meta["b"]), method=str(meta["method"]))
        obj.doc_ids_ = doc_ids
        if doc_ids:
            try:
                obj.retriever_ = bm25s.BM25.load(str(directory), allow_pickle=False)
            except Exception as exc:  # numpy/json raise many types on bad files
                raise IndexCorrupted(f"{directory}: bm25s cannot load it ({exc})") from exc
            n = int(obj.retriever_.scores["num_docs"])
            if n != len(doc_ids):
                raise IndexCorrupted(
                    f"{directory}: BM25 has {n} docs, {ids_path} lists {len(doc_ids)}"
                )
        return obj
