"""The production retriever over the embeddings searchers: the row path gives what the id
path gives, the pool-scored feedback gives the full second search's ranking when the pool
holds the whole collection, and it searches the index once per query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from embeddings.index import VectorIndex
from embeddings.lexical import BM25Index
from embeddings.store import DenseChunkSearcher
from embeddings.types import Hits
from matcher.fusion import build_neighbour_graph
from matcher.presets import make_retriever
from matcher.protocols import RowSearcher
from matcher.rowmaps import CandidateList

WORDS = [f"词{i}" for i in range(40)]
N_DOCS = 120


class TableEncoder:
    """Fixed query vectors by text."""

    def __init__(self, table: dict[str, NDArray[np.float32]]) -> None:
        self.table = table

    @property
    def dim(self) -> int:
        return 16

    @property
    def model_id(self) -> str:
        return "table"

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return np.stack([self.table[t] for t in texts]).astype(np.float32)

    def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.encode_queries(texts)


class IdsOnly:
    """A searcher seen through its id-based methods only (no rows)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def search(self, queries: NDArray[np.float32], k: int) -> list[Hits]:
        return [Hits(list(h.ids), h.scores, h.chunks) for h in self.inner.search(queries, k)]

    def search_tokens(self, queries: Sequence[Sequence[str]], k: int) -> list[Hits]:
        return [Hits(list(h.ids), h.scores, h.chunks) for h in self.inner.search_tokens(queries, k)]


class CountingSearcher(DenseChunkSearcher):
    """The chunk searcher counting the searches it sends to FAISS."""

    def __init__(self, vectors: VectorIndex, n_docs: int) -> None:
        super().__init__(vectors, n_docs)
        self.searches = 0
        self.scored = 0

    def search_rows(self, queries: NDArray[np.float32], k: int) -> list[Hits]:
        self.searches += len(queries)
        return super().search_rows(queries, k)

    def score_rows(
        self, queries: NDArray[np.float32], rows: Sequence[NDArray[np.int64]], k: int
    ) -> list[Hits]:
        self.scored += len(queries)
        return super().score_rows(queries, rows, k)


def _unit(x: NDArray[np.float64]) -> NDArray[np.float32]:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    topics = _unit(rng.normal(size=(6, 16)))
    keys, vecs, doc_vecs, tokens, doc_ids = [], [], [], [], []
    for d in range(N_DOCS):
        doc = f"D{d:03d}"
        t = topics[d % 6]
        chunks = _unit(t + 0.6 * rng.normal(size=(int(rng.integers(1, 4)), 16)))
        keys += [f"{doc}#{c}" for c in range(len(chunks))]
        vecs.append(chunks)
        doc_vecs.append(_unit(chunks.mean(axis=0)))
        tokens.append([WORDS[int(j)] for j in rng.choice(40, 6, replace=False)])
        doc_ids.append(doc)
    index = VectorIndex(16).add(np.concatenate(vecs), keys)
    lexical = BM25Index().fit(doc_ids, tokens)
    queries = {
        ("，".join(WORDS[3 * i : 3 * i + 3]) if i % 2 else f"查询{i}"): _unit(
            topics[i % 6] + 0.5 * rng.normal(size=16)
        )
        for i in range(12)
    }
    dv = np.stack(doc_vecs)
    return {
        "index": index,
        "lexical": lexical,
        "doc_ids": doc_ids,
        "doc_vecs": dv,
        "graph": build_neighbour_graph(doc_ids, dv, 10),
        "encoder": TableEncoder(queries),
        "queries": list(queries),
    }


def _retriever(world: dict[str, Any], dense: Any, lexical: Any, **params: Any) -> Any:
    return make_retriever(
        "hybrid",
        encoder=world["encoder"],
        dense=dense,
        lexical=lexical,
        doc_ids=world["doc_ids"],
        doc_vectors=world["doc_vecs"],
        graph=world["graph"],
        depth=30,
        **params,
    )


@pytest.mark.parametrize("rescore", [False, True])
def test_row_path_equals_the_id_path(world: dict[str, Any], rescore: bool) -> None:
    searcher = DenseChunkSearcher(world["index"], N_DOCS)
    assert isinstance(searcher, RowSearcher)
    rows = _retriever(world, searcher, world["lexical"], prf_rescore=rescore)
    ids = _retriever(world, IdsOnly(searcher), IdsOnly(world["lexical"]), prf_rescore=False)
    for q in world["queries"]:
        got = rows.retrieve([q], 25)[0]
        assert len(got) == 25
        assert isinstance(got, CandidateList)  # the candidates carry their rows
        assert [got.space.ids[r] for r in got.rows.tolist()] == [c.doc_id for c in got]
        if not rescore:
            assert got == ids.retrieve([q], 25)[0]  # every field, bit for bit


def test_pool_feedback_equals_the_second_search_when_the_pool_holds_everything(
    world: dict[str, Any],
) -> None:
    searcher = CountingSearcher(world["index"], N_DOCS)
    full = _retriever(world, searcher, world["lexical"])
    # depth 30 x 4 >= 120 documents: the deep first search is the whole collection
    pooled = _retriever(world, searcher, world["lexical"], prf_rescore=True, prf_pool=4)
    for q in world["queries"]:
        a, b = full.retrieve([q], 20)[0], pooled.retrieve([q], 20)[0]
        assert [c.doc_id for c in a] == [c.doc_id for c in b]
        np.testing.assert_allclose([c.score for c in a], [c.score for c in b], atol=1e-6)
        assert [(c.dense, c.lexical, c.chunk) for c in a] == [
            (c.dense, c.lexical, c.chunk) for c in b
        ]


def test_pool_feedback_searches_the_index_once_per_query(world: dict[str, Any]) -> None:
    searcher = CountingSearcher(world["index"], N_DOCS)
    pooled = _retriever(world, searcher, world["lexical"], prf_rescore=True, prf_pool=2)
    qs = world["queries"][:5]
    pooled.retrieve(qs, 10)
    assert (searcher.searches, searcher.scored) == (5, 5)
    full = _retriever(world, searcher, world["lexical"], prf_rescore=False)
    full.retrieve(qs, 10)
    assert (searcher.searches, searcher.scored) == (15, 5)  # a second search per query


def test_the_default_preset_searches_the_index_once_per_query(world: dict[str, Any]) -> None:
    searcher = CountingSearcher(world["index"], N_DOCS)
    default = make_retriever(
        encoder=world["encoder"],
        dense=searcher,
        lexical=world["lexical"],
        doc_ids=world["doc_ids"],
        doc_vectors=world["doc_vecs"],
        graph=world["graph"],
    )
    for q in world["queries"]:
        default.retrieve([q], 10)
    assert searcher.searches == searcher.scored == len(world["queries"])
