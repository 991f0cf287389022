"""The FastAPI application: ``create_app()`` factory and ``lifespan``.

The lifespan opens the database (migrating it), builds the recommender handle once
(``app.state.recommender``; hot-reloads index builds) and warms it in the background
(:func:`warm_recommender`), the campaign runner and the re-index state. Everything under ``/api/v1`` requires authentication except ``POST /api/v1/auth/login``;
``/healthz`` is open; ``/metrics`` requires a staff/admin credential. The staff pages
(``service.web``) are mounted under ``/staff``.
"""

from __future__ import annotations

import embeddings.runtime  # noqa: F401  # isort: skip  (OpenMP env before native libraries)
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from matcher.errors import IndexNotReady
from service import web
from service.api.deps import CurrentUser
from service.errors import ERROR_RESPONSES, error_response, install_error_handlers
from service.jobs.campaign_runner import CampaignRunner
from service.jobs.pairing import SolveFn, pairing_solve
from service.metrics import Metrics, MetricsMiddleware
from service.recommender import RecommenderHandle
from service.settings import Settings, get_settings, session_secret

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 1_000_000

TAGS = [
    {"name": "health", "description": "Liveness and Prometheus metrics"},
    {"name": "auth", "description": "Login/logout (session cookie + CSRF) and the caller"},
    {"name": "organisations", "description": "Enterprises, universities, institutes"},
    {"name": "needs", "description": "技术需求 — enterprises' technology needs"},
    {"name": "capabilities", "description": "能力/成果 — achievements, patents, teams, labs"},
    {"name": "suggestions", "description": "Partner suggestions, free-text match, pair scores"},
    {"name": "bounties", "description": "揭榜制 — bounties, bids, respondents, bid ranking"},
    {"name": "campaigns", "description": "结对子 — pairing campaigns run in the background"},
    {"name": "shortlists", "description": "Staff review of proposed pairings (optimistic locking)"},
    {"name": "audit", "description": "Every decision and admin action"},
    {"name": "index", "description": "Index build status and re-indexing (admin)"},
    {"name": "users", "description": "Users and API keys (admin)"},
]


