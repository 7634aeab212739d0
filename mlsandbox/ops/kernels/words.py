"""Data-Juicer's words and per-character counts, computed for a whole batch at once.

Data-Juicer (``get_words_from_document`` + ``words_refinement`` in ``ops/common/helper_func.py``)
splits a text on the regex ``" |\\n|\\t"`` and drops empty strings (so ``"\\r"``, NBSP and other
whitespace stay inside words), optionally lower-cases each word, strips characters of
SPECIAL_CHARACTERS from both ends and drops words that became empty.

Equivalently, a refined word runs from the first to the last non-special character of a maximal
run of non-separator characters. That lets one compiled pass over the batch's code points find
every refined word's span, instead of splitting and stripping word by word in Python.
Lower-casing the whole text first gives the same words as lower-casing each word: ``str.lower``
only looks across cased and case-ignorable characters (Greek final sigma), and separators are
neither.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from typing import NamedTuple

import numpy as np

from mlsandbox.ops.kernels import compiled
from mlsandbox.ops.kernels.special_characters import char_flags


class CharCounts(NamedTuple):
    """Per text: alphanumeric characters, special characters, refined (not lower-cased) words."""

    alnum: np.ndarray
    special: np.ndarray
    words: np.ndarray


class WordSpans(NamedTuple):
    """Every refined word as ``cps[starts[k]:ends[k]]``; ``counts[i]`` words belong to text ``i``."""

    starts: np.ndarray
    ends: np.ndarray
    counts: np.ndarray


class RefinedWords(NamedTuple):
    """All refined words of a batch, flat: text ``i`` owns ``words[offsets[i]:offsets[i + 1]]``."""

    words: list[str]
    offsets: np.ndarray


@dataclass(frozen=True)
class WordIds:
    """Refined words as ids (first-seen order): text ``i`` owns ``codes[offsets[i]:offsets[i + 1]]``.

    Id ``c`` is spelled by the span ``first[c]`` of ``cps``; ``table`` is the hash table that
    :meth:`lookup` searches, so checking a word list costs one probe per listed word, not one
    string per distinct word of the batch.
    """

    codes: np.ndarray
    offsets: np.ndarray
    cps: np.ndarray
    spans: WordSpans
    first: np.ndarray
    table: np.ndarray
    base: np.uint64

    @cached_property
    def vocabulary(self) -> list[str]:
        """The distinct words, by id."""
        return words_at(self.cps, self.spans.starts[self.first], self.spans.ends[self.first])

    def lookup(self, words: EncodedWords) -> np.ndarray:
        """The id of each of ``words``; -1 for a word not in the batch."""
        return compiled().find_words(self.table, self.cps, words.cps, words.offsets, self.base)

    def listed(self, words: EncodedWords) -> np.ndarray:
        """Per id: whether ``words`` holds that word."""
        found = self.lookup(words)
        listed = np.zeros(len(self.first), dtype=bool)
        listed[found[found >= 0]] = True
        return listed


class EncodedWords(NamedTuple):
    """A word list as code points: word ``q`` is ``cps[offsets[q]:offsets[q + 1]]``."""

    cps: np.ndarray
    offsets: np.ndarray


@lru_cache(maxsize=32)
def encode_words(words: frozenset[str]) -> EncodedWords:
    """A word list's code points, kept for the next batch (frozensets cache their hash)."""
    ordered = sorted(words)
    lengths = np.fromiter(map(len, ordered), dtype=np.int64, count=len(ordered))
    return EncodedWords(code_points(ordered), text_offsets(lengths))


#: ``lower_case_table()`` value of a code point whose lower case ``str.lower`` must decide.
NEEDS_STR_LOWER = np.uint32(0xFFFFFFFF)


