"""Data-Juicer's SPECIAL_CHARACTERS, and a per-code-point flag table for vectorised lookups.

The set is Data-Juicer 1.6.1's ``data_juicer/ops/common/special_characters.py`` (itself from the
BigScience/Hugging Face text-data-filtering code): ASCII punctuation, digits and whitespace, a fixed
list of other symbols, and the emoji. Data-Juicer pins ``emoji==2.2.0``; newer ``emoji`` releases
add emoji of later Unicode Emoji versions, so we keep the emoji of Emoji version <= 15.0, which is
exactly the single-code-point set of ``emoji==2.2.0`` and keeps the stats independent of the
installed ``emoji`` version. Multi-code-point emoji sequences are left out: every use of the set
tests one character at a time, so a sequence can never match.
"""

from __future__ import annotations

import string
import sys
from functools import cache

import emoji
import numpy as np

# Data, copied code point for code point (escaped, since several are invisible or controls).
OTHER_SPECIAL_CHARACTERS = (
    "\x92\u2009\x93\x97\u200a\x9d\x99\u202f\x96\u2005\x95\x91\x9c\u3000\u2002 \u2008"
    "\x98\x81\u2003\x82\ufffc\x83\x84\u2019\u201c\u201d\u2013\u30fc\u4e00\u25ac\u2026"
    "\u2726\ufffd\xad\xa3\u200b\u2022\u20ac\xab\xbb\xb0\xb7\u2550\xd7\u58eb\uff3e"
    "\u02d8\u21d3\u2193\u2191\u2190\u2192\uff08\uff09\xa7\u2033\u2032\xb4\xbf\u2212"
    "\xb1\u2208\ufeff\xa2\xf8\u201a\u201e\xbd\xbc\xbe\xb9\xb2\xb3\u2015\u2043\uff0c"
    "\u02cc\xb8\u2039\u203a\u02ba\u02c8\u02bb\xa6\u2010\u2800\u2030\x85\x85\u2011"
    "\u2264\u2265\u2016\u25c6\u25cf\u25a0\u25ba\u25bc\u25b2\u25b4\u2206\u25bb\xa1"
    "\u2605\u2606\u2731\u02d0\xba\u3002\xaf\u02dc\xa5\u026a\u2248\u2020\u4e0a\u30f3"
    "\uff1a\u223c\u2044\u30fb\u2661\u2713\u2295\u2024\uff0e\u22c5\xf7\uff11\u201f"
    "\uff1b\u060c\u3001\xa8\u093e\u09be\u0940\u094d\u0947\u25e6\u02da\u309c\u02bc"
    "\u2256\u02bc\xa4\u30c3\u30c4\u30b7\u2103\u221a\uff01\u3010\u3011\u203f\u221e"
    "\u27a4\uff5e\u03c0\u0647\u06e9\u261b\u20a8\u27a9\u263b\u0e51\u066a\u2665\u0131"
    "\u097d\u300a\u2018\xa9\ufd3f\u066c\uff1f\u25b7\u0413\u266b\u221f\u2122\xaa\u20aa"
    "\xae\u300c\u2014\u2756\u300d\ufd3e\u300b"
)

#: The newest Unicode Emoji version that ``emoji==2.2.0`` (Data-Juicer 1.6.1's pin) knows.
EMOJI_VERSION = 15.0

EMOJI = frozenset(
    e for e, data in emoji.EMOJI_DATA.items() if len(e) == 1 and data["E"] <= EMOJI_VERSION
)

SPECIAL_CHARACTERS: frozenset[str] = (
    frozenset(string.punctuation + string.digits + string.whitespace + OTHER_SPECIAL_CHARACTERS)
    | EMOJI
)

#: The characters Data-Juicer splits words on (``split_on_whitespace(new_line=True, tab=True)``).
WORD_SEPARATORS = " \n\t"

# Bit flags of :func:`char_flags`.
ALNUM = 1
SPECIAL = 2
SEPARATOR = 4


@cache
def char_flags() -> np.ndarray:
    """A ``uint8`` table over all code points: ALNUM (``str.isalnum``), SPECIAL, SEPARATOR bits.

    Indexing it with a text's code points classifies every character in one NumPy gather, which
    is what makes the character-level OPs fast; it is built once per process (~0.03 s: NumPy's
    ``isalnum`` over all code points applies the same Unicode test as ``str.isalnum``).
    """
    every_char = np.arange(sys.maxunicode + 1, dtype=np.uint32).view("U1")
    flags = np.char.isalnum(every_char).astype(np.uint8)
    flags[[ord(c) for c in SPECIAL_CHARACTERS]] |= SPECIAL
    flags[[ord(c) for c in WORD_SEPARATORS]] |= SEPARATOR
    flags.setflags(write=False)
    return flags
