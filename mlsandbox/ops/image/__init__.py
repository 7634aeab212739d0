"""Image and image-text OPs with Data-Juicer 1.6.1's names and stat keys.

Importing this package registers every OP. A sample here has one image, so each stat is one
number per sample (Data-Juicer keeps a list per sample, one value per image). Model-backed OPs
load their model on the first batch (once per process) and read the batch's shared decode
(``ImageBatch.rgb``).
"""

from mlsandbox.ops.image.image_aesthetics_filter import ImageAestheticsFilter
from mlsandbox.ops.image.image_aspect_ratio_filter import ImageAspectRatioFilter
from mlsandbox.ops.image.image_nsfw_filter import ImageNSFWFilter
from mlsandbox.ops.image.image_shape_filter import ImageShapeFilter
from mlsandbox.ops.image.image_size_filter import ImageSizeFilter
from mlsandbox.ops.image.image_text_matching_filter import ImageTextMatchingFilter
from mlsandbox.ops.image.image_text_similarity_filter import ImageTextSimilarityFilter
from mlsandbox.ops.image.image_watermark_filter import ImageWatermarkFilter
from mlsandbox.ops.image.phrase_grounding_recall_filter import PhraseGroundingRecallFilter

__all__ = [
    "ImageAestheticsFilter",
    "ImageAspectRatioFilter",
    "ImageNSFWFilter",
    "ImageShapeFilter",
    "ImageSizeFilter",
    "ImageTextMatchingFilter",
    "ImageTextSimilarityFilter",
    "ImageWatermarkFilter",
    "PhraseGroundingRecallFilter",
]
