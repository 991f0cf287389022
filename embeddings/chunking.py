"""Sentence splitting and chunk packing for long Chinese/Western texts.

Owns the rule that maps a document's text to the chunks that are embedded. Every
non-whitespace character of the text ends up in exactly one chunk, in order (no silent
truncation); whitespace is only trimmed at chunk edges. The chunker's parameters are part of
:data:`CHUNKER_VERSION`, which goes into every document's content hash so that changing the
rule re-encodes everything.
"""

from __future__ import annotations

import re

#: Bump when the splitting rule changes (invalidates per-document content hashes).
CHUNKER_VERSION = "chunk-v1"

#: Default character budget per chunk. multilingual-e5-small reads 512 tokens; its XLM-R
#: tokenizer spends about one token per CJK character and ~4 characters per English token, so
#: 300 characters stays well below the limit even with the ``passage: `` prefix.
DEFAULT_MAX_CHARS = 300

# Sentence-final punctuation (half- and full-width). '.' is handled separately (decimals).
_FINAL = frozenset("。！？；!?;．｡…\n")
# Closing marks that belong to the sentence they end.
_CLOSERS = frozenset("”’」』）)]】〕》\"'")
# Secondary break points used to split an over-long sentence.
_SOFT_BREAK = re.compile(r"[，,、：:\s]")


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, keeping every character.

    Breaks after 。！？；!?;．｡… and newlines, and after '.' unless an ASCII letter or digit
    follows it (so "3.5", "e.g." and "v1.2" stay whole). Closing quotes/brackets stay with the sentence they end.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    list of str
        ``"".join(result) == text``; empty for an empty text.
    """
    out: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        # '.' ends a sentence unless an ASCII letter/digit follows ("3.5", "e.g.", URLs)
        is_end = ch in _FINAL or (
            ch == "." and not (i < n - 1 and text[i + 1].isascii() and text[i + 1].isalnum())
        )
        i += 1
        if is_end:
            # swallow runs of enders ("？！", "...") and trailing closers
            while i < n and (text[i] in _FINAL or text[i] == "." or text[i] in _CLOSERS):
                i += 1
            out.append(text[start:i])
            start = i
    if start < n:
        out.append(text[start:])
    return out


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Cut a sentence longer than ``max_chars`` at commas/spaces when possible."""
    parts: list[str] = []
    rest = sentence
    while len(rest) > max_chars:
        cut = max_chars
        window = rest[:max_chars]
        breaks = [m.end() for m in _SOFT_BREAK.finditer(window)]
        if breaks and breaks[-1] > max_chars // 2:
            cut = breaks[-1]
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        parts.append(rest)
    return parts


def chunk_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[str]:
    """Pack consecutive sentences of ``text`` into chunks of at most ``max_chars`` characters.

    Parameters
    ----------
    text : str
        The document text.
    max_chars : int
        Character budget per chunk (after trimming edge whitespace), >= 1.

    Returns
    -------
    list of str
        At least one chunk (``[""]`` for a blank text). Removing whitespace from
        ``"".join(chunks)`` gives ``text`` with whitespace removed.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    pieces: list[str] = []
    for sentence in split_sentences(text):
        if len(sentence.strip()) > max_chars:
            pieces.extend(_split_long(sentence.strip(), max_chars))
        else:
            pieces.append(sentence)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = current + piece
        if current.strip() and len(candidate.strip()) > max_chars:
            chunks.append(current.strip())
            current = piece
        else:
            current = candidate
    if current.strip() or not chunks:
        chunks.append(current.strip())
    return chunks
