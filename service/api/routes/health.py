"""``/healthz`` (no authentication) and ``/metrics`` (staff or admin)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from service import schemas
from service.api.deps import SessionDep, StaffUser

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


def index_status(request: Request) -> dict[str, Any]:
    """The recommender handle's status, never raising (health must answer)."""
    handle = getattr(request.app.state, "recommender", None)
    if handle is None:
        return {"ready": False, "error": "no recommender handle"}
    try:
        status = dict(handle.status())
    except Exception as exc:  # health reports failures instead of failing
        log.warning("index status failed: %s", exc)
        return {"ready": False, "error": str(exc)}
    if "ready" not in status:  # RecommenderHandle reports builds, not readiness
        status["ready"] = bool(status.get("loaded_build") or status.get("current_build"))
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        build = status.get("loaded_build") or status.get("build_id")
        metrics.set_index_build(str(build) if build else None)
    return status


@router.get(
    "/healthz",
    response_model=schemas.Health,
    summary="Liveness/readiness: database reachable and index status (no authentication)",
)
def healthz(request: Request, session: SessionDep, response: Response) -> schemas.Health:
    try:
        session.execute(text("SELECT 1"))
        db_ok = True
    except Exception as exc:
        log.warning("health: database check failed: %s", exc)
        db_ok = False
    idx = index_status(request)
    ok = db_ok and bool(idx.get("ready"))
    if not db_ok:
        response.status_code = 503
    return schemas.Health(status="ok" if ok else "degraded", database=db_ok, index=idx)


@router.get(
    "/metrics",
    summary="Prometheus metrics (staff or admin credential required)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request, _user: StaffUser) -> Response:
    from service.metrics import CONTENT_TYPE_LATEST

    index_status(request)  # refresh the build gauge
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
