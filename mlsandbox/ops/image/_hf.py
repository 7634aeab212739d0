"""Hugging Face image models for the image OPs: the shared loading code, and image-text pair scoring.

The loading, labels and input preparation live in :mod:`mlsandbox.ops.vision_models`, which the
video OPs share; the image OPs import them from here. This module adds what only image-text
pairs need: one score per (caption, image) pair, in batches.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from mlsandbox.ops import vision_models
from mlsandbox.ops.base import DeviceParams, Op, OpParams
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.ops.vision_models import (
    INSTALL,
    ClassProbability,
    chunks,
    dj_caption,
    image_logits,
    label_index,
    load_config,
    load_pretrained,
    oriented,
)
from mlsandbox.runtime import resolve_device

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = [
    "INSTALL", "ClassProbability", "PairParams", "PairScoreOp", "chunks", "dj_caption", "image_logits", "label_index",
    "load_config", "load_pretrained", "oriented", "paired_scores",
]

#: The process-wide model cache (one load per name or path), for callers that clear it.
_load = vision_models._load


def paired_scores(
    model: Any,
    processor: Any,
    texts: Sequence[str],
    images: Sequence[Image.Image],
    batch_size: int,
    read: Callable[[Any], torch.Tensor],
) -> np.ndarray:
    """One score per (caption i, image i) pair: ``read(model(**processor(texts, images)))`` in batches
    on the model's device.

    Captions are padded per batch and truncated to the text model's
    ``max_position_embeddings``, as Data-Juicer does.
    """
    import torch

    max_length = int(model.config.text_config.max_position_embeddings)
    out = np.zeros(len(texts), dtype=np.float64)
    with torch.inference_mode():
        for part in chunks(len(texts), batch_size):
            inputs = processor(
                text=list(texts[part]), images=list(images[part]), return_tensors="pt",
                padding=True, truncation=True, max_length=max_length,
            ).to(model.device)
            out[part] = read(model(**inputs)).double().cpu().numpy()
    return out


# --- image-text pair OPs ---------------------------------------------------------------------


class PairParams(DeviceParams):
    """Params of an OP that scores (caption, image) pairs with one model (set ``model``'s default)."""

    model: str
    horizontal_flip: bool = False
    vertical_flip: bool = False
    batch_size: int = Field(32, ge=1)


class PairScoreOp(Op[ImageBatch]):
    """An image-text OP whose one stat is a model's score of each (caption, image) pair.

    Subclasses set ``name``, ``stat_keys``, ``model_class`` (the transformers class to load),
    a ``Params`` subclass of :class:`PairParams` with the default ``model``, and :meth:`pair_score`.
    """

    modality = "image-text"
    max_batch = 256
    model_class: ClassVar[str]
    Params: ClassVar[type[OpParams]] = PairParams
    params: PairParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._loaded: tuple[Any, Any] | None = None

    @abstractmethod
    def pair_score(self, output: Any) -> torch.Tensor:
        """Pair ``i``'s score from the model's output on a batch of pairs."""

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        key = self.stat_keys[0]
        if len(batch) == 0:
            return {key: np.zeros(0, dtype=np.float64)}
        p = self.params
        if self._loaded is None:
            self._loaded = load_pretrained(p.model, self.model_class, op=self.name, device=resolve_device(p.device))
        model, processor = self._loaded
        images = oriented(batch.rgb, p.horizontal_flip, p.vertical_flip)
        texts = [dj_caption(t) for t in batch.texts]
        return {key: paired_scores(model, processor, texts, images, p.batch_size, self.pair_score)}
