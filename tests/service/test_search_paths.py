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


def _docs() -> list[DocRecord]:
    rows = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()[:40]]
    return [DocRecord(r["external_id"], f"{r['title']}。{r['description']}") for r in rows]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    docs = _docs()
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


def test_a_changed_build_updates_the_graph_as_a_fresh_build(built, tmp_path) -> None:  # type: ignore[no-untyped-def]
    b, encoder = built
    before = build_retrievers(b, encoder)
    docs = _docs()
    docs[3] = DocRecord(docs[3].doc_id, "甘蔗收获机刀片的耐磨涂层与热处理工艺。")  # changed
    docs = docs[:-1] + [DocRecord("CAP-NEW", "工业视觉缺陷检测的深度学习算法平台。")]
    build(
        tmp_path,
        {"capabilities": docs, "needs": docs[:5]},
        encoder,
        tokenizer=tokenize,
        tokenizer_id=TOKENIZER_ID,
        keep=2,
    )
    b2 = BuildStore(tmp_path).load_current(encoder=encoder)
    updated = build_retrievers(b2, encoder, previous=before)["capabilities"].graph
    fresh = build_retrievers(b2, encoder)["capabilities"].graph
    assert updated is not None and fresh is not None
    assert updated.ids == fresh.ids
    np.testing.assert_array_equal(updated.indices[:, :10], fresh.indices[:, :10])
    np.testing.assert_allclose(updated.weights[:, :10], fresh.weights[:, :10], atol=1e-6)
