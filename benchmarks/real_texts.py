"""Up to ~1M real texts for the scale benchmarks, encoded once with ``e5-torch`` as passages.

Every text is real, taken from sources that are on the machine without a network, and every
vector is the model's own encoding of it (nothing mixed or derived). Sources, in the order
they are numbered (so a prefix of the set is its most technical part):

1. ``csl`` -- the 12,169 CSL abstracts (``../shared/eval/csl/corpus.jsonl``, Chinese journal
   abstracts): their clauses (split at ，,：:、；;。！？ and a sentence-final ``.``, at least 4
   characters), windows of 2 and 3 consecutive clauses, and whole sentences;
2. ``man`` -- the Chinese manual pages of Debian's ``manpages-zh`` (``/usr/share/man/zh_CN``,
   746 pages, simplified Chinese only; ``apt-get install manpages-zh``): roff markup stripped,
   paragraphs split the same way into clauses, 2- and 3-clause windows and sentences; only
   pieces with at least two Chinese characters;
3. ``jieba`` -- the words of jieba's dictionary (``jieba/dict.txt``; jieba is a dependency),
   at least two characters;
4. ``csl`` again -- windows of 4 consecutive clauses of the abstracts.

With the default seed: 1,027,108 texts in 548,982 documents -- csl 426,267 (clauses 141,043,
2-windows 131,732, 3-windows 120,641, sentences 32,851), man 155,972 (clauses 49,125,
2-windows 45,185, 3-windows 39,050, sentences 22,612), jieba 337,457 words, csl 4-windows
107,412; the first 1,000,000 are what the benchmarks call 1M.

A text seen earlier (in any source) is not repeated. A *document* is a run of 1-3 consecutive
pieces of one kind (clauses, 2-windows, ...) of one abstract or page (run lengths seeded), or
1-3 consecutive dictionary words; documents are shuffled (seeded) within each source. Counts
per source and kind are printed by ``status``.

The set lives in one SQLite file of its own: table ``texts`` (``seq`` = chunk number, source,
kind, document id, chunk number in the document, sha256, text) and the embedding cache's
``vectors`` table (``embeddings.cache.EmbeddingCache``) under the ``e5-torch`` model id;
the CSL evaluation queries are encoded as queries under ``<model id>#query``.

    python benchmarks/real_texts.py build  --out var/evalcache/realtexts.sqlite3
    python benchmarks/real_texts.py encode --out var/evalcache/realtexts.sqlite3 \\
        [--block 50000] [--blocks N] [--upto 1000000] [--lock FILE]
    python benchmarks/real_texts.py status --out var/evalcache/realtexts.sqlite3

``encode`` is resumable: it encodes, in ``seq`` order, blocks of texts without a vector yet,
each block inside an exclusive ``flock`` of ``--lock`` when given (so other heavy jobs can run
between blocks), and commits each block.
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import argparse
import fcntl
import gzip
import json
import logging
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.cache import EmbeddingCache, text_key
from embeddings.encoder import Encoder, make_encoder

logger = logging.getLogger("real_texts")

CSL_DIR = Path("../shared/eval/csl")
MAN_DIR = Path("/usr/share/man/zh_CN")
QUERY_FILES = ("title2abs", "kw2abs", "kw2abs_nolex", "title2disc")
DEFAULT_OUT = Path("var/evalcache/realtexts.sqlite3")
ENCODER_OPTS: dict[str, Any] = {"max_batch_tokens": 8192, "max_batch": 256}

_CLAUSE = re.compile(r"(?<=[，,：:、。！？；;!?])|(?<=\.)(?=\D)")
_SENTENCE = re.compile(r"(?<=[。！？；;!?])|(?<=\.)(?=\D)")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_ROFF_ESC = re.compile(r"\\f\[?[A-Z0-9]*\]?|\\\(..|\\[/,&|^%]|\\s[-+]?\d")


def windows(clauses: list[str], width: int) -> list[str]:
    """Concatenations of ``width`` consecutive clauses."""
    return ["".join(clauses[i : i + width]) for i in range(len(clauses) - width + 1)]


def split_pieces(text: str, kinds: tuple[str, ...]) -> dict[str, list[str]]:
    """A text's pieces by kind: ``c`` clauses, ``w2``-``w4`` windows, ``s`` sentences."""
    clauses = [c.strip() for c in _CLAUSE.split(text) if len(c.strip()) >= 4]
    out: dict[str, list[str]] = {}
    for kind in kinds:
        if kind == "c":
            out[kind] = clauses
        elif kind == "s":
            out[kind] = [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) >= 4]
        else:
            out[kind] = windows(clauses, int(kind[1:]))
    return out


