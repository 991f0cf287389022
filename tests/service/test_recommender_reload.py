# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""When the service's RecommenderHandle rebuilds: on data matching is built from (needs,
capabilities, organisations, staff blocks) and on a new build; a staff decision only refreshes
the load/outcome features of the loaded Recommender (real SQLite, real FAISS build, the
embeddings tests' deterministic encoder)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from sqlalchemy import update

from service import decisions
from service.auth import Principal
from service.db import session_scope
from service.models import Need
from service.recommender import RecommenderHandle
from service.settings import Settings
from tests.embeddings.conftest import FakeEncoder
from tests.service.api_support import World, world, world_template  # noqa: F401


@pytest.fixture
def handle(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[RecommenderHandle, list[int]]:
    from service import recommender as module
    from service.jobs.reindex import run_reindex

    settings = Settings(data_dir=world.settings.data_dir, secret_key=world.settings.secret_key)
    enc = FakeEncoder()
    run_reindex(settings, encoder=enc)
    loads: list[int] = []
    original = module.load_snapshot

    def counting(session: Any) -> Any:
        loads.append(1)
        return original(session)

    monkeypatch.setattr(module, "load_snapshot", counting)
    return RecommenderHandle(settings, world.factory, encoder=enc, check_interval=0.0), loads


def test_nothing_changed_means_no_reload(handle: tuple[RecommenderHandle, list[int]]) -> None:
    h, loads = handle
    first = h.get()
    assert all(h.get() is first for _ in range(5))
    assert len(loads) == 1


def test_a_decision_refreshes_load_without_rebuilding(
    handle: tuple[RecommenderHandle, list[int]], world: World
) -> None:
    h, loads = handle
    first = h.get()
    assert first.features.load.get("UNI-1", 0) == 0
    staff = Principal(user_id=world.user_ids["staff"], username="staff", role="staff")
    with world.factory() as s:
        decisions.decide(s, user=staff, item_id=world.ids["item_a"], action="approve", version=1)
    again = h.get()
    assert again is first and len(loads) == 1  # no new snapshot, no new Recommender
    assert first.features.load["UNI-1"] == 1 and first.features.outcomes["UNI-1"] == (1, 1)


def test_a_need_edit_rebuilds(handle: tuple[RecommenderHandle, list[int]], world: World) -> None:
    h, loads = handle
    first = h.get()
    with session_scope(world.factory) as s:
        s.execute(update(Need).where(Need.external_id == "N-A1").values(description="新的需求描述"))
    second = h.get()
    assert second is not first and len(loads) == 2
    assert "新的需求描述" in second.documents["N:N-A1"].text
    assert h.get() is second


def test_a_build_that_fails_to_load_is_logged_once_and_the_old_one_served(
    handle: tuple[RecommenderHandle, list[int]],
    world: World,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from service.jobs.reindex import run_reindex

    h, _ = handle
    first = h.get()
    served = h.status()["loaded_build"]
    run_reindex(h.settings, encoder=FakeEncoder(model_id="fake-2/other"), full=True)
    assert h.status()["current_build"] != served
    with caplog.at_level(logging.ERROR, logger="service.recommender"):
        assert all(h.get() is first for _ in range(4))
    assert [r.getMessage() for r in caplog.records].count(
        f"reload of build {h.status()['current_build']} failed; still serving {served}"
    ) == 1
    assert h.status()["loaded_build"] == served
    # a change of the data it is made from is worth another try (it fails again: logged again)
    caplog.clear()
    with session_scope(world.factory) as s:
        s.execute(update(Need).where(Need.external_id == "N-A1").values(description="改过的"))
    with caplog.at_level(logging.ERROR, logger="service.recommender"):
        h.get()
        h.get()
    assert len(caplog.records) == 1


@pytest.mark.slow
def test_after_a_backend_change_the_old_build_is_served_until_reindex(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """e5 → e5-torch: the e5 build keeps serving (with the e5 query encoder) until the
    re-encode, then the e5-torch build (real bundled model, tiny store)."""
    from embeddings import make_encoder
    from service.jobs.reindex import run_reindex

    base = {"data_dir": world.settings.data_dir, "secret_key": world.settings.secret_key}
    run_reindex(Settings(**base, embedding_backend="e5"))
    torch_settings = Settings(**base, embedding_backend="e5-torch")
    h = RecommenderHandle(torch_settings, world.factory, check_interval=0.0)
    with caplog.at_level(logging.WARNING, logger="service.recommender"):
        old = h.get()
    assert h.status()["query_model"] == make_encoder("e5").model_id
    assert "until `duijie reindex` re-encodes" in caplog.text
    assert old.rank_for_need("N:N-A1", k=3)  # served
    run_reindex(torch_settings)
    new = h.get()
    assert new is not old and h.status()["query_model"] == make_encoder("e5-torch").model_id
    assert new.rank_for_need("N:N-A1", k=3)


class _QueryRecorder(FakeEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def encode_queries(self, texts: Any) -> Any:
        self.queries.extend(texts)
        return super().encode_queries(texts)


def test_query_vectors_survive_a_restart(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A need asked on a request thread is not encoded again by the next process's handle
    (the index directory's embedding cache), and the ranking is the same."""
    import embeddings
    from service.jobs.reindex import run_reindex

    settings = Settings(data_dir=world.settings.data_dir, secret_key=world.settings.secret_key)
    run_reindex(settings, encoder=FakeEncoder())
    encoders: list[_QueryRecorder] = []

    def make(*_args: Any, **_kwargs: Any) -> _QueryRecorder:
        encoders.append(_QueryRecorder())
        return encoders[-1]

    monkeypatch.setattr(embeddings, "make_encoder", make)
    first: list[Any] = []
    worker = threading.Thread(
        target=lambda: first.extend(
            RecommenderHandle(settings, world.factory)
            .get()
            .rank_for_need("N:N-A1", k=3)
            .suggestions
        )
    )
    worker.start()
    worker.join()
    assert first and encoders[0].queries  # encoded once, on the worker thread
    restarted = RecommenderHandle(settings, world.factory)
    again = restarted.get().rank_for_need("N:N-A1", k=3).suggestions
    assert encoders[-1].queries == []  # read back from the cache, not encoded
    assert [(s.org_id, s.score) for s in again] == [(s.org_id, s.score) for s in first]
    off = RecommenderHandle(settings.model_copy(update={"persist_queries": False}), world.factory)
    off.get().rank_for_need("N:N-A1", k=3)
    assert encoders[-1].queries  # without the setting every process encodes again
