"""The compiled loops (numba) behind the text kernels.

Each statistic is one pass over a batch's code points (or word ids): a loop that NumPy can only
express as dozens of whole-array passes, each allocating a temporary. Per-text hash tables are
sized to the text, so they stay in the CPU cache. Every hash match is confirmed element by
element, so hashing decides only speed, never a count; ``base`` is a parameter only so that
tests can force collisions.

Compiled once per installation (``cache=True`` keeps the machine code next to this file) and
loaded at the first call in each process, through :func:`mlsandbox.ops.kernels.compiled`, so
importing :mod:`mlsandbox.ops` does not pay for numba. numba freezes global values into the
machine code and invalidates its cache on edits to this file only: the loader checks that the
cached code knows the current character flag bits. The loops are not annotated: numba types
them from the arguments of the first call. Hashes use explicit ``uint64`` arithmetic, since
numba turns a mix of signed and unsigned 64-bit integers into floats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from mlsandbox.ops.kernels.special_characters import ALNUM, SEPARATOR, SPECIAL


def _compiled(loop: Callable[..., Any]) -> Any:
    """``loop`` compiled by numba, its machine code cached next to this file or, where that folder
    cannot be written, in the user's cache (numba's own choices; ``NUMBA_CACHE_DIR`` chooses
    another). A read-only installation run by a user without a writable home has neither, and
    numba refuses to cache: the loop is then compiled again in each process (a shared temporary
    folder would let another user plant the pickled code numba loads)."""
    try:
        return njit(cache=True, nogil=True)(loop)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(nogil=True)(loop)

#: Odd 64-bit multiplier of the polynomial hashes (arithmetic is modulo 2**64).
HASH_BASE = np.uint64(0x9E3779B97F4A7C15)
# Multiply-shift slot function: the top bits of ``key * _SLOT_MIX`` pick a slot.
_SLOT_MIX = np.uint64(0xFF51AFD7ED558CCD)
_LENGTH_MIX = np.uint64(0xD6E8FEB86659FD93)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


@_compiled
def flag_bits():
    """The character flag bits as the cached machine code has them."""
    return ALNUM, SPECIAL, SEPARATOR


@_compiled
def _table_bits(n_keys: int) -> int:
    """Bits of a table with at least twice as many slots as keys (load <= 1/2), at least 4."""
    bits = 4
    while (1 << bits) < 2 * n_keys:
        bits += 1
    return bits


@_compiled
def char_counts(cps, offsets, flags):
    """Per text: alphanumeric characters, special characters, refined words (not lower-cased).

    A refined word is a maximal run of non-separator characters holding at least one
    non-special character (what is left after stripping special characters from both ends).
    """
    n_texts = len(offsets) - 1
    alnum = np.zeros(n_texts, np.int64)
    special = np.zeros(n_texts, np.int64)
    words = np.zeros(n_texts, np.int64)
    for t in range(n_texts):
        a = 0
        s = 0
        w = 0
        in_word = False
        for i in range(offsets[t], offsets[t + 1]):
            f = flags[cps[i]]
            a += (f & ALNUM) != 0
            s += (f & SPECIAL) != 0
            if f & SEPARATOR:
                in_word = False
            elif not in_word and not f & SPECIAL:
                w += 1
                in_word = True
        alnum[t] = a
        special[t] = s
        words[t] = w
    return alnum, special, words


@_compiled
def lower_code_points(cps, offsets, table, sentinel):
    """``table[cps]``, and per text whether it holds a code point mapped to ``sentinel``
    (one whose lower case is not a single code point independent of its neighbours)."""
    n_texts = len(offsets) - 1
    lowered = np.empty(len(cps), np.uint32)
    needs_str_lower = np.zeros(n_texts, np.bool_)
    for t in range(n_texts):
        odd = False
        for i in range(offsets[t], offsets[t + 1]):
            c = table[cps[i]]
            lowered[i] = c
            odd |= c == sentinel
        needs_str_lower[t] = odd
    return lowered, needs_str_lower


@_compiled
def _equal(a, a_start, b, b_start, length):
    for j in range(length):
        if a[a_start + j] != b[b_start + j]:
            return False
    return True


@_compiled
def _word_key(cps, start, end, base):
    key = _ZERO
    for i in range(start, end):
        key = key * base + np.uint64(cps[i])
    return key + np.uint64(end - start) * _LENGTH_MIX


@_compiled
def _find_slot(table, shift, key, query, q_start, q_end, cps):
    """The slot holding the word ``query[q_start:q_end]``, or the empty slot where it belongs.

    A row is ``(key, id + 1, start, length)`` of the id's first word in ``cps``; id + 1 = 0
    marks it empty. Keeping the span in the row confirms a match with one memory access.
    """
    mask = np.uint64(len(table) - 1)
    slot = (key * _SLOT_MIX) >> shift
    length = q_end - q_start
    while True:
        if table[slot, 1] == _ZERO:
            return slot
        if table[slot, 0] == key and np.int64(table[slot, 3]) == length:
            if _equal(cps, np.int64(table[slot, 2]), query, q_start, length):
                return slot
        slot = (slot + _ONE) & mask


@_compiled
def word_ids(cps, offsets, flags, base):
    """Every refined word's span and id (equal words, equal ids, in first-seen order).

    One pass: a word is hashed while it is scanned (its key is the hash up to its last
    non-special character) and looked up when a separator or the text's end closes it.
    Returns starts, ends, words per text, ids, each id's first word, and the table that
    :func:`find_words` searches. The table starts small and doubles at half load, so it grows
    with the vocabulary, not the text.
    """
    n_texts = len(offsets) - 1
    # Words in a text are separated by at least one character: at most (length + 1) // 2.
    capacity = (len(cps) + n_texts) // 2 + 1
    starts = np.empty(capacity, np.int64)
    ends = np.empty(capacity, np.int64)
    codes = np.empty(capacity, np.int64)
    first = np.empty(capacity, np.int64)
    counts = np.zeros(n_texts, np.int64)
    bits = _table_bits(min(capacity, 1 << 12))
    table = np.zeros((1 << bits, 4), np.uint64)
    n_words = 0
    n_ids = 0
    for t in range(n_texts):
        end_of_text = offsets[t + 1]
        start = -1
        last = -1
        key = _ZERO
        word_key = _ZERO
        for i in range(offsets[t], end_of_text + 1):
            if i < end_of_text:
                f = flags[cps[i]]
                if not f & SEPARATOR:
                    if start < 0:
                        if f & SPECIAL:
                            continue  # stripped from the word's start
                        start = i
                        key = _ZERO
                    key = key * base + np.uint64(cps[i])
                    if not f & SPECIAL:
                        last = i
                        word_key = key
                    continue
            if start < 0:
                continue
            length = last + 1 - start
            word_key += np.uint64(length) * _LENGTH_MIX
            starts[n_words] = start
            ends[n_words] = last + 1
            slot = _find_slot(table, np.uint64(64 - bits), word_key, cps, start, last + 1, cps)
            id_plus_one = table[slot, 1]
            if id_plus_one != _ZERO:
                codes[n_words] = np.int64(id_plus_one) - 1
            else:
                table[slot, 0] = word_key
                table[slot, 1] = np.uint64(n_ids + 1)
                table[slot, 2] = np.uint64(start)
                table[slot, 3] = np.uint64(length)
                codes[n_words] = n_ids
                first[n_ids] = n_words
                n_ids += 1
                if 2 * n_ids > len(table):
                    bits += 1
                    table = _rehashed(table, bits)
            n_words += 1
            counts[t] += 1
            start = -1
    return (
        starts[:n_words].copy(), ends[:n_words].copy(), counts,
        codes[:n_words].copy(), first[:n_ids].copy(), table,
    )


@_compiled
def _rehashed(table, bits):
    """The rows of ``table`` in a table of ``2 ** bits`` rows (keys are distinct words)."""
    grown = np.zeros((1 << bits, 4), np.uint64)
    mask = np.uint64((1 << bits) - 1)
    shift = np.uint64(64 - bits)
    for row in range(len(table)):
        if table[row, 1] != _ZERO:
            slot = (table[row, 0] * _SLOT_MIX) >> shift
            while grown[slot, 1] != _ZERO:
                slot = (slot + _ONE) & mask
            grown[slot] = table[row]
    return grown


@_compiled
def find_words(table, cps, query, query_offsets, base):
    """The id of each query word ``query[query_offsets[q]:query_offsets[q + 1]]``; -1 if absent."""
    n_queries = len(query_offsets) - 1
    found = np.full(n_queries, -1, np.int64)
    shift = np.uint64(64 - _table_bits(len(table) // 2))
    for q in range(n_queries):
        lo, hi = query_offsets[q], query_offsets[q + 1]
        slot = _find_slot(table, shift, _word_key(query, lo, hi, base), query, lo, hi, cps)
        found[q] = np.int64(table[slot, 1]) - 1
    return found


@_compiled
def spaced_spans(cps, starts, ends, space):
    """The code points of every span, each followed by ``space``, in one array."""
    out = np.empty((ends - starts).sum() + len(starts), cps.dtype)
    j = 0
    for k in range(len(starts)):
        for i in range(starts[k], ends[k]):
            out[j] = cps[i]
            j += 1
        out[j] = space
        j += 1
    return out


@_compiled
def ngram_repetition(seq, offsets, n, base):
    """Per text: n-grams, distinct n-grams, summed counts of the repeated ones, and the sum of
    the ``k = min(floor(sqrt(distinct)), repeated)`` largest counts.

    Each text's n-grams go into an open-addressing table sized to the text, a row
    ``(key, start << 32 | count)`` per slot; a rolling polynomial hash finds the slot, and an
    element-wise comparison with the n-gram at ``start`` confirms a match.
    """
    n_texts = len(offsets) - 1
    totals = np.zeros(n_texts, np.int64)
    distinct = np.zeros(n_texts, np.int64)
    repeated_sum = np.zeros(n_texts, np.int64)
    top_sum = np.zeros(n_texts, np.int64)
    most = 0
    for t in range(n_texts):
        most = max(most, offsets[t + 1] - offsets[t] - n + 1)
    if most <= 0:
        return totals, distinct, repeated_sum, top_sum
    # Zeroed once: each text empties only the slots it used, and reads only those.
    table = np.zeros((1 << _table_bits(most), 2), np.uint64)
    used = np.empty(most, np.int64)
    repeated_counts = np.empty(most, np.int64)
    count_mask = np.uint64(0xFFFFFFFF)
    lead = _ONE  # base ** (n - 1): the weight of the element that leaves the rolling window
    for _ in range(n - 1):
        lead = lead * base
    for t in range(n_texts):
        lo = offsets[t]
        m = offsets[t + 1] - lo - n + 1
        if m <= 0:
            continue
        bits = _table_bits(m)
        mask = np.uint64((1 << bits) - 1)
        shift = np.uint64(64 - bits)
        key = _ZERO
        for j in range(lo, lo + n):
            key = key * base + np.uint64(seq[j])
        d = 0
        for i in range(lo, lo + m):
            if i > lo:
                key = (key - np.uint64(seq[i - 1]) * lead) * base + np.uint64(seq[i + n - 1])
            slot = (key * _SLOT_MIX) >> shift
            while True:
                entry = table[slot, 1]
                if entry == _ZERO:
                    table[slot, 0] = key
                    table[slot, 1] = (np.uint64(i - lo) << np.uint64(32)) | _ONE
                    used[d] = slot
                    d += 1
                    break
                if table[slot, 0] == key and _equal(seq, lo + np.int64(entry >> np.uint64(32)), seq, i, n):
                    table[slot, 1] = entry + _ONE
                    break
                slot = (slot + _ONE) & mask
        r = 0
        rs = np.int64(0)
        for u in range(d):
            slot = used[u]
            c = np.int64(table[slot, 1] & count_mask)
            table[slot, 1] = _ZERO
            if c > 1:
                repeated_counts[r] = c
                r += 1
                rs += c
        k = min(int(np.sqrt(d)), r)
        if k > 0:
            top_sum[t] = np.sort(repeated_counts[:r])[r - k :].sum()
        totals[t] = m
        distinct[t] = d
        repeated_sum[t] = rs
    return totals, distinct, repeated_sum, top_sum
