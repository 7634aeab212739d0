"""flagged_words_filter: share of words that are flagged (profane) words."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Literal

import numpy as np

from mlsandbox.ops.base import Op, OpParams
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.data_juicer import DataJuicerFilter, DataJuicerWords, StatArgs
from mlsandbox.ops.kernels.words import word_list_ratio
from mlsandbox.ops.registry import register


@cache
def flagged_words() -> frozenset[str]:
    """``better-profanity``'s word list, lower-cased (916 entries)."""
    text = files("better_profanity").joinpath("profanity_wordlist.txt").read_text(encoding="utf-8")
    return frozenset(w.strip().lower() for w in text.splitlines() if w.strip())


@register
class FlaggedWordsFilter(Op[TextBatch]):
    """Share of the text's words that are flagged (profane or sexual) words.

    ``flagged_words_ratio`` = (lower-cased, stripped words in the flagged-word list) / (number of
    such words), capped at 1.0; 0.0 without words. Words are Data-Juicer's: split on ``" "``,
    ``"\\n"``, ``"\\t"``, lower-cased, SPECIAL_CHARACTERS stripped from both ends, empty dropped.

    Difference from Data-Juicer: Data-Juicer downloads its own flagged-word lists from its assets,
    which is not possible offline; the list here is the English word list shipped with the
    ``better-profanity`` package (lower-cased; its multi-word entries never match a single word).
    Only ``lang="en"`` exists for it. A Data-Juicer export writes this list for Data-Juicer to read
    (``flagged_words_dir``), so the exported filter counts the same words. Data-Juicer's optional
    tokenization and word augmentation are not provided.

    Data-Juicer 1.6.1 defaults: ``lang="en"``, keep ``0.0 <= flagged_words_ratio <= 0.045``.
    """

    name = "flagged_words_filter"
    stat_keys = ("flagged_words_ratio",)
    packages = ("better-profanity",)  # its word list
    data_juicer = DataJuicerFilter(
        {"flagged_words_ratio": StatArgs.ratio("min_ratio", "max_ratio", 0.0, 0.045)},
        fixed={"tokenization": False},
        words=DataJuicerWords("flagged_words_dir", "flagged_words", lambda lang: flagged_words()),
    )

    class Params(OpParams):
        lang: Literal["en"] = "en"

    params: Params

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        return {"flagged_words_ratio": word_list_ratio(batch.word_ids, flagged_words())}
