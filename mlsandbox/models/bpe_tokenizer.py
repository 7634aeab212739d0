"""The byte-level BPE tokenizer of the from-scratch models (``tiny-lm``, ``tiny-captioner``).

It is trained once per source dataset and cached on disk by the dataset's digest and the
tokenizer settings, so every pool of a dataset shares it and their bits-per-byte compare.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mlsandbox.files import published
from mlsandbox.models.base import TrainingJob
from mlsandbox.models.benchmarks import texts_digest

if TYPE_CHECKING:
    from tokenizers import Tokenizer

EOT = "<|endoftext|>"
_TOKENIZER_FORMAT = "bytebpe-v1"


class TokenizerSettings(Protocol):
    """What :func:`dataset_tokenizer` reads from a model spec."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def tokenizer_max_docs(self) -> int: ...


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer with one special token, ``<|endoftext|>`` (id 0)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tokenizer


def dataset_tokenizer(job: TrainingJob, spec: TokenizerSettings) -> tuple[Tokenizer, Path]:
    """The job's dataset tokenizer, trained on first use and then read from the cache.

    Falls back to the pool's own texts when the job carries no source dataset; pools of one
    dataset then get different tokenizers, which is why workflows pass ``tokenizer_texts``.
    """
    from tokenizers import Tokenizer

    texts = job.tokenizer_texts if job.tokenizer_texts is not None else job.texts
    source = job.source_digest or texts_digest(texts)
    key = hashlib.sha256(
        f"{_TOKENIZER_FORMAT}|{source}|{spec.vocab_size}|{spec.tokenizer_max_docs}".encode()
    ).hexdigest()[:24]
    path = job.cache_dir / "tokenizers" / f"{key}.json"
    if path.exists():
        return Tokenizer.from_file(str(path)), path
    tokenizer = train_tokenizer(_spread_sample(texts, spec.tokenizer_max_docs), spec.vocab_size)
    with published(path) as tmp:  # concurrent workers never read a half-written file
        tokenizer.save(str(tmp))
    return tokenizer, path


def _spread_sample(texts: Sequence[str], limit: int) -> list[str]:
    # Evenly spaced rather than random: the tokenizer belongs to the dataset, not to a seed.
    if len(texts) <= limit:
        return list(texts)
    step = len(texts) / limit
    return [texts[int(i * step)] for i in range(limit)]


def eot_id(tokenizer: Tokenizer) -> int:
    """Id of the end-of-text token, which also opens every document and caption."""
    eot = tokenizer.token_to_id(EOT)
    if eot is None:
        raise ValueError(f"the tokenizer lacks the end-of-text token {EOT!r}")
    return int(eot)


def encode_docs(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (no special tokens added)."""
    return [enc.ids for enc in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
