"""Background campaign runs (结对子): start, progress, cancel, result, all through the
``Campaign`` row, so any API process (or the staff pages) sees the same state.

The solve step is a :data:`~service.jobs.pairing.SolveFn` (default: the pairing engine,
:func:`service.jobs.pairing.pairing_solve`): it receives a
:class:`~service.jobs.pairing.CampaignContext` with the campaign's validated
:class:`~service.jobs.pairing.PairingParams`, writes the shortlist items itself and returns the
run summary. Runs execute in a thread pool (the solve is numpy/OR-tools work that releases the
GIL and needs the in-process recommender); ``max_workers`` bounds concurrent runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from matcher.errors import InvalidParameter
from service.db import session_scope
from service.jobs.pairing import (
    CampaignCancelled,
    CampaignContext,
    PairingParams,
    SolveFn,
    pairing_solve,
)
from service.models import Campaign, ShortlistItem

if TYPE_CHECKING:
    from matcher.pipeline import Recommender

log = logging.getLogger(__name__)

__all__ = ["RUNNABLE", "CampaignCancelled", "CampaignContext", "CampaignRunner", "SolveFn"]

RUNNABLE = ("created", "failed", "cancelled")


class CampaignRunner:
    """Runs campaigns in a thread pool; status, progress and errors live on the row.

    Parameters
    ----------
    session_factory : sessions for the service database.
    recommender : zero-argument callable returning the current Recommender (the handle's get).
    solve : the solve function (default :func:`~service.jobs.pairing.pairing_solve`).
    max_workers : concurrent runs.
    on_finish : optional callback(status) for metrics.
    """

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        recommender: Callable[[], Recommender],
        solve: SolveFn = pairing_solve,
        max_workers: int = 1,
        on_finish: Callable[[str], None] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.recommender = recommender
        self.solve = solve
        self.max_workers = max_workers
        self.on_finish = on_finish
        self._pool: ThreadPoolExecutor | None = None
        self._events: dict[int, threading.Event] = {}
        self._futures: dict[int, Future[None]] = {}
        self._lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="campaign")
            return self._pool

    def start(self, campaign_id: int) -> bool:
        """Mark the campaign running and queue it; False if it is not in a runnable state
        (already running or done: a finished campaign is re-run as a new campaign).

        Raises
        ------
        InvalidParameter
            The stored parameters are not valid :class:`PairingParams` (rows written before
            they were validated at the door); the campaign is left as it was.
        """
        with session_scope(self.session_factory) as s:
            row = s.get(Campaign, campaign_id)
            try:
                params = PairingParams.model_validate(row.params if row is not None else {})
            except ValidationError as exc:
                raise InvalidParameter(f"campaign {campaign_id}: invalid params: {exc}") from exc
            res = s.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status.in_(RUNNABLE))
                .values(
                    status="running",
                    progress=0.0,
                    error=None,
                    summary={},
                    updated_at=datetime.now(UTC),
                )
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                return False
            # A re-run (after failure/cancel) starts from an empty shortlist.
            s.execute(delete(ShortlistItem).where(ShortlistItem.campaign_id == campaign_id))
        event = threading.Event()
        ctx = CampaignContext(
            campaign_id=campaign_id,
            params=params,
            session_factory=self.session_factory,
            recommender=self.recommender,
            cancel_event=event,
        )
        with self._lock:
            self._events[campaign_id] = event
        self._futures[campaign_id] = self._executor().submit(self._run, ctx)
        return True

    def cancel(self, campaign_id: int) -> str | None:
        """Request cancellation. Returns the resulting status, or None if not cancellable."""
        with self._lock:
            event = self._events.get(campaign_id)
        if event is not None:
            event.set()
        with session_scope(self.session_factory) as s:
            res = s.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status.in_(("created", "running")))
                .values(status="cancelled", updated_at=datetime.now(UTC))
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                return None
        return "cancelled"

    def wait(self, campaign_id: int, timeout: float | None = None) -> None:
        """Block until a run started by this runner ends (tests, CLI)."""
        fut = self._futures.get(campaign_id)
        if fut is not None:
            fut.result(timeout=timeout)

    def _run(self, ctx: CampaignContext) -> None:
        status, error, summary = "done", None, {}
        try:
            summary = self.solve(ctx)
            if ctx.cancelled():
                raise CampaignCancelled(f"campaign {ctx.campaign_id} cancelled")
        except CampaignCancelled:
            status = "cancelled"
        except Exception as exc:  # recorded on the row for staff; the pool must survive
            log.exception("campaign %s failed", ctx.campaign_id)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        with session_scope(self.session_factory) as s:
            values: dict[str, Any] = {
                "status": status,
                "error": error,
                "summary": summary,
                "updated_at": datetime.now(UTC),
            }
            if status == "done":
                values["progress"] = 1.0
            # Only a still-running campaign takes the outcome: one cancelled meanwhile (here or
            # by another process) stays cancelled and loses its partial shortlist.
            res = s.execute(
                update(Campaign)
                .where(Campaign.id == ctx.campaign_id, Campaign.status == "running")
                .values(**values)
            )
            if res.rowcount != 1:  # type: ignore[attr-defined]
                status = "cancelled"
            if status == "cancelled":
                s.execute(
                    update(Campaign)
                    .where(Campaign.id == ctx.campaign_id)
                    .values(status="cancelled", updated_at=datetime.now(UTC))
                )
                s.execute(delete(ShortlistItem).where(ShortlistItem.campaign_id == ctx.campaign_id))
        with self._lock:
            self._events.pop(ctx.campaign_id, None)
        if self.on_finish is not None:
            self.on_finish(status)
        log.info("campaign %s finished: %s", ctx.campaign_id, status)

    def shutdown(self, *, wait: bool = True) -> None:
        """Cancel running campaigns and stop the pool."""
        with self._lock:
            for event in self._events.values():
                event.set()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)
