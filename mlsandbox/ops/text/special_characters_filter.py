"""special_characters_filter: share of special characters."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.data_juicer import DataJuicerFilter, StatArgs
from mlsandbox.ops.kernels.words import ratio
from mlsandbox.ops.registry import register


@register
class SpecialCharactersFilter(Op[TextBatch]):
    """Share of special characters (punctuation, digits, whitespace, symbols, emoji) in the text.

    ``special_char_ratio`` = (characters in Data-Juicer's SPECIAL_CHARACTERS) / ``len(text)``;
    0.0 for the empty text. SPECIAL_CHARACTERS = ``string.punctuation + string.digits +
    string.whitespace``, Data-Juicer's fixed list of other symbols (189 distinct characters, 188
    of them not already in the first three), and the single-code-point emoji of
    ``emoji==2.2.0`` (Data-Juicer 1.6.1's pin; see ``_special_characters``).

    Data-Juicer 1.6.1 defaults: keep ``0.0 <= special_char_ratio <= 0.25``.
    """

    name = "special_characters_filter"
    stat_keys = ("special_char_ratio",)
    data_juicer = DataJuicerFilter({"special_char_ratio": StatArgs.ratio("min_ratio", "max_ratio", 0.0, 0.25)})

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        return {"special_char_ratio": ratio(batch.char_counts.special, batch.lengths)}
