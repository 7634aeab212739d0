"""image_watermark_filter: probability that the image carries a watermark."""

from __future__ import annotations

from mlsandbox.ops._image_scoring import WATERMARK_DATA_JUICER_MODEL, ScoredImageOp, WatermarkParams
from mlsandbox.ops.registry import register

#: Data-Juicer's default watermark classifier (needs the model hub).
DATA_JUICER_MODEL = WATERMARK_DATA_JUICER_MODEL


@register
class ImageWatermarkFilter(ScoredImageOp):
    """Probability that the image carries a watermark, from an image classifier.

    ``image_watermark_prob`` = ``softmax(logits)[k]`` of a Hugging Face image classifier
    (``model``: hub name or local directory) on the sample's decoded RGB image (one decode per
    batch, shared by all OPs), with the classifier's own preprocessing; k = ``watermark_label``
    (a label name or a class index), by default the label whose name contains "watermark" and
    does not negate it (``watermark`` over ``no_watermark``), else index 1 of a two-class model.
    Batches of ``batch_size`` images, float32, under ``torch.inference_mode``.

    Difference from Data-Juicer: it reads softmax column 1 whatever the labels say; the default
    class here is the same whenever the watermark label is class 1 or the labels are unnamed
    (``LABEL_0``, ``LABEL_1``); ``watermark_label: 1`` forces Data-Juicer's column. No watermark
    classifier installs offline, so the default name needs the model hub; offline, set
    ``model`` to a local directory. Data-Juicer keeps one probability per image of a sample; a
    sample here has one image.

    Data-Juicer 1.6.1 defaults: ``hf_watermark_model="amrul-hzz/watermark_detector"``, keep
    ``image_watermark_prob <= 0.8`` (``prob_threshold=0.8``).
    """

    name = "image_watermark_filter"
    stat_keys = ("image_watermark_prob",)

    class Params(WatermarkParams):
        pass

    params: Params
