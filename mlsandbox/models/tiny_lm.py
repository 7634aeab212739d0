"""``tiny-lm``: a small causal LM trained from scratch on a pool, the default proxy model.

Texts are tokenized with a byte-level BPE tokenizer trained once per source dataset (cached
on disk by the dataset digest and vocabulary size), so every pool of a dataset shares one
tokenizer. Documents are joined with an end-of-text token, packed into ``seq_len`` blocks and
trained with AdamW under linear warmup and cosine decay. With a fixed seed and thread count,
training on CPU is bit-for-bit reproducible: ``torch.use_deterministic_algorithms`` is on for
the duration of a job and restored afterwards.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlsandbox.errors import TrainingPruned
from mlsandbox.models.base import (
    ReportCallback,
    TrainedModel,
    Trainer,
    TrainingJob,
    score_from_bpb,
    utf8_bytes,
)
from mlsandbox.pretrained import quiet_transformers
from mlsandbox.runtime import resolve_workers
from mlsandbox.spec import TinyLMSpec

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

EOT = "<|endoftext|>"
_TOKENIZER_FORMAT = "bytebpe-v1"


@contextmanager
def torch_runtime(threads: int, deterministic: bool = True) -> Iterator[None]:
    """Set torch's thread count (0: one per available core) and determinism for a block, restoring
    the caller's settings."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(resolve_workers(threads))
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


# --- tokenizer ------------------------------------------------------------------------------


def texts_digest(texts: Sequence[str]) -> str:
    """Content digest of a list of texts (order-sensitive)."""
    h = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _spread_sample(texts: Sequence[str], limit: int) -> list[str]:
    # Evenly spaced rather than random: the tokenizer belongs to the dataset, not to a seed.
    if len(texts) <= limit:
        return list(texts)
    step = len(texts) / limit
    return [texts[int(i * step)] for i in range(limit)]


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


class TokenizerSettings(Protocol):
    """What :func:`dataset_tokenizer` reads from a model spec (``tiny-lm``, ``tiny-captioner``)."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def tokenizer_max_docs(self) -> int: ...


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tokenizer.save(str(tmp))
    os.replace(tmp, path)  # atomic: concurrent workers never read a half-written file
    return tokenizer, path


def encode_docs(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (no special tokens added)."""
    return [enc.ids for enc in tokenizer.encode_batch(list(texts), add_special_tokens=False)]


# --- model ----------------------------------------------------------------------------------


