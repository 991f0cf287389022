# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Request-level limits: oversize streamed bodies and bounded metric labels."""

from __future__ import annotations

from collections.abc import Iterator

from tests.service.api_support import (  # noqa: F401 (fixtures)
    bearer,
    client,
    handle,
    world,
    world_template,
)


def _chunks(n: int, size: int = 100_000) -> Iterator[bytes]:
    for _ in range(n):
        yield b"a" * size


def test_chunked_body_over_limit_is_413(client, world) -> None:
    """No Content-Length (chunked transfer): over 1 MB is 413 like a declared length."""
    headers = {**bearer(world.keys["staff"]), "Content-Type": "application/json"}
    r = client.post("/api/v1/match", content=_chunks(12), headers=headers)
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "payload_too_large"
    # The staff pages' forms get the same answer.
    r = client.post(
        "/staff/login",
        content=_chunks(12),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413
    # A small chunked body still reaches the route.
    small = client.post(
        "/api/v1/match",
        content=iter([b'{"text": "', "铝合金轮毂".encode(), b'"}']),
        headers=headers,
    )
    assert small.status_code == 200, small.text


def _series(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("duijie_http_requests_total")]


def test_metrics_labels_stay_bounded(client, world) -> None:
    staff = bearer(world.keys["staff"])
    client.get("/metrics", headers=staff)
    for i in range(15):
        client.request(f"JUNK{i}", f"/x/{i}")
        client.get(f"/no/such/path/{i}")
        client.get(f"/api/v1/needs/N-{i}", headers=staff)
    series = _series(client.get("/metrics", headers=staff).text)
    methods = {line.split('method="', 1)[1].split('"', 1)[0] for line in series}
    routes = {line.split('route="', 1)[1].split('"', 1)[0] for line in series}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert "other" in methods
    assert not any("N-" in r or "/x/" in r or "/no/such" in r for r in routes), routes
    assert "/api/v1/needs/{external_id}" in routes
    before = len(client.get("/metrics", headers=staff).content)
    for i in range(100):
        client.request(f"J{i}", f"/junk/{i}")
    after = len(client.get("/metrics", headers=staff).content)
    assert after - before < 1_000, (before, after)
