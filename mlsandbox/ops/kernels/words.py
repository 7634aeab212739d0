"""Data-Juicer's words, computed for a whole batch at once.

Data-Juicer (``get_words_from_document`` + ``words_refinement`` in ``ops/common/helper_func.py``)
splits a text on the regex ``" |\\n|\\t"`` and drops empty strings (so ``"\\r"``, NBSP and other
whitespace stay inside words), optionally lower-cases each word, strips characters of
SPECIAL_CHARACTERS from both ends and drops words that became empty.

Equivalently, a refined word runs from the first to the last non-special character of a maximal
run of non-separator characters. That lets one pass of NumPy over the batch's code points find
every refined word's span, instead of splitting and stripping word by word in Python.
Lower-casing the whole text first gives the same words as lower-casing each word: ``str.lower``
only looks across cased and case-ignorable characters (Greek final sigma), and separators are
neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from mlsandbox.ops.kernels.ngrams import group_equal_keys
from mlsandbox.ops.kernels.special_characters import SEPARATOR, SPECIAL


class RefinedWords(NamedTuple):
    """All refined words of a batch, flat: text ``i`` owns ``words[offsets[i]:offsets[i + 1]]``."""

    words: list[str]
    offsets: np.ndarray


class WordIds(NamedTuple):
    """Refined words as ids: word ``k`` is ``vocabulary[codes[k]]``; text ``i`` owns
    ``codes[offsets[i]:offsets[i + 1]]``."""

    codes: np.ndarray
    vocabulary: list[str]
    offsets: np.ndarray


# Polynomial hashing of words modulo 2**64 (odd base, so it has an inverse).
_BASE = 0x9E3779B97F4A7C15
_BASE_INVERSE = pow(_BASE, -1, 2**64)
_LENGTH_MIX = np.uint64(0xD6E8FEB86659FD93)


def text_offsets(lengths: np.ndarray) -> np.ndarray:
    """Start of each text in the concatenation of all texts, plus the total length at the end."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def code_points(texts: Sequence[str]) -> np.ndarray:
    """The code points of all texts, concatenated, as ``uint32`` (lone surrogates kept as is)."""
    joined = "".join(texts).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32)


def per_text_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (small non-negative integers or bools) over each text's segment."""
    cumulative = np.zeros(len(values) + 1, dtype=_cumsum_dtype(values))
    np.cumsum(values, out=cumulative[1:])
    return (cumulative[offsets[1:]] - cumulative[offsets[:-1]]).astype(np.int64, copy=False)


