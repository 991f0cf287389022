"""Background campaign runs (结对子): start, progress, cancel, result, all through the
``Campaign`` row, so any API process (or the staff pages) sees the same state.

The solve step is pluggable: a :data:`SolveFn` receives a :class:`CampaignContext` and
returns the run summary; it writes shortlist items itself. :func:`greedy_solve` is the
built-in default (each enterprise's top partners from the recommender, no capacity
constraints); the pairing engine's solver replaces it via ``create_app(campaign_solve=...)``.
Runs execute in a thread pool (the solve is numpy/OR-tools work that releases the GIL and
needs the in-process recommender); ``max_workers`` bounds concurrent runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from matcher.encoding import external_of
from service.db import session_scope
from service.models import Campaign, Need, Organisation, ShortlistItem

log = logging.getLogger(__name__)

RUNNABLE = ("created", "failed", "cancelled")


class CampaignCancelled(Exception):
    """Raised inside a solve when staff cancelled the run."""


@dataclass
class CampaignContext:
    """What a solve function gets.

    report(progress) stores progress in [0, 1] and raises CampaignCancelled once the run
    was cancelled; call it regularly. recommender() returns the current Recommender.
    """

    campaign_id: int
    params: dict[str, Any]
    session_factory: sessionmaker[Session]
    recommender: Callable[[], Any]
    cancel_event: threading.Event = field(default_factory=threading.Event)
    _last: float = -1.0
    _started: float = field(default_factory=time.monotonic)
    _logged: float = 0.0

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def _log_progress(self, progress: float, every_s: float = 5.0) -> None:
        """A log line with the elapsed time and an ETA, at most every ``every_s`` seconds."""
        now = time.monotonic()
        if now - self._logged < every_s and progress < 1.0:
            return
        self._logged = now
        elapsed = now - self._started
        eta = f", ETA {elapsed * (1 - progress) / progress:.0f} s" if 0 < progress < 1 else ""
        log.info(
            "campaign %s: %.0f%% after %.0f s%s", self.campaign_id, 100 * progress, elapsed, eta
        )

    def report(self, progress: float) -> None:
        if self.cancelled():
            raise CampaignCancelled(f"campaign {self.campaign_id} cancelled")
        progress = min(max(float(progress), 0.0), 1.0)
        if progress - self._last < 0.02 and progress < 1.0:
            return  # write progress at most every 2 %
        self._last = progress
        self._log_progress(progress)
        with session_scope(self.session_factory) as s:
            res = s.execute(
                update(Campaign)
                .where(Campaign.id == self.campaign_id, Campaign.status == "running")
                .values(progress=progress)
            )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            # Cancelled through the database (e.g. by another API worker process).
            self.cancel_event.set()
            raise CampaignCancelled(f"campaign {self.campaign_id} cancelled")


SolveFn = Callable[[CampaignContext], dict[str, Any]]


def greedy_solve(ctx: CampaignContext) -> dict[str, Any]:
    """Default solve: for every active enterprise with open needs, its top ``k`` partners
    (params: ``k`` alternates, default 3; ``max_enterprises`` optional). The first is
    ``assigned``, the rest ``alternate``; an enterprise without any is ``uncovered``.
    Items are written in one transaction at the end, so a cancelled run leaves none."""
    k = int(ctx.params.get("k", 3))
    limit = ctx.params.get("max_enterprises")
    rec = ctx.recommender()
    with session_scope(ctx.session_factory) as s:
        stmt = (
            select(Organisation.id, Organisation.external_id)
            .where(
                Organisation.kind == "enterprise",
                Organisation.status == "active",
                Organisation.id.in_(select(Need.org_id).where(Need.status == "open")),
            )
            .order_by(Organisation.id)
        )
        enterprises = [(int(i), str(e)) for i, e in s.execute(stmt)]
        org_ids = {
            str(e): int(i) for i, e in s.execute(select(Organisation.id, Organisation.external_id))
        }
        need_ids = {str(e): int(i) for i, e in s.execute(select(Need.id, Need.external_id))}
    if limit is not None:
        enterprises = enterprises[: int(limit)]
    items: list[ShortlistItem] = []
    covered = 0
    for n, (ent_id, ent_ext) in enumerate(enterprises):
        ctx.report(n / max(len(enterprises), 1) * 0.95)
        found = list(rec.suggest_for_enterprise(ent_ext, k))
        if not found:
            items.append(
                ShortlistItem(
                    campaign_id=ctx.campaign_id,
                    enterprise_id=ent_id,
                    kind="uncovered",
                    rank=1,
                    problem="没有符合条件的合作单位(无可检索的能力或全部被排除)",
                )
            )
            continue
        covered += 1
        for s_ in found:
            items.append(
                ShortlistItem(
                    campaign_id=ctx.campaign_id,
                    enterprise_id=ent_id,
                    institute_id=org_ids.get(str(s_.org_id)),
                    need_id=need_ids.get(external_of(str(s_.query_id))) if s_.query_id else None,
                    score=float(s_.score),
                    rank=int(s_.rank),
                    kind="assigned" if int(s_.rank) == 1 else "alternate",
                    evidence={
                        "documents": [
                            {
                                "doc_id": external_of(e.doc_id),
                                "score": float(e.score),
                                "query_snippet": e.query_snippet,
                                "doc_snippet": e.doc_snippet,
                            }
                            for e in s_.evidence
                        ],
                        "shared_keywords": list(s_.shared_keywords),
                        "reasons": list(s_.reasons),
                    },
                    features={key: float(v) for key, v in s_.features.items()},
                )
            )
    ctx.report(0.97)
    with session_scope(ctx.session_factory) as s:
        s.add_all(items)
    return {
        "solver": "greedy",
        "enterprises": len(enterprises),
        "covered": covered,
        "uncovered": len(enterprises) - covered,
        "items": len(items),
    }


class CampaignRunner:
    """Runs campaigns in a thread pool; status, progress and errors live on the row.

    Parameters
    ----------
    session_factory : sessions for the service database.
    recommender : zero-argument callable returning the current Recommender (the handle's get).
    solve : the solve function (default :func:`greedy_solve`).
    max_workers : concurrent runs.
    on_finish : optional callback(status) for metrics.
    """

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        recommender: Callable[[], Any],
        solve: SolveFn | None = None,
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
        (already running or done: a finished campaign is re-run as a new campaign)."""
        with session_scope(self.session_factory) as s:
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
            params = dict(s.get_one(Campaign, campaign_id).params or {})
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
        solve = self.solve or greedy_solve
        status, error, summary = "done", None, {}
        try:
            summary = solve(ctx)
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
