"""Image and image-text OPs with Data-Juicer 1.6.1's names and stat keys.

Importing this package registers every OP. A sample here has one image, so each stat is one
number per sample (Data-Juicer keeps a list per sample, one value per image).
"""

from mlsandbox.ops.image.image_aspect_ratio_filter import ImageAspectRatioFilter
from mlsandbox.ops.image.image_shape_filter import ImageShapeFilter
from mlsandbox.ops.image.image_size_filter import ImageSizeFilter

__all__ = ["ImageAspectRatioFilter", "ImageShapeFilter", "ImageSizeFilter"]
