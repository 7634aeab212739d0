"""What the causal LMs trained on text (``tiny-lm``, ``hf-lora``) share: packing, loss and scoring.

Training joins a pool's documents, each opened by a separator token, into ``seq_len + 1`` blocks
so that no compute goes to padding. Scoring instead cuts each document into its own windows, so
that every text token is predicted exactly once and bits-per-byte do not depend on how the
documents would have been packed. The two models differ only in their tokenizer (a per-dataset
BPE, a pretrained one) and separator, which :class:`CausalLM` subclasses state.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mlsandbox.models.base import TrainingJob, utf8_bytes
from mlsandbox.models.torch_training import LossFn, TorchModel, bpb_from_loss, model_device, padded, torch_runtime

if TYPE_CHECKING:
    import torch

    from mlsandbox.spec import HFLoraSpec, TinyLMSpec


def pack_blocks(docs: Sequence[Sequence[int]], seq_len: int, sep: int) -> torch.Tensor:
    """Join ``[sep] + ids`` of all docs and cut into ``seq_len + 1`` blocks (stride seq_len).

    A pool shorter than one block is padded with ``sep``, so tiny pools still train.
    """
    import torch

    stream: list[int] = []
    for ids in docs:
        stream.append(sep)
        stream.extend(ids)
    n_blocks = max((len(stream) - 1) // seq_len, 1)
    need = n_blocks * seq_len + 1
    stream.extend([sep] * max(need - len(stream), 0))
    flat = torch.tensor(stream[:need], dtype=torch.long)
    starts = torch.arange(n_blocks) * seq_len
    return flat[starts.unsqueeze(1) + torch.arange(seq_len + 1)]


def split_windows(docs: Sequence[Sequence[int]], seq_len: int, sep: int) -> list[list[int]]:
    """Per document, ``[sep] + ids`` cut into pieces of at most ``seq_len + 1`` tokens.

    Consecutive pieces overlap by one token so that every text token is predicted exactly
    once; the leading ``sep`` gives the first token a context without counting extra bytes.
    """
    pieces: list[list[int]] = []
    for ids in docs:
        seq = [sep, *ids]
        for start in range(0, max(len(seq) - 1, 0), seq_len):
            pieces.append(seq[start : start + seq_len + 1])
    return pieces


def sum_nll_bits(model: Any, pieces: list[list[int]], batch_size: int) -> float:
    """Total next-token NLL in bits over all pieces (each piece predicts its tokens 1..n).

    Pieces are batched by length to keep padding small, and scored in float32 on the model's device.
    """
    import torch
    import torch.nn.functional as F

    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    total = 0.0
    device = model_device(model)
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            ids, mask = (t.to(device) for t in padded([pieces[i] for i in order[start : start + batch_size]]))
            logits = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1].long()).logits
            nll = F.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
            )
            total += float(nll[mask[:, 1:].reshape(-1)].sum())
    return total / math.log(2)


def block_loss(model: Any) -> LossFn:
    """The training loss of a causal LM: mean next-token cross-entropy over a batch of blocks."""
    import torch.nn.functional as F

    def loss(blocks: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=blocks[:, :-1]).logits
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), blocks[:, 1:].reshape(-1))

    return loss


class CausalLM(TorchModel):
    """A trained causal LM scored in bits-per-byte; subclasses say how texts become token ids."""

    spec: TinyLMSpec | HFLoraSpec

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""

    @property
    @abstractmethod
    def separator(self) -> int:
        """The token that opens every document (training blocks and scoring windows alike)."""

    def windows(self, texts: Sequence[str]) -> list[list[int]]:
        """The scoring windows of ``texts`` (see :func:`split_windows`)."""
        return split_windows(self.encode(texts), self.spec.seq_len, self.separator)

    def bits_per_byte(self, texts: Sequence[str]) -> float:
        texts = [t for t in texts if t]
        n_bytes = utf8_bytes(texts)
        if n_bytes == 0:
            raise ValueError("bits_per_byte needs at least one non-empty text")
        pieces = self.windows(texts)
        with torch_runtime(self.spec.threads):
            bits = sum_nll_bits(self.model, pieces, self.spec.eval_batch_size)
        return bits / n_bytes

    def progress_bpb(self, job: TrainingJob, train_docs: Sequence[Sequence[int]]) -> Callable[[float], float]:
        """Bits-per-byte for intermediate reports: on ``job.eval_texts`` if given, else estimated
        from the training loss (nats per token, a separator counted with each document)."""
        if job.eval_texts:
            pieces = self.windows(job.eval_texts)
            n_bytes = utf8_bytes(job.eval_texts)
            return lambda _loss: sum_nll_bits(self.model, pieces, self.spec.eval_batch_size) / n_bytes
        return bpb_from_loss(utf8_bytes(job.texts) / max(sum(len(d) + 1 for d in train_docs), 1))
