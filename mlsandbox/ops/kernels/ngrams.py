"""Exact counts of the n-grams that repeat inside each text, for a whole batch at once.

Both repetition OPs need, per text, how often each n-gram (of characters, or of word ids)
occurs. A compiled loop (:func:`mlsandbox.ops.kernels._jit.ngram_repetition`) puts each
text's n-grams into a hash table sized to the text and confirms every hash match element by
element, so the counts are exact whatever the hash does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlsandbox.ops.kernels import compiled


@dataclass(frozen=True)
class NgramRepetition:
    """Per text: ``totals`` n-grams, ``distinct`` n-grams, ``repeated_sum`` (the summed counts
    of the n-grams seen more than once) and ``top_sum`` (the sum of the ``k`` largest counts,
    ``k = min(floor(sqrt(distinct)), number of repeated n-grams)``: Data-Juicer's character
    repetition numerator)."""

    totals: np.ndarray
    distinct: np.ndarray
    repeated_sum: np.ndarray
    top_sum: np.ndarray


def ngram_repetition(seq: np.ndarray, offsets: np.ndarray, n: int, base: int | None = None) -> NgramRepetition:
    """Count the n-grams of ``seq[offsets[i]:offsets[i + 1]]`` for every text ``i``.

    ``seq`` holds non-negative integers below 2**63: code points, or word ids. ``base`` is the
    hash's multiplier; leave it out (tests pass a degenerate one to force collisions).
    """
    _jit = compiled()
    if n < 1:
        raise ValueError(f"n-grams need n >= 1, got {n}")
    multiplier = _jit.HASH_BASE if base is None else np.uint64(base)
    totals, distinct, repeated_sum, top_sum = _jit.ngram_repetition(
        np.ascontiguousarray(seq), np.ascontiguousarray(offsets, dtype=np.int64), n, multiplier
    )
    return NgramRepetition(totals, distinct, repeated_sum, top_sum)
