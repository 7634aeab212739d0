"""image_size_filter: encoded size of the image in bytes."""

from __future__ import annotations

import numpy as np

from mlsandbox.ops.base import Op
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.ops.registry import register


@register
class ImageSizeFilter(Op[ImageBatch]):
    """Encoded size of the image in bytes.

    ``image_sizes`` = the length in bytes of the image file (or of the row's image bytes).

    Data-Juicer 1.6.1 defaults: ``min_size="0"``, ``max_size="1TB"`` (2**40 bytes), i.e. keep
    every image.
    """

    name = "image_size_filter"
    modality = "image"
    stat_keys = ("image_sizes",)

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        return {"image_sizes": batch.image_sizes.copy()}