def strip_roff(source: str) -> list[str]:
    """Paragraphs of plain text from a man page's roff source (markup dropped)."""
    paras: list[str] = []
    cur: list[str] = []
    for line in source.splitlines():
        if line.startswith((".", "'")):
            macro, _, rest = line.partition(" ")
            if macro in (".SH", ".SS", ".PP", ".P", ".LP", ".TP", ".IP", ".br", ".sp"):
                if cur:
                    paras.append("".join(cur))
                cur = []
            if macro in (".B", ".I", ".BR", ".IR", ".BI", ".RB", ".IB", ".RI") and rest:
                cur.append(rest.replace('"', ""))
            continue
        text = _ROFF_ESC.sub("", line).replace("\\-", "-").replace("\\e", "\\").strip()
        if text:
            cur.append(text)
    if cur:
        paras.append("".join(cur))
    return paras


def runs(pieces: list[str], rng: np.random.Generator) -> list[list[str]]:
    """Consecutive runs of 1-3 pieces (lengths from ``rng``)."""
    out, i = [], 0
    while i < len(pieces):
        n = int(rng.integers(1, 4))
        out.append(pieces[i : i + n])
        i += n
    return out


Doc = tuple[str, str, str, list[str]]  # source, kind, document id, pieces


def csl_docs(csl_dir: Path, rng: np.random.Generator) -> Iterator[tuple[str, list[Doc]]]:
    """CSL documents in two groups: clauses / 2-3 windows / sentences, then 4-windows."""
    rows = [json.loads(line) for line in (csl_dir / "corpus.jsonl").open(encoding="utf-8")]
    for group in (("c", "w2", "w3", "s"), ("w4",)):
        docs: list[Doc] = []
        for row in rows:
            for kind, pieces in split_pieces(row["text"], group).items():
                for j, run in enumerate(runs(pieces, rng)):
                    docs.append(("csl", kind, f"csl:{row['id']}:{kind}{j}", run))
        yield "csl", docs


def man_docs(man_dir: Path, rng: np.random.Generator) -> list[Doc]:
    """Documents of the Chinese manual pages (pieces with >= 2 Chinese characters)."""
    docs: list[Doc] = []
    for path in sorted(man_dir.rglob("*.gz")):
        try:
            source = gzip.decompress(path.read_bytes()).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        name = path.name.removesuffix(".gz")
        pieces: dict[str, list[str]] = {"c": [], "w2": [], "w3": [], "s": []}
        for para in strip_roff(source):
            for kind, got in split_pieces(para, ("c", "w2", "w3", "s")).items():
                pieces[kind] += [p for p in got if len(_CJK.findall(p)) >= 2]
        for kind, got in pieces.items():
            for j, run in enumerate(runs(got, rng)):
                docs.append(("man", kind, f"man:{name}:{kind}{j}", run))
    return docs


def jieba_docs(rng: np.random.Generator) -> list[Doc]:
    """Runs of 1-3 consecutive words of jieba's dictionary (>= 2 characters)."""
    import jieba

    path = Path(jieba.__file__).parent / "dict.txt"
    words = [w for line in path.open(encoding="utf-8") if len(w := line.split(" ")[0]) >= 2]
    return [("jieba", "word", f"jieba:{j}", run) for j, run in enumerate(runs(words, rng))]


