"""Exact counts of the n-grams that occur more than once in each text, for a whole batch at once.

Both repetition OPs need, per text, how often each n-gram (of characters, or of words) occurs.
Instead of a dict per text, every n-gram of the batch gets a 64-bit key (a polynomial hash of
its elements, mixed with its text's index) and is dropped into a hash table held in NumPy
arrays: one vectorised write elects an owner per slot, and the n-grams whose key equals their
slot owner's are counted by owner. N-grams that lost their slot to a different key go to the
next round with a fresh slot function, so every key is counted whole in exactly one round.
Finally each repeated n-gram is compared element by element with its owner; a text where two
different n-grams share a key (astronomically rare) is recounted exactly in Python. Hashing
therefore only decides speed, never a count.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

# Odd 64-bit multipliers (arithmetic is modulo 2**64): the polynomial base of the n-gram hash,
# the text mix, and the seed of the slot functions (multiply-shift hashing, one per round).
_BASE = np.uint64(0x9E3779B97F4A7C15)
_TEXT_MIX = np.uint64(0xC2B2AE3D27D4EB4F)
_SLOT_SEED = 0xFF51AFD7ED558CCD
# N-grams per first-round hash table (whole texts): small enough for the table to stay in the
# CPU cache, which is most of its speed.
_CHUNK = 1 << 15


@dataclass(frozen=True)
class RepeatedNgrams:
    """Per text: ``totals`` n-grams; every n-gram seen more than once: its ``text`` and ``count``."""

    totals: np.ndarray
    text: np.ndarray
    count: np.ndarray


def repeated_ngrams(seq: np.ndarray, offsets: np.ndarray, n: int) -> RepeatedNgrams:
    """Count the n-grams of ``seq[offsets[i]:offsets[i + 1]]`` for every text ``i``.

    ``seq`` holds non-negative integers: code points, or word ids.
    """
    lengths = np.diff(offsets)
    totals = np.maximum(lengths - n + 1, 0)
    nothing = np.zeros(0, dtype=np.int64)
    if totals.sum() == 0:
        return RepeatedNgrams(totals, nothing, nothing)
    starts = _ngram_starts(offsets, n)
    text_of = np.repeat(np.arange(len(lengths), dtype=np.int64), totals)
    keys = _ngram_keys(seq, n)[starts]
    with np.errstate(over="ignore"):
        keys += text_of.astype(np.uint64) * _TEXT_MIX

    owner, size = group_equal_keys(keys, text_of)
    # Confirm that every member of a repeated key holds the same n-gram (and text) as its owner.
    members = np.flatnonzero((size[owner] > 1) & (owner != np.arange(len(owner))))
    left, right = starts[members], starts[owner[members]]
    same = text_of[members] == text_of[owner[members]]
    pairs, step = _pairs(seq, n)
    for j in _compare_offsets(n, step):
        same &= pairs[left + j] == pairs[right + j]
    mismatched = members[~same]
    collided = np.unique(np.concatenate((text_of[mismatched], text_of[owner[mismatched]])))

    owners = np.flatnonzero(size > 1)
    text, count = text_of[owners], size[owners]
    if len(collided):
        keep = ~np.isin(text, collided)
        exact = [_count_exactly(seq[offsets[i] : offsets[i + 1]], n) for i in collided.tolist()]
        text = np.concatenate([text[keep], *(np.full(len(c), i) for i, c in zip(collided, exact))])
        count = np.concatenate([count[keep], *exact])
    return RepeatedNgrams(totals, text.astype(np.int64), count.astype(np.int64))


def _ngram_starts(offsets: np.ndarray, n: int) -> np.ndarray:
    """Positions where an n-gram starts that ends inside the same text."""
    ends = offsets[1:]
    valid = np.ones(int(offsets[-1]), dtype=bool)
    for k in range(1, n):  # the last n - 1 positions of each text start no n-gram
        tail = ends - k
        valid[tail[tail >= offsets[:-1]]] = False
    return np.flatnonzero(valid)


def _ngram_keys(seq: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash of the n-gram starting at each position that has ``n - 1`` successors."""
    values = seq.astype(np.uint64, copy=False)
    n_starts = len(seq) - n + 1
    keys = values[:n_starts].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            keys *= _BASE
            keys += values[j : j + n_starts]
    return keys


def group_equal_keys(
    keys: np.ndarray, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For every key, the index of one element with that key (its owner); the count per owner.

    ``size[i]`` is the number of elements owned by ``i`` (0 for non-owners). A round gives every
    pending element a slot in a table; one vectorised write elects an owner per slot; elements
    whose key equals their slot owner's are settled, the others retry with a fresh slot
    function. With ``groups`` (non-decreasing, and equal keys always in the same group) the
    first round runs chunk by chunk so that its table stays in the CPU cache.
    """
    owner = np.empty(len(keys), dtype=np.intp)
    if groups is None or len(keys) <= _CHUNK:
        bounds = [0, len(keys)]
    else:
        cuts = np.searchsorted(groups, groups[_CHUNK::_CHUNK], side="left")
        bounds = np.unique(np.concatenate(([0], cuts, [len(keys)]))).tolist()
    left = [_settle(keys, np.arange(lo, hi), owner, 1) for lo, hi in pairwise(bounds)]
    pending = np.concatenate(left)
    round_ = 1
    while len(pending):
        round_ += 1
        pending = _settle(keys, pending, owner, round_)
    return owner, np.bincount(owner, minlength=len(keys)).astype(np.int64, copy=False)


def _settle(keys: np.ndarray, pending: np.ndarray, owner: np.ndarray, round_: int) -> np.ndarray:
    """One hashing round over ``pending``: set ``owner`` of the settled, return the others."""
    bits = max((2 * len(pending)).bit_length(), 1)
    mix = np.uint64((_SLOT_SEED * (2 * round_ + 1)) % 2**64 | 1)
    pending_keys = keys[pending]
    with np.errstate(over="ignore"):
        slots = ((pending_keys * mix) >> np.uint64(64 - bits)).astype(np.intp)
    table = np.empty(1 << bits, dtype=np.intp)
    table[slots] = pending  # one writer per slot wins: that element owns the slot
    slot_owner = table[slots]
    settled = keys[slot_owner] == pending_keys
    owner[pending[settled]] = slot_owner[settled]
    return pending[~settled]


def _pairs(seq: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Each element with its successor in one ``uint64`` (if values fit 32 bits): half the compares."""
    if n < 2 or int(seq.max(initial=0)) >= 1 << 32:
        return seq, 1
    pairs = seq[:-1].astype(np.uint64) << np.uint64(32)
    pairs |= seq[1:].astype(np.uint64, copy=False)
    return pairs, 2


def _compare_offsets(n: int, step: int) -> list[int]:
    """Offsets whose ``step``-wide elements cover an n-gram (the last may overlap the one before)."""
    offsets = list(range(0, n - step + 1, step))
    if offsets[-1] + step < n:
        offsets.append(n - step)
    return offsets


def _count_exactly(seq: np.ndarray, n: int) -> np.ndarray:
    """Counts (> 1) of the n-grams of one sequence, by a dictionary of their bytes."""
    counts = Counter(seq[i : i + n].tobytes() for i in range(len(seq) - n + 1))
    return np.array([c for c in counts.values() if c > 1], dtype=np.int64)
