"""One torch training toolkit for the models trained in process (tiny-lm, tiny-captioner, hf-lora).

A trainer brings only what differs: its network, a loss over a batch of training items, and a
:class:`LoopSettings` read from its spec. The rest lives here once, so the trainers cannot drift
apart: thread count, seeding and determinism, the device and precision (:class:`Placement`),
AdamW groups, warmup + cosine schedule, loss smoothing, intermediate reports and pruning,
padding, and saving the weights with their tokenizer.

A change here that alters what training produces alters every torch trainer: bump each one's
``version`` so that cells trained by the old code are not reused.
"""

from __future__ import annotations

import json
import math
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from mlsandbox.errors import EvaluationError, TrainingPruned
from mlsandbox.models.base import ReportCallback, TrainedModel, reading_model_file, score_from_bpb
from mlsandbox.pretrained import quiet_transformers
from mlsandbox.runtime import autocast_dtype, resolve_device, resolve_workers

if TYPE_CHECKING:
    import torch

#: A batch of training items (rows of the tensor given to :func:`train_loop`) to its mean loss.
LossFn = Callable[["torch.Tensor"], "torch.Tensor"]


@contextmanager
def torch_runtime(threads: int, seed: int | None = None, deterministic: bool = True) -> Iterator[None]:
    """Thread count (0: one per available core), determinism and, if given, the seed for a block.

    With a fixed seed and thread count, CPU training is bit-for-bit reproducible. The caller's
    thread count and determinism settings are restored afterwards.
    """
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(resolve_workers(threads))
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    if seed is not None:
        torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


