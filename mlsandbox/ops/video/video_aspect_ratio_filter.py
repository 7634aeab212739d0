"""video_aspect_ratio_filter: frame width over frame height of the video."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.data_juicer import DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register
from mlsandbox.ops.video.batch import VideoBatch


@register
class VideoAspectRatioFilter(Op[VideoBatch]):
    """Frame width over frame height of the video.

    ``video_aspect_ratios`` = ``width / height`` of the first video stream's coded frame size
    (``codec_context.width``, ``codec_context.height``) from the container header; no frame is
    decoded. Like Data-Juicer, it ignores the sample aspect ratio (non-square pixels) and any
    rotation metadata.

    Data-Juicer 1.6.1 defaults: keep ``9/21 <= video_aspect_ratios <= 21/9``
    (``min_ratio="9/21"``, ``max_ratio="21/9"``). Data-Juicer reads the bounds as exact fractions
    of their text and compares them exactly with the float ratio, so a 4:3 clip (ratio
    ``4 / 3`` in floating point, just below 4/3) fails ``min_ratio="4/3"``; the export writes
    each bound as a decimal string that keeps exactly the clips the sandbox kept.
    """

    name = "video_aspect_ratio_filter"
    modality = "video"
    stat_keys = ("video_aspect_ratios",)
    # One video per sample here, so Data-Juicer's any_or_all strategy makes no difference.
    data_juicer = DataJuicerFilter(
        {"video_aspect_ratios": StatArgs("min_ratio", "max_ratio", Fraction(9, 21), Fraction(21, 9), fraction=True)},
        inert={"any_or_all": "any"},
    )

    def compute(self, batch: VideoBatch) -> dict[str, np.ndarray]:
        return {"video_aspect_ratios": np.array([h.width / h.height for h in batch.headers], dtype=np.float64)}
