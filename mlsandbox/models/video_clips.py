"""Clips as tensors for the video models: each clip decoded once, resampled to a fixed shape.

A text-to-video proxy sees every clip as ``frames`` RGB frames of ``size x size`` pixels: the
decoded frames are picked evenly over the clip (a clip shorter than ``frames`` repeats frames, so a
two-frame clip jumps once), and each is resized with Pillow's antialiased bilinear filter (the
aspect ratio is not kept: a strip is squashed, as a fixed-shape model must see it).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlsandbox.errors import DataError, TrainingError
from mlsandbox.models._decoded import DecodedMedia
from mlsandbox.videos import SteppedFrames, sample_frames

if TYPE_CHECKING:
    import numpy as np
    import torch

#: Every decoded frame: a step of one frame whatever the frame rate.
EVERY_FRAME = SteppedFrames(math.inf)
#: Resampled clips kept per process (a few kB each): the cells of a workflow share a dataset's clips,
#: and each cell would otherwise decode its pool and the benchmarks again.
CACHE_CLIPS = 50_000
_cache: dict[tuple[bytes, int, int], np.ndarray] = {}


def clip_array(data: bytes, frames: int, size: int) -> np.ndarray:
    """One encoded clip as uint8 ``[frames, 3, size, size]`` (read-only; cached per process);
    :class:`DataError` if it cannot be decoded."""
    key = (hashlib.sha256(data).digest(), frames, size)
    cached = _cache.get(key)
    if cached is None:
        cached = _decode_clip(data, frames, size)
        cached.flags.writeable = False
        if len(_cache) >= CACHE_CLIPS:
            _cache.pop(next(iter(_cache)))  # the oldest entry
        _cache[key] = cached
    return cached


def _decode_clip(data: bytes, frames: int, size: int) -> np.ndarray:
    import numpy as np
    from PIL import Image

    decoded = sample_frames(data, [EVERY_FRAME])[EVERY_FRAME]
    if not decoded:
        raise DataError("no frame of the video decodes")
    picks = np.round(np.linspace(0, len(decoded) - 1, frames)).astype(int)
    resized = {
        int(i): np.asarray(Image.fromarray(decoded[i]).resize((size, size), Image.Resampling.BILINEAR))
        for i in set(picks.tolist())
    }
    return np.stack([resized[int(i)] for i in picks]).transpose(0, 3, 1, 2).copy()


class VideoClips(DecodedMedia):
    """A job's clips decoded once: unique clips as uint8 ``[U, frames, 3, S, S]`` plus each sample's row."""

    def __init__(
        self, videos: Sequence[bytes], frames: int, size: int, error: type[TrainingError] = TrainingError,
        ids: Sequence[str] | None = None, context: str = "",
    ) -> None:
        super().__init__(videos, lambda data: clip_array(data, frames, size), "video", error, ids, context)

    def batch(self, samples: torch.Tensor) -> torch.Tensor:
        """Float clips in ``[-1, 1]`` of the given sample indices, ``[B, 3, frames, S, S]``."""
        return to_model(self.pixels[self.index[samples]])


def to_model(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, T, 3, S, S]`` to the model's floats in ``[-1, 1]``, channels first ``[B, 3, T, S, S]``."""
    return pixels.permute(0, 2, 1, 3, 4).float().div(127.5).sub(1.0)


def to_pixels(clips: torch.Tensor) -> np.ndarray:
    """The model's ``[B, 3, T, S, S]`` floats (clamped to ``[-1, 1]``) to uint8 frames ``[B, T, S, S, 3]``."""
    import torch

    return clips.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()
