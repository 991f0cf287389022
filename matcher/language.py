"""Cheap script-based language detection for routing queries (Chinese vs English).

Owns :func:`is_english`: the retriever adds an English-model ranking only for queries written
in English. No model, no dictionary: letters are counted by Unicode script.
"""

from __future__ import annotations

import unicodedata


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF  # CJK unified ideographs
        or 0x3400 <= o <= 0x4DBF  # extension A
        or 0x20000 <= o <= 0x2A6DF  # extension B
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0x3040 <= o <= 0x30FF  # kana
        or 0xAC00 <= o <= 0xD7AF  # hangul
    )


def latin_share(text: str) -> float:
    """Share of Latin letters among the letters of ``text`` (0.0 when it has no letter).

    A CJK character counts as one letter, as does each Latin letter; a Chinese sentence
    with a few English acronyms stays well below 0.5.
    """
    latin = cjk = 0
    for ch in text:
        if _is_cjk(ch):
            cjk += 1
        elif ch.isalpha() and "LATIN" in unicodedata.name(ch, ""):
            latin += 1
    total = latin + cjk
    return latin / total if total else 0.0


def is_english(text: str, threshold: float = 0.8) -> bool:
    """Whether ``text`` is (mostly) written in a Latin-script language such as English.

    Parameters
    ----------
    text : str
    threshold : float
        Minimum :func:`latin_share` (0.8: Chinese text with embedded English terms is not
        English; each Chinese character weighs like one Latin letter, so even a short Chinese
        phrase pulls the share down fast).

    Returns
    -------
    bool
    """
    return latin_share(text) >= threshold
