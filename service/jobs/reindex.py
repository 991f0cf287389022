"""``duijie reindex [--full]``: rebuild the search index from the store.

Reads every need and capability (confidential and closed ones too: the matcher filters them,
and an index that lacks them could not explain why), embeds title + description + keywords,
and calls :func:`embeddings.build`: only new or edited documents are encoded, the new build is
verified and then atomically made current, so a running service hot-reloads it
(``BuildStore.current_build_id``). The HTTP route ``POST /api/v1/index/reindex`` calls
:func:`run_reindex` in a background thread.

Scheduling (cron, nightly at 02:30; see docs/reindex.md for a systemd timer)::

    30 2 * * *  cd /srv/duijie && .venv/bin/duijie reindex --digest >> var/log/reindex.log 2>&1

``--digest`` adds the needs digest step (:mod:`service.jobs.digest`) after the build.

Past one machine: with ``DUIJIE_RAY_ADDRESS`` set, full re-encodes (``--full``) encode the
chunk texts on that Ray cluster (:mod:`embeddings.distributed`); ``--ray ADDRESS`` does so for
one run, full or not. Incremental nightly builds otherwise stay in-process: they encode a few
documents, less than a Ray job's start-up.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from embeddings import BuildSummary, DocRecord, Encoder, build, make_encoder
from embeddings.builder import ChunkEncoder
from embeddings.errors import BuildLocked, EmbeddingsError
from matcher.language import is_english
from matcher.textutil import TOKENIZER_ID, tokenize
from service import models as m
from service.db import open_store
from service.recommender import ENGLISH_DIR, english_encoder
from service.settings import Settings, get_settings
from service.snapshot import capability_document, need_document

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

EXIT_FAILED = 1
EXIT_LOCKED = 75  # EX_TEMPFAIL: another run is in progress; cron may simply retry later


def index_text(title_and_text: str, keywords: tuple[str, ...] | list[str]) -> str:
    """The text that is embedded and indexed: ``Document.full_text`` plus the keywords."""
    kws = [k.strip() for k in keywords if k and k.strip()]
    if not kws:
        return title_and_text
    return f"{title_and_text}\n关键词：{'、'.join(kws)}"


def read_collections(session: Any) -> dict[str, list[DocRecord]]:
    """Every need and capability as DocRecords keyed like the matcher's documents."""
    orgs = dict(session.execute(select(m.Organisation.id, m.Organisation.external_id)).all())
    needs = []
    # Needs waiting for vetting (or returned) stay out of the index until approved.
    approved = select(m.Need).where(m.Need.review_status == "approved")
    for n in session.scalars(approved.order_by(m.Need.id)).yield_per(1000):
        doc = need_document(n, orgs[n.org_id])
        needs.append(DocRecord(doc.id, index_text(doc.full_text, doc.keywords)))
    caps = []
    for c in session.scalars(select(m.Capability).order_by(m.Capability.id)).yield_per(1000):
        doc = capability_document(c, orgs[c.org_id])
        caps.append(DocRecord(doc.id, index_text(doc.full_text, doc.keywords)))
    return {"capabilities": caps, "needs": needs}


def ray_chunk_encoder(settings: Settings, encoder: Encoder, address: str) -> ChunkEncoder:
    """The Ray encoding step for ``encoder``: workers create the configured encoder.

    Parameters
    ----------
    settings : Settings
        ``embedding_backend`` / ``model_path`` (what each worker loads) and ``ray_batch_size``,
        ``ray_concurrency``, ``ray_num_cpus``.
    encoder : Encoder
        The driver's encoder (its ``model_id`` and ``dim`` are checked on every worker).
    address : str
        The Ray cluster.

    Returns
    -------
    ChunkEncoder
    """
    from embeddings.distributed import EncoderSpec, RayChunkEncoder

    spec = EncoderSpec(settings.embedding_backend, settings.model_path)
    return RayChunkEncoder.for_encoder(
        encoder,
        spec,
        address,
        batch_size=settings.ray_batch_size,
        concurrency=settings.ray_concurrency,
        num_cpus=settings.ray_num_cpus,
    )


def run_reindex(
    settings: Settings,
    *,
    full: bool = False,
    encoder: Any | None = None,
    progress: Progress | None = None,
    ray_address: str | None = None,
) -> BuildSummary:
    """Re-index the store described by ``settings``.

    Parameters
    ----------
    settings : Settings
        Uses ``resolved_database_url``, ``resolved_index_dir``, ``embedding_backend``,
        ``model_path``, ``keep_builds`` and ``exact_index_max``.
    full : bool
        Re-encode everything instead of reusing unchanged vectors.
    encoder : TextEncoder, optional
        Reuse an already loaded encoder (the service passes its own).
    progress : callable(stage, done, total), optional
    ray_address : str, optional
        Encode on this Ray cluster (whatever ``full`` is). Default: ``settings.ray_address``
        when ``full``, otherwise in-process.

    Raises
    ------
    BuildLocked
        Another re-index holds the lock.
    embeddings.errors.EmbeddingsError, sqlalchemy.exc.SQLAlchemyError
        On failure; the previous build stays current.
    """
    engine, factory = open_store(settings.resolved_database_url, upgrade=False)
    try:
        with factory() as session:
            collections = read_collections(session)
    finally:
        engine.dispose()
    log.info(
        "re-indexing %d capabilities and %d needs into %s",
        len(collections["capabilities"]),
        len(collections["needs"]),
        settings.resolved_index_dir,
    )
    enc = encoder or make_encoder(settings.embedding_backend, model_path=settings.model_path)
    address = ray_address or (settings.ray_address if full else None)
    encode_chunks = ray_chunk_encoder(settings, enc, address) if address else None
    if address:
        log.info("encoding on the Ray cluster at %s", address)
    summary = build(
        settings.resolved_index_dir,
        collections,
        enc,
        tokenizer=tokenize,
        tokenizer_id=TOKENIZER_ID,
        full=full,
        keep=settings.keep_builds,
        exact_max=settings.exact_index_max,
        progress=progress,
        encode_chunks=encode_chunks,
    )
    en_encoder = english_encoder(settings)
    if en_encoder is not None:
        # English documents again, with the English model (served beside the main build).
        english = {
            name: [r for r in records if is_english(r.text)]
            for name, records in collections.items()
        }
        en = build(
            settings.resolved_index_dir / ENGLISH_DIR,
            english,
            en_encoder,
            tokenizer=tokenize,
            tokenizer_id=TOKENIZER_ID,
            full=full,
            keep=settings.keep_builds,
            exact_max=settings.exact_index_max,
            progress=progress,
        )
        log.info("english build %s: %d added, %d changed", en.build_id, en.added, en.changed)
    return summary


