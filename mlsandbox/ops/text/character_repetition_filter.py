"""character_repetition_filter: how much of the text is repeated character n-grams."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from mlsandbox.ops.base import Op, OpParams
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.data_juicer import DataJuicerFilter, StatArgs
from mlsandbox.ops.kernels.ngrams import ngram_repetition
from mlsandbox.ops.kernels.words import ratio
from mlsandbox.ops.registry import register


@register
class CharacterRepetitionFilter(Op[TextBatch]):
    """Share of the text's character n-grams taken by its most repeated n-grams.

    ``char_rep_ratio``: count every character n-gram (``n = rep_len``) of the text; with ``D``
    distinct n-grams of which ``R`` occur more than once, take the ``k = min(floor(sqrt(D)), R)``
    largest counts; the ratio is their sum / the number of n-grams (``len(text) - n + 1``).
    0.0 when the text is shorter than ``rep_len``.

    Data-Juicer 1.6.1 defaults: ``rep_len=10``, keep ``0.0 <= char_rep_ratio <= 0.5``.
    """

    name = "character_repetition_filter"
    stat_keys = ("char_rep_ratio",)
    data_juicer = DataJuicerFilter({"char_rep_ratio": StatArgs.ratio("min_ratio", "max_ratio", 0.0, 0.5)})

    class Params(OpParams):
        rep_len: Annotated[int, Field(strict=True, ge=1)] = 10

    params: Params

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        rep = ngram_repetition(batch.codepoints, batch.offsets, self.params.rep_len)
        return {"char_rep_ratio": ratio(rep.top_sum, rep.totals)}
