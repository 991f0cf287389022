"""The seams between embeddings and matcher, checked where both are imported (as the service
does): embeddings objects satisfy matcher's protocols, and BM25 indexes exactly the tokens of
the one tokenizer (``matcher.textutil.tokenize``) that the retriever uses for queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embeddings import BuildStore, DocRecord, E5Encoder, Hits, build
from embeddings.cache import EmbeddingCache, text_key
from embeddings.serving import MemoQueryEncoder
from matcher.protocols import DenseSearcher, LexicalSearcher, TextEncoder
from matcher.protocols import Hits as HitsProtocol
from matcher.retrieval import HybridRetriever
from matcher.textutil import TOKENIZER_ID, tokenize
from tests.conftest import HashingEncoder

DOCS = [
    DocRecord("C:a", "基于深度学习的Defect Detection，提高了钢板的检测精度！！"),
    DocRecord("C:b", "X射线无损检测与PLC控制系统，5G远程运维。"),
    DocRecord("C:c", "甘蔗渣高分子材料改性及其在包装中的应用"),
]


def _build(tmp_path: Path, enc: HashingEncoder) -> BuildStore:
    build(tmp_path, {"capabilities": DOCS}, enc, tokenizer=tokenize, tokenizer_id=TOKENIZER_ID)
    return BuildStore(tmp_path)


def test_tokenizer_output_is_pinned() -> None:
    # BM25 figures depend on these exact tokens: change them only with a new TOKENIZER_ID.
    assert TOKENIZER_ID == "jieba-v1"
    assert tokenize("基于深度学习的Defect Detection，提高了钢板的检测精度！！ 。") == [
        "深度",
        "学习",
        "defect",
        "detection",
        "提高",
        "钢板",
        "检测",
        "精度",
    ]
    assert tokenize("X射线 PLC控制 C++ 5G的高分子材料") == [
        "x",
        "射线",
        "plc",
        "控制",
        "c++",
        "5g",
        "高分子",
        "材料",
    ]


def test_bm25_indexes_the_tokens_of_the_one_tokenizer(tmp_path: Path) -> None:
    enc = HashingEncoder(64)
    store = _build(tmp_path, enc)
    b = store.load_current(enc)
    assert b.manifest["tokenizer"] == TOKENIZER_ID
    with EmbeddingCache(store.cache_path) as cache:
        cached = cache.get_tokens(TOKENIZER_ID, [text_key(d.text) for d in DOCS])
    assert [cached[text_key(d.text)] for d in DOCS] == [tokenize(d.text) for d in DOCS]
    lexical = b.collection("capabilities").lexical
    # each document's own tokens score it against the others exactly as BM25 over them would
    for d in DOCS:
        want = np.asarray(lexical.scores(tokenize(d.text)))
        assert lexical.doc_ids_[int(np.argmax(want))] == d.doc_id
    # and the retriever's query path goes through the same function
    r = HybridRetriever(
        encoder=enc, dense=b.collection("capabilities").dense, lexical=lexical, dense_weight=0.0
    )
    assert r.retrieve(["PLC控制 射线"], 1)[0][0].doc_id == "C:b"


def test_embeddings_objects_satisfy_matcher_protocols(tmp_path: Path) -> None:
    enc = HashingEncoder(64)
    col = _build(tmp_path, enc).load_current(enc).collection("capabilities")
    assert isinstance(col.dense, DenseSearcher) and isinstance(col.lexical, LexicalSearcher)
    assert isinstance(E5Encoder(), TextEncoder)  # the model loads on first use, not here
    assert isinstance(MemoQueryEncoder(E5Encoder()), TextEncoder)
    members = [n for n, v in vars(HitsProtocol).items() if isinstance(v, property)]
    assert sorted(members) == sorted(Hits._fields)
    hits = col.dense.search(enc.encode_queries(["钢板 检测"]), 2)[0]
    assert isinstance(hits, Hits) and hits.chunks is not None and len(hits.ids) == 2
