"""video_motion_score_filter: mean optical-flow magnitude between frames sampled at ``sampling_fps``."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from mlsandbox.errors import DataError, KeyValueError, ModelUnavailableError
from mlsandbox.ops.base import OpParams
from mlsandbox.ops.data_juicer import DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register
from mlsandbox.ops.video._frames import FrameOp
from mlsandbox.ops.video.batch import VideoBatch
from mlsandbox.videos import INSTALL, FrameSampling, SteppedFrames


@register
class VideoMotionScoreFilter(FrameOp):
    """How much the picture moves: mean Farneback optical-flow magnitude between sampled frames.

    ``video_motion_score``, as Data-Juicer computes it with OpenCV:

    1. Frames: every ``step``-th frame from the first, ``step = round(fps / min(sampling_fps,
       fps))`` clamped to ``[1, frames - 1]`` (``fps``: the stream's average frame rate;
       ``frames``: the declared frame count, else ``round(duration * fps)``, as OpenCV reports).
    2. Optionally resized (``size``, ``max_size``, ``divisible``: Data-Juicer's
       ``calculate_resized_dimensions``, whose ``(height, width)`` result is passed to
       ``cv2.resize`` as ``(width, height)`` as Data-Juicer passes it; ``INTER_AREA``), then
       converted to grey (``cv2.COLOR_RGB2GRAY`` on RGB, the same weights as Data-Juicer's
       ``COLOR_BGR2GRAY`` on OpenCV's BGR).
    3. For each pair of consecutive sampled frames, ``cv2.calcOpticalFlowFarneback(prev, next)``
       with ``pyr_scale``, ``levels``, ``winsize``, ``iterations``, ``poly_n``, ``poly_sigma``,
       ``flags``; the pair's score is ``mean(magnitude)`` over pixels (``cv2.cartToPolar``),
       divided by the frame diagonal ``hypot(height, width)`` when ``relative``.
    4. The stat is the mean of the pair scores, in pixels per sampled step; **-1** when fewer
       than two frames were sampled (a one-frame video).

    Difference from Data-Juicer: frames come from the batch's shared PyAV decode (frame ``i`` of
    the stream in presentation order) instead of OpenCV's ``VideoCapture`` seeking to frame
    ``i``; both decode with FFmpeg to the same pixels, so the stat is the same wherever OpenCV's
    seek is frame-accurate. OpenCV applies a rotation from the container's display matrix; PyAV
    frames are as coded.

    Data-Juicer 1.6.1 defaults: ``sampling_fps=2``, no resizing, ``relative=False``, keep
    ``0.25 <= video_motion_score``.
    """

    name = "video_motion_score_filter"
    stat_keys = ("video_motion_score",)
    # One video per sample here, so Data-Juicer's any_or_all strategy makes no difference. The
    # Farneback arguments are passed to Data-Juicer by name, as its **kwargs read them.
    data_juicer = DataJuicerFilter(
        {"video_motion_score": StatArgs("min_score", "max_score", 0.25, float(np.finfo(np.float64).max),
                                        floor=-1.0)},
        inert={"any_or_all": "any"},
    )

    class Params(OpParams):
        sampling_fps: float = Field(2.0, gt=0)
        size: int | tuple[int] | tuple[int, int] | None = None
        max_size: int | None = Field(None, ge=1)
        divisible: int = Field(1, ge=1)
        relative: bool = False
        pyr_scale: float = Field(0.5, gt=0, lt=1)
        levels: int = Field(3, ge=0)
        winsize: int = Field(15, ge=1)
        iterations: int = Field(3, ge=1)
        poly_n: int = Field(5, ge=1)
        poly_sigma: float = Field(1.2, gt=0)
        flags: int = 0

        @field_validator("size", mode="before")
        @classmethod
        def _one_or_two_edges(cls, size: Any) -> Any:
            edges = size if isinstance(size, (list, tuple)) else [size]
            if size is not None and not (1 <= len(edges) <= 2 and all(type(e) is int and e >= 1 for e in edges)):
                raise ValueError("size must be one edge or two, in whole pixels of at least 1")
            return size

        @model_validator(mode="after")
        def _edges_survive_rounding(self) -> VideoMotionScoreFilter.Params:
            edges = {"size": self.size if isinstance(self.size, tuple) else (self.size,), "max_size": (self.max_size,)}
            for name, values in edges.items():
                if any(v is not None and v < self.divisible for v in values):
                    raise KeyValueError(name, getattr(self, name), f"is below divisible={self.divisible}: rounded "
                                        "down to a multiple of it, an edge would be 0 pixels")
            return self

    params: Params

    def frame_sampling(self) -> FrameSampling:
        return SteppedFrames(self.params.sampling_fps)

    def compute(self, batch: VideoBatch) -> dict[str, np.ndarray]:
        if len(batch) == 0:
            return {"video_motion_score": np.zeros(0, dtype=np.float64)}
        try:
            import cv2
        except ImportError:
            raise ModelUnavailableError(f"{self.name} needs OpenCV: {INSTALL}") from None
        scores = [self._score(cv2, frames, sample) for frames, sample in zip(batch.frames(self.frame_sampling()), batch.ids)]
        return {"video_motion_score": np.array(scores, dtype=np.float64)}

    def _score(self, cv2: Any, frames: list[np.ndarray], sample: str) -> float:
        p = self.params
        size = (p.size,) if isinstance(p.size, int) else p.size
        farneback = {k: getattr(p, k) for k in ("pyr_scale", "levels", "winsize", "iterations", "poly_n",
                                                 "poly_sigma", "flags")}
        pair_scores: list[float] = []
        previous = None
        for frame in frames:
            height, width = frame.shape[:2]
            new_size = resized_dimensions((height, width), size, p.max_size, p.divisible)
            if min(new_size) < 1:
                raise DataError(f"sample {sample!r}: {self.name} resizes its {width}x{height} frames to nothing "
                                f"(size={p.size}, max_size={p.max_size}, divisible={p.divisible})")
            if new_size != (height, width):
                frame = cv2.resize(frame, new_size, interpolation=cv2.INTER_AREA)
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            if previous is not None:
                flow = cv2.calcOpticalFlowFarneback(previous, grey, None, **farneback)
                magnitude, _ = cv2.cartToPolar(flow[..., 0], flow[..., 1])
                score = np.mean(magnitude)
                if p.relative:
                    score /= np.hypot(*frame.shape[:2])
                pair_scores.append(float(score))
            previous = grey
        return float(np.mean(pair_scores)) if pair_scores else -1.0


def resized_dimensions(
    original: tuple[int, int], size: tuple[int, ...] | None, max_size: int | None, divisible: int
) -> tuple[int, ...]:
    """Data-Juicer's ``calculate_resized_dimensions``: ``size`` is the short edge (one value) or
    both edges (two, the longer one on the longer side); ``max_size`` caps the long edge;
    both are then rounded down to a multiple of ``divisible``. Returns ``(height, width)``."""
    height, width = original
    short_edge, long_edge = sorted((width, height))
    if size:
        if len(size) == 1:
            new_short, new_long = size[0], int(size[0] * long_edge / short_edge)
        else:
            new_short, new_long = min(size), max(size)
    else:
        new_short, new_long = short_edge, long_edge
    if max_size is not None and new_long > max_size:
        factor = max_size / new_long
        new_short, new_long = int(new_short * factor), max_size
    dims = (new_short, new_long) if width >= height else (new_long, new_short)
    return tuple(int(d / divisible) * divisible for d in dims)