@cache
def lower_case_table() -> np.ndarray:
    """``ord(chr(c).lower())`` for every code point ``c`` whose lower case is one code point
    regardless of its neighbours; NEEDS_STR_LOWER for the others.

    Those are U+0130 (lower case: "i" and U+0307, two code points) and U+03A3 (Greek capital
    sigma: final or not, by context); CPython's ``str.lower`` has no other multi-character or
    contextual mapping, which the length check confirms. Built by one ``str.lower`` over all code
    points (~0.05 s).
    """
    everything = np.arange(sys.maxunicode + 1, dtype=np.uint32)
    odd = [0x130, 0x3A3]
    everything[odd] = ord("a")
    lowered = everything.tobytes().decode("utf-32-le", "surrogatepass").lower()
    if len(lowered) != len(everything):
        raise RuntimeError("str.lower maps a code point other than U+0130 to several")
    table = np.frombuffer(lowered.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy()
    table[odd] = NEEDS_STR_LOWER
    table.setflags(write=False)
    return table


def lower_code_points(texts: Sequence[str], cps: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The code points of every text lower-cased with ``str.lower``, and their offsets.

    Mapped code point by code point through :func:`lower_case_table`; only a text holding a
    code point that the table cannot map is lower-cased by ``str.lower`` itself.
    """
    _jit = compiled()
    lowered, needs_str_lower = _jit.lower_code_points(cps, offsets, lower_case_table(), NEEDS_STR_LOWER)
    if not needs_str_lower.any():
        return lowered, offsets
    pieces, lengths, done = [], np.diff(offsets), 0
    for i in np.flatnonzero(needs_str_lower).tolist():
        text = code_points([texts[i].lower()])
        pieces += [lowered[offsets[done] : offsets[i]], text]
        lengths[i], done = len(text), i + 1
    pieces.append(lowered[offsets[done] :])
    return np.concatenate(pieces), text_offsets(lengths)


def text_offsets(lengths: np.ndarray) -> np.ndarray:
    """Start of each text in the concatenation of all texts, plus the total length at the end."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def code_points(texts: Sequence[str]) -> np.ndarray:
    """The code points of all texts, concatenated, as ``uint32`` (lone surrogates kept as is)."""
    joined = "".join(texts).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32)


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` as float64, 0.0 where the denominator is 0 (Data-Juicer's rule)."""
    out = np.zeros(len(numerator), dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def char_counts(cps: np.ndarray, offsets: np.ndarray) -> CharCounts:
    """Alphanumeric and special characters and refined words of each text, in one pass."""
    _jit = compiled()
    return CharCounts(*_jit.char_counts(cps, offsets, char_flags()))


def refined_words(cps: np.ndarray, spans: WordSpans) -> RefinedWords:
    """The refined words as strings, from the spans of :func:`word_ids` over the same code points."""
    return RefinedWords(words_at(cps, spans.starts, spans.ends), text_offsets(spans.counts))


def word_ids(cps: np.ndarray, offsets: np.ndarray, base: int | None = None) -> WordIds:
    """Find the refined words of the texts ``cps[offsets[i]:offsets[i + 1]]`` and give equal
    words equal ids (first-seen order), without making a string per word.

    One compiled pass splits, strips, hashes and groups the words; every hash match is
    confirmed code point by code point, so ids are exact. ``base`` is the hash's multiplier;
    leave it out (tests pass a degenerate one to force collisions).
    """
    _jit = compiled()
    multiplier = _jit.HASH_BASE if base is None else np.uint64(base)
    starts, ends, counts, codes, first, table = _jit.word_ids(cps, offsets, char_flags(), multiplier)
    spans = WordSpans(starts, ends, counts)
    return WordIds(codes, text_offsets(counts), cps, spans, first, table, multiplier)


def words_at(cps: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    """The strings ``cps[starts[i]:ends[i]]``, as one flat list.

    Slicing a Python string once per word is slow; instead the words are gathered into one
    string, one space after each (no refined word contains a space), and split in C.
    """
    _jit = compiled()
    if len(starts) == 0:
        return []
    spaced = _jit.spaced_spans(cps, starts, ends, np.uint32(ord(" ")))
    return spaced.tobytes().decode("utf-32-le", "surrogatepass").split(" ")[:-1]


def word_list_ratio(word_ids: WordIds, word_list: frozenset[str]) -> np.ndarray:
    """Per text: share of its refined words (as ``word_ids``) that are in ``word_list``, capped at 1."""
    hits_per_word = word_ids.listed(encode_words(word_list))[word_ids.codes]
    cumulative = np.zeros(len(hits_per_word) + 1, dtype=np.int64)
    np.cumsum(hits_per_word, out=cumulative[1:])
    offsets = word_ids.offsets
    hits = cumulative[offsets[1:]] - cumulative[offsets[:-1]]
    return np.minimum(ratio(hits, np.diff(offsets)), 1.0)
