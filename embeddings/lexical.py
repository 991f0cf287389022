"""BM25 over token lists (``bm25s``), saved as plain files (``.npy`` without pickle + JSON).

Documents are indexed whole (not chunked): BM25 already normalises for length, and the
evidence shown to users comes from the dense best chunk. The index only sees tokens: the
tokenizer belongs to the caller (the project's one tokenizer is ``matcher.textutil.tokenize``;
the index build receives it, and the retriever tokenizes queries with it).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from embeddings.errors import IndexCorrupted
from embeddings.types import Hits

logger = logging.getLogger(__name__)

BM25_DIR = "bm25"
DOC_IDS_FILE = "doc_ids.json"


class TermMatrix(NamedTuple):
    """The BM25 term-document score matrix of an index, term-major (CSC over terms): the
    documents of term id ``t`` are the rows ``indices[indptr[t]:indptr[t + 1]]`` of
    ``doc_ids``, with BM25 term scores ``data[...]`` (a document's score for a query is the sum
    of its query terms' scores). Views on the index's own arrays, not copies.

    doc_ids : document ids, one per row.
    vocab : token -> term id (ids at or past ``len(indptr) - 1`` have no documents).
    indptr : int64 (n_terms + 1,); indices : int32 (nnz,); data : float32 (nnz,).
    """

    doc_ids: list[str]
    vocab: dict[str, int]
    indptr: NDArray[np.int64]
    indices: NDArray[np.int32]
    data: NDArray[np.float32]


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
        """Index pre-tokenised documents; returns self."""
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

    def search_tokens(self, queries: Sequence[Sequence[str]], k: int) -> list[Hits]:
        """BM25 top-k for tokenised queries (``LexicalSearcher`` protocol).

        Documents with score 0 are left out; ``chunks`` is None (documents are not chunked);
        ``rows`` index :attr:`row_ids`.
        """
        if isinstance(queries, str) or any(isinstance(q, str) for q in queries):
            raise TypeError("queries must be a sequence of token lists, not of str")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        out: list[Hits] = []
        empty = Hits([], np.empty(0, dtype=np.float32), None, np.empty(0, dtype=np.int64))
        kk = min(k, len(self.doc_ids_))
        for q in queries:
            if self.retriever_ is None or not q or kk == 0:
                out.append(empty)
                continue
            docs, scores = self.retriever_.retrieve([list(q)], k=kk, show_progress=False)
            keep = scores[0] > 0
            rows = docs[0][keep].astype(np.int64)
            out.append(
                Hits(
                    [self.doc_ids_[i] for i in rows.tolist()],
                    scores[0][keep].astype(np.float32),
                    None,
                    rows,
                )
            )
        return out

    @property
    def row_ids(self) -> list[str]:
        """Document id of each row (``Hits.rows`` index this list)."""
        return self.doc_ids_

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every document for one tokenised query: float32 (len(self),)."""
        if self.retriever_ is None:
            return np.zeros(len(self.doc_ids_), dtype=np.float32)
        return np.asarray(self.retriever_.get_scores(list(query_tokens)), dtype=np.float32)

    def term_matrix(self) -> TermMatrix:
        """The index's term-document score matrix (:class:`TermMatrix`; empty when no
        documents are indexed)."""
        if self.retriever_ is None:
            return TermMatrix(
                list(self.doc_ids_),
                {},
                np.zeros(1, dtype=np.int64),
                np.zeros(0, dtype=np.int32),
                np.zeros(0, dtype=np.float32),
            )
        sc = self.retriever_.scores
        return TermMatrix(
            self.doc_ids_,
            self.retriever_.vocab_dict,
            np.asarray(sc["indptr"], dtype=np.int64),
            np.asarray(sc["indices"], dtype=np.int32),
            np.asarray(sc["data"], dtype=np.float32),
        )

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
