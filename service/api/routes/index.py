"""Index status (staff) and re-index trigger (admin; runs in a background thread)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, status

from service import crud, schemas
from service.api.deps import AdminUser, SessionDep, StaffUser
from service.api.routes.health import index_status
from service.errors import Conflict
from service.jobs.reindex import run_reindex

log = logging.getLogger(__name__)

router = APIRouter(prefix="/index", tags=["index"])


class ReindexState:
    """One background re-index at a time; its last outcome for ``/index/status``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.info: dict[str, Any] = {"running": False}

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.info)


@router.get("/status", response_model=schemas.IndexStatus, summary="Index build status")
def get_status(request: Request, _user: StaffUser) -> schemas.IndexStatus:
    detail = index_status(request)
    return schemas.IndexStatus(
        ready=bool(detail.get("ready")), detail=detail, reindex=request.app.state.reindex.snapshot()
    )


@router.post(
    "/reindex",
    response_model=schemas.ReindexAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a re-index in the background (admin); the service switches builds live",
)
def reindex(request: Request, session: SessionDep, user: AdminUser) -> schemas.ReindexAccepted:
    state: ReindexState = request.app.state.reindex
    settings = request.app.state.settings
    with state.lock:
        if state.info.get("running"):
            raise Conflict("a re-index is already running", code="reindex_running")
        state.info = {
            "running": True,
            "started_at": datetime.now(UTC).isoformat(),
            "by": user.username,
        }

    # Reuse the serving encoder (no second model load) when the handle has one loaded.
    encoder = getattr(request.app.state.recommender, "encoder", None)

    def _job() -> None:
        outcome: dict[str, Any] = {}
        try:
            if encoder is not None:
                result = run_reindex(settings, encoder=encoder)
            else:
                result = run_reindex(settings)
            build_id = getattr(result, "build_id", None)
            outcome = {"result": str(build_id if build_id is not None else result), "error": None}
        except Exception as exc:  # recorded for /index/status
            log.exception("re-index failed")
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
        with state.lock:
            state.info.update(outcome, running=False, finished_at=datetime.now(UTC).isoformat())

    state.thread = threading.Thread(target=_job, name="reindex", daemon=True)
    state.thread.start()
    crud.audit(session, user=user, action="index.reindex", entity="index", entity_id="current")
    session.commit()
    return schemas.ReindexAccepted(started=True, detail="re-index started")
