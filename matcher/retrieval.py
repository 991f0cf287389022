"""Hybrid candidate retrieval: dense + BM25 rankings, fused, refined by dense
pseudo-relevance feedback and by score smoothing over a document-document neighbour graph;
English queries also get an English-model ranking.

Owns :class:`HybridRetriever` (the :class:`matcher.protocols.CandidateRetriever` used by the
recommender); its named presets and :func:`matcher.presets.make_retriever` live in
:mod:`matcher.presets`, the fusion functions and the neighbour graph live in :mod:`matcher.fusion`. Pure numpy/scipy:
the encoders and searchers arrive through the protocols of :mod:`matcher.protocols` (the
embeddings package satisfies them without being imported here).

Method (preset ``hybrid``, the default)
---------------------------------------
1. Encode the queries; dense search (``depth`` = 200 documents, a document scored by its best
   chunk) and BM25 search (200 documents); a keyword list's BM25 query also holds 60
   co-occurring corpus terms at low weight (``expander``, :mod:`matcher.expansion`). English
   queries (:func:`matcher.language.is_english`) are also searched with the English model.
2. Fuse by z-score: each source's scores are standardised over its own list, shifted so its
   worst listed document is 0 (absent documents get 0), and summed with weights
   dense 2 : BM25 1 (: English model 2); ``keyword_lexical_weight`` sets BM25's weight for
   keyword-list queries (:func:`is_keyword_list`; preset ``hybrid``: 1.5, the
   default). This first-stage ranking is kept.
3. Dense pseudo-relevance feedback (Rocchio) from the single best fused document:
   ``q' = normalise(q + 0.5 * v_top1)``, from the three best for keyword-list queries
   (:func:`is_keyword_list`: "术语，术语，术语", the vocabulary-gap case); ``q'`` scored on a
   pool (``prf_rescore``: the first dense search fetched ``prf_pool`` times as deep, the BM25 list, the
   feedback documents' graph neighbours; preset ``hybrid-search``: a second dense search)
   replaces the dense ranking, and step 2 is repeated.
4. Graph smoothing (cluster hypothesis): ``f'(d) = f(d) + 3.0 * sum_n W[d, n] f(n)`` over the
   10 nearest neighbours of ``d`` (row-normalised cosine weights); every document with a
   pooled neighbour can enter the list. Routed by query type: keyword lists are not smoothed
   (they name the document's own terms; its neighbours only dilute the match).
5. The head of the first stage is kept (:func:`matcher.fusion.keep_head`): its best document, and up to two
   more within 0.2 of its lead over the tenth, stay first in first-stage order, so feedback
   and smoothing reorder what follows a clear match and never push the match itself down.
   The other first-stage near matches (within 0.6 of that lead, in the top 10) fall at most
   one place (``near_tolerance``, :func:`matcher.fusion.bound_drops`).

Why: smoothing is what lifts the topical task (CSL title2disc, a title against every abstract
of its discipline) and what costs the exact-match tasks (title → its abstract, keyword list →
its abstract); with step 5 and the routing of step 4 the smoothing can be three times stronger
than before while the exact-match tasks keep or beat their figures. Measurements, what was
tried and what did not help: ``docs/retrieval.md`` (``python benchmarks/eval_csl.py``).

Latency: the searches run on document rows (:mod:`matcher.rowmaps`) when the searchers
number their documents; fusion and smoothing run over arrays of rows
(:func:`matcher.fusion.fused_ranking`, the same arithmetic as the dictionary functions).
With ``prf_rescore`` the expanded query is scored on a pool (the first dense search fetched
``prf_pool`` times deeper, the BM25 list, the feedback documents' graph neighbours) instead
of a second search over the whole collection; see ``docs/retrieval.md``.

Evidence kept on each :class:`~matcher.protocols.Candidate`: ``dense`` is the cosine of the
document's best chunk for the *original* query (from the first dense search; None if the
document was not among its ``depth`` hits), ``lexical`` the BM25 score (None if not among the
BM25 hits), ``chunk`` the best chunk of the first dense search (0 otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from matcher.errors import InvalidParameter
from matcher.expansion import CorpusExpander, lexical_hits
from matcher.feedback import expand_queries, feedback_pool, head_hits, is_keyword_list
from matcher.fusion import (
    Fusion,
    NeighbourGraph,
    RowSpace,
    bound_drops,
    candidates,
    fused_ranking,
    graph_operator,
    keep_head,
    ranked_items,
    row_space,
    rrf_scores,
    smooth_scores,
    weighted_scores,
)
from matcher.protocols import (
    Candidate,
    DenseSearcher,
    DocumentScorer,
    Hits,
    LexicalSearcher,
    RowSearcher,
    TextEncoder,
)
from matcher.retrieval_params import PARAMETERS, validate_retriever
from matcher.rowmaps import (
    cached_source_rows,
    ranked_candidates,
    ranking_rows,
    row_pools,
    space_rows,
)

logger = logging.getLogger(__name__)


class HybridRetriever:
    """Dense + BM25 candidate retrieval with fusion, dense PRF and graph smoothing.

    Parameters
    ----------
    encoder : TextEncoder
        Encodes the query texts (``encode_queries``).
    dense : DenseSearcher
        Document-level dense search over the collection (best chunk per document).
    lexical : LexicalSearcher or None
        BM25 search over the same documents; None for dense-only retrieval.
    fusion : {"rrf", "weighted"}
        How the source rankings are combined (see module docstring).
    rrf_k : float
        RRF constant (> 0).
    dense_weight, lexical_weight : float
        Weight of each source in the fusion (>= 0).
    depth : int
        Documents fetched from each source per query (>= 1); the result has
        ``min(k, documents found)`` candidates, and ``max(depth, k)`` are fetched.
    prf_docs : int
        Number of top fused documents whose vectors form the feedback (0 disables PRF).
    keyword_prf_docs : int
        Feedback documents for queries that are keyword lists (:func:`is_keyword_list`);
        0 means ``prf_docs``.
    prf_weight : float
        Rocchio weight beta of the feedback centroid (>= 0).
    prf_rescore : bool
        Score the expanded query on a pool of documents instead of a second search over the
        whole collection, when ``dense`` can score given documents
        (:class:`~matcher.protocols.DocumentScorer`): the pool is what the first dense and
        lexical searches found plus the feedback documents and their graph neighbours. The
        same ranking as the second search unless a document outside the pool would enter
        the expanded query's top ``depth`` (see the module docstring for how often).
    prf_pool : int
        With ``prf_rescore``: the first dense search fetches ``prf_pool * depth`` documents
        (its top ``depth`` are the first dense list, all of them join the pool).
    doc_ids : sequence of str, optional
        Ids of the rows of ``doc_vectors``; required when ``prf_docs > 0``.
    doc_vectors : ndarray of float32, shape (n, d), optional
        One L2-normalised vector per document (normalised mean of its chunk vectors); required
        when ``prf_docs > 0``.
    graph : NeighbourGraph, optional
        Document neighbour graph (:func:`build_neighbour_graph`); required when
        ``graph_weight > 0``.
    graph_weight : float
        Smoothing weight alpha (>= 0; 0 disables smoothing).
    graph_neighbors : int
        Neighbours per document used for smoothing (<= the graph's columns).
    english_encoder, english_dense : optional
        An English model (all-MiniLM-L6-v2) and a dense searcher over the same documents
        encoded by it. Queries detected as English (:func:`matcher.language.is_english`) get
        its ranking as one more fused source; other queries ignore it.
    english_weight : float
        Weight of the English ranking in the fusion (>= 0; 0 or missing resources disable it).
    keyword_graph_weight : float or None
        Smoothing weight for keyword-list queries (:func:`is_keyword_list`); None means
        ``graph_weight``. Keyword lists name a document's own terms, so its neighbours add
        little and smoothing costs them exact matches.
    head_tolerance : float or None
        Keep the first-stage leaders (the best fused document of the original query and its
        near ties, :func:`matcher.fusion.keep_head`) at the head after feedback and smoothing; None disables.
    head_max : int
        Most documents :func:`matcher.fusion.keep_head` keeps at the head (>= 1).
    keyword_lexical_weight : float or None
        BM25 weight in the fusion for keyword-list queries; None means ``lexical_weight``
        (BM25 is searched only when ``lexical_weight > 0``).
    near_tolerance : float or None
        Near matches of the first stage (its ``near_rank`` best within this relative
        tolerance of the lead) fall at most ``near_slack`` places
        (:func:`matcher.fusion.bound_drops`); None disables.
    near_slack, near_rank : int
        See ``near_tolerance`` (>= 0 and >= 1).
    expander : CorpusExpander, optional
        BM25 search of keyword-list queries with corpus terms (:mod:`matcher.expansion`).
    """

    def __init__(
        self,
        *,
        encoder: TextEncoder,
        dense: DenseSearcher,
        lexical: LexicalSearcher | None = None,
        fusion: Fusion = "rrf",
        rrf_k: float = 60.0,
        dense_weight: float = 1.0,
        lexical_weight: float = 1.0,
        depth: int = 200,
        prf_docs: int = 0,
        keyword_prf_docs: int = 0,
        prf_weight: float = 0.0,
        prf_rescore: bool = False,
        prf_pool: int = 10,
        doc_ids: Sequence[str] | None = None,
        doc_vectors: NDArray[np.float32] | None = None,
        graph: NeighbourGraph | None = None,
        graph_weight: float = 0.0,
        graph_neighbors: int = 10,
        english_encoder: TextEncoder | None = None,
        english_dense: DenseSearcher | None = None,
        english_weight: float = 0.0,
        keyword_graph_weight: float | None = None,
        head_tolerance: float | None = None,
        head_max: int = 3,
        near_tolerance: float | None = None,
        near_slack: int = 1,
        near_rank: int = 3,
        keyword_lexical_weight: float | None = None,
        expander: CorpusExpander | None = None,
    ) -> None:
        self.encoder = encoder
        self.dense = dense
        self.lexical = lexical
        self.fusion = fusion
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.lexical_weight = lexical_weight
        self.depth = depth
        self.prf_docs = prf_docs
        self.keyword_prf_docs = keyword_prf_docs
        self.prf_weight = prf_weight
        self.prf_rescore = prf_rescore
        self.prf_pool = prf_pool
        self.doc_ids = doc_ids
        self.doc_vectors = doc_vectors
        self.graph = graph
        self.graph_weight = graph_weight
        self.graph_neighbors = graph_neighbors
        self.english_encoder = english_encoder
        self.english_dense = english_dense
        self.english_weight = english_weight
        self.keyword_graph_weight = keyword_graph_weight
        self.head_tolerance = head_tolerance
        self.head_max = head_max
        self.near_tolerance = near_tolerance
        self.near_slack = near_slack
        self.near_rank = near_rank
        self.keyword_lexical_weight = keyword_lexical_weight
        self.expander = expander

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, object]:
        """Constructor parameters, verbatim (scikit-learn convention)."""
        return {name: getattr(self, name) for name in PARAMETERS}

    def _validate(self) -> None:
        validate_retriever(self)

    def _keeps_first(self) -> bool:
        return self.head_tolerance is not None or self.near_tolerance is not None

    def _uses_prf(self) -> bool:
        return self.prf_docs > 0 and self.prf_weight > 0

    def _rescores(self) -> bool:
        return self._uses_prf() and self.prf_rescore and self._dense_kind() != "search"

    def _dense_kind(self) -> str:
        """What the dense searcher offers beyond ``search``: "rows" (:class:`RowSearcher`),
        "documents" (:class:`DocumentScorer`) or "search" (checked once per searcher)."""
        cached: tuple[object, str] | None = getattr(self, "dense_kind_", None)
        if cached is None or cached[0] is not self.dense:
            kind = (
                "rows"
                if isinstance(self.dense, RowSearcher)
                else "documents"
                if isinstance(self.dense, DocumentScorer)
                else "search"
            )
            cached = (self.dense, kind)
            self.dense_kind_ = cached
        return cached[1]

    def _row_of(self) -> dict[str, int]:
        # derived lookup, computed once (idempotent, so a race only repeats work)
        lookup: dict[str, int] | None = getattr(self, "row_of_", None)
        if lookup is None:
            lookup = {d: i for i, d in enumerate(self.doc_ids or ())}
            self.row_of_ = lookup
        return lookup

    def _graph_operator(self) -> tuple[dict[str, int], Any]:
        """Row lookup of the graph and its row-normalised adjacency (scipy CSR, n x n)."""
        cached = getattr(self, "graph_operator_", None)
        if cached is None:
            if self.graph is None:
                raise InvalidParameter("graph smoothing needs a graph")
            cached = graph_operator(self.graph, self.graph_neighbors)
            self.graph_operator_ = cached
        return cached

    # ------------------------------------------------------------------ retrieval
    def retrieve(self, queries: Sequence[str], k: int) -> list[list[Candidate]]:
        """Top-``k`` candidate documents per query, best first.

        Parameters
        ----------
        queries : sequence of str
            Query texts (needs, capability descriptions, free text).
        k : int
            Candidates per query (>= 1); fewer when the collection is smaller.

        Returns
        -------
        list of lists of Candidate
            One list per query, sorted by fused score (ties by document id).
        """
        self._validate()
        if k < 1:
            raise InvalidParameter(f"k must be >= 1, got {k}")
        texts = list(queries)
        if not texts:
            return []
        depth = max(self.depth, k)
        qvecs = np.ascontiguousarray(self.encoder.encode_queries(texts), dtype=np.float32)
        pool_hits: Sequence[Hits] = ()
        if self._rescores():
            # one deeper search: its top ``depth`` are the first dense list, all of it joins
            # the pool the expanded query is scored on
            pool_hits = self._dense_search(qvecs, depth * self.prf_pool)
            dense_hits: Sequence[Hits] = [head_hits(h, depth) for h in pool_hits]
        else:
            dense_hits = self._dense_search(qvecs, depth)
        lex_hits: Sequence[Hits | None] = [None] * len(texts)  # None: source not used
        if self.lexical is not None and self.lexical_weight > 0:
            lex_hits = lexical_hits(self.lexical, self.expander, texts, depth)
        if len(dense_hits) != len(texts) or len(lex_hits) != len(texts):
            raise InvalidParameter("a searcher returned a different number of result lists")

        en_hits = self._english_search(texts, depth)
        keyword = [is_keyword_list(t) for t in texts]
        lex_w = [
            self.keyword_lexical_weight
            if kw and self.keyword_lexical_weight is not None
            else self.lexical_weight
            for kw in keyword
        ]
        d_rows = [self._hit_rows(h, self.dense) for h in dense_hits]
        lx_rows = [self._hit_rows(h, self.lexical) for h in lex_hits]
        en_rows = [self._hit_rows(h, self.english_dense) for h in en_hits]
        first: list[list[tuple[str, float]]] = []
        if self._uses_prf() or self._keeps_first():
            # the first-stage ranking: feedback documents and the head kept at the end
            n_first = max(self.prf_docs, self.keyword_prf_docs, 10)
            first = [
                self._ranked(
                    (dense_hits[i], lex_hits[i], en_hits[i]),
                    (d_rows[i], lx_rows[i], en_rows[i]),
                    n_first,
                    alpha=0.0,
                    lexical_weight=lex_w[i],
                )
                for i in range(len(texts))
            ]
        ranking_hits, r_rows = dense_hits, d_rows
        if self._uses_prf():
            ranking_hits = self._prf_search(
                qvecs, first, depth, texts, pool_hits, lex_hits, lx_rows
            )
            r_rows = [self._hit_rows(h, self.dense) for h in ranking_hits]
        return [
            self._final(
                i,
                (ranking_hits[i], lex_hits[i], en_hits[i]),
                (r_rows[i], lx_rows[i], en_rows[i]),
                (dense_hits[i], d_rows[i]),
                first,
                k,
                keyword=keyword[i],
                lexical_weight=lex_w[i],
            )
            for i in range(len(texts))
        ]

    def _final(
        self,
        i: int,
        hits: tuple[Hits, Hits | None, Hits | None],
        rows: tuple[NDArray[np.int64] | None, ...],
        dense: tuple[Hits, NDArray[np.int64] | None],
        first: list[list[tuple[str, float]]],
        k: int,
        *,
        keyword: bool,
        lexical_weight: float | None,
    ) -> list[Candidate]:
        """Query ``i``'s final ranking (smoothed, head kept) as candidates with evidence
        (built on rows when every source has them)."""
        alpha = self.graph_weight
        if self.keyword_graph_weight is not None and keyword:
            alpha = self.keyword_graph_weight
        fused = ranked = self._ranked(hits, rows, k, alpha=alpha, lexical_weight=lexical_weight)
        if self.head_tolerance is not None:
            ranked = keep_head(ranked, first[i], self.head_tolerance, self.head_max)
        if self.near_tolerance is not None:
            ranked = bound_drops(
                ranked, first[i], self.near_tolerance, self.near_slack, self.near_rank
            )
        _, lexical, english = hits
        space, (_, lx, en) = self._rows(), rows
        if space is not None and dense[1] is not None:
            out = ranked_candidates(
                ranked,
                space,
                (dense[0], dense[1]),
                None if lexical is None else (lexical, lx),
                None if english is None else (english, en),
                ranking_rows(ranked, [fused, first[i]] if first else [fused]),
            )
            if out is not None:
                return out
        return candidates(ranked, dense[0], lexical, english)

    def _dense_search(self, qvecs: NDArray[np.float32], k: int) -> Sequence[Hits]:
        """The dense search, with document rows when the searcher numbers its documents."""
        dense = self.dense
        if self._dense_kind() == "rows" and self._rows() is not None:
            return cast(RowSearcher, dense).search_rows(qvecs, k)
        return dense.search(qvecs, k)

    def _hit_rows(self, hits: Hits | None, searcher: object) -> NDArray[np.int64] | None:
        """A result's documents as rows of :meth:`_rows` (None: no rows known)."""
        if hits is None:
            return None
        return space_rows(hits, cached_source_rows(self, searcher, self._rows()))

    def score_documents(self, query: str, doc_ids: Sequence[str]) -> list[Candidate]:
        """Score given documents for ``query`` directly, retrieved or not.

        For documents outside a query's candidate list (an organisation asked about by
        ``score_pairs`` or a solver matrix): ``dense`` is the cosine of the query vector
        with the document vector (normalised mean of its chunks, so at most its best chunk's
        cosine for a multi-chunk document), ``score`` and ``lexical`` are 0 / None (no fused
        list holds them). Documents without a stored vector are left out.

        Parameters
        ----------
        query : str
            The query text as given to :meth:`retrieve` (its vector is the encoder's, cached
            by a memoising encoder).
        doc_ids : sequence of str

        Returns
        -------
        list of Candidate, in ``doc_ids`` order.
        """
        found = list(map(self._row_of().get, doc_ids))
        if None in found:  # documents without a vector are left out
            doc_ids = [d for d, r in zip(doc_ids, found, strict=True) if r is not None]
            found = [r for r in found if r is not None]
        if not found or self.doc_vectors is None:
            return []
        q = np.asarray(self.encoder.encode_queries([query]), dtype=np.float32)[0]
        at = np.array(found, dtype=np.int64)
        sims = (np.asarray(self.doc_vectors, dtype=np.float32)[at] @ q).tolist()
        n = len(sims)
        fields = zip(doc_ids, [0.0] * n, sims, [None] * n, [0] * n, [None] * n, strict=True)
        return list(map(partial(tuple.__new__, Candidate), fields))  # Candidate(d, 0.0, x)

    def _english_search(self, texts: list[str], depth: int) -> list[Hits | None]:
        out: list[Hits | None] = [None] * len(texts)
        if self.english_weight <= 0 or self.english_encoder is None or self.english_dense is None:
            return out
        from matcher.language import is_english

        rows = [i for i, t in enumerate(texts) if is_english(t)]
        if not rows:
            return out
        vecs = self.english_encoder.encode_queries([texts[i] for i in rows])
        hits = self.english_dense.search(np.ascontiguousarray(vecs, dtype=np.float32), depth)
        for i, h in zip(rows, hits, strict=True):
            out[i] = h
        return out

    def _sources(
        self,
        dense: Hits,
        lexical: Hits | None,
        english: Hits | None,
        lexical_weight: float | None = None,
        rows: Sequence[NDArray[np.int64] | None] = (None, None, None),
    ) -> tuple[list[Hits], list[float], list[NDArray[np.int64] | None]]:
        # a missing or empty source adds nothing to either fusion
        sources = [dense]
        weights = [self.dense_weight]
        out_rows = [rows[0]]
        if lexical is not None and lexical.ids:
            sources.append(lexical)
            weights.append(self.lexical_weight if lexical_weight is None else lexical_weight)
            out_rows.append(rows[1])
        if english is not None and english.ids:
            sources.append(english)
            weights.append(self.english_weight)
            out_rows.append(rows[2])
        return sources, weights, out_rows

    def _rows(self) -> RowSpace | None:
        """The document rows fusion works on: the graph's, else ``doc_ids`` (None: none)."""
        cached: RowSpace | None = getattr(self, "rows_", None)
        if cached is None:
            if self.graph is not None:
                cached = row_space(self.graph.ids, self._graph_operator()[0])
            elif self.doc_ids is not None:
                cached = row_space(self.doc_ids, self._row_of())
            else:
                return None
            self.rows_ = cached
        return cached

    def _ranked(
        self,
        hits: tuple[Hits, Hits | None, Hits | None],
        rows: Sequence[NDArray[np.int64] | None],
        k: int,
        *,
        alpha: float,
        lexical_weight: float | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` best fused documents of the (dense, lexical, English) results, smoothed
        with weight ``alpha`` (0: not smoothed), with their scores, ties by id:
        :meth:`_fuse` and :meth:`_smooth` computed over arrays of document rows
        (``rows``: each result's rows when known; ``lexical_weight``: this query's, None:
        the default)."""
        dense, lexical, english = hits
        smooth = alpha > 0
        space = self._rows() if self.fusion != "rrf" else None
        if space is None or (smooth and self.graph is None):
            fused = self._fuse(dense, lexical, english, lexical_weight)
            return ranked_items(self._smooth(fused, alpha) if smooth else fused)[:k]
        sources, weights, src_rows = self._sources(dense, lexical, english, lexical_weight, rows)
        return fused_ranking(
            [(h.ids, h.scores) for h in sources],
            weights,
            space,
            k,
            normalise="minmax" if self.fusion == "weighted" else "zscore",
            smoothing=self._graph_operator()[1] if smooth else None,
            smooth_weight=alpha,
            rows=src_rows,
        )

    def _fuse(
        self,
        dense: Hits,
        lexical: Hits | None,
        english: Hits | None = None,
        lexical_weight: float | None = None,
    ) -> dict[str, float]:
        sources, weights, _ = self._sources(dense, lexical, english, lexical_weight)
        if self.fusion == "rrf":
            return rrf_scores([h.ids for h in sources], k=self.rrf_k, weights=weights)
        return weighted_scores(
            [(h.ids, h.scores) for h in sources],
            weights=weights,
            normalise="minmax" if self.fusion == "weighted" else "zscore",
        )

    def _prf_search(
        self,
        qvecs: NDArray[np.float32],
        first: list[list[tuple[str, float]]],
        depth: int,
        texts: Sequence[str],
        pool_hits: Sequence[Hits],
        lex_hits: Sequence[Hits | None],
        lex_rows: Sequence[NDArray[np.int64] | None],
    ) -> Sequence[Hits]:
        """The dense results of the expanded queries: a second search, or (``prf_rescore``)
        the expanded query scored on each query's pool."""
        counts = [
            self.keyword_prf_docs
            if self.keyword_prf_docs and is_keyword_list(texts[i])
            else self.prf_docs
            for i in range(len(first))
        ]
        expanded, feedback = expand_queries(
            qvecs, first, counts, self._row_of(), self.doc_vectors, self.prf_weight
        )
        if not (self._rescores() and pool_hits):
            return self._dense_search(expanded, depth)
        space = self._rows()
        maps = cached_source_rows(self, self.dense, space)
        if self._dense_kind() == "rows" and space is not None and maps is not None:
            pools = row_pools(feedback, pool_hits, lex_rows, space, maps, self.graph)
            if pools is not None:
                return cast(RowSearcher, self.dense).score_rows(expanded, pools, depth)
        rows = self._graph_operator()[0] if self.graph is not None else None
        id_pools = [
            feedback_pool(fb, hits, lex, self.graph, rows)
            for fb, hits, lex in zip(feedback, pool_hits, lex_hits, strict=True)
        ]
        return cast(DocumentScorer, self.dense).score_documents(expanded, id_pools, depth)

    def _smooth(self, fused: dict[str, float], alpha: float) -> dict[str, float]:
        row_of, op = self._graph_operator()
        ids = self.graph.ids if self.graph is not None else []
        return smooth_scores(fused, alpha, row_of, op, ids)
