from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embeddings.chunking import chunk_text, split_sentences

WS = re.compile(r"\s+")


def _squash(s: str) -> str:
    return WS.sub("", s)


def test_split_on_full_width_and_western_punctuation() -> None:
    text = "第一句。第二句！第三句？第四句；Fifth sentence. Sixth! 七\n八"
    assert split_sentences(text) == [
        "第一句。",
        "第二句！",
        "第三句？",
        "第四句；",
        "Fifth sentence.",
        " Sixth!",
        " 七\n",
        "八",
    ]


def test_decimals_abbreviations_and_closing_quotes_stay_whole() -> None:
    parts = split_sentences("精度提高3.5倍，见www.example.com与v1.2版本。“他说：好。”然后")
    assert parts == ["精度提高3.5倍，见www.example.com与v1.2版本。", "“他说：好。”", "然后"]


def test_short_document_is_one_chunk() -> None:
    assert chunk_text("短文本。只有两句。", 300) == ["短文本。只有两句。"]
    assert chunk_text("", 300) == [""]
    assert chunk_text("  \n ", 300) == [""]


def test_sentences_are_packed_up_to_the_budget() -> None:
    text = "一二三四五。" * 10  # 60 chars, 10 sentences of 6
    chunks = chunk_text(text, 20)
    assert chunks == ["一二三四五。" * 3] * 3 + ["一二三四五。"]


def test_long_sentence_is_split_at_commas_then_hard() -> None:
    text = "甲" * 15 + "，" + "乙" * 40
    chunks = chunk_text(text, 20)
    assert chunks[0] == "甲" * 15 + "，"
    assert all(len(c) <= 20 for c in chunks)
    assert "".join(chunks) == text


def test_invalid_budget() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk_text("x", 0)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("高分子材料abc XYZ12.。！？；!?;，,\n\t”）") + ["\u3000"]),
        max_size=400,
    ),
    budget=st.integers(min_value=1, max_value=60),
)
def test_chunking_keeps_every_character(text: str, budget: int) -> None:
    chunks = chunk_text(text, budget)
    assert chunks
    assert _squash("".join(chunks)) == _squash(text)
    assert all(len(c) <= budget for c in chunks)
    assert "".join(split_sentences(text)) == text
