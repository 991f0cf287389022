"""Technical vs administrative content (matcher.content) and corpus keyword weights."""

from __future__ import annotations

from matcher.content import (
    BOILERPLATE_WORDS,
    KeywordWeights,
    is_administrative,
    split,
    technical_sentences,
    technical_text,
)

NEED = (
    "广西某糖业集团有限公司成立于1998年，是农业产业化国家重点龙头企业，年产值约30亿元。"
    "蔗汁澄清过程中澄清汁浊度波动大，希望采用膜分离或低硫澄清工艺替代传统硫熏法。"
    "技术指标：澄清汁浊度达到50NTU以内。"
    "合作方式：委托开发；项目周期24个月；经费预算150万元。联系人：李先生，联系电话：0771-5612345。"
)


def test_split_keeps_the_technical_clauses_verbatim_and_drops_the_administrative_ones():
    c = split(NEED)
    assert "膜分离或低硫澄清工艺" in c.technical
    assert "澄清汁浊度达到50NTU以内" in c.technical
    for word in ("成立于", "年产值", "合作方式", "委托开发", "周期", "预算", "联系人", "0771"):
        assert word not in c.technical, word
        assert word in c.administrative, word
    for start, end in c.spans:
        assert NEED[start:end] in NEED and NEED[start:end].strip() == NEED[start:end]
    assert technical_sentences(NEED) == [NEED[s:e] for s, e in c.spans]


def test_label_value_is_administrative_but_a_technical_label_is_not():
    assert "委托开发" not in technical_text("合作方式：委托开发。膜分离澄清。")
    assert "澄清汁浊度" in technical_text("技术指标：澄清汁浊度达到50NTU以内。")


def test_capability_credentials_are_administrative_and_method_sentences_are_not():
    text = (
        "团队现有成员20人，其中正高级职称5人，长期从事铝合金熔铸方向研究，掌握电磁搅拌等核心技术。"
        "已获授权发明专利3项，在5家企业示范应用，新增产值800万元。"
    )
    tech = technical_text(text)
    assert "长期从事铝合金熔铸方向研究，掌握电磁搅拌等核心技术。" in tech
    assert "专利" not in tech and "成员" not in tech
    assert is_administrative("周期28个工作日") and not is_administrative("在线除气精炼")


def test_a_text_without_technical_clauses_stays_whole():
    text = "合作方式：委托开发；项目周期36个月。"
    assert technical_text(text) == text
    assert technical_sentences(text) == ["合作方式：委托开发；", "项目周期36个月。"]
    assert split("").technical == ""


def test_keyword_weights_rank_specific_keywords_first_and_drop_common_and_boilerplate():
    corpus = [{"工艺", "焊接"}, {"工艺", "熔铸"}, {"工艺", "澄清"}, {"工艺", "焊接", "变形"}]
    w = KeywordWeights(corpus, max_df=0.5)
    assert w.n_documents == 4 and w.df["工艺"] == 4
    assert w.idf("变形") > w.idf("焊接") > w.idf("工艺")
    assert not w.informative("工艺")  # in every document
    assert not w.informative("以内") and "以内" in BOILERPLATE_WORDS
    # never shown, yet counted in the keyword overlap features
    assert not w.informative("方法") and "方法" not in BOILERPLATE_WORDS
    assert w.ranked({"工艺", "焊接", "变形", "以内", "满足"}) == ("变形", "焊接")
    kws = frozenset({"工艺", "焊接", "变形", "以内", "方法"})
    assert w.informative_part(kws) == {"焊接", "变形"} == set(w.ranked(kws))
    assert w.informative_part(frozenset(kws)) is w.informative_part(kws)  # memoised per set
    assert KeywordWeights([]).informative("焊接")
    for figure in ("12%", "100gAl", "mL", "2.5mm"):
        assert not w.informative(figure)
