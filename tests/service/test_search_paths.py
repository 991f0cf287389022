"""Retrieval over a real build with the bundled model: the feedback query scored on a pool
of documents ranks exactly as a second search over the whole collection, and the service's
retrievers reuse the previous build's neighbour graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embeddings import BuildStore, DocRecord, build, make_encoder
from embeddings.serving import MemoQueryEncoder
from matcher.fusion import build_neighbour_graph
from matcher.textutil import TOKENIZER_ID, tokenize
from service.recommender import build_retrievers

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "capabilities.jsonl"
QUERIES = [
    "甘蔗收获机刀片耐磨涂层",
    "工业视觉缺陷检测算法",
    "锂电池正极材料，稀土冶炼",
    "中药提取工艺",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    rows = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()[:40]]
    docs = [DocRecord(r["external_id"], f"{r['title']}。{r['description']}") for r in rows]
    encoder = MemoQueryEncoder(make_encoder("e5"))
    index_dir = tmp_path_factory.mktemp("index")
    build(
        index_dir,
        {"capabilities": docs, "needs": docs[:5]},
        encoder,
        tokenizer=tokenize,
        tokenizer_id=TOKENIZER_ID,
        keep=2,
    )
    return BuildStore(index_dir).load_current(encoder=encoder), encoder


def test_feedback_on_a_pool_ranks_as_a_second_search(built) -> None:  # type: ignore[no-untyped-def]
    b, encoder = built
    retriever = build_retrievers(b, encoder)["capabilities"]
    retriever.prf_rescore = False
    searched = [
        [(c.doc_id, c.score, c.dense, c.chunk) for c in r] for r in retriever.retrieve(QUERIES, 20)
    ]
    retriever.prf_rescore = True
    pooled = [
        [(c.doc_id, c.score, c.dense, c.chunk) for c in r] for r in retriever.retrieve(QUERIES, 20)
    ]
    assert pooled == searched
    assert all(len(r) == 20 for r in pooled)


def test_retrievers_update_the_previous_graph(built) -> None:  # type: ignore[no-untyped-def]
    b, encoder = built
    first = build_retrievers(b, encoder)
    again = build_retrievers(b, encoder, previous=first)
    g, g2 = first["capabilities"].graph, again["capabilities"].graph
    assert g is not None and g2 is not None
    np.testing.assert_array_equal(g2.indices[:, :10], g.indices[:, :10])
    col = b.collection("capabilities")
    ids = col.doc_ids
    vecs = np.asarray(first["capabilities"].doc_vectors)
    exact = build_neighbour_graph(ids, vecs, 10)
    np.testing.assert_array_equal(g.indices[:, :10], exact.indices)
