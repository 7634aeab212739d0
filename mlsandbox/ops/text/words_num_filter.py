"""words_num_filter: number of words."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.data_juicer import UNBOUNDED, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register


@register
class WordsNumFilter(Op[TextBatch]):
    """Number of words in the text.

    ``num_words`` = the number of words after Data-Juicer's split on ``" "``, ``"\\n"``, ``"\\t"``
    and stripping SPECIAL_CHARACTERS from both ends of each word, dropping words that became
    empty; words are not lower-cased first. Other whitespace (``"\\r"``, NBSP, ...)
    does not separate words. Data-Juicer's optional sentencepiece tokenization is not provided.

    Data-Juicer 1.6.1 defaults: keep ``10 <= num_words``.
    """

    name = "words_num_filter"
    stat_keys = ("num_words",)
    data_juicer = DataJuicerFilter(
        {"num_words": StatArgs.count("min_num", "max_num", 10, UNBOUNDED)},
        fixed={"tokenization": False},
        inert={"lang": "en"},
    )

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        return {"num_words": batch.refined_word_counts.copy()}
