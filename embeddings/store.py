"""Index builds on disk: loading, verifying, switching and pruning them (writing one is
:func:`embeddings.builder.build`).

A build is a directory ``INDEX_DIR/<build-id>/`` holding, per collection
(``capabilities``, ``needs``, ...), a FAISS chunk index with its id map, the document/chunk
map, the chunk texts and the BM25 files, plus a ``manifest.json`` with the model id,
dimension, metric, counts, package versions and the sha256 of every file.

Re-indexing (:func:`embeddings.builder.build`) runs under an exclusive ``fcntl`` lock, writes into
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
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from embeddings.cache import CACHE_FILE
from embeddings.encoder import Encoder
from embeddings.errors import (
    BuildLocked,
    IndexCorrupted,
    IndexMismatch,
    IndexNotFound,
)
from embeddings.index import VectorIndex
from embeddings.lexical import BM25_DIR, BM25Index
from embeddings.types import Hits, RowIds

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "current"
LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"
DOCS_FILE = "docs.json"
CHUNKS_FILE = "chunks.jsonl"
FORMAT_VERSION = 1

_BUILD_ID_RE = re.compile(r"^\d{8}T\d{6}Z-\d{6}$")


def chunk_key(doc_id: str, chunk: int) -> str:
    """External id of a chunk in a collection's vector index."""
    return f"{doc_id}#{chunk}"


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes (fsyncing it on the way: manifests checksum written files)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
        os.fsync(f.fileno())
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- reading side
class _ChunkLayout(NamedTuple):
    """Where each chunk of a chunk index belongs, as arrays (built once per searcher)."""

    doc_ids: list[str]  # document of each row
    doc_of_int: NDArray[np.int32]  # FAISS int id -> document row (-1: no chunk)
    chunk_of_int: NDArray[np.int32]  # FAISS int id -> chunk number
    row_of_doc: dict[str, int]
    starts: NDArray[np.int64]  # chunks of row r: ints_by_doc[starts[r]:starts[r + 1]]
    ints_by_doc: NDArray[np.int64]


def _chunk_layout(vectors: VectorIndex) -> _ChunkLayout:
    ints = np.fromiter(vectors.ext_by_int_, dtype=np.int64, count=len(vectors.ext_by_int_))
    row_of_doc: dict[str, int] = {}
    rows = np.empty(len(ints), dtype=np.int32)
    chunk = np.empty(len(ints), dtype=np.int32)
    for j, key in enumerate(vectors.ext_by_int_.values()):
        doc_id, _, c = key.rpartition("#")
        rows[j] = row_of_doc.setdefault(doc_id, len(row_of_doc))
        chunk[j] = int(c)
    size = int(ints.max()) + 1 if len(ints) else 0
    doc_of_int = np.full(size, -1, dtype=np.int32)
    chunk_of_int = np.zeros(size, dtype=np.int32)
    doc_of_int[ints] = rows
    chunk_of_int[ints] = chunk
    order = np.argsort(rows, kind="stable")
    starts = np.searchsorted(rows[order], np.arange(len(row_of_doc) + 1)).astype(np.int64)
    return _ChunkLayout(list(row_of_doc), doc_of_int, chunk_of_int, row_of_doc, starts, ints[order])


