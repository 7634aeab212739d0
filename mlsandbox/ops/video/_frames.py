"""What the frame-reading video OPs share: their frame sampling, Data-Juicer's sampling params,
the reduction of per-frame scores to one number per video, and frames scored as an image OP scores images."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from mlsandbox.ops._image_scoring import ImageScoring
from mlsandbox.ops.base import Op, OpParams
from mlsandbox.ops.video.batch import VideoBatch
from mlsandbox.videos import FrameSampling, KeyFrames, UniformFrames

if TYPE_CHECKING:
    from PIL import Image

ReduceMode = Literal["avg", "max", "min"]


class FrameOp(Op[VideoBatch]):
    """A video OP that reads decoded frames; it says which (:meth:`frame_sampling`), so that the
    batch decodes each video once for every frame OP of a pass."""

    modality: ClassVar[Literal["video", "video-text"]] = "video"
    #: Decoding frames costs more than any header or text stat: frame OPs run in their own pass,
    #: all together, so that one decode per video serves them all.
    max_batch: ClassVar[int | None] = 64

    @abstractmethod
    def frame_sampling(self) -> FrameSampling:
        """The frames this OP reads from each video."""


def frame_samplings(ops: Iterable[Op]) -> list[FrameSampling]:
    """The distinct frame samplings of ``ops`` (the plan a :class:`VideoBatch` decodes at once)."""
    return list(dict.fromkeys(op.frame_sampling() for op in ops if isinstance(op, FrameOp)))


class SampledFrameParams(OpParams):
    """Data-Juicer's frame sampling (``"all_keyframes"`` or ``"uniform"`` with ``frame_num``) and
    its reduction of per-frame scores (``reduce_mode``: mean, max or min)."""

    frame_sampling_method: Literal["all_keyframes", "uniform"] = "all_keyframes"
    frame_num: int = Field(3, ge=1)
    reduce_mode: ReduceMode = "avg"

    def sampling(self) -> FrameSampling:
        return KeyFrames() if self.frame_sampling_method == "all_keyframes" else UniformFrames(self.frame_num)


class ScoredFrameOp(FrameOp):
    """A video OP whose one stat reduces a per-frame score over each video's sampled frames.

    Subclasses set ``name``, ``stat_keys``, a ``Params`` subclass of :class:`SampledFrameParams`
    and implement :meth:`frame_scores`; a video without frames scores 0.0, as in Data-Juicer.
    """

    Params: ClassVar[type[OpParams]] = SampledFrameParams
    params: SampledFrameParams

    def frame_sampling(self) -> FrameSampling:
        return self.params.sampling()

    @abstractmethod
    def frame_scores(self, batch: VideoBatch, images: list[Image.Image], video: np.ndarray) -> np.ndarray:
        """One score per frame image: the batch's videos' frames, concatenated in order; frame
        ``j`` belongs to video (and caption) ``video[j]``."""

    def compute(self, batch: VideoBatch) -> dict[str, np.ndarray]:
        key = self.stat_keys[0]
        if len(batch) == 0:
            return {key: np.zeros(0, dtype=np.float64)}
        per_video = batch.images(self.frame_sampling())
        flat = [image for video in per_video for image in video]
        counts = [len(v) for v in per_video]
        scores = self.frame_scores(batch, flat, np.repeat(np.arange(len(counts)), counts)) if flat else np.zeros(0)
        return {key: reduce_per_video(scores, counts, self.params.reduce_mode)}


class ImageScoredFrameOp(ImageScoring, ScoredFrameOp):
    """A video OP whose frame score is its image counterpart's score of the frame: same params, same model.

    Subclasses set ``name``, ``stat_keys`` and a ``Params`` deriving from the image OP's params,
    :class:`SampledFrameParams` and ``DeviceParams``, in that order.
    """

    params: Any  # each subclass's Params: both an image OP's params and a SampledFrameParams

    def frame_scores(self, batch: VideoBatch, images: list[Image.Image], video: np.ndarray) -> np.ndarray:
        return self.image_scores(images)


_REDUCERS: dict[str, Callable[[np.ndarray], Any]] = {"avg": np.mean, "max": np.max, "min": np.min}


def reduce_per_video(scores: np.ndarray, counts: Sequence[int], mode: ReduceMode) -> np.ndarray:
    """Each video's frame scores (``counts[i]`` consecutive values) reduced to one; 0.0 for none."""
    reduce: Callable[[np.ndarray], Any] = _REDUCERS[mode]
    out = np.zeros(len(counts), dtype=np.float64)
    start = 0
    for i, n in enumerate(counts):
        if n:
            out[i] = float(reduce(scores[start : start + n]))
        start += n
    return out