def build_model(spec: TinyLMSpec, vocab_size: int) -> torch.nn.Module:
    """A randomly initialised causal LM of the spec's architecture (call after seeding)."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    if spec.arch == "gpt2":
        config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=spec.seq_len,
            n_embd=spec.n_embd,
            n_layer=spec.n_layer,
            n_head=spec.n_head,
            resid_pdrop=spec.dropout,
            embd_pdrop=spec.dropout,
            attn_pdrop=spec.dropout,
            bos_token_id=0,
            eos_token_id=0,
            tie_word_embeddings=True,
        )
        return GPT2LMHeadModel(config)
    # SwiGLU width ~8/3 of the model width keeps the MLP's parameters equal to a 4x GELU MLP.
    intermediate = int(math.ceil(spec.n_embd * 8 / 3 / 32) * 32)
    config = LlamaConfig(
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
    return LlamaForCausalLM(config)


def split_windows(docs: Sequence[Sequence[int]], seq_len: int, eot: int) -> list[list[int]]:
    """Per document, ``[eot] + ids`` cut into pieces of at most ``seq_len + 1`` tokens.

    Consecutive pieces overlap by one token so that every text token is predicted exactly
    once; the leading ``eot`` gives the first token a context without counting extra bytes.
    """
    pieces: list[list[int]] = []
    for ids in docs:
        seq = [eot, *ids]
        for start in range(0, max(len(seq) - 1, 0), seq_len):
            pieces.append(seq[start : start + seq_len + 1])
    return pieces


def sum_nll_bits(model: Any, pieces: list[list[int]], batch_size: int) -> float:
    """Total next-token NLL in bits over all pieces (each piece predicts its tokens 1..n)."""
    import torch
    import torch.nn.functional as F

    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
    total = 0.0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [pieces[i] for i in order[start : start + batch_size]]
            width = max(len(p) for p in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.bool)
            for row, piece in enumerate(batch):
                ids[row, : len(piece)] = torch.tensor(piece)
                mask[row, : len(piece)] = True
            logits = model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1].long()).logits
            nll = F.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none"
            )
            total += float(nll[mask[:, 1:].reshape(-1)].sum())
    return total / math.log(2)


class TinyLM(TrainedModel):
    """A trained tiny causal LM with its tokenizer."""

    type = "tiny-lm"
    spec: TinyLMSpec

    def __init__(self, spec: TinyLMSpec, model: Any, tokenizer: Tokenizer, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.model = model
        self.tokenizer = tokenizer

    @property
    def eot_id(self) -> int:
        eot = self.tokenizer.token_to_id(EOT)
        assert eot is not None, "tokenizer lacks the end-of-text token"
        return eot

    def bits_per_byte(self, texts: Sequence[str]) -> float:
        texts = [t for t in texts if t]
        n_bytes = utf8_bytes(texts)
        if n_bytes == 0:
            raise ValueError("bits_per_byte needs at least one non-empty text")
        pieces = split_windows(encode_docs(self.tokenizer, texts), self.spec.seq_len, self.eot_id)
        with torch_runtime(self.spec.threads):
            bits = sum_nll_bits(self.model, pieces, self.spec.eval_batch_size)
        return bits / n_bytes

    def _save_payload(self, directory: Path) -> None:
        save_weights(self.model, self.tokenizer, directory)

    @classmethod
    def _load_payload(cls, directory: Path, manifest: dict[str, Any]) -> TinyLM:
        from transformers import AutoModelForCausalLM

        model, tokenizer = load_weights(AutoModelForCausalLM, directory)
        spec = TinyLMSpec.model_validate(manifest["spec"])
        return cls(spec, model, tokenizer, info=manifest.get("info"), metrics=manifest.get("metrics"))


def save_weights(model: Any, tokenizer: Tokenizer, directory: Path) -> None:
    """A transformers model under ``model/`` (safetensors and config) and its ``tokenizer.json``."""
    quiet_transformers()
    model.save_pretrained(directory / "model")
    tokenizer.save(str(directory / "tokenizer.json"))


def load_weights(model_class: Any, directory: Path) -> tuple[Any, Tokenizer]:
    """What :func:`save_weights` wrote: the model (as ``model_class``, in eval mode) and tokenizer."""
    from tokenizers import Tokenizer

    quiet_transformers()
    model = model_class.from_pretrained(directory / "model")
    model.eval()
    return model, Tokenizer.from_file(str(directory / "tokenizer.json"))


# --- training -------------------------------------------------------------------------------


def pack_blocks(docs: Sequence[Sequence[int]], seq_len: int, eot: int) -> torch.Tensor:
    """Join ``[eot] + ids`` of all docs and cut into ``seq_len + 1`` blocks (stride seq_len).

    A pool shorter than one block is padded with ``eot``, so tiny pools still train.
    """
    import torch

    stream: list[int] = []
    for ids in docs:
        stream.append(eot)
        stream.extend(ids)
    n_blocks = max((len(stream) - 1) // seq_len, 1)
    need = n_blocks * seq_len + 1
    stream.extend([eot] * max(need - len(stream), 0))
    flat = torch.tensor(stream[:need], dtype=torch.long)
    starts = torch.arange(n_blocks) * seq_len
    return flat[starts.unsqueeze(1) + torch.arange(seq_len + 1)]


def lr_factor(step: int, total: int, warmup: float, floor: float) -> float:
    """Linear warmup over ``warmup * total`` steps, then cosine decay to ``floor``."""
    warm = max(int(round(warmup * total)), 1) if warmup > 0 else 0
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(total - warm, 1)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


@dataclass(frozen=True)
class LoopSettings:
    """Optimisation settings shared by the from-scratch and the LoRA trainers."""

    steps: int
    batch_size: int
    learning_rate: float
    warmup: float
    min_lr_ratio: float
    weight_decay: float
    grad_clip: float
    shuffle: bool = True
    eval_every: int = 0
    ema: float = 0.0


def _batches(blocks: torch.Tensor, size: int, shuffle: bool, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless batches over the blocks, epoch after epoch (reshuffled when ``shuffle``)."""
    import torch

    n = int(blocks.shape[0])
    while True:
        order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        # A pool smaller than a batch still yields full batches by cycling its blocks.
        if n < size:
            order = order.repeat(math.ceil(size / n))[:size]
        for start in range(0, len(order) - size + 1, size):
            yield blocks[order[start : start + size]]


