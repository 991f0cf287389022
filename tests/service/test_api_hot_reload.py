# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Hot reload with the real ``service.recommender.RecommenderHandle``: suggestions keep
answering 200 while re-index builds switch underneath (real SQLite, real FAISS builds, the
embeddings tests' deterministic encoder instead of the model to keep it fast)."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.embeddings.conftest import FakeEncoder
from tests.service.api_support import World, bearer, world, world_template  # noqa: F401


def test_suggestions_answer_200_across_build_switches(world: World) -> None:
    from service.jobs.reindex import run_reindex
    from service.recommender import RecommenderHandle

    settings = Settings(
        data_dir=world.settings.data_dir,
        database_url=world.settings.database_url,
        secret_key=world.settings.secret_key,
    )
    enc = FakeEncoder()
    first = run_reindex(settings, encoder=enc).build_id
    handle = RecommenderHandle(settings, world.factory, encoder=enc, check_interval=0.0)
    app = create_app(settings, session_factory=world.factory, recommender=handle)
    a, staff = bearer(world.keys["ent_a"]), bearer(world.keys["staff"])
    codes: list[int] = []
    bodies: list[Any] = []
    stop = threading.Event()

    with TestClient(app) as client:
        r = client.post("/api/v1/suggestions", json={"need_id": "N-A1"}, headers=a)
        assert r.status_code == 200, r.text
        assert handle.status()["loaded_build"] == first

        def hammer(headers: dict[str, str], need: str) -> None:
            while not stop.is_set():
                r = client.post(
                    "/api/v1/suggestions", json={"need_id": need, "k": 5}, headers=headers
                )
                codes.append(r.status_code)
                if r.status_code == 200:
                    bodies.append(r.json())

        threads = [
            threading.Thread(target=hammer, args=(a, "N-A1")),
            threading.Thread(target=hammer, args=(staff, "N-B2")),
        ]
        for t in threads:
            t.start()
        builds = [first]
        try:
            for n in range(3):
                # staff edit (changes the data stamp) + a new build made current
                r = client.patch(
                    "/api/v1/capabilities/C-U1",
                    json={"description": f"铝合金轮毂低压铸造 第{n}版"},
                    headers=staff,
                )
                assert r.status_code == 200
                builds.append(run_reindex(settings, encoder=enc).build_id)
                deadline = time.monotonic() + 20
                while handle.status()["loaded_build"] != builds[-1]:
                    assert time.monotonic() < deadline, handle.status()
                    time.sleep(0.01)
        finally:
            stop.set()
            for t in threads:
                t.join()
        health = client.get("/healthz").json()

    assert len(set(builds)) == 4
    assert len(codes) >= 20
    assert set(codes) == {200}, sorted(set(codes))
    assert health["index"]["loaded_build"] == builds[-1] and health["status"] == "ok"
    assert any(b["suggestions"] for b in bodies)
