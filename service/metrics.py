"""Prometheus metrics: request count and latency by route template and status, suggestion
latency, and the id of the index build being served.

Each app gets its own ``CollectorRegistry`` (so tests can build many apps in one process);
``/metrics`` renders it. Access to ``/metrics`` requires a staff or admin credential (an API
key in ``Authorization: Bearer``, which Prometheus sends via ``authorization.credentials``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "MetricsMiddleware"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The service's collectors, registered in a private registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "duijie_http_requests_total",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "duijie_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.suggestion_latency = Histogram(
            "duijie_suggestion_duration_seconds",
            "Time spent in the recommender per call, by operation",
            ["op"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.index_build = Gauge(
            "duijie_index_build_info",
            "1 for the index build currently served (label build_id)",
            ["build_id"],
            registry=self.registry,
        )
        self.campaign_runs = Counter(
            "duijie_campaign_runs_total",
            "Campaign runs by final status",
            ["status"],
            registry=self.registry,
        )

    @contextmanager
    def time_suggestion(self, op: str) -> Iterator[None]:
        """Time a recommender call (``op`` is e.g. ``need``, ``enterprise``, ``text``)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.suggestion_latency.labels(op=op).observe(time.perf_counter() - start)

    def set_index_build(self, build_id: str | None) -> None:
        """Point the build gauge at ``build_id`` (cleared when None)."""
        self.index_build.clear()
        if build_id:
            self.index_build.labels(build_id=str(build_id)).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


#: The ``method`` label takes one of these values; anything else is counted as "other" (a
#: client can send any token as the method, which must not grow the label set).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(scope: Scope) -> str:
    """The request method when it is a standard one, else ``"other"``."""
    method = str(scope.get("method", "GET")).upper()
    return method if method in METHODS else "other"


def route_template(scope: Scope) -> str:
    """The matched route's path template (full path incl. router prefixes), or "unmatched"."""
    try:  # FastAPI >= 0.160 keeps included routers lazy; the effective context has the full path
        from fastapi.routing import _get_scope_effective_route_context

        ctx: Any = _get_scope_effective_route_context(scope)
        if ctx is not None and getattr(ctx, "path", None):
            return str(ctx.path)
    except ImportError:  # older FastAPI: routes are flattened and scope["route"] has it
        pass
    route: Any = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


class MetricsMiddleware:
    """Pure ASGI middleware recording count and latency under the matched route template
    (``/api/v1/needs/{external_id}``; "unmatched" for any path no route matched) and a method
    from :data:`METHODS` (else "other"), so neither ids nor junk requests grow the label set."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            template = route_template(scope)
            method = method_label(scope)
            self.metrics.requests.labels(
                method=method, route=template, status=str(status["code"])
            ).inc()
            self.metrics.latency.labels(method=method, route=template).observe(
                time.perf_counter() - start
            )
