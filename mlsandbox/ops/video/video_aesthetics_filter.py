"""video_aesthetics_filter: predicted aesthetic quality of the video's sampled frames."""

from __future__ import annotations

from typing import Literal

from mlsandbox.ops._image_scoring import AESTHETICS_DATA_JUICER_MODEL, AestheticsParams
from mlsandbox.ops.base import DeviceParams
from mlsandbox.ops.data_juicer import UNBOUNDED, DataJuicerArg, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register
from mlsandbox.ops.video._frames import ImageScoredFrameOp, SampledFrameParams

#: Data-Juicer's default predictor (CLIP ViT-L/14 + linear layers rating 0-10; needs the hub).
DATA_JUICER_MODEL = AESTHETICS_DATA_JUICER_MODEL


@register
class VideoAestheticsFilter(ImageScoredFrameOp):
    """Predicted aesthetic quality of the video, reduced over sampled frames.

    ``video_frames_aesthetics_score`` = ``reduce_mode`` (``avg``: mean, ``max``, ``min``) over the
    video's sampled frames of each frame's aesthetic score; 0.0 for a video without frames.
    Frames: ``frame_sampling_method`` ``"uniform"`` (default: ``frame_num`` frames at
    ``i * duration / (frame_num - 1)``, the middle one for ``frame_num=1``; see
    :class:`~mlsandbox.videos.UniformFrames`) or ``"all_keyframes"``, from the batch's one shared
    decode, as RGB.

    The frame score is the image aesthetics OP's, from the same model code: a LAION aesthetics
    predictor (config architecture ``AestheticsPredictorV1``, ``AestheticsPredictorV2Linear`` or
    ``AestheticsPredictorV2ReLU``) or any single-output image model gives output /
    ``score_scale`` (default 10: a 0-10 rating becomes 0-1); an image classifier gives
    ``softmax(logits)[k]``, k = ``positive_label`` (required for classifiers). ``model`` (a hub
    name or local directory) is required: no aesthetics model installs offline. Frames run in
    batches of ``batch_size`` across the batch's videos.

    Difference from Data-Juicer: it divides by 10 only when the model *name* contains
    ``aesthetics-predictor`` and reduces a classifier's logits over every class; here the scale
    is ``score_scale`` and a classifier's class is named. ``model`` exports as ``hf_scorer_model``.

    Data-Juicer 1.6.1 defaults: ``hf_scorer_model`` = the model above,
    ``frame_sampling_method="uniform"``, ``frame_num=3``, ``reduce_mode="avg"``, keep
    ``0.4 <= video_frames_aesthetics_score <= 1.0``.
    """

    name = "video_aesthetics_filter"
    stat_keys = ("video_frames_aesthetics_score",)
    data_juicer = DataJuicerFilter(
        {"video_frames_aesthetics_score": StatArgs("min_score", "max_score", 0.4, 1.0,
                                                   floor=-float(UNBOUNDED), ceiling=UNBOUNDED)},
        inert={"any_or_all": "any"},
        renamed={"model": DataJuicerArg("hf_scorer_model", DATA_JUICER_MODEL)},
        local=frozenset({"positive_label", "score_scale", "batch_size"}),
    )

    class Params(AestheticsParams, SampledFrameParams, DeviceParams):
        op_name = "video_aesthetics_filter"
        frame_sampling_method: Literal["all_keyframes", "uniform"] = "uniform"

    params: Params