class DenseChunkSearcher:
    """Document-level dense search over a chunk index (``DenseSearcher`` protocol).

    A document is scored by its best chunk and appears once; ``Hits.chunks`` holds the
    number of that chunk. A search asks FAISS for about ``k`` times the mean number of chunks
    per document (more only when that does not hold ``k`` documents) and groups the hits with
    numpy: the first hit of a document in a sorted list is its best chunk, so once ``k``
    distinct documents are among the hits they are exactly the top ``k``.
    """

    def __init__(self, vectors: VectorIndex, n_docs: int) -> None:
        self.vectors = vectors
        self.n_docs = n_docs

    def _layout(self) -> _ChunkLayout:
        # derived from the (immutable once loaded) index; computed once, a race only repeats it
        layout: _ChunkLayout | None = getattr(self, "layout_", None)
        if layout is None or len(layout.ints_by_doc) != len(self.vectors):
            layout = _chunk_layout(self.vectors)
            self.layout_ = layout
        return layout

    @property
    def row_ids(self) -> list[str]:
        """Document id of each row (``Hits.rows`` index this list)."""
        return self._layout().doc_ids

    def search(self, queries: NDArray[np.float32], k: int) -> list[Hits]:
        """Top-k documents per query.

        Parameters
        ----------
        queries : ndarray of float32, shape (n, dim), L2-normalised
        k : int, >= 1

        Returns
        -------
        list of n Hits, each with at most k documents, best first (``rows``: their rows in
        :attr:`row_ids`).
        """
        return [h._replace(ids=list(h.ids)) for h in self.search_rows(queries, k)]

    def search_rows(self, queries: NDArray[np.float32], k: int) -> list[Hits]:
        """:meth:`search` whose ids are read from :attr:`row_ids` only when used
        (:class:`~embeddings.types.RowIds`): for callers that work on ``Hits.rows``."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        total = len(self.vectors)
        want = min(k, self.n_docs)
        per_doc = total / max(self.n_docs, 1)
        fetch = min(total, int(k * per_doc * 1.25) + 16)
        layout = self._layout()
        while True:
            scores, ints = self.vectors.search_ints(queries, max(fetch, 1))
            results = [self._aggregate(layout, s, i, k) for s, i in zip(scores, ints, strict=True)]
            if fetch >= total or all(len(h.ids) >= want for h in results):
                return results
            fetch = min(total, fetch * 4)

    @staticmethod
    def _aggregate(
        layout: _ChunkLayout, scores: NDArray[np.float32], ints: NDArray[np.int64], k: int
    ) -> Hits:
        ints = ints[ints >= 0]
        rows = layout.doc_of_int[ints]
        # results are sorted: the first hit of a document is its best chunk. Rows that fit
        # 16 bits sort the same through numpy's radix sort, ~2.5x faster at 900 hits
        key = rows.astype(np.uint16) if len(layout.doc_ids) <= 1 << 16 else rows
        order = np.argsort(key, kind="stable")
        by_doc = rows[order]
        new_doc = np.ones(len(by_doc), dtype=bool)
        new_doc[1:] = by_doc[1:] != by_doc[:-1]
        first = np.sort(order[new_doc])[:k]
        doc_rows = rows[first].astype(np.int64)
        return Hits(
            RowIds(layout.doc_ids, doc_rows),
            np.ascontiguousarray(scores[first], dtype=np.float32),
            layout.chunk_of_int[ints[first]].astype(np.int32),
            doc_rows,
        )

    def score_documents(
        self, queries: NDArray[np.float32], doc_ids: Sequence[Sequence[str]], k: int
    ) -> list[Hits]:
        """The best ``k`` of given documents per query, each scored by its best chunk.

        Exact inner products with the stored chunk vectors (FAISS's own kernel, as a
        single-query search computes them); unknown document ids are skipped.

        Parameters
        ----------
        queries : ndarray of float32, shape (n, dim)
        doc_ids : n sequences of str, the documents to score for each query
        k : int, >= 1

        Returns
        -------
        list of n Hits, best first (ties: the order of ``doc_ids``).
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(doc_ids) != queries.shape[0]:
            raise ValueError(f"{queries.shape[0]} queries but {len(doc_ids)} document lists")
        row_of = self._layout().row_of_doc
        rows = [
            np.asarray(list(dict.fromkeys(row_of[d] for d in ds if d in row_of)), dtype=np.int64)
            for ds in doc_ids
        ]
        return [h._replace(ids=list(h.ids)) for h in self.score_rows(queries, rows, k)]

    def score_rows(
        self, queries: NDArray[np.float32], rows: Sequence[NDArray[np.int64]], k: int
    ) -> list[Hits]:
        """:meth:`score_documents` of documents given by their rows in :attr:`row_ids`
        (each query's rows unique), with :meth:`search_rows`' lazy ids.

        Parameters
        ----------
        queries : ndarray of float32, shape (n, dim)
        rows : n int64 arrays of document rows
        k : int, >= 1

        Returns
        -------
        list of n Hits, best first (ties: the order of ``rows``).
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(rows) != queries.shape[0]:
            raise ValueError(f"{queries.shape[0]} queries but {len(rows)} row arrays")
        layout = self._layout()
        return [
            self._score_rows(layout, q, np.asarray(r, dtype=np.int64), k)
            for q, r in zip(queries, rows, strict=True)
        ]

    def _score_rows(
        self, layout: _ChunkLayout, query: NDArray[np.float32], rows_a: NDArray[np.int64], k: int
    ) -> Hits:
        if len(rows_a) == 0:
            return Hits(
                [],
                np.empty(0, dtype=np.float32),
                np.empty(0, dtype=np.int32),
                np.empty(0, dtype=np.int64),
            )
        lo, hi = layout.starts[rows_a], layout.starts[rows_a + 1]
        counts = hi - lo
        seg = np.repeat(np.cumsum(counts) - counts, counts)
        ints = layout.ints_by_doc[np.arange(int(counts.sum())) - seg + np.repeat(lo, counts)]
        sims = self.vectors.inner_products(query, ints)
        offsets = np.cumsum(counts) - counts
        best = np.maximum.reduceat(sims, offsets)
        # best chunk of each document: the first position reaching the maximum
        pos = np.flatnonzero(sims == np.repeat(best, counts))
        first_pos = pos[np.searchsorted(pos, offsets)]
        order = np.argsort(-best, kind="stable")[:k]
        doc_rows = rows_a[order]
        return Hits(
            RowIds(layout.doc_ids, doc_rows),
            best[order].astype(np.float32),
            layout.chunk_of_int[ints[first_pos[order]]].astype(np.int32),
            doc_rows,
        )


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
        return self.vectors.reconstruct([chunk_key(doc_id, c) for c in range(n)])

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
            digest = sha256_file(f)
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
        fsync_dir(self.index_dir)

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
