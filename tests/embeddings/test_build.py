from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import embeddings.builder as build_mod
from embeddings import BuildStore, DocRecord, IndexBuild
from embeddings.errors import BuildLocked, IndexCorrupted, IndexMismatch, IndexNotFound
from tests.embeddings.conftest import FakeEncoder, bigram_tokens, build

LONG = "".join(f"第{i}段讨论锂电池隔膜的孔隙率与热收缩。" for i in range(40))  # ~20 chunks at 40


def _collections(corpus: list[DocRecord]) -> dict[str, list[DocRecord]]:
    return {"capabilities": corpus[:4], "needs": corpus[4:]}


def test_build_and_load_current(tmp_path: Path, fake_encoder: FakeEncoder, corpus) -> None:
    summary = build(tmp_path, _collections(corpus), fake_encoder)
    assert (summary.added, summary.changed, summary.removed, summary.unchanged) == (6, 0, 0, 0)
    assert summary.encoded_chunks == 6 and summary.seconds > 0
    store = BuildStore(tmp_path)
    assert store.current_build_id() == summary.build_id
    b = store.load_current(fake_encoder)
    assert b.build_id == summary.build_id and b.names == ["capabilities", "needs"]
    m = b.manifest
    assert m["model_id"] == "fake-1/bigram32" and m["dim"] == 32 and m["count"] == 6
    assert m["metric"] == "inner_product" and "faiss-cpu" in m["versions"]
    assert {"capabilities/index.faiss", "capabilities/chunks.jsonl", "needs/docs.json"} <= set(
        m["files"]
    )
    assert any(f.startswith("capabilities/bm25/") for f in m["files"])
    col = b.collection("capabilities")
    assert col.doc_ids == ["c1", "c2", "c3", "c4"]
    q = fake_encoder.encode_queries([corpus[1].text])
    hits = col.dense.search(q, 2)[0]
    assert hits.ids[0] == "c2" and hits.chunks is not None and hits.chunks.dtype == np.int32
    assert col.chunk_text("c2", int(hits.chunks[0])) == corpus[1].text
    query = [bigram_tokens("中药 萃取")]
    assert col.lexical.search_tokens(query, 3)[0].ids == []  # c5 is in "needs"
    assert b.collection("needs").lexical.search_tokens(query, 3)[0].ids[0] == "c5"
    with pytest.raises(KeyError, match="have"):
        b.collection("papers")


def test_dense_search_is_document_level(tmp_path: Path, fake_encoder: FakeEncoder, corpus) -> None:
    docs = [*corpus, DocRecord("long", LONG)]
    build(tmp_path, {"capabilities": docs}, fake_encoder, max_chars=40)
    col = BuildStore(tmp_path).load_current().collection("capabilities")
    assert len(col.chunks_of("long")) > 10
    assert "".join(col.chunks_of("long")) == LONG
    target = col.chunks_of("long")[7]
    hits = col.dense.search(fake_encoder.encode_queries([target]), 5)[0]
    assert hits.ids[0] == "long" and int(hits.chunks[0]) == 7
    assert len(hits.ids) == len(set(hits.ids)) == 5  # one entry per document, k honoured
    # agrees with numpy brute force at document level (max over chunks)
    q = fake_encoder.encode_queries(["桥梁传感器损伤识别"])
    brute = {d: float((col.doc_vectors(d) @ q[0]).max()) for d in col.doc_ids}
    expected = sorted(brute, key=lambda d: -brute[d])[:4]
    got = col.dense.search(q, 4)[0]
    assert got.ids == expected
    np.testing.assert_allclose(got.scores, [brute[d] for d in expected], rtol=1e-5)


def test_incremental_run_encodes_only_the_edit(tmp_path: Path, corpus) -> None:
    enc = FakeEncoder()
    build(tmp_path, _collections(corpus), enc)
    enc.encoded.clear()
    edited = list(corpus)
    edited[2] = DocRecord("c3", corpus[2].text + "新增：滴灌控制器。")
    del edited[0]  # c1 removed
    edited.append(DocRecord("c7", "新能源汽车电机控制器热管理。"))
    s = build(tmp_path, {"capabilities": edited[:3], "needs": edited[3:]}, enc)
    assert (s.added, s.changed, s.removed, s.unchanged) == (1, 1, 1, 4)
    assert sorted(enc.encoded) == sorted([edited[1].text, "新能源汽车电机控制器热管理。"])
    assert s.encoded_chunks == 2
    b = BuildStore(tmp_path).load_current(enc)
    assert "c1" not in b.collection("capabilities") and "c1" not in b.collection("needs")
    assert b.collection("capabilities").chunk_text("c3", 0).endswith("滴灌控制器。")


