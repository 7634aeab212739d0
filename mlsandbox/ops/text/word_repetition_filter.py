"""word_repetition_filter: how much of the text is repeated word n-grams."""

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
class WordRepetitionFilter(Op[TextBatch]):
    """Share of the text's word n-grams that occur more than once in it.

    ``word_rep_ratio``: take the lower-cased, stripped words (Data-Juicer's split on ``" "``,
    ``"\\n"``, ``"\\t"``, lower-case, strip SPECIAL_CHARACTERS from both ends, drop empty words),
    form every n-gram of ``n = rep_len`` consecutive words; the ratio is the summed counts of the
    n-grams seen more than once / the number of n-grams. 0.0 with fewer than ``rep_len`` words.
    Data-Juicer's optional sentencepiece tokenization is not provided.

    Data-Juicer 1.6.1 defaults: ``rep_len=10``, keep ``0.0 <= word_rep_ratio <= 0.5``.
    """

    name = "word_repetition_filter"
    stat_keys = ("word_rep_ratio",)
    data_juicer = DataJuicerFilter(
        {"word_rep_ratio": StatArgs.ratio("min_ratio", "max_ratio", 0.0, 0.5)},
        fixed={"tokenization": False},
        inert={"lang": "en"},
    )

    class Params(OpParams):
        rep_len: Annotated[int, Field(strict=True, ge=1)] = 10

    params: Params

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        words = batch.word_ids
        rep = ngram_repetition(words.codes, words.offsets, self.params.rep_len)
        return {"word_rep_ratio": ratio(rep.repeated_sum, rep.totals)}
