# ruff: noqa: F811  (pytest fixtures imported from tests.service.api_support)
"""Property-based API fuzzing with schemathesis against the authenticated OpenAPI schema.

Every operation gets generated requests (positive, and negative = schema-violating: bad types,
sizes, enums, missing fields)
as admin and as enterprise A; no response may be a 5xx. The total number of requests is
asserted (≥ 1,000 by default; set DUIJIE_FUZZ_EXAMPLES to scale).
"""

from __future__ import annotations

import os
import sys
import types
from collections import Counter
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from service.main import create_app
from tests.service.api_support import (  # noqa: F401 (fixtures)
    FakeHandle,
    FakeRecommender,
    World,
    bearer,
    world,
    world_template,
)

# Per operation and role (enterprise A gets half). The default keeps `make test` fast
# (~180 requests); benchmarks/fuzz_api.py runs it with 24 (> 1,000 requests).
EXAMPLES = int(os.environ.get("DUIJIE_FUZZ_EXAMPLES", "3"))
# Destructive operations for the caller itself run last, so they don't lock the fuzzer out.
LAST = ("/api/v1/users/{user_id}/revoke", "/api/v1/auth/logout")


def _order(op: Any) -> tuple[int, str]:
    return (1 if op.path in LAST else 0, f"{op.path} {op.method}")


def _fuzz(
    op: Any, role: str, headers: dict[str, str], n: int, errors: list[str], codes: Counter[int]
) -> int:
    """Run ``n`` generated cases of one operation; returns how many requests were sent."""
    sent = 0

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(op.as_strategy(), op.as_strategy(GenerationMode.NEGATIVE)))
    def run(case: Any) -> None:
        nonlocal sent
        try:
            response = case.call(headers=headers, timeout=120)
        except Exception as exc:  # the in-process client re-raises server errors
            sent += 1
            codes[500] += 1
            errors.append(f"{role} {case.method} {case.formatted_path}: {exc!r}"[:300])
            return
        sent += 1
        codes[response.status_code] += 1
        if response.status_code >= 500:
            errors.append(
                f"{role} {case.method} {case.formatted_path}: "
                f"{response.status_code} {response.text[:200]}"
            )

    run()
    return sent


def test_fuzz_no_server_errors(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("service.jobs.reindex")
    fake.run_reindex = lambda settings: "build-fuzz"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "service.jobs.reindex", fake)
    app = create_app(
        world.settings,
        session_factory=world.factory,
        recommender=FakeHandle(FakeRecommender()),
    )
    sent = 0
    errors: list[str] = []
    codes: Counter[int] = Counter()
    with TestClient(app):  # runs the lifespan; schemathesis then calls the same app in-process
        schema = schemathesis.openapi.from_asgi(
            "/api/v1/openapi.json", app, headers=bearer(world.keys["admin"])
        )
        operations = sorted((r.ok() for r in schema.get_all_operations()), key=_order)
        assert len(operations) >= 40
        for op in operations:
            for role, n in (("ent_a", max(EXAMPLES // 2, 1)), ("admin", EXAMPLES)):
                sent += _fuzz(op, role, bearer(world.keys[role]), n, errors, codes)
        app.state.campaign_runner.shutdown(wait=True)
    assert not errors, "\n".join(errors[:20])
    assert sent >= len(operations) * EXAMPLES, sent
    assert codes[200] + codes[201] + codes[202] > sent // 10  # not only rejections
    print(  # noqa: T201 (summary line read by benchmarks/fuzz_api.py)
        f"schemathesis: {sent} requests over {len(operations)} operations, "
        f"0 server errors; statuses {dict(sorted(codes.items()))}"
    )
