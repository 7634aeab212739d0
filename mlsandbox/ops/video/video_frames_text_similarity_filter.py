"""video_frames_text_similarity_filter: CLIP similarity of the video's sampled frames and its caption."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from mlsandbox.ops.base import DeviceParams
from mlsandbox.ops.data_juicer import DataJuicerArg, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register
from mlsandbox.ops.video._frames import SampledFrameParams, ScoredFrameOp
from mlsandbox.ops.video.batch import VideoBatch
from mlsandbox.ops.vision_models import chunks, dj_caption, load_pretrained, oriented
from mlsandbox.runtime import resolve_device

if TYPE_CHECKING:
    from PIL import Image

#: Data-Juicer's default CLIP (needs the model hub).
DATA_JUICER_MODEL = "openai/clip-vit-base-patch32"


@register
class VideoFramesTextSimilarityFilter(ScoredFrameOp):
    """Similarity of the video's sampled frames and its caption under a CLIP model, reduced over frames.

    ``video_frames_text_similarity`` = ``reduce_mode`` (``avg``: mean, ``max``, ``min``) over the
    video's sampled frames of ``logits_per_text / 100`` for the (caption, frame) pair, i.e.
    ``cos(text_embeds, image_embeds) * exp(logit_scale) / 100`` (the cosine itself for OpenAI's
    CLIP, whose ``exp(logit_scale)`` is 100); 0.0 for a video without frames. The caption is
    Data-Juicer's: its special tokens (``<__dj__video>``, ``<|__dj__eoc|>``, ...) removed and
    stripped, tokenized by the model's processor, padded and truncated to the text model's
    ``max_position_embeddings``. Frames: ``frame_sampling_method`` ``"all_keyframes"`` (default)
    or ``"uniform"`` (``frame_num`` frames; see :class:`~mlsandbox.videos.UniformFrames`), from
    the batch's one shared decode, as RGB, optionally mirrored (``horizontal_flip``) and/or
    flipped (``vertical_flip``), through the model's image processor, in batches of
    ``batch_size`` frames across the batch's videos. ``model``: a hub name or local directory of
    a CLIP-like model whose output has ``logits_per_text``.

    Difference from Data-Juicer: none in the definition. Data-Juicer scores each caption chunk
    (text up to ``<|__dj__eoc|>``) holding ``<__dj__video>`` tokens against those videos' frames
    and skips chunks without the token; a sample here is one caption with one video. Its default
    model needs the hub; offline, set ``model`` to a local directory. ``model`` exports as ``hf_clip``.

    Data-Juicer 1.6.1 defaults: ``hf_clip="openai/clip-vit-base-patch32"``,
    ``frame_sampling_method="all_keyframes"``, ``frame_num=3``, no flips, ``reduce_mode="avg"``,
    keep ``0.1 <= video_frames_text_similarity <= 1.0``.
    """

    name = "video_frames_text_similarity_filter"
    modality = "video-text"
    stat_keys = ("video_frames_text_similarity",)
    data_juicer = DataJuicerFilter(
        {"video_frames_text_similarity": StatArgs("min_score", "max_score", 0.1, 1.0, floor=-1.0, ceiling=1.0)},
        inert={"any_or_all": "any"},
        renamed={"model": DataJuicerArg("hf_clip", DATA_JUICER_MODEL)},
        local=frozenset({"batch_size"}),
    )

    class Params(SampledFrameParams, DeviceParams):
        model: str = DATA_JUICER_MODEL
        horizontal_flip: bool = False
        vertical_flip: bool = False
        batch_size: int = Field(32, ge=1)

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._loaded: tuple[Any, Any] | None = None

    def frame_scores(self, batch: VideoBatch, images: list[Image.Image], video: np.ndarray) -> np.ndarray:
        import torch

        p = self.params
        if self._loaded is None:
            self._loaded = load_pretrained(p.model, "AutoModel", op=self.name, device=resolve_device(p.device))
        model, processor = self._loaded
        images = oriented(images, p.horizontal_flip, p.vertical_flip)
        captions = [dj_caption(t) for t in batch.texts]
        max_length = int(model.config.text_config.max_position_embeddings)
        out = np.zeros(len(images), dtype=np.float64)
        with torch.inference_mode():
            for part in chunks(len(images), p.batch_size):
                # The captions of the videos this chunk of frames comes from; row r scores caption r.
                owners, rows = np.unique(video[part], return_inverse=True)
                inputs = processor(
                    text=[captions[v] for v in owners], images=images[part], return_tensors="pt",
                    padding=True, truncation=True, max_length=max_length,
                ).to(model.device)
                logits = model(**inputs).logits_per_text.cpu() / 100.0
                out[part] = logits[torch.as_tensor(rows), torch.arange(len(rows))].double().numpy()
        return out
