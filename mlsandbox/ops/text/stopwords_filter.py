"""stopwords_filter: share of words that are stopwords."""

from __future__ import annotations

from functools import cache

import numpy as np
from pydantic import field_validator
from stop_words import AVAILABLE_LANGUAGES, LANGUAGE_MAPPING, get_stop_words

from mlsandbox.ops.base import Op, OpParams
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.data_juicer import DataJuicerFilter, DataJuicerWords, StatArgs
from mlsandbox.ops.kernels.words import word_list_ratio
from mlsandbox.ops.registry import register

#: Language codes the ``stop-words`` package has lists for, plus ``"all"`` (their union).
LANGUAGES = frozenset(c for c, name in LANGUAGE_MAPPING.items() if name in AVAILABLE_LANGUAGES) | {
    "all"
}


@cache
def stopwords(lang: str) -> frozenset[str]:
    """The lower-cased stopword list of ``lang`` (``"all"``: of every language)."""
    langs = AVAILABLE_LANGUAGES if lang == "all" else [lang]
    return frozenset(w.lower() for name in langs for w in get_stop_words(name))


@register
class StopwordsFilter(Op[TextBatch]):
    """Share of the text's words that are stopwords of a language.

    ``stopwords_ratio`` = (lower-cased, stripped words that are in the stopword list) / (number
    of such words); 0.0 without words. Words are Data-Juicer's: split on ``" "``, ``"\\n"``,
    ``"\\t"``, lower-cased, SPECIAL_CHARACTERS stripped from both ends, empty words dropped.

    Difference from Data-Juicer: the stopword lists are those of the ``stop-words`` package
    (``get_stop_words(lang)``), not the lists Data-Juicer downloads from its own assets, so the
    same text can score differently; a Data-Juicer export writes these lists for Data-Juicer to
    read (``stopwords_dir``), so the exported filter counts the same words. Data-Juicer's optional
    tokenization and word augmentation (for Chinese/Vietnamese) are not provided.

    Data-Juicer 1.6.1 defaults: ``lang="en"``, keep ``0.3 <= stopwords_ratio <= 1.0``.
    """

    name = "stopwords_filter"
    stat_keys = ("stopwords_ratio",)
    packages = ("stop-words",)  # its word lists
    data_juicer = DataJuicerFilter(
        {"stopwords_ratio": StatArgs.ratio("min_ratio", "max_ratio", 0.3, 1.0)},
        fixed={"tokenization": False},
        words=DataJuicerWords("stopwords_dir", "stopwords", stopwords),
    )

    class Params(OpParams):
        lang: str = "en"

        @field_validator("lang")
        @classmethod
        def _known_language(cls, lang: str) -> str:
            if lang not in LANGUAGES:
                raise ValueError(
                    f"no stopword list for {lang!r}; known: {', '.join(sorted(LANGUAGES))}"
                )
            return lang

    params: Params

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        return {"stopwords_ratio": word_list_ratio(batch.word_ids, stopwords(self.params.lang))}
