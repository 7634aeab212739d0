"""What an image-scoring OP shares with its video counterpart: its params and its lazily loaded scorer.

``image_aesthetics_filter`` and ``video_aesthetics_filter`` (likewise the NSFW and the watermark
pairs) take the same params and score an image, or each sampled frame, with the same model code,
so that a threshold means the same on both. Each pair's params live here with the scorer they
build; :class:`ImageScoring` builds it on the OP's first batch, so that creating an OP loads
nothing and a worker loads the model once. A video OP's ``Params`` derives from a pair's params,
``SampledFrameParams`` and ``DeviceParams``, in that order: that keeps its fields in the order
they had (device, frame sampling, the model's), which its repr and Data-Juicer export show.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from mlsandbox.errors import KeyValueError
from mlsandbox.ops.base import DeviceParams, Op
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.ops.vision_models import AestheticsScorer, ClassProbability, open_nsfw_scores
from mlsandbox.runtime import resolve_device

if TYPE_CHECKING:
    from PIL import Image

    #: Scores of images (one per image), computed in batches of the given size.
    ImageScorer = Callable[[Sequence[Image.Image], int], np.ndarray]

#: Data-Juicer's default aesthetics predictor (CLIP ViT-L/14 + linear layers rating 0-10; needs the hub).
AESTHETICS_DATA_JUICER_MODEL = "shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE"
#: Data-Juicer's default watermark classifier (needs the model hub).
WATERMARK_DATA_JUICER_MODEL = "amrul-hzz/watermark_detector"


class ScorerParams(DeviceParams):
    """Params that name an image-scoring model; they build its scorer, so image and video OPs build it alike."""

    if TYPE_CHECKING:  # each subclass's last field: declared there, so the params keep their order
        batch_size: int

    @abstractmethod
    def scorer(self, op: str) -> ImageScorer:
        """The model's scorer (loading the model, once per process); errors name ``op``."""


class AestheticsParams(ScorerParams):
    """The aesthetics OPs' params: a LAION predictor or single-output model (output / ``score_scale``),
    or a classifier's ``positive_label``. Subclasses set ``op_name``, which the missing-model error names."""

    op_name: ClassVar[str]
    model: str | None = None
    positive_label: str | int | None = None
    score_scale: float = Field(10.0, gt=0)
    batch_size: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _needs_a_model(self) -> AestheticsParams:
        if self.model is None:
            raise ValueError(
                f"{self.op_name} needs `model`: no aesthetics predictor installs offline. Name "
                f"Data-Juicer's default {AESTHETICS_DATA_JUICER_MODEL} where the Hugging Face hub is reachable, or a "
                "local directory holding an aesthetics predictor or image classifier and its processor"
            )
        return self

    def scorer(self, op: str) -> ImageScorer:
        assert self.model is not None
        return AestheticsScorer(self.model, self.positive_label, self.score_scale, op=op,
                                device=resolve_device(self.device))


class NSFWParams(ScorerParams):
    """The NSFW OPs' params: the packaged open-NSFW network (``model=None``) or a classifier's ``nsfw_label``."""

    model: str | None = None
    nsfw_label: str | int | None = None
    batch_size: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _label_needs_a_model(self) -> NSFWParams:
        if self.nsfw_label is not None and self.model is None:
            raise KeyValueError("nsfw_label", self.nsfw_label, "picks a class of a Hugging Face `model`; the default "
                                "model has a single score: set model, or leave nsfw_label out")
        return self

    def scorer(self, op: str) -> ImageScorer:
        if self.model is None:
            return open_nsfw_scores
        return ClassProbability(self.model, self.nsfw_label, "nsfw", op=op, label_param="nsfw_label",
                                device=resolve_device(self.device))


class WatermarkParams(ScorerParams):
    """The watermark OPs' params: an image classifier and its ``watermark_label``."""

    model: str = WATERMARK_DATA_JUICER_MODEL
    watermark_label: str | int | None = None
    batch_size: int = Field(32, ge=1)

    def scorer(self, op: str) -> ImageScorer:
        return ClassProbability(self.model, self.watermark_label, "watermark", op=op,
                                label_param="watermark_label", device=resolve_device(self.device))


class ImageScoring:
    """Mixin of an OP (listed before its :class:`Op` base) that scores images with its params' model.

    The scorer is built on the first batch, not when the OP is created: creating an OP (to read
    its identity, or in a recipe) must not load a model.
    """

    name: ClassVar[str]
    params: ScorerParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._scorer: ImageScorer | None = None

    def image_scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        """One score per image, in batches of ``batch_size``."""
        if self._scorer is None:
            self._scorer = self.params.scorer(self.name)
        return self._scorer(images, self.params.batch_size)


class ScoredImageOp(ImageScoring, Op[ImageBatch]):
    """An image OP whose one stat is its model's score of the sample's decoded RGB image.

    Subclasses set ``name``, ``stat_keys`` and a ``Params`` subclass of :class:`ScorerParams`.
    """

    modality = "image"
    max_batch = 256
    params: ScorerParams

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        key = self.stat_keys[0]
        if len(batch) == 0:
            return {key: np.zeros(0, dtype=np.float64)}
        return {key: self.image_scores(batch.rgb)}
