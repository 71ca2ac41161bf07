"""Overlapping windows of a long memory, so that no part of it is invisible to the dense signal.

An encoder sees only its first ``window`` tokens; a memory longer than that gets, besides the vector of its
start, one vector per later window (scored by its best one). Windows are cut on whitespace, with words
standing in for tokens at a conservative rate, so the rule is the same for every embedder and backend.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_CHUNKS", "chunk_windows"]

MAX_CHUNKS = 32
"""Extra vectors per memory at most: beyond that the windows spread evenly over the text (gaps between them)."""

_WORD = re.compile(r"\S+")
_TOKENS_PER_WORD = 1.4  # English wordpiece/BPE averages about 1.3; rounding up keeps a window inside the model's
_OVERLAP = 0.25  # of a window shared with the previous one, so a fact cut at a boundary is whole in one of them


def chunk_windows(text: str, window_tokens: int) -> list[str]:
    """The windows after the first of ``text`` for an encoder of ``window_tokens`` tokens ([] if it fits).

    Args:
        text: the memory's text.
        window_tokens: the encoder's window; 0 or less means it has none (nothing is chunked).

    Returns:
        Slices of ``text`` (original spacing kept), each about one window long, overlapping by a quarter,
        the last one ending at the text's end; at most ``MAX_CHUNKS``.
    """
    if window_tokens <= 0:
        return []
    size = max(8, int(window_tokens / _TOKENS_PER_WORD))
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    if len(words) <= size:
        return []
    stride = max(1, int(size * (1 - _OVERLAP)))
    stride = max(stride, math.ceil((len(words) - size) / MAX_CHUNKS))
    out: list[str] = []
    start = stride
    while len(out) < MAX_CHUNKS:
        last = min(start + size, len(words)) - 1
        out.append(text[words[start][0] : words[last][1]])
        if last == len(words) - 1:
            break
        start += stride
    return out
