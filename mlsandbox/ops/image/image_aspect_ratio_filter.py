"""image_aspect_ratio_filter: width over height of the image."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.ops.data_juicer import DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register


@register
class ImageAspectRatioFilter(Op[ImageBatch]):
    """Width over height of the image.

    ``aspect_ratios`` = ``width / height`` from the image header (no pixel decode), as the image is
    shown: a 90° EXIF orientation swaps width and height, as Data-Juicer's image loading does.
    Version 2; version 1 read the stored width and height.

    Data-Juicer 1.6.1 defaults: keep ``0.333 <= aspect_ratios <= 3.0``.
    """

    name = "image_aspect_ratio_filter"
    modality = "image"
    version = 2
    stat_keys = ("aspect_ratios",)
    # One image per sample here, so Data-Juicer's any_or_all strategy makes no difference.
    data_juicer = DataJuicerFilter(
        {"aspect_ratios": StatArgs("min_ratio", "max_ratio", 0.333, 3.0)},
        inert={"any_or_all": "any"},
    )

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        width, height = batch.shapes[:, 0], batch.shapes[:, 1]
        return {"aspect_ratios": width / np.maximum(height, 1)}