@dataclass(frozen=True)
class Placement:
    """Where a network trains and is scored, and the reduced precision its training runs in.

    On CUDA, training's forward passes run under ``torch.autocast`` (see
    :func:`~mlsandbox.runtime.autocast_dtype`); scoring stays in float32, so that metrics compare
    across devices. On the CPU nothing changes: float32 and the same ops as ever, so CPU training
    stays bit-for-bit reproducible and the cells it finished stay valid.
    """

    device: str = "cpu"
    dtype: torch.dtype | None = None

    @classmethod
    def resolve(cls, device: str) -> Placement:
        """The placement a spec's ``device`` setting means in this process."""
        resolved = resolve_device(device)
        return cls(resolved, autocast_dtype(resolved))

    @property
    def precision(self) -> str:
        """``float32``, or the autocast dtype's name (``bfloat16``, ``float16``)."""
        return "float32" if self.dtype is None else str(self.dtype).removeprefix("torch.")

    def info(self) -> dict[str, str]:
        """What a trained model records of where it trained."""
        return {"device": self.device, "precision": self.precision}

    def autocast(self) -> AbstractContextManager[object]:
        """Autocast to the reduced precision where there is one; nothing on the CPU."""
        if self.dtype is None:
            return nullcontext()
        import torch

        return torch.autocast(device_type=self.device, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A loss scaler under float16, whose small range would flush small gradients to zero;
        bfloat16 and float32 have float32's range and need none."""
        import torch

        return torch.amp.GradScaler(self.device) if self.dtype == torch.float16 else None


#: float32 on the CPU: where a loop runs unless its trainer says otherwise.
CPU = Placement()


def model_device(model: Any) -> torch.device:
    """The device a network's weights are on: scoring moves its inputs there."""
    return next(iter(model.parameters())).device


def lr_factor(step: int, total: int, warmup: float, floor: float) -> float:
    """Linear warmup over ``warmup * total`` steps, then cosine decay to ``floor``."""
    warm = max(int(round(warmup * total)), 1) if warmup > 0 else 0
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(total - warm, 1)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def step_budget(one_epoch: int, *limits: int | None) -> int:
    """Optimizer steps: the smallest of the set ``limits`` (None: unset), else ``one_epoch``; at least 1."""
    given = [limit for limit in limits if limit is not None]
    return max(min(given) if given else one_epoch, 1)


@dataclass(frozen=True)
class LoopSettings:
    """Optimisation settings of one training run."""

    steps: int
    batch_size: int
    learning_rate: float
    warmup: float
    min_lr_ratio: float
    weight_decay: float
    grad_clip: float
    shuffle: bool = True
    eval_every: int = 0
    ema: float = 0.0  # decay of a weight average used as the trained model; 0 = off

    @classmethod
    def from_spec(cls, spec: BaseModel, steps: int, **fixed: Any) -> LoopSettings:
        """The spec's fields of the same names; ``fixed`` holds what a trainer sets itself."""
        names = {f.name for f in fields(cls)} - {"steps"}
        read = {name: getattr(spec, name) for name in names if hasattr(spec, name)}
        return cls(steps=steps, **{**read, **fixed})


def endless_batches(items: torch.Tensor, size: int, shuffle: bool, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Batches of ``size`` rows of ``items``, epoch after epoch (reshuffled when ``shuffle``)."""
    import torch

    n = int(items.shape[0])
    while True:
        order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        # A pool smaller than a batch still yields full batches by cycling its items.
        if n < size:
            order = order.repeat(math.ceil(size / n))[:size]
        for start in range(0, len(order) - size + 1, size):
            yield items[order[start : start + size]]


def bpb_from_loss(bytes_per_token: float) -> Callable[[float], float]:
    """Bits-per-byte estimated from a mean training loss in nats per token."""
    return lambda loss: loss / math.log(2) / bytes_per_token


def train_loop(
    model: Any,
    items: torch.Tensor,
    loss_fn: LossFn,
    settings: LoopSettings,
    seed: int,
    intermediate_bpb: Callable[[float], float] | None = None,
    report: ReportCallback | None = None,
    placement: Placement = CPU,
) -> float:
    """AdamW with warmup + cosine over batches of ``items``; returns the final smoothed loss.

    The model and each batch of ``items`` move to ``placement.device``, where ``loss_fn`` runs
    under its autocast (anything ``loss_fn`` gathers by the batch must be there too). Only
    parameters that require gradients train (a LoRA adapter, not its base). Every
    ``eval_every`` steps, ``intermediate_bpb(smoothed_loss)`` gives a bits-per-byte estimate whose
    score goes to ``report``; a True answer raises :class:`TrainingPruned`.
    """
    import torch

    model.to(placement.device)
    scaler = placement.grad_scaler()
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
    batches = endless_batches(items, settings.batch_size, settings.shuffle, torch.Generator().manual_seed(seed))
    # Averaged weights smooth out the last steps' noise: which batches came last depends on the seed.
    averaged = [p.detach().clone() for p in params] if settings.ema else None
    smoothed = float("nan")
    model.train()
    for step in range(1, steps + 1):
        with placement.autocast():
            loss = loss_fn(next(batches).to(placement.device))
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        scheduler.step()
        if averaged is not None:
            with torch.no_grad():
                for avg, p in zip(averaged, params):
                    avg.lerp_(p, 1 - settings.ema)
        value = float(loss.detach())
        smoothed = value if step == 1 else 0.9 * smoothed + 0.1 * value
        due = settings.eval_every and step % settings.eval_every == 0 and step < steps
        if report is not None and intermediate_bpb is not None and due:
            score = score_from_bpb(intermediate_bpb(smoothed))
            model.train()  # the estimate may have scored held-out texts in eval mode
            if report(step, score):
                raise TrainingPruned(step, score)
    if averaged is not None:
        with torch.no_grad():
            for avg, p in zip(averaged, params):
                p.copy_(avg)
    model.eval()
    return smoothed


def padded(seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (pad 0) and a boolean mask of the real tokens."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = True
    return ids, mask


def gpt2_config(
    vocab_size: int, positions: int, width: int, layers: int, heads: int, dropout: float, **extra: Any
) -> Any:
    """A GPT-2 network's config for training from scratch on the dataset tokenizer, whose
    end-of-text token (id 0) opens and closes every sequence; embeddings are tied."""
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=positions,
        n_embd=width,
        n_layer=layers,
        n_head=heads,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=True,
        **extra,
    )


# --- saved models -----------------------------------------------------------------------------


def save_weights(model: Any, tokenizer: Any, directory: Path, weights: str = "model") -> None:
    """The network under ``weights/`` (``save_pretrained``) and its tokenizer beside it.

    A ``tokenizers.Tokenizer`` is one ``tokenizer.json``; a transformers tokenizer, which
    carries its special-token settings in several files, is a ``tokenizer/`` directory.
    """
    quiet_transformers()
    model.save_pretrained(directory / weights)
    if hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(directory / "tokenizer")
    else:
        tokenizer.save(str(directory / "tokenizer.json"))


def check_saved_files(directory: Path, weights: str) -> None:
    """Refuse a saved torch model whose ``weights/`` folder is missing or one of whose JSON or
    safetensors files (config, tokenizer, weights) does not read back: an EvaluationError naming the
    file, where transformers and tokenizers would fail with a traceback or an error naming no file."""
    from safetensors import SafetensorError, safe_open

    if not (directory / weights).is_dir():
        raise EvaluationError(f"{directory / weights} is not readable: the folder of the saved weights is missing")
    for path in sorted(directory.rglob("*")):
        if path.suffix == ".json":
            with reading_model_file(path, OSError, ValueError):
                json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".safetensors":
            with reading_model_file(path, OSError, SafetensorError), safe_open(path, framework="numpy"):
                pass  # opening reads and checks the header, and that it covers the whole file


def load_tokenizer(directory: Path) -> Any:
    """The tokenizer :func:`save_weights` wrote, of the kind it was."""
    if (directory / "tokenizer.json").exists():
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(directory / "tokenizer.json"))
    from transformers import AutoTokenizer

    quiet_transformers()
    return AutoTokenizer.from_pretrained(directory / "tokenizer")


class TorchModel(TrainedModel):
    """A trained torch network with its tokenizer, saved and loaded the same way for every type.

    Subclasses name their spec class and the weights directory, and say how to rebuild the network.
    A loaded network is placed on the device its spec's ``device`` setting means here.
    """

    spec_class: ClassVar[type[BaseModel]]
    weights: ClassVar[str] = "model"

    def __init__(self, spec: BaseModel, model: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.model = model
        self.tokenizer = tokenizer

    @classmethod
    @abstractmethod
    def load_network(cls, path: Path, spec: Any, info: dict[str, Any]) -> Any:
        """The network saved under ``path``; ``info`` is the training summary."""

    def _save_payload(self, directory: Path) -> None:
        save_weights(self.model, self.tokenizer, directory, self.weights)

    @classmethod
    def _load_payload(cls, directory: Path, manifest: dict[str, Any]) -> TrainedModel:
        spec = cls.spec_class.model_validate(manifest["spec"])
        info = manifest.get("info") or {}
        check_saved_files(directory, cls.weights)
        quiet_transformers()
        model = cls.load_network(directory / cls.weights, spec, info)
        model.to(resolve_device(getattr(spec, "device", "cpu")))
        model.eval()
        return cls(spec, model, load_tokenizer(directory), info=info, metrics=manifest.get("metrics"))
