"""Id ↔ row encoding and the text helpers behind explanations."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.encoding import cap_key, external_of, label_array, need_key, parse_key
from matcher.textutil import (
    best_sentence_pair,
    keyword_set,
    overlap_coefficient,
    sentence_spans,
    sentences,
    tokenize,
    tokens,
)


@given(st.text(max_size=20))
def test_document_keys_round_trip(external_id: str) -> None:
    assert parse_key(need_key(external_id)) == ("need", external_id)
    assert parse_key(cap_key(external_id)) == ("capability", external_id)
    assert need_key(external_id) != cap_key(external_id)
    assert external_of(cap_key(external_id)) == external_id


def test_non_keys_pass_through_unchanged() -> None:
    assert parse_key("ORG-1") == (None, "ORG-1")
    assert external_of("X:1") == "X:1" and external_of("N:N:1") == "N:1"
    assert need_key("N-1") == "N:N-1" and cap_key("C-1") == "C:C-1"  # the stored format


def test_tokenize_mixed_text() -> None:
    toks = tokenize("基于深度学习的Defect Detection，提高了钢板的检测精度！！ 。")
    assert "defect" in toks and "detection" in toks
    assert "的" not in toks and "基于" not in toks
    assert all(t.strip() and t not in {"，", "！", "。"} for t in toks)
    assert "钢板" in toks


def test_keyword_tokens_are_the_tokenizer_filtered() -> None:
    text = "我们需要X射线无损检测技术，以及PLC控制系统的研发。"
    assert all(len(t) >= 2 for t in tokens(text)) and "技术" not in tokens(text)
    # same segmentation: the keywords are the BM25 tokens, in order, minus short/boilerplate ones
    assert [t for t in tokenize(text) if t in tokens(text)] == list(tokens(text))


def test_label_array_singletons_for_unlabelled():
    codes = label_array(["x", "y", "z", "w"], {"x": "g", "z": "g"})
    assert codes[0] == codes[2] and len({codes[1], codes[3], codes[0]}) == 3


def test_sentences_split_chinese_and_are_verbatim():
    text = "制糖废水COD高。希望引进厌氧技术！同时：蔗渣利用？\n第二段；结束"
    assert sentences(text) == [
        "制糖废水COD高。",
        "希望引进厌氧技术！",
        "同时：蔗渣利用？",
        "第二段；",
        "结束",
    ]


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("制糖废水厌氧。！？；\n .a1 ")), max_size=60))
def test_sentence_spans_are_verbatim_and_ordered(text):
    prev = 0
    for s, e in sentence_spans(text):
        assert prev <= s < e <= len(text)
        assert text[s:e].strip() == text[s:e]
        prev = e


def test_tokens_are_content_substrings():
    text = "广西糖厂需要制糖废水厌氧处理技术，COD去除率高"
    toks = tokens(text)
    assert "制糖" in toks or "制糖废水" in toks or "废水" in toks
    assert "需要" not in toks and "技术" not in toks
    assert all(t in text.lower() for t in toks)


def test_overlap_and_keywords():
    a = keyword_set("制糖废水厌氧处理", ["蔗渣"])
    assert "蔗渣" in a
    assert overlap_coefficient(frozenset(), a) == 0.0
    assert overlap_coefficient(a, a) == 1.0


def test_best_sentence_pair_picks_matching_sentences():
    q = "我们的设备老化。需要制糖废水厌氧处理技术。"
    d = "本团队研究桥梁。我们掌握制糖废水厌氧反应器。还有别的。"
    qs, ds, sim = best_sentence_pair(q, d)
    assert qs == "需要制糖废水厌氧处理技术。" and ds == "我们掌握制糖废水厌氧反应器。"
    assert sim > 0
    assert best_sentence_pair("", d)[0] == ""
