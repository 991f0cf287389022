"""What every browser test needs: Debian Chromium through Playwright, and the app on uvicorn.

Without ``/usr/bin/chromium`` (or ``DUIJIE_CHROMIUM``) browser tests are skipped, unless
``DUIJIE_REQUIRE_BROWSER=1`` (CI), where they fail. See docs/browser_tests.md.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("DUIJIE_CHROMIUM", "/usr/bin/chromium")
# This machine has no network: without the background-networking flags Chromium keeps trying.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """Skip (or, with ``DUIJIE_REQUIRE_BROWSER=1``, fail) when Chromium is missing."""
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} not found: apt-get install -y chromium (see docs/browser_tests.md)"
    if os.environ.get("DUIJIE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(config: Any, *, start_timeout: float = 60.0) -> Iterator[str]:
    """Run ``uvicorn.Config`` ``config`` in a thread; yields its base URL until the block ends."""
    import uvicorn

    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (skips or fails when it is missing)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module (import this fixture into the module)."""
    with launched_chromium() as b:
        yield b


def zh_context(browser: Any, *, width: int = 1366, height: int = 900) -> Any:
    """A zh-CN browser context with JavaScript off: the pages must work as plain HTML forms."""
    return browser.new_context(
        locale="zh-CN", viewport={"width": width, "height": height}, java_script_enabled=False
    )


@contextmanager
def zh_page(browser: Any, *, width: int, timeout_ms: int) -> Iterator[Any]:
    """A page in a fresh :func:`zh_context`, closed afterwards."""
    context = zh_context(browser, width=width)
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    try:
        yield page
    finally:
        context.close()
