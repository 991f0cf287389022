"""Corpus-vocabulary expansion of keyword lists (matcher.expansion) over a real BM25 index of
a small corpus tokenized by the project's tokenizer, alone and inside HybridRetriever."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from embeddings.lexical import BM25Index
from matcher.errors import InvalidParameter
from matcher.expansion import CorpusExpander, lexical_hits, make_expander
from matcher.presets import make_retriever
from matcher.protocols import Hits
from matcher.textutil import query_tokens, tokenize
from tests.matcher.test_retrieval import FakeEncoder, MatrixDense

# "laser weld" co-occurs with "seam" and "penetration"; "laser" alone also with "cutting";
# the target t1 describes weld seams without the words "laser" or "weld".
CORPUS = {
    "w1": "laser weld seam penetration depth",
    "w2": "laser weld seam penetration keyhole",
    "w3": "laser weld seam",
    "c1": "laser cutting sheet kerf",
    "c2": "laser cutting kerf",
    "t1": "seam penetration keyhole porosity",
    "o1": "rice drought breeding",
    "o2": "rice yield breeding gene",
}
IDS = list(CORPUS)


@pytest.fixture(scope="module")
def bm25() -> BM25Index:
    return BM25Index().fit(IDS, [tokenize(CORPUS[d]) for d in IDS])


def _words(expander: CorpusExpander, weights: dict[int, float]) -> dict[str, float]:
    names = {i: t for t, i in expander.matrix.vocab.items()}
    return {names[i]: w for i, w in weights.items()}


def test_expansion_terms_come_from_documents_holding_every_token_of_an_item(
    bm25: BM25Index,
) -> None:
    ex = CorpusExpander(bm25.term_matrix(), n_terms=3, weight=0.1)
    w = _words(ex, ex.query_weights("laser weld, rice"))
    assert w["laser"] == w["weld"] == w["rice"] == 1.0
    expansion = {t: x for t, x in w.items() if t not in {"laser", "weld", "rice"}}
    assert len(expansion) == 3
    assert max(expansion.values()) == pytest.approx(0.1)
    assert all(0 < x <= 0.1 for x in expansion.values())
    # "laser weld": only w1-w3 hold both tokens, so "cutting"/"kerf" (laser alone) stay out
    assert "seam" in expansion and "cutting" not in expansion and "kerf" not in expansion
    # an item whose tokens never occur together falls back to documents holding either
    lone = _words(ex, ex.query_weights("kerf porosity, drought"))
    assert {"kerf", "porosity", "drought"} <= set(lone) and len(lone) == 6
    assert "cutting" in lone  # from c1/c2, which hold "kerf" but not "porosity"


def test_expanded_search_reaches_a_document_without_the_query_words(bm25: BM25Index) -> None:
    query = "laser weld, laser welding"
    plain = bm25.search_tokens([query_tokens(query)], 10)[0]
    assert "t1" not in plain.ids
    ex = CorpusExpander(bm25.term_matrix(), n_terms=5, weight=0.3)
    hits = ex.search(query, 10)
    assert "t1" in hits.ids
    # the documents that hold the query words stay ahead; unrelated ones never enter
    assert hits.ids.index("t1") > max(hits.ids.index(d) for d in ("w1", "w2", "w3"))
    assert "o1" not in hits.ids and "o2" not in hits.ids
    assert np.all(np.diff(hits.scores) <= 0) and hits.chunks is None
    assert [IDS[r] for r in hits.rows] == list(hits.ids)  # type: ignore[attr-defined]
    assert len(ex.search(query, 2).ids) == 2
    # without expansion terms the weighted search is the index's own BM25
    own = CorpusExpander(bm25.term_matrix(), n_terms=1, weight=1e-9).search("rice, gene", 10)
    ref = bm25.search_tokens([query_tokens("rice, gene")], 10)[0]
    assert own.ids[:2] == ref.ids[:2]
    np.testing.assert_allclose(own.scores[:2], ref.scores[:2], rtol=1e-4)


def test_unknown_words_and_validation(bm25: BM25Index) -> None:
    ex = CorpusExpander(bm25.term_matrix(), n_terms=5, weight=0.1)
    assert ex.query_weights("unheard, unseen") == {}
    assert ex.search("unheard, unseen", 5).ids == []
    with pytest.raises(InvalidParameter, match="n_terms"):
        CorpusExpander(bm25.term_matrix(), n_terms=0).search("laser, weld", 5)
    with pytest.raises(InvalidParameter, match="weight"):
        CorpusExpander(bm25.term_matrix(), weight=0.0).search("laser, weld", 5)
    empty = BM25Index().fit([], [])
    assert CorpusExpander(empty.term_matrix()).search("laser, weld", 5).ids == []


class CountingLexical:
    """BM25 with a record of the token lists it was asked for (no term matrix)."""

    def __init__(self, index: BM25Index) -> None:
        self.index = index
        self.asked: list[list[str]] = []

    def search_tokens(self, queries: Sequence[Sequence[str]], k: int) -> list[Hits]:
        self.asked.extend(list(q) for q in queries)
        return list(self.index.search_tokens(queries, k))


def test_only_keyword_lists_are_expanded(bm25: BM25Index) -> None:
    lex = CountingLexical(bm25)
    ex = make_expander(bm25, n_terms=5, weight=0.3)
    assert ex is not None and make_expander(lex, n_terms=5, weight=0.3) is None
    assert make_expander(bm25, n_terms=0, weight=0.3) is None
    texts = ["laser weld, laser welding", "A laser weld seam was studied."]
    hits = lexical_hits(lex, ex, texts, 10)
    assert lex.asked == [query_tokens(texts[1])]  # the sentence only: one plain search
    assert "t1" in hits[0].ids and hits[0].ids == ex.search(texts[0], 10).ids
    assert hits[1].ids == bm25.search_tokens([query_tokens(texts[1])], 10)[0].ids
    assert [h.ids for h in lexical_hits(lex, None, texts, 10)] == [
        h.ids for h in bm25.search_tokens([query_tokens(t) for t in texts], 10)
    ]


def test_preset_builds_the_expander_and_the_retriever_uses_it(bm25: BM25Index) -> None:
    vecs = np.eye(len(IDS), dtype=np.float32)
    kw = {"encoder": FakeEncoder({}, len(IDS)), "dense": MatrixDense(IDS, vecs)}
    kw.update(lexical=bm25, doc_ids=IDS, doc_vectors=vecs)
    plain = make_retriever("hybrid-noexp", **kw)  # type: ignore[arg-type]
    vocab = make_retriever("hybrid", **kw)  # type: ignore[arg-type]
    assert plain.expander is None and isinstance(vocab.expander, CorpusExpander)
    assert vocab.expander.n_terms == 60
    # larger weight so the one expansion document is visible in this tiny corpus
    strong = make_retriever("hybrid", keyword_expansion_weight=0.5, **kw)  # type: ignore[arg-type]
    query = "laser weld, laser welding"
    by_plain = {c.doc_id: c for c in plain.retrieve([query], len(IDS))[0]}
    by_vocab = {c.doc_id: c for c in strong.retrieve([query], len(IDS))[0]}
    assert by_plain.get("t1") is None or by_plain["t1"].lexical is None
    assert by_vocab["t1"].lexical is not None and by_vocab["t1"].lexical > 0
    assert "expander" in strong.get_params()


def _renumbered(tm, seed: int):  # type: ignore[no-untyped-def]
    """The same term matrix with its term ids shuffled (as another build may number them)."""
    n = len(tm.indptr) - 1
    new_of = np.random.default_rng(seed).permutation(n)
    old_of = np.argsort(new_of)
    segments = [(int(tm.indptr[t]), int(tm.indptr[t + 1])) for t in old_of.tolist()]
    indptr = np.concatenate(([0], np.cumsum([e - s for s, e in segments]))).astype(np.int64)
    indices = np.concatenate([tm.indices[s:e] for s, e in segments])
    data = np.concatenate([tm.data[s:e] for s, e in segments])
    vocab = {w: int(new_of[i]) if i < n else i for w, i in tm.vocab.items()}
    return type(tm)(tm.doc_ids, vocab, indptr, indices, data)


def test_expansion_does_not_depend_on_how_the_vocabulary_is_numbered(bm25: BM25Index) -> None:
    # one expansion term of several tied at the cut: which one is kept, and the order the
    # query's term scores are summed in, follow the terms' text, not their ids
    tm = bm25.term_matrix()
    base = CorpusExpander(tm, n_terms=2, weight=0.1)
    query = "drought, kerf"  # "rice" and "breeding" tie for the second expansion term
    assert set(_words(base, base.query_weights(query))) == {
        "drought",
        "kerf",
        "cutting",
        "breeding",
    }
    for seed in range(8):
        other = CorpusExpander(_renumbered(tm, seed), n_terms=2, weight=0.1)
        assert _words(other, other.query_weights(query)) == _words(base, base.query_weights(query))
        a, b = base.search(query, 5), other.search(query, 5)
        assert (a.ids, a.scores.tolist()) == (b.ids, b.scores.tolist())
