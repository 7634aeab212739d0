"""Video and video-text OPs with Data-Juicer 1.6.1's names and stat keys.

Importing this package registers every OP. A sample here has one video, so each stat is one
number per sample (Data-Juicer keeps a list per sample, one value per video). Header OPs read the
container header and decode nothing; frame OPs say which frames they read
(:meth:`FrameOp.frame_sampling`), and a :class:`VideoBatch` built with the plan of a pass
(:func:`frame_samplings`) decodes each video once for all of them. Model-backed OPs load their
model on the first batch (once per process).
"""

from mlsandbox.ops.video._frames import FrameOp, frame_samplings
from mlsandbox.ops.video.batch import VideoBatch
from mlsandbox.ops.video.video_aesthetics_filter import VideoAestheticsFilter
from mlsandbox.ops.video.video_aspect_ratio_filter import VideoAspectRatioFilter
from mlsandbox.ops.video.video_duration_filter import VideoDurationFilter
from mlsandbox.ops.video.video_frames_text_similarity_filter import VideoFramesTextSimilarityFilter
from mlsandbox.ops.video.video_motion_score_filter import VideoMotionScoreFilter
from mlsandbox.ops.video.video_nsfw_filter import VideoNSFWFilter
from mlsandbox.ops.video.video_ocr_area_ratio_filter import VideoOcrAreaRatioFilter
from mlsandbox.ops.video.video_resolution_filter import VideoResolutionFilter
from mlsandbox.ops.video.video_watermark_filter import VideoWatermarkFilter

__all__ = [
    "FrameOp",
    "VideoAestheticsFilter",
    "VideoAspectRatioFilter",
    "VideoBatch",
    "VideoDurationFilter",
    "VideoFramesTextSimilarityFilter",
    "VideoMotionScoreFilter",
    "VideoNSFWFilter",
    "VideoOcrAreaRatioFilter",
    "VideoResolutionFilter",
    "VideoWatermarkFilter",
    "frame_samplings",
]