def test_cache_hit_across_builds_and_full_rebuild(tmp_path: Path, corpus) -> None:
    enc = FakeEncoder()
    first = build(tmp_path, _collections(corpus), enc)
    # drop the build itself: only the cache survives
    store = BuildStore(tmp_path)
    (tmp_path / "current").unlink()
    enc.encoded.clear()
    s = build(tmp_path, _collections(corpus), enc)
    assert enc.encoded == [] and s.encoded_chunks == 0 and s.added == 6
    # same text under a new id, in another collection: still a cache hit
    s = build(tmp_path, {"capabilities": corpus, "needs": [DocRecord("n1", corpus[0].text)]}, enc)
    assert enc.encoded == [] and s.added == 3
    s = build(tmp_path, _collections(corpus), enc, full=True)
    assert s.encoded_chunks == 6 and len(enc.encoded) == 6
    assert first.build_id not in store.build_ids() or len(store.build_ids()) <= 3


def test_crash_mid_way_keeps_previous_build(tmp_path: Path, corpus) -> None:
    enc = FakeEncoder()
    ok = build(tmp_path, _collections(corpus), enc)

    def explode(stage: str, done: int, total: int) -> None:
        if stage.startswith("encode:") and done > 0:
            raise RuntimeError("killed")

    changed = [DocRecord(d.doc_id, d.text + "（修订）") for d in corpus]
    with pytest.raises(RuntimeError, match="killed"):
        build(tmp_path, _collections(changed), enc, progress=explode)
    store = BuildStore(tmp_path)
    assert store.current_build_id() == ok.build_id
    assert store.load_current(enc).collection("capabilities").chunk_text("c1", 0) == corpus[0].text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # left behind
    s = build(tmp_path, _collections(changed), enc)
    assert store.current_build_id() == s.build_id and s.changed == 6
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert (
        store.load_current(enc).collection("capabilities").chunk_text("c1", 0).endswith("（修订）")
    )


@pytest.mark.parametrize("step", ["_verify", "set_current"])
def test_crash_before_switch(tmp_path: Path, corpus, monkeypatch, step: str) -> None:
    enc = FakeEncoder()
    ok = build(tmp_path, _collections(corpus), enc)

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    target = build_mod if step == "_verify" else BuildStore
    monkeypatch.setattr(target, step, boom)
    with pytest.raises(OSError, match="disk full"):
        build(tmp_path, _collections(corpus[:3]), enc)
    monkeypatch.undo()
    store = BuildStore(tmp_path)
    assert store.current_build_id() == ok.build_id
    assert len(store.load_current(enc).collection("needs")) == 2
    s = build(tmp_path, _collections(corpus[:3]), enc)
    assert s.removed == 3 and store.current_build_id() == s.build_id


def test_lock_prevents_concurrent_runs(tmp_path: Path, fake_encoder: FakeEncoder, corpus) -> None:
    with BuildStore(tmp_path).lock(), pytest.raises(BuildLocked, match=".lock"):
        build(tmp_path, _collections(corpus), fake_encoder)
    build(tmp_path, _collections(corpus), fake_encoder)  # lock released


def test_keeps_last_n_builds(tmp_path: Path, fake_encoder: FakeEncoder, corpus) -> None:
    ids = [
        build(tmp_path, _collections(corpus[: 3 + i]), fake_encoder, keep=2).build_id
        for i in range(4)
    ]
    store = BuildStore(tmp_path)
    assert store.build_ids() == ids[-2:]
    assert store.current_build_id() == ids[-1]


def test_no_current_build(tmp_path: Path) -> None:
    store = BuildStore(tmp_path)
    assert store.current_build_id() is None
    with pytest.raises(IndexNotFound, match="current"):
        store.load_current()


def test_current_build_id_notices_a_switch(tmp_path: Path, fake_encoder, corpus) -> None:
    store = BuildStore(tmp_path)
    a = build(tmp_path, _collections(corpus), fake_encoder).build_id
    assert store.current_build_id() == a
    b = build(tmp_path, _collections(corpus[:5]), fake_encoder).build_id
    assert store.current_build_id() == b
    store.set_current(a)  # rollback to an older build
    assert store.current_build_id() == a


def _current_dir(tmp_path: Path) -> Path:
    return tmp_path / BuildStore(tmp_path).current_build_id()