class _TtyProgress:
    """One tqdm bar per build stage (used when stderr is a terminal)."""

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=stage, unit="chunk", file=sys.stderr, leave=False)
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _LogProgress:
    """Log lines with rate and ETA (for cron/systemd logs and the background first build):
    at each stage start, then at most every ``every_s`` seconds, and at the end."""

    def __init__(self, every_s: float = 5.0, clock: Any = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self.stage: str | None = None
        self.started = 0.0
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        if stage != self.stage:
            self.stage, self.started, self.last = stage, now, now
            log.info("%s: 0/%d", stage, total)
            if total:
                return
        if now - self.last < self.every_s and done < total:
            return
        self.last = now
        log.info("%s", progress_line(stage, done, total, now - self.started))

    def close(self) -> None:
        pass


def progress_line(stage: str, done: int, total: int, elapsed_s: float) -> str:
    """``"encode:needs: 320/990 (32%), 8.9/s, ETA 75 s"`` (rate and ETA once measurable)."""
    pct = 100 if total == 0 else int(100 * done / total)
    line = f"{stage}: {done}/{total} ({pct}%)"
    if elapsed_s > 0 and done > 0:
        rate = done / elapsed_s
        line += f", {rate:.1f}/s"
        if done < total:
            line += f", ETA {(total - done) / rate:.0f} s"
        else:
            line += f", {elapsed_s:.0f} s"
    return line


def cmd_reindex(args: argparse.Namespace) -> int:
    settings = get_settings()
    progress: _TtyProgress | _LogProgress = (
        _TtyProgress() if sys.stderr.isatty() and not args.no_progress else _LogProgress()
    )
    t0 = time.perf_counter()
    try:
        summary = run_reindex(settings, full=args.full, progress=progress, ray_address=args.ray)
    except BuildLocked as exc:
        sys.stderr.write(f"reindex: another run is in progress ({exc})\n")
        return EXIT_LOCKED
    except (EmbeddingsError, SQLAlchemyError, OSError, ValueError) as exc:
        hint = ""
        if isinstance(exc, SQLAlchemyError) and "no such table" in str(exc):
            hint = "the database has no schema yet: run `duijie import` or `duijie demo` first\n"
        sys.stderr.write(
            f"reindex failed after {time.perf_counter() - t0:.1f}s: {type(exc).__name__}: {exc}\n"
            f"{hint}the previous build (if any) is still current\n"
        )
        return EXIT_FAILED
    finally:
        progress.close()
    sys.stdout.write(
        f"reindex: build {summary.build_id}: added {summary.added}, changed {summary.changed}, "
        f"removed {summary.removed}, unchanged {summary.unchanged}, "
        f"encoded {summary.encoded_chunks} chunks in {summary.seconds:.1f}s\n"
    )
    if getattr(args, "digest", False):
        return _digest_after_build(settings)
    return 0


def _digest_after_build(settings: Settings) -> int:
    """The nightly digest step (service.jobs.digest) on the build just made current."""
    from matcher.errors import IndexNotReady
    from service.jobs.digest import digest_step

    try:
        encoder = make_encoder(settings.embedding_backend, model_path=settings.model_path)
        digest = digest_step(settings, encoder=encoder)
    except (IndexNotReady, EmbeddingsError, SQLAlchemyError, OSError, ValueError) as exc:
        sys.stderr.write(f"digest failed: {type(exc).__name__}: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(
        f"digest: {digest.institutes} institutes, {digest.new_needs} new needs, "
        f"{digest.messages} messages\n"
    )
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "reindex",
        help="rebuild the search index (incremental; atomically switches the live build)",
        description="Rebuild the search index from the store: encode only new or edited "
        "documents, verify the new build, then atomically make it current. See docs/reindex.md.",
    )
    p.add_argument(
        "--full", action="store_true", help="re-encode every document instead of reusing vectors"
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="encode on this Ray cluster (e.g. auto, head:6379); default: DUIJIE_RAY_ADDRESS "
        "for --full builds, otherwise in-process (needs pip install 'duijie[ray]')",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="log lines instead of progress bars on a TTY"
    )
    p.add_argument(
        "--digest",
        action="store_true",
        help="then send institutes their digest of new matching needs (see `duijie digest`)",
    )
    p.set_defaults(func=cmd_reindex)
