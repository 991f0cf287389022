"""When ``duijie reindex`` encodes on Ray: configured address + ``--full``, or ``--ray ADDRESS``.

The build itself is replaced by a recorder (the Ray build is tested against a real local
cluster in tests/embeddings/test_ray_build.py); these check the choice and the settings that
reach :class:`embeddings.distributed.RayChunkEncoder`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import service.jobs.reindex as job
from embeddings import BuildSummary
from embeddings.distributed import EncoderSpec, RayChunkEncoder
from service.cli import main
from service.settings import get_settings, load_settings
from tests.embeddings.conftest import FakeEncoder
from tests.service.test_reindex import _seed


@pytest.fixture
def builds(store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``build`` call's keyword arguments; the store holds two capabilities and a need."""
    _seed(store.factory)
    calls: list[dict[str, Any]] = []

    def record(index_dir: Any, collections: Any, encoder: Any, **kw: Any) -> BuildSummary:
        calls.append(kw)
        return BuildSummary("b1", 3, 0, 0, 0, 3, 0.1)

    monkeypatch.setattr(job, "build", record)
    monkeypatch.setattr(job, "make_encoder", lambda *a, **k: FakeEncoder())
    monkeypatch.setenv("DUIJIE_DATABASE_URL", store.url)
    monkeypatch.setenv("DUIJIE_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.delenv("DUIJIE_RAY_ADDRESS", raising=False)
    get_settings.cache_clear()
    yield calls
    get_settings.cache_clear()


def test_default_is_in_process_even_for_full(builds: list[dict[str, Any]], store: Any) -> None:
    settings = load_settings(database_url=store.url)
    job.run_reindex(settings, full=True)
    job.run_reindex(settings)
    assert [c["encode_chunks"] for c in builds] == [None, None]


def test_configured_cluster_takes_full_builds_only(
    builds: list[dict[str, Any]], store: Any
) -> None:
    settings = load_settings(
        database_url=store.url,
        ray_address="head:6379",
        ray_batch_size=16,
        ray_concurrency=8,
        ray_num_cpus=4,
    )
    job.run_reindex(settings)
    job.run_reindex(settings, full=True)
    assert builds[0]["encode_chunks"] is None
    ray = builds[1]["encode_chunks"]
    assert isinstance(ray, RayChunkEncoder)
    assert (ray.address, ray.batch_size, ray.concurrency, ray.num_cpus) == ("head:6379", 16, 8, 4)
    assert ray.spec == EncoderSpec(settings.embedding_backend, None)
    assert (ray.model_id, ray.dim) == (FakeEncoder().model_id, FakeEncoder().dim)


def test_cli_ray_option_encodes_on_that_cluster(
    builds: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reindex", "--no-progress", "--ray", "10.0.0.5:6379"]) == 0
    assert "reindex: build b1" in capsys.readouterr().out
    ray = builds[0]["encode_chunks"]
    assert isinstance(ray, RayChunkEncoder) and ray.address == "10.0.0.5:6379"


def test_bad_ray_settings_fail_at_start() -> None:
    from service.settings import SettingsError

    with pytest.raises(SettingsError, match="ray_batch_size|RAY_BATCH_SIZE"):
        load_settings(ray_batch_size=0)