@pytest.mark.parametrize(
    "rel", ["capabilities/index.faiss", "needs/chunks.jsonl", "capabilities/bm25/vocab.index.json"]
)
def test_corrupted_file_is_named(tmp_path: Path, fake_encoder, corpus, rel: str) -> None:
    build(tmp_path, _collections(corpus), fake_encoder)
    path = _current_dir(tmp_path) / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupted, match=rel.split("/")[-1]) as err:
        BuildStore(tmp_path).load_current(fake_encoder)
    assert "sha256" in str(err.value)


def test_truncated_or_missing_file_is_named(tmp_path: Path, fake_encoder, corpus) -> None:
    build(tmp_path, _collections(corpus), fake_encoder)
    d = _current_dir(tmp_path)
    (d / "needs" / "docs.json").write_text("")
    with pytest.raises(IndexCorrupted, match=r"docs\.json.*truncated"):
        IndexBuild.load(d)
    (d / "needs" / "docs.json").unlink()
    with pytest.raises(IndexCorrupted, match=r"docs\.json: missing"):
        IndexBuild.load(d)
    (d / "manifest.json").write_text("{")
    with pytest.raises(IndexCorrupted, match="manifest.json"):
        IndexBuild.load(d)


def test_mismatched_model_or_dim(tmp_path: Path, fake_encoder, corpus) -> None:
    build(tmp_path, _collections(corpus), fake_encoder)
    store = BuildStore(tmp_path)
    with pytest.raises(IndexMismatch, match="model_id 'fake-1/bigram32'.*'other/model'"):
        store.load_current(FakeEncoder(model_id="other/model"))
    with pytest.raises(IndexMismatch, match="dim 32 but encoder dim 16"):
        store.load_current(FakeEncoder(dim=16))
    # a re-index with another model rebuilds from scratch instead of mixing vectors
    other = FakeEncoder(dim=16, model_id="other/model")
    s = build(tmp_path, _collections(corpus), other)
    assert s.added == 6 and s.encoded_chunks == 6
    assert store.load_current(other).dim == 16


def test_bad_input(tmp_path: Path, fake_encoder) -> None:
    with pytest.raises(ValueError, match="duplicate document id 'a'"):
        build(tmp_path, {"needs": [DocRecord("a", "x"), DocRecord("a", "y")]}, fake_encoder)
    with pytest.raises(ValueError, match="invalid collection name"):
        build(tmp_path, {"Bad Name": []}, fake_encoder)
    assert BuildStore(tmp_path).current_build_id() is None
    s = build(tmp_path, {"needs": []}, fake_encoder)  # empty collections are fine
    assert len(BuildStore(tmp_path).load_current().collection("needs")) == 0
    assert s.added == 0


def test_manifest_checksums_match_files(tmp_path: Path, fake_encoder, corpus) -> None:
    build(tmp_path, _collections(corpus), fake_encoder)
    d = _current_dir(tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    on_disk = {
        p.relative_to(d).as_posix()
        for p in d.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    assert set(m["files"]) == on_disk
    assert all(os.path.getsize(d / f) == info["bytes"] for f, info in m["files"].items())


def test_every_collection_is_encoded_in_one_stream_longest_first(tmp_path: Path, corpus) -> None:
    enc = FakeEncoder()
    calls: list[list[str]] = []

    def recording(texts, block):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return build_mod.local_chunk_encoder(enc)(texts, block)

    shared = DocRecord("n-shared", corpus[3].text)  # the same text in both collections
    cols = {"capabilities": corpus[:4], "needs": [*corpus[4:], shared]}
    s = build(tmp_path, cols, enc, full=True, encode_chunks=recording)
    assert len(calls) == 1  # one stream for both collections
    texts = calls[0]
    assert sorted(texts) == sorted(d.text for d in corpus)  # the shared text once
    assert [len(t) for t in texts] == sorted((len(t) for t in texts), reverse=True)
    assert s.encoded_chunks == len(corpus) and s.added == 7
    b = BuildStore(tmp_path).load_current(enc)
    np.testing.assert_array_equal(
        b.collection("needs").doc_vectors("n-shared"),
        b.collection("capabilities").doc_vectors("c4"),
    )
    for name, docs in cols.items():  # every row got its own text's vector
        col = b.collection(name)
        for d in docs:
            np.testing.assert_allclose(
                col.doc_vectors(d.doc_id), enc.encode_queries([d.text]), atol=1e-6
            )
