"""text_length_filter: length of the text in characters."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.data_juicer import UNBOUNDED, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register


@register
class TextLengthFilter(Op[TextBatch]):
    """Length of the text in characters.

    ``text_len`` = ``len(text)``: Unicode code points, not bytes and not grapheme clusters.

    Data-Juicer 1.6.1 defaults: keep ``10 <= text_len``.
    """

    name = "text_length_filter"
    stat_keys = ("text_len",)
    data_juicer = DataJuicerFilter({"text_len": StatArgs.count("min_len", "max_len", 10, UNBOUNDED)})

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        return {"text_len": batch.lengths.copy()}
