"""A plain per-text port of Data-Juicer 1.6.1's statistics, the yardstick for the fast OPs.

Written to follow ``data_juicer/ops/filter/*.py`` and ``data_juicer/ops/common/helper_func.py``
line by line (dicts, loops, ``sorted``), with no attempt at speed, so that a disagreement with
``mlsandbox.ops.text`` points at the fast code. Word lists are passed in, since they are the one
deliberate difference (see the OPs' docstrings). :func:`varied_texts` makes the texts both are
compared on.
"""

from __future__ import annotations

import random
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


# --- texts to compare on ---------------------------------------------------------------------

_WORDS = [
    "the", "The", "THE", "of", "and", "cat", "dog", "data", "model", "ass", "DAMN", "hell",
    "Straße", "Σοφία", "ΟΔΟΣ", "İstanbul", "Гора", "гора", "ıi", "naïve", "café", "東京", "日本語",
    "مرحبا", "שלום", "😀", "👍🏽", "❤️", "🇫🇷", "x²", "½", "Ⅻ", "٣", "e-mail", "don't", "U.S.A.",
]
_JUNK = list("!?.,;:()[]{}\"'`~-–—…•“”«»/\\|@#$%^&*_+=<>0123456789") + [
    "\r", "\xa0", "\u3000", "\u200b", "\ufeff", "\x85", "\x0b", "Г", "ʼ", "\ud800",
]
_SEPARATORS = [" ", " ", " ", "  ", "\n", "\t", " \n "]


def _random_unicode(rng: random.Random, n: int) -> str:
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x52F), (0x600, 0x6FF), (0x2000, 0x2BFF),
              (0x3000, 0x30FF), (0x4E00, 0x4E50), (0x1F300, 0x1FAFF), (0x0, 0x20)]
    return "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(n))


def varied_texts(n: int, seed: int = 0) -> list[str]:
    """Texts that exercise every rule: scripts, case, junk at word ends, separators, repeats."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.2:
            text = _random_unicode(rng, rng.randint(0, 200))
        else:
            words = []
            for _ in range(rng.randint(0, 120)):
                w = rng.choice(_WORDS) if rng.random() < 0.8 else _random_unicode(rng, rng.randint(1, 6))
                if rng.random() < 0.3:
                    w = "".join(rng.choices(_JUNK, k=rng.randint(1, 3))) + w
                if rng.random() < 0.3:
                    w += "".join(rng.choices(_JUNK, k=rng.randint(1, 3)))
                words.append(w)
            if kind > 0.75 and words:  # repeated phrases and repeated character runs
                start = rng.randrange(len(words))
                words += words[start : start + rng.randint(1, 15)] * rng.randint(2, 6)
            text = "".join(w + rng.choice(_SEPARATORS) for w in words)
            if kind > 0.9:
                text += rng.choice(["ab", "abc", "xyz!", "😀"]) * rng.randint(3, 40)
        texts.append(text)
    return texts