def train_loop(
    model: Any,
    blocks: torch.Tensor,
    settings: LoopSettings,
    seed: int,
    intermediate_bpb: Callable[[float], float] | None = None,
    report: ReportCallback | None = None,
) -> float:
    """AdamW with warmup + cosine over packed blocks; returns the final smoothed loss (nats).

    Every ``eval_every`` steps, ``intermediate_bpb(smoothed_loss)`` gives a bits-per-byte
    estimate whose score goes to ``report``; a True answer raises :class:`TrainingPruned`.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    # Norm gains and biases are not decayed: shrinking them only hurts a short run.
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": settings.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=settings.learning_rate,
        betas=(0.9, 0.95),
    )
    steps = settings.steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps, settings.warmup, settings.min_lr_ratio)
    )
    batches = _batches(blocks, settings.batch_size, settings.shuffle, torch.Generator().manual_seed(seed))
    # Averaged weights smooth out the last steps' noise: which batches came last depends on the seed.
    averaged = [p.detach().clone() for p in params] if settings.ema else None
    ema_loss = float("nan")
    model.train()
    for step in range(1, steps + 1):
        batch = next(batches)
        logits = model(input_ids=batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1)
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        optimizer.step()
        scheduler.step()
        if averaged is not None:
            with torch.no_grad():
                for avg, p in zip(averaged, params):
                    avg.lerp_(p, 1 - settings.ema)
        value = float(loss.detach())
        ema_loss = value if step == 1 else 0.9 * ema_loss + 0.1 * value
        due = settings.eval_every and step % settings.eval_every == 0 and step < steps
        if report is not None and intermediate_bpb is not None and due:
            score = score_from_bpb(intermediate_bpb(ema_loss))
            model.train()
            if report(step, score):
                raise TrainingPruned(step, score)
    if averaged is not None:
        with torch.no_grad():
            for avg, p in zip(averaged, params):
                p.copy_(avg)
    model.eval()
    return ema_loss


class TinyLMTrainer(Trainer):
    """Trains :class:`TinyLM` models from a :class:`~mlsandbox.model_specs.TinyLMSpec`."""

    type = "tiny-lm"
    spec: TinyLMSpec

    def total_steps(self, n_blocks: int) -> int:
        """Optimizer steps for a pool of ``n_blocks`` packed blocks under the spec's budget."""
        spec = self.spec
        per_step = spec.batch_size * spec.seq_len
        limits = [
            *([math.ceil(spec.max_tokens / per_step)] if spec.max_tokens else []),
            *([spec.max_steps] if spec.max_steps else []),
        ]
        return max(min(limits) if limits else math.ceil(n_blocks / spec.batch_size), 1)

    def train(self, job: TrainingJob) -> TinyLM:
        import torch

        spec = self.spec
        started = time.perf_counter()
        tokenizer, tok_path = dataset_tokenizer(job, spec)
        eot = tokenizer.token_to_id(EOT)
        docs = encode_docs(tokenizer, job.texts)
        blocks = pack_blocks(docs, spec.seq_len, eot)
        n_blocks = int(blocks.shape[0])
        settings = LoopSettings(
            steps=self.total_steps(n_blocks),
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            warmup=spec.warmup,
            min_lr_ratio=spec.min_lr_ratio,
            weight_decay=spec.weight_decay,
            grad_clip=spec.grad_clip,
            shuffle=spec.shuffle,
            eval_every=spec.eval_every,
            ema=spec.ema,
        )
        with torch_runtime(spec.threads):
            torch.manual_seed(job.seed)
            model = build_model(spec, tokenizer.get_vocab_size())
            probe = _intermediate_bpb(model, tokenizer, job, spec.seq_len, spec.eval_batch_size, docs)
            final_loss = train_loop(model, blocks, settings, job.seed, probe, job.report)
        info = {
            "steps": settings.steps,
            "train_tokens": settings.steps * spec.batch_size * spec.seq_len,
            "pool_tokens": n_blocks * spec.seq_len,
            "epochs": settings.steps * spec.batch_size / n_blocks,
            "final_loss": final_loss,
            "n_params": sum(p.numel() for p in model.parameters()),
            "vocab_size": tokenizer.get_vocab_size(),
            "tokenizer": tok_path.name,
            "train_seconds": time.perf_counter() - started,
        }
        return TinyLM(spec, model, tokenizer, info=info)


def _intermediate_bpb(
    model: Any,
    tokenizer: Tokenizer,
    job: TrainingJob,
    seq_len: int,
    batch_size: int,
    train_docs: Sequence[Sequence[int]],
) -> Callable[[float], float]:
    """Bits-per-byte for pruning: on ``job.eval_texts`` if given, else from the training loss."""
    eot = tokenizer.token_to_id(EOT)
    if job.eval_texts:
        pieces = split_windows(encode_docs(tokenizer, job.eval_texts), seq_len, eot)
        n_bytes = utf8_bytes(job.eval_texts)
        return lambda _loss: sum_nll_bits(model, pieces, batch_size) / n_bytes
    bytes_per_token = utf8_bytes(job.texts) / max(sum(len(d) + 1 for d in train_docs), 1)
    return lambda loss: loss / math.log(2) / bytes_per_token
