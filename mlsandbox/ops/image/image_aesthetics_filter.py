"""image_aesthetics_filter: predicted aesthetic quality of the image."""

from __future__ import annotations

from mlsandbox.ops._image_scoring import AESTHETICS_DATA_JUICER_MODEL, AestheticsParams, ScoredImageOp
from mlsandbox.ops.registry import register
from mlsandbox.ops.vision_models import laion_predictor_class

__all__ = ["DATA_JUICER_MODEL", "ImageAestheticsFilter", "laion_predictor_class"]

#: Data-Juicer's default predictor (CLIP ViT-L/14 + linear layers rating 0-10; needs the hub).
DATA_JUICER_MODEL = AESTHETICS_DATA_JUICER_MODEL


@register
class ImageAestheticsFilter(ScoredImageOp):
    """Predicted aesthetic quality of the image, from an aesthetics predictor or classifier.

    ``image_aesthetics_scores`` for the sample's decoded RGB image (one decode per batch, shared
    by all OPs), with the model's own preprocessing, in batches of ``batch_size``:

    - a LAION aesthetics predictor (config architecture ``AestheticsPredictorV1``,
      ``AestheticsPredictorV2Linear`` or ``AestheticsPredictorV2ReLU``: a CLIP vision tower whose
      L2-normalised image embedding feeds a linear or MLP head that rates 0-10), or any Hugging
      Face image model with a single output (a regression head): output / ``score_scale``
      (default 10, so a 0-10 rating becomes 0-1);
    - an image classifier with several classes: ``softmax(logits)[k]``, k = ``positive_label``
      (a label name or a class index; required).

    ``model`` (a hub name or local directory) is required: no aesthetics model installs
    offline. Data-Juicer's default is ``shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE``
    (CLIP ViT-L/14 with a linear head); name it where the hub is reachable.

    Difference from Data-Juicer: it loads the LAION predictors through the
    ``simple-aesthetics-predictor`` package, picking the class from the model *name* ("v1",
    "v2" + "linear"/"relu"), and divides by 10 only when the name contains
    ``shunk031/aesthetics-predictor`` (so a local copy of its default gets raw 0-10 ratings);
    here the class comes from the model's config, the same head is built in, and the division
    is explicit (``score_scale``). Data-Juicer cannot score classifiers. It keeps one score per
    image of a sample; a sample here has one image.

    Data-Juicer 1.6.1 defaults: ``hf_scorer_model=""`` (meaning the model above), keep
    ``0.5 <= image_aesthetics_scores <= 1.0``.
    """

    name = "image_aesthetics_filter"
    stat_keys = ("image_aesthetics_scores",)

    class Params(AestheticsParams):
        op_name = "image_aesthetics_filter"

    params: Params
