"""``tiny-lm``: a small causal LM trained from scratch on a pool, the default proxy model.

Texts use the dataset's byte-level BPE tokenizer (:mod:`~mlsandbox.models.bpe_tokenizer`), so
every pool of a dataset shares one. Training is the shared causal-LM recipe
(:mod:`~mlsandbox.models.causal_lm`, :mod:`~mlsandbox.models.torch_training`): documents joined
with an end-of-text token, packed into ``seq_len`` blocks and trained with AdamW under linear
warmup and cosine decay, seeded and bit-for-bit reproducible on CPU for a given thread count.
What differs is stated on :class:`TinyLMTrainer`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsandbox.models.base import Trainer, TrainingJob
from mlsandbox.models.bpe_tokenizer import dataset_tokenizer, encode_docs, eot_id
from mlsandbox.models.causal_lm import CausalLM, block_loss, pack_blocks
from mlsandbox.models.torch_training import (
    LoopSettings,
    Placement,
    gpt2_config,
    step_budget,
    torch_runtime,
    train_loop,
)
from mlsandbox.spec import TinyLMSpec

if TYPE_CHECKING:
    import torch


def build_model(spec: TinyLMSpec, vocab_size: int) -> torch.nn.Module:
    """A randomly initialised causal LM of the spec's architecture (call after seeding)."""
    from transformers import GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    if spec.arch == "gpt2":
        gpt2 = gpt2_config(vocab_size, spec.seq_len, spec.n_embd, spec.n_layer, spec.n_head, spec.dropout)
        return GPT2LMHeadModel(gpt2)
    # SwiGLU width ~8/3 of the model width keeps the MLP's parameters equal to a 4x GELU MLP.
    intermediate = int(math.ceil(spec.n_embd * 8 / 3 / 32) * 32)
    llama = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.n_embd,
        intermediate_size=intermediate,
        num_hidden_layers=spec.n_layer,
        num_attention_heads=spec.n_head,
        num_key_value_heads=spec.n_head,
        max_position_embeddings=spec.seq_len,
        attention_dropout=spec.dropout,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(llama)


class TinyLM(CausalLM):
    """A trained tiny causal LM with its dataset tokenizer."""

    type = "tiny-lm"
    spec_class = TinyLMSpec
    spec: TinyLMSpec

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return encode_docs(self.tokenizer, texts)

    @property
    def separator(self) -> int:
        return eot_id(self.tokenizer)

    @classmethod
    def load_network(cls, path: Path, spec: TinyLMSpec, info: dict[str, Any]) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(path)


class TinyLMTrainer(Trainer):
    """Trains :class:`TinyLM` models from a :class:`~mlsandbox.spec.TinyLMSpec`.

    What is particular to tiny-lm: a randomly initialised Llama or GPT-2 network, every loop
    setting read from its spec (weight averaging included), and a budget in tokens and/or steps.
    """

    type = "tiny-lm"
    version = "1"
    spec: TinyLMSpec

    def total_steps(self, n_blocks: int) -> int:
        """Optimizer steps for a pool of ``n_blocks`` packed blocks under the spec's budget."""
        spec = self.spec
        per_step = spec.batch_size * spec.seq_len
        token_steps = math.ceil(spec.max_tokens / per_step) if spec.max_tokens else None
        return step_budget(math.ceil(n_blocks / spec.batch_size), token_steps, spec.max_steps)

    def train(self, job: TrainingJob) -> TinyLM:
        spec = self.spec
        placement = Placement.resolve(spec.device)
        started = time.perf_counter()
        tokenizer, tok_path = dataset_tokenizer(job, spec)
        docs = encode_docs(tokenizer, job.texts)
        blocks = pack_blocks(docs, spec.seq_len, eot_id(tokenizer))
        n_blocks = int(blocks.shape[0])
        settings = LoopSettings.from_spec(spec, self.total_steps(n_blocks))
        with torch_runtime(spec.threads, job.seed):
            lm = TinyLM(spec, build_model(spec, tokenizer.get_vocab_size()), tokenizer)
            probe = lm.progress_bpb(job, docs)
            final_loss = train_loop(lm.model, blocks, block_loss(lm.model), settings, job.seed, probe, job.report,
                                    placement)
        lm.info = {
            "steps": settings.steps,
            "train_tokens": settings.steps * spec.batch_size * spec.seq_len,
            "pool_tokens": n_blocks * spec.seq_len,
            "epochs": settings.steps * spec.batch_size / n_blocks,
            "final_loss": final_loss,
            "n_params": sum(p.numel() for p in lm.model.parameters()),
            "vocab_size": tokenizer.get_vocab_size(),
            "tokenizer": tok_path.name,
            "train_seconds": time.perf_counter() - started,
            **placement.info(),
        }
        return lm
