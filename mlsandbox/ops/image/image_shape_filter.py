"""image_shape_filter: width and height of the image in pixels."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.ops.data_juicer import UNBOUNDED, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register


@register
class ImageShapeFilter(Op[ImageBatch]):
    """Width and height of the image in pixels.

    ``image_width``, ``image_height``: the size the image header declares (no pixel decode), as
    the image is shown: a 90° EXIF orientation swaps them, as Data-Juicer's image loading does.
    Version 2; version 1 read the stored width and height.
    Pools split on ``image_width``; recipes may bound either.

    Data-Juicer 1.6.1 defaults: keep any width and height (``min_width=min_height=1``,
    ``max_width=max_height=sys.maxsize``).
    """

    name = "image_shape_filter"
    modality = "image"
    version = 2
    stat_keys = ("image_width", "image_height")
    # One image per sample here, so Data-Juicer's any_or_all strategy makes no difference.
    data_juicer = DataJuicerFilter(
        {"image_width": StatArgs.count("min_width", "max_width", 1, UNBOUNDED, floor=1),
         "image_height": StatArgs.count("min_height", "max_height", 1, UNBOUNDED, floor=1)},
        inert={"any_or_all": "any"},
    )

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        return {"image_width": batch.shapes[:, 0].copy(), "image_height": batch.shapes[:, 1].copy()}
