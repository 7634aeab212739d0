"""video_duration_filter: length of the video in seconds."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.data_juicer import UNBOUNDED, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register
from mlsandbox.ops.video.batch import VideoBatch


@register
class VideoDurationFilter(Op[VideoBatch]):
    """Length of the video in seconds.

    ``video_duration`` = the first video stream's duration as its container header states it
    (``stream.duration * stream.time_base``), else the container's duration; no frame is decoded.
    This is what Data-Juicer's default ``ffmpeg`` backend reads (ffprobe's stream duration, else
    the format's) and what its ``av`` backend reads.

    Data-Juicer 1.6.1 defaults: keep ``0 <= video_duration <= sys.maxsize``.
    """

    name = "video_duration_filter"
    modality = "video"
    stat_keys = ("video_duration",)
    # One video per sample here, so Data-Juicer's any_or_all strategy makes no difference.
    data_juicer = DataJuicerFilter(
        {"video_duration": StatArgs("min_duration", "max_duration", 0, UNBOUNDED)},
        inert={"any_or_all": "any"},
    )

    def compute(self, batch: VideoBatch) -> dict[str, np.ndarray]:
        return {"video_duration": np.array([float(h.duration) for h in batch.headers], dtype=np.float64)}