class BodySizeLimit:
    """Reject request bodies over ``max_bytes`` with 413, whether the length is declared
    (``Content-Length``) or only seen while streaming (chunked transfer encoding).

    A streamed body is cut off in ``receive``; the framework may turn that failure into its own
    error response (FastAPI answers 400 "error parsing the body"), so the response is replaced
    by the 413 on its way out as well.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await self._reject(scope, receive, send)
                    return
        state = {"received": 0, "exceeded": False, "started": False, "replaced": False}

        async def _receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["exceeded"] = True
                    raise _BodyTooLarge
            return message

        async def _send(message: Message) -> None:
            if state["replaced"]:
                return  # the app's own error response to the cut-off body is dropped
            if message["type"] == "http.response.start":
                if state["exceeded"]:
                    state["replaced"] = True
                    await self._reject(scope, receive, send)
                    return
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, _receive, _send)
        except _BodyTooLarge:
            if not state["started"] and not state["replaced"]:
                await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        resp = error_response(413, f"request body exceeds {self.max_bytes} bytes")
        await resp(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


#: Queries run once at start so the first real suggestion pays for nothing lazy (the model and
#: its OpenMP pool, the index, BM25 tokenizer dictionaries, the English model when configured).
WARM_QUERIES = ("铝合金轮毂轻量化技术", "lightweight aluminium alloy wheel")


def warm_recommender(handle: Any, stop: threading.Event, *, poll_s: float = 2.0) -> None:
    """Load the recommender and run :data:`WARM_QUERIES` once a build exists.

    Runs in a background thread from the lifespan: the service answers at once (suggestions
    are 503 ``index_not_ready`` while the first build is still being made) and the first
    suggestion after the build is as fast as later ones.
    """
    t0 = time.perf_counter()
    while not stop.is_set():
        try:
            recommender = handle.get()
        except IndexNotReady:
            stop.wait(poll_s)
            continue
        except Exception:  # a broken build is reported by /healthz; warming is best effort
            log.exception("warm-up: loading the recommender failed")
            return
        for text in WARM_QUERIES:
            try:
                recommender.suggest_for_text(text, k=1)
            except Exception:  # best effort: the first request will show any real error
                log.exception("warm-up query failed")
        log.info("recommender warmed in %.1fs", time.perf_counter() - t0)
        return


def api_router() -> APIRouter:
    """Every ``/api/v1`` route."""
    from service.api.routes import (
        applications,
        audit,
        auth,
        bounties,
        campaigns,
        capabilities,
        index,
        introductions,
        messages,
        needs,
        organisations,
        shortlists,
        suggestions,
        users,
    )

    router = APIRouter(prefix=API_PREFIX, responses=ERROR_RESPONSES)
    for module in (
        auth,
        organisations,
        needs,
        capabilities,
        suggestions,
        bounties,
        applications,
        introductions,
        messages,
        campaigns,
        shortlists,
        audit,
        index,
        users,
    ):
        router.include_router(module.router)
    return router


def _lifespan(
    settings: Settings,
    session_factory: sessionmaker[Session] | None,
    recommender: Any | None,
    campaign_solve: SolveFn | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: open the store, build the recommender and the campaign runner."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = None
        factory = session_factory
        if factory is None:
            from service.db import open_store

            engine, factory = open_store(
                settings.resolved_database_url, lock_timeout_s=settings.db_lock_timeout_s
            )
        handle = recommender if recommender is not None else RecommenderHandle(settings, factory)
        stop_warming = threading.Event()
        if recommender is None:
            threading.Thread(
                target=warm_recommender,
                args=(handle, stop_warming),
                name="recommender-warm-up",
                daemon=True,
            ).start()
        app.state.session_factory = factory
        app.state.recommender = handle
        app.state.campaign_runner = CampaignRunner(
            session_factory=factory,
            recommender=handle.get,
            solve=campaign_solve or pairing_solve,
            on_finish=lambda status: app.state.metrics.campaign_runs.labels(status=status).inc(),
        )
        try:
            yield
        finally:
            stop_warming.set()
            app.state.campaign_runner.shutdown(wait=False)
            close: Callable[[], None] | None = getattr(handle, "close", None)
            if callable(close):
                close()
            if engine is not None:
                engine.dispose()

    return lifespan


def create_app(
    settings: Settings | None = None,
    *,
    session_factory: sessionmaker[Session] | None = None,
    recommender: Any | None = None,
    campaign_solve: SolveFn | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """Build the application.

    Parameters
    ----------
    settings : defaults to :func:`service.settings.get_settings`.
    session_factory : an existing session factory (tests); default opens and migrates
        ``settings.resolved_database_url`` in the lifespan.
    recommender : a handle with ``get()`` and ``status()`` (tests); default builds
        ``service.recommender.RecommenderHandle``.
    campaign_solve : the campaign solve function (default: the pairing engine,
        ``service.jobs.pairing.pairing_solve``).
    max_body_bytes : larger request bodies get 413.
    """
    # Sessions are signed with the configured secret or the install's own (never a public one).
    settings = session_secret(settings if settings is not None else get_settings())
    if settings.dev_mode:
        log.warning("development mode (DUIJIE_ENVIRONMENT=dev): serve on loopback only")

    lifespan = _lifespan(settings, session_factory, recommender, campaign_solve)

    app = FastAPI(
        title="duijie 产学研对接 API",
        version="1",
        description=(
            "Matchmaking between enterprises' technology needs and research capabilities for the "
            "Guangxi S&T department. Authenticate with `Authorization: Bearer <API key>` (or "
            '`X-API-Key`). Errors always have the body `{"detail": str, "code": str}`.'
        ),
        openapi_tags=TAGS,
        lifespan=lifespan,
        # The schema and the docs UI require authentication too (served under /api/v1).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    from service.api.routes.index import ReindexState
    from service.sessions import LoginThrottle

    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.reindex = ReindexState()
    app.state.login_throttle = LoginThrottle()
    install_error_handlers(app)

    from service.api.routes import health

    app.include_router(health.router)
    app.include_router(api_router())
    app.include_router(_docs_router(app))
    app.include_router(web.router)

    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def _docs_router(app: FastAPI) -> APIRouter:
    """``/api/v1/openapi.json`` and ``/api/v1/docs`` for authenticated callers (a logged-in
    staff browser sends its session cookie; scripts send their API key)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse

    router = APIRouter(prefix=API_PREFIX, include_in_schema=False)

    @router.get("/openapi.json")
    def openapi_schema(_user: CurrentUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    def swagger_ui(_user: CurrentUser) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{API_PREFIX}/openapi.json", title=app.title)

    return router
