"""A plain per-text port of Data-Juicer 1.6.1's statistics, the yardstick for the fast OPs.

Written to follow ``data_juicer/ops/filter/*.py`` and ``data_juicer/ops/common/helper_func.py``
line by line (dicts, loops, ``sorted``), with no attempt at speed, so that a disagreement with
``mlsandbox.ops.text`` points at the fast code. Word lists are passed in, since they are the one
deliberate difference (see the OPs' docstrings).
"""

from __future__ import annotations

import re
import string

import emoji
import numpy as np

from mlsandbox.ops.kernels.special_characters import (
    EMOJI_VERSION,
    OTHER_SPECIAL_CHARACTERS,
)

SPECIAL_CHARACTERS = set(string.punctuation + string.digits + string.whitespace + OTHER_SPECIAL_CHARACTERS)
SPECIAL_CHARACTERS.update(e for e, d in emoji.EMOJI_DATA.items() if d["E"] <= EMOJI_VERSION)


def strip(document: str, strip_characters: set[str]) -> str:
    if not document:
        return document
    beg_ind = 0
    end_ind = len(document)
    for i in range(len(document)):
        if document[i] in strip_characters:
            beg_ind += 1
        else:
            break
    for i in range(1, len(document) + 1):
        if document[-i] in strip_characters:
            end_ind -= 1
        else:
            break
    return document[beg_ind:end_ind]


def get_words_from_document(document: str) -> list[str]:
    return [word for word in re.split(" |\n|\t", document) if word]


def words_refinement(words: list[str], lower_case: bool = False) -> list[str]:
    if lower_case:
        words = [word.lower() for word in words]
    words = [strip(word, SPECIAL_CHARACTERS) for word in words]
    return [word for word in words if word]


def alnum_ratio(text: str) -> float:
    alnum_count = sum(1 if char.isalnum() else 0 for char in text)
    return (alnum_count / len(text)) if len(text) != 0 else 0.0


def char_rep_ratio(text: str, n: int = 10) -> float:
    freq_char_ngrams: dict[str, int] = {}
    for i in range(len(text) - n + 1):
        char_ngram = text[i : i + n]
        freq_char_ngrams[char_ngram] = freq_char_ngrams.get(char_ngram, 0) + 1
    if len(freq_char_ngrams) == 0:
        return 0.0
    freqs = sorted(freq_char_ngrams.values(), reverse=True)
    num_no_rep = freqs.count(1)
    num_rep = min(int(np.sqrt(len(freqs))), len(freqs) - num_no_rep)
    total = sum(freqs)
    return (sum(freqs[:num_rep]) / total) if total != 0 else 0.0


def word_rep_ratio(text: str, n: int = 10) -> float:
    words = words_refinement(get_words_from_document(text), lower_case=True)
    freq_word_ngrams: dict[str, int] = {}
    for i in range(len(words) - n + 1):
        word_ngram = " ".join(words[i : i + n])
        freq_word_ngrams[word_ngram] = freq_word_ngrams.get(word_ngram, 0) + 1
    if len(freq_word_ngrams) == 0:
        return 0.0
    freqs = list(freq_word_ngrams.values())
    rep_more_than_one = [freq for freq in freqs if freq > 1]
    total = sum(freqs)
    return (sum(rep_more_than_one) / total) if total != 0 else 0.0


def special_char_ratio(text: str) -> float:
    return (len([c for c in text if c in SPECIAL_CHARACTERS]) / len(text)) if len(text) != 0 else 0.0


def text_len(text: str) -> int:
    return len(text)


def num_words(text: str) -> int:
    return len(words_refinement(get_words_from_document(text)))


def word_list_ratio(text: str, word_list: set[str]) -> float:
    """stopwords_ratio and flagged_words_ratio: the same code with a different list."""
    words = words_refinement(get_words_from_document(text), lower_case=True)
    ratio = (len([word for word in words if word in word_list]) / len(words)) if len(words) != 0 else 0.0
    return min(ratio, 1.0)