def _cumsum_dtype(values: np.ndarray) -> type[np.signedinteger]:
    # int32 running sums are several times faster than int64 ones; safe while they cannot overflow.
    bound = len(values) * (1 if values.dtype == bool else int(np.iinfo(values.dtype).max))
    return np.int32 if bound < 2**31 else np.int64


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as float64, 0.0 where the denominator is 0 (Data-Juicer's rule)."""
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def refined_word_spans(
    flags: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end (exclusive) of every refined word, and the number of words per text.

    ``flags`` are :func:`char_flags` of the concatenated code points, ``offsets`` the text
    boundaries. Two consecutive non-special characters belong to the same word unless a
    separator or a text boundary lies between them.
    """
    n_texts = len(offsets) - 1
    kept = np.flatnonzero((flags & SPECIAL) == 0)
    if len(kept) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(n_texts, dtype=np.int64)
    # A running count of separators and text starts: it changes between two kept characters
    # exactly when they are in different words.
    breaks = (flags & SEPARATOR).astype(bool)
    breaks[offsets[:-1][offsets[:-1] < len(flags)]] = True
    breaks_before = np.cumsum(breaks, dtype=_cumsum_dtype(breaks))[kept]
    starts_word = np.empty(len(kept), dtype=bool)
    starts_word[0] = True
    np.not_equal(breaks_before[1:], breaks_before[:-1], out=starts_word[1:])
    ends_word = np.empty_like(starts_word)
    ends_word[:-1] = starts_word[1:]
    ends_word[-1] = True
    starts = kept[starts_word]
    text_of = np.searchsorted(offsets, starts, side="right") - 1
    counts = np.bincount(text_of, minlength=n_texts).astype(np.int64, copy=False)
    return starts, kept[ends_word] + 1, counts


def refined_words(
    cps: np.ndarray, spans: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> RefinedWords:
    """The refined words as strings, from :func:`refined_word_spans` over the code points."""
    starts, ends, counts = spans
    return RefinedWords(words_at(cps, starts, ends), text_offsets(counts))


def word_ids(cps: np.ndarray, spans: tuple[np.ndarray, np.ndarray, np.ndarray]) -> WordIds:
    """Give equal words equal ids, without making a Python string per word.

    Each word gets a 64-bit hash of its code points (prefix sums of ``c[k] * BASE**-k``, so all
    words are hashed in a few passes); equal hashes are grouped, and every word is then compared
    with its group's first word code point by code point. Only on a hash collision (two
    different words, one hash: astronomically rare) are the ids taken from the strings instead.
    """
    starts, ends, counts = spans
    offsets = text_offsets(counts)
    if len(starts) == 0:
        return WordIds(np.zeros(0, dtype=np.int64), [], offsets)
    lengths = ends - starts
    keys = _span_hashes(cps, starts, ends)
    with np.errstate(over="ignore"):
        keys += lengths.astype(np.uint64) * _LENGTH_MIX
    owner, size = group_equal_keys(keys)
    members = np.flatnonzero(owner != np.arange(len(owner)))
    if not _same_spans(
        cps, starts[members], starts[owner[members]], lengths[members], lengths[owner[members]]
    ):
        words = words_at(cps, starts, ends)
        vocabulary = list(dict.fromkeys(words))
        index = dict(zip(vocabulary, range(len(vocabulary))))
        codes = np.fromiter(map(index.__getitem__, words), dtype=np.int64, count=len(words))
        return WordIds(codes, vocabulary, offsets)
    owners = np.flatnonzero(size > 0)
    code_of_owner = np.empty(len(owner), dtype=np.int64)
    code_of_owner[owners] = np.arange(len(owners))
    vocabulary = words_at(cps, starts[owners], ends[owners])
    return WordIds(code_of_owner[owner], vocabulary, offsets)


def _span_hashes(cps: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Polynomial hash ``sum(c[k] * BASE**(end - 1 - k))`` of every span, modulo 2**64."""
    powers, inverse_powers = _powers(len(cps))
    with np.errstate(over="ignore"):
        prefix = np.zeros(len(cps) + 1, dtype=np.uint64)
        np.cumsum(cps.astype(np.uint64) * inverse_powers[: len(cps)], out=prefix[1:])
        return (prefix[ends] - prefix[starts]) * powers[ends - 1]


_POWERS_CACHE: list[tuple[np.ndarray, np.ndarray]] = []


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``BASE**k`` and ``BASE**-k`` modulo 2**64 for ``k <= n``, kept for the next batch."""
    if _POWERS_CACHE and len(_POWERS_CACHE[0][0]) > n:
        return _POWERS_CACHE[0]
    size = max(n + 1, 1 << 20)
    pair = []
    for base in (_BASE, _BASE_INVERSE):
        p = np.full(size, base, dtype=np.uint64)
        p[0] = 1
        with np.errstate(over="ignore"):
            pair.append(np.cumprod(p, out=p))
    if size <= 1 << 24:  # keep at most 256 MB of powers
        _POWERS_CACHE[:] = [(pair[0], pair[1])]
    return pair[0], pair[1]


def _same_spans(
    cps: np.ndarray, a: np.ndarray, b: np.ndarray, a_len: np.ndarray, b_len: np.ndarray
) -> bool:
    """Whether every span ``cps[a[i]:a[i] + a_len[i]]`` equals ``cps[b[i]:b[i] + b_len[i]]``."""
    if not np.array_equal(a_len, b_len):
        return False
    flat = np.arange(int(a_len.sum()))
    # Position of each character: its span's start, plus its place in the flat enumeration
    # minus where the span begins in it.
    span_begin = np.cumsum(a_len) - a_len
    at_a = np.repeat(a - span_begin, a_len) + flat
    at_b = np.repeat(b - span_begin, a_len) + flat
    return bool(np.array_equal(cps[at_a], cps[at_b]))


def words_at(cps: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    """The strings ``cps[starts[i]:ends[i]]``, as one flat list.

    Slicing a Python string once per word is slow; instead the words are gathered into one
    string, one space after each (no refined word contains a space), and split in C.
    """
    if len(starts) == 0:
        return []
    inside = np.zeros(len(cps) + 1, dtype=np.int8)
    inside[starts] = 1
    inside[ends] -= 1
    kept = cps[np.cumsum(inside[:-1], dtype=np.int8).astype(bool)]
    spaced = np.insert(kept, np.cumsum(ends - starts), ord(" "))
    return spaced.tobytes().decode("utf-32-le", "surrogatepass").split(" ")[:-1]


def word_list_ratio(word_ids: WordIds, word_list: frozenset[str]) -> np.ndarray:
    """Per text: share of its refined words (as ``word_ids``) that are in ``word_list``."""
    codes, vocabulary, offsets = word_ids
    # Look up each distinct word once, then broadcast to every occurrence.
    listed = np.fromiter(map(word_list.__contains__, vocabulary), dtype=bool, count=len(vocabulary))
    hits = per_text_sums(listed[codes], offsets)
    return np.minimum(ratio(hits, np.diff(offsets)), 1.0)
