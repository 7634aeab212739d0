"""image_aesthetics_filter: predicted aesthetic quality of the image."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from mlsandbox.ops.base import Op, OpParams
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.ops.image._hf import image_logits, label_index, load_config, load_pretrained
from mlsandbox.ops.registry import register

#: Data-Juicer's default predictor (CLIP ViT-L/14 + linear layers rating 0-10; needs the hub).
DATA_JUICER_MODEL = "shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE"
#: Architectures of the LAION aesthetics predictors as published by ``simple-aesthetics-predictor``.
LAION_PREDICTORS = ("AestheticsPredictorV1", "AestheticsPredictorV2Linear", "AestheticsPredictorV2ReLU")


@register
class ImageAestheticsFilter(Op[ImageBatch]):
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
    modality = "image"
    stat_keys = ("image_aesthetics_scores",)
    max_batch = 256

    class Params(OpParams):
        model: str | None = None
        positive_label: str | int | None = None
        score_scale: float = Field(10.0, gt=0)
        batch_size: int = Field(32, ge=1)

        @model_validator(mode="after")
        def _needs_a_model(self) -> ImageAestheticsFilter.Params:
            if self.model is None:
                raise ValueError(
                    "image_aesthetics_filter needs `model`: no aesthetics predictor installs offline. Name "
                    f"Data-Juicer's default {DATA_JUICER_MODEL} where the Hugging Face hub is reachable, or a "
                    "local directory holding an aesthetics predictor or image classifier and its processor"
                )
            return self

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._loaded: tuple[Any, Any, int | None] | None = None

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        if len(batch) == 0:
            return {"image_aesthetics_scores": np.zeros(0, dtype=np.float64)}
        p = self.params
        if self._loaded is None:
            self._loaded = self._load()
        model, processor, positive = self._loaded
        logits = image_logits(model, processor, batch.rgb, p.batch_size)
        if positive is None:
            scores = logits[:, 0] / p.score_scale
        else:
            scores = logits.softmax(dim=-1)[:, positive]
        return {"image_aesthetics_scores": scores.double().numpy()}

    def _load(self) -> tuple[Any, Any, int | None]:
        p = self.params
        assert p.model is not None
        config = load_config(p.model, op=self.name)
        architecture = next(iter(getattr(config, "architectures", None) or []), "")
        if architecture in LAION_PREDICTORS:
            model_class: str | type = laion_predictor_class(architecture)
        else:
            model_class = "AutoModelForImageClassification"
        model, processor = load_pretrained(p.model, model_class, processor_class="AutoImageProcessor", op=self.name)
        outputs = 1 if architecture in LAION_PREDICTORS else int(model.config.num_labels)
        if outputs == 1:
            if p.positive_label is not None:
                raise ValueError(f"{self.name}: `positive_label` picks a class, but {p.model!r} has a single output")
            return model, processor, None
        return model, processor, label_index(model.config, p.positive_label, None, op=self.name,
                                             param="positive_label")


@cache
def laion_predictor_class(architecture: str) -> type:
    """The LAION aesthetics predictor ``architecture``, state-dict compatible with its published weights.

    The same modules as ``simple-aesthetics-predictor`` 0.1.2 (a ``CLIPVisionModelWithProjection``
    plus ``predictor`` (V1) or ``layers`` (V2) on the L2-normalised image embedding), built here
    so that loading needs only transformers.
    """
    from torch import nn
    from transformers import CLIPVisionModelWithProjection
    from transformers.modeling_outputs import ImageClassifierOutputWithNoAttention

    def head(dim: int) -> tuple[str, nn.Module]:
        if architecture == "AestheticsPredictorV1":
            return "predictor", nn.Linear(dim, 1)
        relu = architecture == "AestheticsPredictorV2ReLU"
        widths, drops = [dim, 1024, 128, 64, 16], [0.2, 0.2, 0.1, None]
        modules: list[nn.Module] = []
        for w_in, w_out, drop in zip(widths, widths[1:], drops):
            modules.append(nn.Linear(w_in, w_out))
            modules.extend([nn.ReLU()] if relu else [])
            modules.extend([nn.Dropout(drop)] if drop is not None else [])
        modules.append(nn.Linear(16, 1))
        return "layers", nn.Sequential(*modules)

    class LaionAestheticsPredictor(CLIPVisionModelWithProjection):
        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.head_name, module = head(config.projection_dim)
            self.add_module(self.head_name, module)
            self.post_init()

        def forward(self, pixel_values: Any = None, **kwargs: Any) -> ImageClassifierOutputWithNoAttention:
            embeds = super().forward(pixel_values=pixel_values).image_embeds
            embeds = embeds / embeds.norm(dim=-1, keepdim=True)
            return ImageClassifierOutputWithNoAttention(logits=getattr(self, self.head_name)(embeds))

    LaionAestheticsPredictor.__name__ = LaionAestheticsPredictor.__qualname__ = architecture
    return LaionAestheticsPredictor