def build(out: Path, csl_dir: Path, man_dir: Path, seed: int) -> None:
    """Write the ``texts`` table (refuses to overwrite a different existing set)."""
    rng = np.random.default_rng(seed)
    csl_main, csl_w4 = (docs for _, docs in csl_docs(csl_dir, rng))
    groups = [csl_main, man_docs(man_dir, rng), jieba_docs(rng), csl_w4]
    seen: set[str] = set()
    rows: list[tuple[int, str, str, str, int, str, str]] = []
    for docs in groups:
        for d in rng.permutation(len(docs)).tolist():
            source, kind, doc_id, pieces = docs[d]
            fresh = [p for p in dict.fromkeys(pieces) if p not in seen]
            seen.update(fresh)
            for c, text in enumerate(fresh):
                rows.append((len(rows), source, kind, doc_id, c, text_key(text), text))
    con = sqlite3.connect(out)
    with con:
        con.execute(
            "CREATE TABLE IF NOT EXISTS texts (seq INTEGER PRIMARY KEY, source TEXT NOT NULL,"
            " kind TEXT NOT NULL, doc TEXT NOT NULL, chunk INTEGER NOT NULL, sha TEXT NOT NULL,"
            " text TEXT NOT NULL)"
        )
        have = [r[0] for r in con.execute("SELECT sha FROM texts ORDER BY seq")]
        if have:
            if have != [r[5] for r in rows]:
                raise SystemExit(
                    f"{out}: holds another set of {len(have)} texts (drop table texts)"
                )
            logger.info("%s: the %d texts are already there", out, len(have))
            return
        con.executemany("INSERT INTO texts VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()
    logger.info("%s: %d texts written", out, len(rows))


@contextmanager
def flocked(path: Path | None) -> Iterator[None]:
    """An exclusive ``flock`` of ``path`` (nothing when None)."""
    if path is None:
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def encode(out: Path, csl_dir: Path, block: int, blocks: int, upto: int, lock: Path | None) -> None:
    """Encode texts without a vector, in ``seq`` order, ``block`` at a time."""
    enc = make_encoder("e5-torch", **ENCODER_OPTS)
    model = enc.model_id
    cache = EmbeddingCache(out)
    con = sqlite3.connect(out)
    con.execute("CREATE INDEX IF NOT EXISTS texts_sha ON texts (sha)")
    _encode_queries(enc, cache, csl_dir, lock)
    for _ in range(blocks):
        todo = con.execute(
            "SELECT t.seq, t.sha, t.text FROM texts t LEFT JOIN vectors v ON v.model_id = ?"
            " AND v.sha = t.sha WHERE v.sha IS NULL AND t.seq < ? ORDER BY t.seq LIMIT ?",
            (model, upto, block),
        ).fetchall()
        if not todo:
            break
        with flocked(lock):
            t0, cpu0 = time.perf_counter(), time.process_time()
            vecs = enc.encode_documents([t for _, _, t in todo])
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        cache.put_vectors(model, [s for _, s, _ in todo], vecs)
        logger.info(
            "seq %d-%d: %d texts in %.0f s (%.0f texts/s, %.0f CPU s)",
            todo[0][0], todo[-1][0], len(todo), wall, len(todo) / wall, cpu,
        )  # fmt: skip
    cache.close()
    con.close()


def _encode_queries(enc: Encoder, cache: EmbeddingCache, csl_dir: Path, lock: Path | None) -> None:
    """The CSL evaluation queries as queries, under ``<model id>#query`` (once)."""
    model = f"{enc.model_id}#query"
    texts = list(
        dict.fromkeys(
            json.loads(line)["text"]
            for name in QUERY_FILES
            for line in (csl_dir / f"{name}.queries.jsonl").open(encoding="utf-8")
        )
    )
    if cache.count_vectors(model) >= len(texts):
        return
    with flocked(lock):
        vecs = enc.encode_queries(texts)
    cache.put_vectors(model, [text_key(t) for t in texts], vecs)
    logger.info("%d CSL queries encoded", len(texts))


def status(out: Path) -> None:
    """Counts per source and kind, texts encoded, mean length."""
    con = sqlite3.connect(f"file:{out}?mode=ro", uri=True)
    rows = con.execute(
        "SELECT source, kind, COUNT(*), COUNT(DISTINCT doc), AVG(LENGTH(text)) FROM texts"
        " GROUP BY source, kind ORDER BY MIN(seq)"
    ).fetchall()
    for source, kind, n, docs, chars in rows:
        print(f"{source:6} {kind:5} {n:8d} texts {docs:8d} documents {chars:6.1f} chars")
    total = con.execute("SELECT COUNT(*), COUNT(DISTINCT doc) FROM texts").fetchone()
    has_vectors = con.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'vectors'"
    ).fetchone()[0]
    done = Counter(
        dict(con.execute("SELECT model_id, COUNT(*) FROM vectors GROUP BY model_id").fetchall())
        if has_vectors
        else {}
    )
    print(f"total {total[0]} texts in {total[1]} documents; vectors: {dict(done)}")
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["build", "encode", "status"])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--csl", type=Path, default=CSL_DIR)
    ap.add_argument("--man", type=Path, default=MAN_DIR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block", type=int, default=50_000)
    ap.add_argument("--blocks", type=int, default=1_000)
    ap.add_argument("--upto", type=int, default=1_000_000, help="encode only seq < UPTO")
    ap.add_argument("--lock", type=Path, default=None, help="flock this file per block")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.step == "build":
        build(args.out, args.csl, args.man, args.seed)
    elif args.step == "encode":
        encode(args.out, args.csl, args.block, args.blocks, args.upto, args.lock)
    else:
        status(args.out)


if __name__ == "__main__":
    main()
