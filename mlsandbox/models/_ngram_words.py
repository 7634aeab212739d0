"""The word level of an n-gram model: text as word, space and punctuation symbols over a vocabulary."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD_PIECES = re.compile(r"\w+|\s+|[^\w\s]+", re.UNICODE)


class WordCodec:
    """Maps text to word/space/punctuation symbols; rare ones become ``<unk>`` (id 0).

    An ``<unk>`` is then spelled out with a unigram byte model (add-one), so the model still
    assigns a probability to every string and bits-per-byte compare with byte-level models.
    """

    def __init__(self, vocab: list[str], byte_log2: np.ndarray) -> None:
        self.vocab = vocab
        self.index = {w: i for i, w in enumerate(vocab)}
        self.byte_log2 = byte_log2  # 257 entries: 256 bytes + end-of-token

    @classmethod
    def fit(cls, texts: Sequence[str], max_vocab: int) -> WordCodec:
        freq = Counter(p for t in texts for p in _WORD_PIECES.findall(t))
        # Ties broken by the piece itself so the vocabulary does not depend on text order.
        kept = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[: max_vocab - 1]
        byte_counts = np.ones(257)
        for word, count in freq.items():
            if count == 1:  # singletons stand in for the unknown words seen at test time
                data = word.encode("utf-8")
                byte_counts[:256] += np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
                byte_counts[256] += 1
        return cls(["<unk>"] + [w for w, _ in kept], np.log2(byte_counts / byte_counts.sum()))

    def encode(self, text: str) -> tuple[np.ndarray, float]:
        """Symbol ids of ``text`` and the log2-probability of spelling its unknown pieces."""
        ids, spell = [], 0.0
        for piece in _WORD_PIECES.findall(text):
            idx = self.index.get(piece, 0)
            ids.append(idx)
            if idx == 0:
                data = np.frombuffer(piece.encode("utf-8"), dtype=np.uint8)
                spell += float(self.byte_log2[data].sum() + self.byte_log2[256])
        return np.array(ids, dtype=np.int32), spell
