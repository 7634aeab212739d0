"""The text-to-video proxy model: a tiny Latte-style diffusion transformer and BERT text encoder
trained from scratch on a pool's (clip, caption) pairs, and its VBench-style benchmark dimensions."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from test_video_data import encode_clip

from mlsandbox.errors import EvaluationError, TrainingError, TrainingPruned
from mlsandbox.models import Benchmark, TrainingJob, load_benchmark, load_model, model_types, trainer_for
from mlsandbox.models.tiny_t2v import TinyT2V, TinyT2VTrainer, pair_losses
from mlsandbox.models.video_clips import VideoClips, clip_array
from mlsandbox.models.video_quality import (
    alignment_accuracy,
    dynamic_degree,
    motion_smoothness,
    temporal_flickering,
)
from mlsandbox.spec import BenchmarkSpec, TinyT2VSpec, model_spec_from_dict

BACKGROUNDS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 220), "yellow": (235, 205, 30)}
MOTIONS = ("left", "right")

SMALL = TinyT2VSpec(
    vocab_size=300, frames=4, frame_size=8, patch_size=4, n_layer=1, n_embd=32, n_head=2, text_layers=1,
    text_width=32, max_caption_tokens=8, diffusion_steps=100, batch_size=16, max_steps=150, learning_rate=3e-3,
    cond_dropout=0.1, eval_timesteps=[20, 50, 80], retrieval_timesteps=[50, 80], retrieval_clips=24,
    retrieval_candidates=4, generate_clips=4, sample_steps=4, threads=1, eval_batch_size=64,
)


def frames(colour: str, motion: str, n: int, rng: random.Random, size: int = 16) -> list[np.ndarray]:
    """A white square crossing a plain background of ``colour`` towards ``motion``."""
    start = rng.uniform(1, 3)
    out = []
    for i in range(n):
        frame = np.zeros((size, size, 3), np.uint8) + np.array(BACKGROUNDS[colour], np.uint8)
        x = int(round(start + 2 * i)) if motion == "right" else int(round(size - 6 - start - 2 * i))
        frame[5:11, x : x + 5] = 255
        out.append(frame)
    return out


def videos(n: int, seed: int) -> tuple[list[str], list[bytes]]:
    """``n`` clips captioned ``<colour> background, a square moves <motion>``."""
    rng = random.Random(seed)
    captions, clips = [], []
    for _ in range(n):
        colour, motion = rng.choice(sorted(BACKGROUNDS)), rng.choice(MOTIONS)
        captions.append(f"{colour} background, a square moves {motion}")
        clips.append(encode_clip(frames(colour, motion, 5, rng)))
    return captions, clips


_captions, _clips = videos(32, 1)
HELD_OUT = Benchmark("squares", _captions, videos=_clips)
#: The tests that build the network need diffusers (the video extra); the others run without it.
needs_diffusers = pytest.mark.skipif(importlib.util.find_spec("diffusers") is None,
                                     reason="tiny-t2v needs diffusers: pip install 'mlsandbox[video]'")
METRICS = {"denoise_loss", "score", "retrieval_acc", "temporal_flickering", "motion_smoothness", "dynamic_degree",
           "alignment_acc"}


def job(tmp_path: Path, seed: int = 0, **kwargs) -> TrainingJob:
    captions, clips = videos(96, 0)
    defaults = {
        "texts": captions, "videos": clips, "output_dir": tmp_path / "out", "seed": seed,
        "tokenizer_texts": captions, "source_digest": "squares-v1", "cache_dir": tmp_path / "cache",
    }
    return TrainingJob(**{**defaults, **kwargs})


def train(tmp_path: Path, spec: TinyT2VSpec = SMALL, **kwargs) -> TinyT2V:
    model = trainer_for(spec).train(job(tmp_path, **kwargs))
    assert isinstance(model, TinyT2V)
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TinyT2V:
    return train(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="module")
def trained_metrics(trained: TinyT2V) -> dict[str, float]:
    return trained.benchmark_metrics(HELD_OUT)


def test_tiny_t2v_is_a_registered_model_type() -> None:
    assert "tiny-t2v" in model_types()
    assert isinstance(trainer_for(SMALL), TinyT2VTrainer)
    assert isinstance(model_spec_from_dict({"type": "tiny-t2v", "max_steps": 5}), TinyT2VSpec)


@needs_diffusers
def test_the_model_learns_to_denoise_held_out_clips(tmp_path: Path, trained_metrics: dict[str, float]) -> None:
    barely = train(tmp_path, SMALL.model_copy(update={"max_steps": 1, "learning_rate": 1e-6}))
    assert set(trained_metrics) == METRICS
    assert trained_metrics["denoise_loss"] < 0.7 * barely.benchmark_metrics(HELD_OUT)["denoise_loss"]
    assert trained_metrics["score"] == pytest.approx(1 / trained_metrics["denoise_loss"])


@needs_diffusers
def test_the_caption_conditions_the_denoising(trained: TinyT2V, trained_metrics: dict[str, float]) -> None:
    # Four candidate captions per clip: chance is 0.25; the background colour is in the caption.
    assert trained_metrics["retrieval_acc"] > 0.5
    shuffled = Benchmark("shuffled", random.Random(3).sample(_captions, len(_captions)), videos=_clips)
    assert trained.benchmark_metrics(shuffled)["denoise_loss"] > trained_metrics["denoise_loss"]


@needs_diffusers
def test_generated_clips_are_scored_on_every_dimension(trained_metrics: dict[str, float]) -> None:
    for name in ("temporal_flickering", "motion_smoothness", "dynamic_degree", "alignment_acc"):
        assert 0.0 <= trained_metrics[name] <= 1.0


@needs_diffusers
def test_a_benchmark_of_one_caption_has_no_retrieval_accuracy(trained: TinyT2V) -> None:
    one = Benchmark("one", [_captions[0]] * 3, videos=_clips[:3])
    metrics = trained.benchmark_metrics(one)
    assert "retrieval_acc" not in metrics and metrics["score"] > 0


@needs_diffusers
def test_same_seed_gives_identical_metrics_and_another_seed_does_not(tmp_path: Path) -> None:
    spec = SMALL.model_copy(update={"max_steps": 10})
    first = train(tmp_path, spec, seed=3).benchmark_metrics(HELD_OUT)
    assert train(tmp_path, spec, seed=3).benchmark_metrics(HELD_OUT) == first
    assert train(tmp_path, spec, seed=4).benchmark_metrics(HELD_OUT)["denoise_loss"] != first["denoise_loss"]


@needs_diffusers
def test_save_and_load_round_trip(tmp_path: Path, trained: TinyT2V, trained_metrics: dict[str, float]) -> None:
    trained.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert isinstance(loaded, TinyT2V)
    assert loaded.spec == SMALL and loaded.info["steps"] == 150
    assert loaded.benchmark_metrics(HELD_OUT) == pytest.approx(trained_metrics, rel=1e-5)


@needs_diffusers
def test_the_benchmark_noise_is_fixed_so_scores_compare_across_models(trained: TinyT2V) -> None:
    clips = VideoClips(_clips[:4], SMALL.frames, SMALL.frame_size)
    x0 = clips.batch(torch.arange(4))
    seqs = [[0, 5, 0]] * 4
    pairs = [(i, i) for i in range(4)]
    assert pair_losses(trained.model, SMALL, x0, seqs, pairs, [50]) == pair_losses(trained.model, SMALL, x0, seqs,
                                                                                    pairs, [50])


def test_training_without_videos_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="needs a video-text dataset: set dataset.video_field"):
        train(tmp_path, videos=None)


@needs_diffusers
def test_scoring_needs_videos(trained: TinyT2V) -> None:
    with pytest.raises(EvaluationError, match="video"):
        trained.bits_per_byte(["red background"])
    with pytest.raises(EvaluationError, match="has no videos"):
        trained.benchmark_metrics(Benchmark("texts-only", ["red background"]))


@needs_diffusers
def test_a_corrupt_clip_names_its_sample_or_its_position(tmp_path: Path) -> None:
    captions, clips = videos(12, 0)
    clips[7] = clips[7][:60]
    with pytest.raises(TrainingError, match="video of row 8"):
        train(tmp_path, texts=captions, videos=clips)
    with pytest.raises(TrainingError, match="video of sample 'clip-7'"):
        train(tmp_path, texts=captions, videos=clips, ids=[f"clip-{i}" for i in range(12)])


def test_clips_are_resampled_to_a_fixed_shape_and_repeats_are_decoded_once() -> None:
    rng = random.Random(0)
    two = encode_clip(frames("red", "right", 2, rng))
    wide = encode_clip([np.full((8, 32, 3), 200, np.uint8)] * 6)
    array = clip_array(two, 4, 8)
    assert array.shape == (4, 3, 8, 8) and array.dtype == np.uint8
    # Two frames spread over four: the first twice, then the second twice.
    assert np.array_equal(array[0], array[1]) and np.array_equal(array[2], array[3])
    assert not np.array_equal(array[1], array[2])
    assert clip_array(wide, 4, 8).shape == (4, 3, 8, 8)  # a strip is squashed into the square
    clips = VideoClips([two, wide, two], 4, 8)
    assert clips.n_unique == 2 and clips.index.tolist() == [0, 1, 0]
    batch = clips.batch(torch.tensor([0, 2]))
    assert batch.shape == (2, 3, 4, 8, 8) and torch.equal(batch[0], batch[1])
    assert -1.0 <= float(batch.min()) and float(batch.max()) <= 1.0


def test_vbench_style_dimensions_follow_their_definitions() -> None:
    rng = random.Random(0)
    still = np.stack([np.stack(frames("blue", "left", 1, rng, 32) * 8)] * 2)
    moving = np.stack([np.stack(frames("blue", "right", 8, rng, 32)), np.stack(frames("red", "left", 8, rng, 32))])
    fade = np.stack([np.stack([np.full((8, 8, 3), 10 * i, np.uint8) for i in range(8)])])
    assert temporal_flickering(still) == 1.0
    assert temporal_flickering(moving) < 1.0
    assert motion_smoothness(fade) == pytest.approx(1.0)  # linear change: the neighbours' mean is exact
    assert dynamic_degree(still) == 0.0 and dynamic_degree(moving) == 1.0
    # Each generated clip looks like its own caption's real clip: retrieved every time.
    assert alignment_accuracy(moving, moving, [[0, 1], [1, 0]]) == 1.0
    assert alignment_accuracy(moving[::-1].copy(), moving, [[0, 1], [1, 0]]) == 0.0
    with pytest.raises(EvaluationError, match="at least 2 frames"):
        temporal_flickering(still[:, :1])


@needs_diffusers
def test_report_receives_intermediate_scores_and_can_prune(tmp_path: Path) -> None:
    seen: list[tuple[int, float]] = []
    with pytest.raises(TrainingPruned) as pruned:
        train(tmp_path, SMALL.model_copy(update={"eval_every": 5}),
              report=lambda step, score: seen.append((step, score)) or step >= 10)
    assert pruned.value.step == 10
    assert [s for s, _ in seen] == [5, 10] and all(score > 0 for _, score in seen)


def test_budget_is_the_smaller_of_max_steps_and_epochs() -> None:
    assert TinyT2VTrainer(SMALL.model_copy(update={"epochs": 2.0})).total_steps(160) == 20
    assert TinyT2VTrainer(SMALL.model_copy(update={"epochs": 100.0})).total_steps(160) == 150
    assert TinyT2VTrainer(SMALL.model_copy(update={"max_steps": None})).total_steps(161) == 11


def test_video_benchmarks_load_from_the_bundled_set() -> None:
    bench = load_benchmark(BenchmarkSpec(name="emoji", path="builtin:videos/bench_emoji.parquet", video_field="video",
                                         max_docs=5))
    assert len(bench.texts) == len(bench.videos or []) == 5 and bench.images is None
    assert all(v[4:8] == b"ftyp" for v in bench.videos or [])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"frame_size": 18, "patch_size": 4}, "must divide frame_size"),
        ({"n_embd": 30, "n_head": 4}, "must be divisible by n_head=4"),
        ({"eval_timesteps": [100, 1000]}, r"\[1000\] must lie in \[0, diffusion_steps=1000\)"),
        ({"retrieval_candidates": 1}, "retrieval_candidates"),
        ({"video_field": "video"}, "video_field"),
    ],
)
def test_invalid_specs_are_rejected_with_the_reason(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TinyT2VSpec(**settings)


def test_a_benchmark_pairs_captions_with_images_or_videos_not_both() -> None:
    with pytest.raises(ValidationError, match="pairs captions with images or with videos, and image_field is set too"):
        BenchmarkSpec(name="both", path="x.parquet", image_field="image", video_field="video")


def test_without_diffusers_training_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)  # an import of it now fails
    with pytest.raises(TrainingError, match=r"tiny-t2v needs diffusers: pip install 'mlsandbox\[video\]'"):
        train(tmp_path, SMALL.model_copy(update={"max_steps": 1}))
