"""What the proxies trained on (media, caption) pairs share: ``tiny-captioner`` and ``tiny-t2v``.

The skeleton of their training (:class:`PairTrainer`), how a caption becomes a token sequence
(:func:`caption_sequences`), and the fixed draw of retrieval candidates both rank a benchmark's
pairs with (:func:`retrieval_candidates`). Each trainer keeps only its media, network and loss.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mlsandbox.errors import TrainingError
from mlsandbox.models._decoded import DecodedMedia
from mlsandbox.models.base import Trainer, TrainingJob
from mlsandbox.models.bpe_tokenizer import dataset_tokenizer, eot_id
from mlsandbox.models.torch_training import (
    LoopSettings,
    LossFn,
    Placement,
    TorchModel,
    padded,
    step_budget,
    torch_runtime,
    train_loop,
)
from mlsandbox.spec import TinyCaptionerSpec, TinyT2VSpec

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

#: Seed of the distractor draw: every model sees the same retrieval candidates on a benchmark.
RETRIEVAL_SEED = 0


def caption_sequences(tokenizer: Tokenizer, captions: Sequence[str], max_tokens: int) -> list[list[int]]:
    """``[eot] + ids[:max_tokens] + [eot]`` per caption: BOS, the caption, EOS."""
    eot = eot_id(tokenizer)
    encoded = tokenizer.encode_batch(list(captions), add_special_tokens=False)
    return [[eot, *enc.ids[:max_tokens], eot] for enc in encoded]


def retrieval_candidates(images: Sequence[bytes], k: int, seed: int = RETRIEVAL_SEED) -> list[list[int]]:
    """Per query ``i``: ``[i]`` plus up to ``k - 1`` other indices whose image differs from ``i``'s.

    Drawn with a fixed seed, so every model is ranked on the same candidates.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(images)
    groups: dict[bytes, set[int]] = {}
    for i, data in enumerate(images):
        groups.setdefault(data, set()).add(i)
    out: list[list[int]] = []
    for i in range(n):
        same = groups[images[i]]
        # Drawing k - 1 + |same| distinct indices leaves at least k - 1 that are not copies.
        draw = rng.choice(n, size=min(n, k - 1 + len(same)), replace=False)
        out.append([i, *[int(j) for j in draw if int(j) not in same][: k - 1]])
    return out


class PairTrainer(Trainer):
    """Trains a network from scratch on a pool's (media, caption) pairs: tiny-captioner and tiny-t2v.

    What they share lives here once: the job's checks, the budget (``max_steps`` and/or ``epochs``
    of pairs), the dataset tokenizer and :func:`caption_sequences`, the loop over always shuffled
    pair indices and the summary of a run. A subclass names its media and model, decodes the
    media (:meth:`decode`) and builds its network and loss (:meth:`network`).
    """

    spec: TinyCaptionerSpec | TinyT2VSpec
    media: ClassVar[str]  # the job's field of media aligned with its captions
    item: ClassVar[str]  # one medium, as the errors and the summary name it
    needs_media: ClassVar[str]  # the error of a job without media
    model_class: ClassVar[type[TorchModel]]

    def total_steps(self, n_pairs: int) -> int:
        """Optimizer steps for a pool of ``n_pairs`` under the spec's budget."""
        spec = self.spec
        epoch_steps = math.ceil(spec.epochs * n_pairs / spec.batch_size) if spec.epochs else None
        return step_budget(math.ceil(n_pairs / spec.batch_size), spec.max_steps, epoch_steps)

    @abstractmethod
    def decode(self, media: list[bytes], ids: list[str] | None) -> DecodedMedia:
        """The job's media, each distinct one decoded once, as the loss gathers them; errors name
        the sample by its id in ``ids``."""

    @abstractmethod
    def network(self, media: Any, tokenizer: Tokenizer, seqs: list[list[int]], ids: torch.Tensor,
                mask: torch.Tensor, device: str) -> tuple[Any, LossFn, Callable[[float], float]]:
        """A new network (called seeded), its loss over batches of pair indices with the pairs on
        ``device``, and the bits per byte of a smoothed loss that intermediate scores come from."""

    def extra_info(self, mask: torch.Tensor, steps: int) -> dict[str, float]:
        """What a subclass adds to the summary of a run, after ``epochs``."""
        return {}

    def train(self, job: TrainingJob) -> TorchModel:
        import torch

        media = getattr(job, self.media)
        if media is None:
            raise TrainingError(self.needs_media)
        if not job.texts:
            raise TrainingError(f"{self.type} needs at least one ({self.item}, caption) pair in the pool")
        spec = self.spec
        placement = Placement.resolve(spec.device)
        started = time.perf_counter()
        tokenizer, tok_path = dataset_tokenizer(job, spec)
        decoded_media = self.decode(media, job.ids)
        seqs = caption_sequences(tokenizer, job.texts, spec.max_caption_tokens)
        ids, mask = padded(seqs)
        decoded = time.perf_counter()
        settings = LoopSettings.from_spec(spec, self.total_steps(len(seqs)), shuffle=True)
        with torch_runtime(spec.threads, job.seed):
            net, loss, probe = self.network(decoded_media, tokenizer, seqs, ids, mask, placement.device)
            final_loss = train_loop(net, torch.arange(len(seqs)), loss, settings, job.seed, probe, job.report,
                                    placement)
        steps = settings.steps
        info = {
            "steps": steps,
            "pairs": len(seqs),
            f"unique_{self.item}s": decoded_media.n_unique,
            "epochs": steps * spec.batch_size / len(seqs),
            **self.extra_info(mask, steps),
            "final_loss": final_loss,
            "n_params": sum(p.numel() for p in net.parameters()),
            "vocab_size": tokenizer.get_vocab_size(),
            "tokenizer": tok_path.name,
            "decode_seconds": decoded - started,
            "train_seconds": time.perf_counter() - started,
            **placement.info(),
        }
        return self.model_class(spec, net, tokenizer, info=info)
