"""video_watermark_filter: probability that the video's sampled frames carry a watermark."""

from __future__ import annotations

from mlsandbox.ops._image_scoring import WATERMARK_DATA_JUICER_MODEL, WatermarkParams
from mlsandbox.ops.base import DeviceParams
from mlsandbox.ops.data_juicer import DataJuicerArg, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register
from mlsandbox.ops.video._frames import ImageScoredFrameOp, SampledFrameParams

#: Data-Juicer's default watermark classifier (needs the model hub).
DATA_JUICER_MODEL = WATERMARK_DATA_JUICER_MODEL


@register
class VideoWatermarkFilter(ImageScoredFrameOp):
    """Probability that the video carries a watermark, reduced over sampled frames.

    ``video_watermark_prob`` = ``reduce_mode`` (``avg``: mean, ``max``, ``min``) over the video's
    sampled frames of ``softmax(logits)[k]`` of a Hugging Face image classifier (``model``: hub
    name or local directory) on each frame, with the classifier's own preprocessing; 0.0 for a
    video without frames. k = ``watermark_label`` (a label name or index), by default the label
    whose name contains "watermark" and does not negate it, else class 1 of a two-class model.
    Frames: ``frame_sampling_method`` ``"all_keyframes"`` (default: every key frame; the first
    frame if none is marked key) or ``"uniform"`` (``frame_num`` frames; see
    :class:`~mlsandbox.videos.UniformFrames`), from the batch's one shared decode, as RGB, in
    batches of ``batch_size`` across the batch's videos.

    Difference from Data-Juicer: it reads softmax column 1 whatever the labels say (the same
    class whenever the watermark label is class 1 or the labels are unnamed; ``watermark_label:
    1`` forces it). Its default model needs the hub; offline, set ``model`` to a local
    directory. ``model`` exports as ``hf_watermark_model``.

    Data-Juicer 1.6.1 defaults: ``hf_watermark_model="amrul-hzz/watermark_detector"``,
    ``frame_sampling_method="all_keyframes"``, ``frame_num=3``, ``reduce_mode="avg"``, keep
    ``video_watermark_prob <= 0.8`` (``prob_threshold=0.8``).
    """

    name = "video_watermark_filter"
    stat_keys = ("video_watermark_prob",)
    data_juicer = DataJuicerFilter(
        {"video_watermark_prob": StatArgs.ratio(None, "prob_threshold", None, 0.8)},
        inert={"any_or_all": "any"},
        renamed={"model": DataJuicerArg("hf_watermark_model", DATA_JUICER_MODEL)},
        local=frozenset({"watermark_label", "batch_size"}),
    )

    class Params(WatermarkParams, SampledFrameParams, DeviceParams):
        pass

    params: Params
