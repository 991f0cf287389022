"""First start: the recommender is warmed in the background once a build exists, and long
jobs report progress with a rate and an ETA."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from matcher.errors import IndexNotReady
from service.jobs.reindex import _LogProgress, progress_line
from service.main import WARM_QUERIES, warm_recommender


class _Handle:
    def __init__(self, not_ready: int) -> None:
        self.not_ready = not_ready
        self.texts: list[str] = []

    def get(self) -> Any:
        if self.not_ready > 0:
            self.not_ready -= 1
            raise IndexNotReady("building")
        return self

    def suggest_for_text(self, text: str, k: int = 10) -> list[Any]:
        self.texts.append(text)
        return []


def test_warm_up_waits_for_the_first_build_then_runs_queries() -> None:
    handle = _Handle(not_ready=3)
    warm_recommender(handle, threading.Event(), poll_s=0.01)
    assert handle.not_ready == 0 and handle.texts == list(WARM_QUERIES)


def test_warm_up_stops_when_the_app_shuts_down() -> None:
    handle = _Handle(not_ready=10**9)
    stop = threading.Event()
    t = threading.Thread(target=warm_recommender, args=(handle, stop), kwargs={"poll_s": 0.01})
    t.start()
    stop.set()
    t.join(timeout=5)
    assert not t.is_alive() and handle.texts == []


def test_progress_line_has_rate_and_eta() -> None:
    assert progress_line("encode:needs", 320, 990, 40.0) == (
        "encode:needs: 320/990 (32%), 8.0/s, ETA 84 s"
    )
    assert progress_line("encode:needs", 990, 990, 110.0).endswith("9.0/s, 110 s")
    assert progress_line("verify", 0, 0, 0.0) == "verify: 0/0 (100%)"


def test_log_progress_is_time_based(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    p = _LogProgress(every_s=5.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="service.jobs.reindex"):
        for done in range(0, 101):
            now[0] = done * 0.5  # 2 chunks/s, 50 s in all
            p("encode:capabilities", done, 100)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "encode:capabilities: 0/100"
    assert 9 <= len(lines) <= 13  # every ~5 s, not every block
    assert "2.0/s, ETA" in lines[1] and lines[-1].endswith("100/100 (100%), 2.0/s, 50 s")
