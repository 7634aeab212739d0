"""video_resolution_filter: frame width and height of the video in pixels."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.data_juicer import UNBOUNDED, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register
from mlsandbox.ops.video.batch import VideoBatch


@register
class VideoResolutionFilter(Op[VideoBatch]):
    """Frame width and height of the video in pixels.

    ``video_width``, ``video_height``: the first video stream's coded frame size
    (``codec_context.width``, ``codec_context.height``) from the container header; no frame is
    decoded. Pools split on ``video_width``; recipes may bound either.

    Data-Juicer 1.6.1 defaults: keep any size (``min_width=min_height=1``,
    ``max_width=max_height=sys.maxsize``); a video passes when both its width and its height do.
    """

    name = "video_resolution_filter"
    modality = "video"
    stat_keys = ("video_width", "video_height")
    # One video per sample here, so Data-Juicer's any_or_all strategy makes no difference.
    data_juicer = DataJuicerFilter(
        {"video_width": StatArgs.count("min_width", "max_width", 1, UNBOUNDED, floor=1),
         "video_height": StatArgs.count("min_height", "max_height", 1, UNBOUNDED, floor=1)},
        inert={"any_or_all": "any"},
    )

    def compute(self, batch: VideoBatch) -> dict[str, np.ndarray]:
        headers = batch.headers
        return {
            "video_width": np.array([h.width for h in headers], dtype=np.int64),
            "video_height": np.array([h.height for h in headers], dtype=np.int64),
        }
