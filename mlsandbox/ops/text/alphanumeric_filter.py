"""alphanumeric_filter: share of alphanumeric characters."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.data_juicer import UNBOUNDED, DataJuicerFilter, StatArgs
from mlsandbox.ops.kernels.words import ratio
from mlsandbox.ops.registry import register


@register
class AlphanumericFilter(Op[TextBatch]):
    """Share of alphanumeric characters in the text.

    ``alnum_ratio`` = (number of characters ``c`` with ``c.isalnum()``) / ``len(text)``; 0.0 for
    the empty text. This is Data-Juicer's default (``tokenization=False``); its token-based
    variant (``alpha_token_ratio``, alphabetic characters per tokenizer token) is not provided.

    Data-Juicer 1.6.1 defaults: keep ``0.25 <= alnum_ratio``.
    """

    name = "alphanumeric_filter"
    stat_keys = ("alnum_ratio",)
    data_juicer = DataJuicerFilter(
        {"alnum_ratio": StatArgs.ratio("min_ratio", "max_ratio", 0.25, UNBOUNDED)},
        fixed={"tokenization": False},  # True would compute alpha_token_ratio instead
    )

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        return {"alnum_ratio": ratio(batch.char_counts.alnum, batch.lengths)}
