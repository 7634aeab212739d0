"""video_ocr_area_ratio_filter: share of the frame area covered by detected text."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from mlsandbox.errors import ModelUnavailableError
from mlsandbox.ops.base import OpParams
from mlsandbox.ops.data_juicer import UNBOUNDED, DataJuicerFilter, StatArgs
from mlsandbox.ops.registry import register
from mlsandbox.ops.video._frames import FrameOp
from mlsandbox.ops.video.batch import VideoBatch
from mlsandbox.videos import INSTALL, FrameSampling, UniformFrames

#: The text detector RapidOCR ships (PP-OCRv4 detection, Chinese and English, as ONNX).
DETECTOR_FILE = "ch_PP-OCRv4_det_infer.onnx"


@register
class VideoOcrAreaRatioFilter(FrameOp):
    """Share of the frame area covered by detected text, averaged over uniformly sampled frames.

    ``video_ocr_area_ratio`` = the mean, over ``frame_sample_num`` uniformly sampled frames
    (times ``i * duration / (n - 1)``, the middle one for ``n = 1``; see
    :class:`~mlsandbox.videos.UniformFrames`), of ``text area / (width * height)``, where the text
    area is the sum over detected text boxes of each box's area, a box ``p0 p1 p2 p3`` counting
    as the triangles ``(p0, p1, p2)`` and ``(p2, p3, p0)``: Data-Juicer's formula for its
    free-form boxes (for its axis-aligned boxes it is the rectangle area, the same number).
    Overlapping boxes count twice, as in Data-Juicer, so the stat can in principle pass 1.

    Text is detected by the PP-OCRv4 detector (DB, Chinese and English) that ships inside the
    ``rapidocr-onnxruntime`` package, run on ONNX Runtime with RapidOCR's settings (box
    threshold 0.5, unclip ratio 1.6; a frame whose shorter side is under ``det_limit_side_len``,
    default RapidOCR's 736, is enlarged to it) on each frame as BGR; boxes are RapidOCR's
    quadrilaterals, clipped to the frame. No recognition runs. Detection dominates the cost (about
    a second per frame on one CPU core at 736); a smaller ``det_limit_side_len`` is faster and
    finds less small text.

    Difference from Data-Juicer: it detects with EasyOCR's CRAFT model
    (``languages_to_detect=["ch_sim", "en"]``, downloaded at first use), which finds somewhat
    different boxes; the definition of the ratio is the same. An exported config runs
    Data-Juicer's detector.

    Data-Juicer 1.6.1 defaults: ``frame_sample_num=3``, keep
    ``0 <= video_ocr_area_ratio <= 1.0``.
    """

    name = "video_ocr_area_ratio_filter"
    stat_keys = ("video_ocr_area_ratio",)
    packages = ("rapidocr-onnxruntime",)  # its text detector
    data_juicer = DataJuicerFilter(
        {"video_ocr_area_ratio": StatArgs("min_area_ratio", "max_area_ratio", 0.0, 1.0, ceiling=UNBOUNDED)},
        inert={"any_or_all": "any"},
        local=frozenset({"det_limit_side_len"}),
    )

    class Params(OpParams):
        frame_sample_num: int = Field(3, ge=1)
        # Frames are enlarged to this shorter side: beyond 2048 one frame's detector pass needs many GiB.
        det_limit_side_len: int = Field(736, ge=32, le=2048)

    params: Params

    def frame_sampling(self) -> FrameSampling:
        return UniformFrames(self.params.frame_sample_num)

    def compute(self, batch: VideoBatch) -> dict[str, np.ndarray]:
        out = np.zeros(len(batch), dtype=np.float64)
        if len(batch) == 0:
            return {"video_ocr_area_ratio": out}
        detector = text_detector(self.params.det_limit_side_len)
        for i, frames in enumerate(batch.frames(self.frame_sampling())):
            ratios = [text_area(detect_boxes(detector, frame)) / (frame.shape[0] * frame.shape[1]) for frame in frames]
            out[i] = float(np.mean(ratios)) if ratios else 0.0
        return {"video_ocr_area_ratio": out}


def detect_boxes(detector: Any, rgb: np.ndarray) -> np.ndarray:
    """The detector's text boxes in an RGB frame: ``(n, 4, 2)`` corner points, frame coordinates."""
    boxes, _ = detector(np.ascontiguousarray(rgb[..., ::-1]))  # PP-OCR models read BGR
    if boxes is None or len(boxes) == 0:
        return np.zeros((0, 4, 2), dtype=np.float64)
    return np.asarray(boxes, dtype=np.float64)


def triangle_area(p1: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> float:
    """Data-Juicer's shoelace area of a triangle."""
    (x1, y1), (x2, y2), (x3, y3) = p1, p2, p3
    return float(0.5 * np.abs(x1 * y2 + x2 * y3 + x3 * y1 - x2 * y1 - x3 * y2 - x1 * y3))


def text_area(boxes: np.ndarray) -> float:
    """Sum of the boxes' areas, each quadrilateral as two triangles (Data-Juicer's free-form rule)."""
    return sum(triangle_area(b[0], b[1], b[2]) + triangle_area(b[2], b[3], b[0]) for b in boxes)


@cache
def text_detector(limit_side_len: int = 736) -> Any:
    """RapidOCR's packaged text detector with its own settings, once per process (and size limit)."""
    try:
        import yaml
        from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
    except ImportError:
        raise ModelUnavailableError(
            f"video_ocr_area_ratio_filter's text detector ships in the rapidocr-onnxruntime package: {INSTALL}"
        ) from None
    import rapidocr_onnxruntime

    package = Path(rapidocr_onnxruntime.__file__).parent
    config = dict(yaml.safe_load((package / "config.yaml").read_text(encoding="utf-8"))["Det"])
    config["model_path"] = str(package / "models" / DETECTOR_FILE)
    config["limit_side_len"] = limit_side_len
    # ONNX Runtime ignores OMP_NUM_THREADS: pass the stats workers' one-thread setting on.
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        config["intra_op_num_threads"] = int(threads)
    return TextDetector(config)
