"""image_watermark_filter: probability that the image carries a watermark."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from mlsandbox.ops.base import DeviceParams, Op
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.ops.image._hf import ClassProbability
from mlsandbox.ops.registry import register
from mlsandbox.runtime import resolve_device

#: Data-Juicer's default watermark classifier (needs the model hub).
DATA_JUICER_MODEL = "amrul-hzz/watermark_detector"


@register
class ImageWatermarkFilter(Op[ImageBatch]):
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
    modality = "image"
    stat_keys = ("image_watermark_prob",)
    max_batch = 256

    class Params(DeviceParams):
        model: str = DATA_JUICER_MODEL
        watermark_label: str | int | None = None
        batch_size: int = Field(32, ge=1)

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._scorer: ClassProbability | None = None

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        if len(batch) == 0:
            return {"image_watermark_prob": np.zeros(0, dtype=np.float64)}
        if self._scorer is None:
            p = self.params
            self._scorer = ClassProbability(p.model, p.watermark_label, "watermark", op=self.name,
                                            label_param="watermark_label", device=resolve_device(p.device))
        return {"image_watermark_prob": self._scorer(batch.rgb, self.params.batch_size)}
