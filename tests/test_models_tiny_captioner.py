"""The image-text proxy model: a tiny ViT + GPT-2 captioner trained from scratch on a pool's pairs."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
import torch
from conftest import spec_dict
from PIL import Image, ImageDraw
from pydantic import ValidationError

from mlsandbox.errors import EvaluationError, SpecError, TrainingError, TrainingPruned
from mlsandbox.models import Benchmark, TrainingJob, load_model, model_types, trainer_for
from mlsandbox.models.pair_training import caption_sequences, retrieval_candidates
from mlsandbox.models.tiny_captioner import (
    ImagePixels,
    TinyCaptioner,
    TinyCaptionerTrainer,
    rgb_array,
    sequence_bytes,
)
from mlsandbox.project import check_project
from mlsandbox.spec import TinyCaptionerSpec, TinyLMSpec, model_spec_from_dict, parse_spec

COLORS = {"red": (220, 30, 30), "green": (30, 160, 40), "blue": (30, 60, 220), "yellow": (235, 200, 20)}
SHAPES = ("circle", "square", "triangle")

SMALL = TinyCaptionerSpec(
    vocab_size=300, image_size=16, patch_size=4, vision_layers=1, vision_width=32, n_layer=1,
    n_embd=32, n_head=2, max_caption_tokens=8, batch_size=16, max_steps=120, learning_rate=1e-2,
    dropout=0.0, threads=1, eval_batch_size=64, retrieval_candidates=4,
)


def png(color: str, shape: str, rng: random.Random, mode: str = "RGB") -> bytes:
    image = Image.new(mode, (24, 24), "white")
    draw = ImageDraw.Draw(image)
    x, y, r = 12 + rng.uniform(-2, 2), 12 + rng.uniform(-2, 2), rng.uniform(6, 9)
    fill = COLORS[color]
    if shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
    elif shape == "square":
        draw.rectangle([x - r, y - r, x + r, y + r], fill=fill)
    else:
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=fill)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def shapes(n: int, seed: int) -> tuple[list[str], list[bytes]]:
    """``n`` coloured shapes captioned ``a <colour> <shape>``, each drawn with a little jitter."""
    rng = random.Random(seed)
    captions, images = [], []
    for _ in range(n):
        color, shape = rng.choice(list(COLORS)), rng.choice(SHAPES)
        captions.append(f"a {color} {shape}")
        images.append(png(color, shape, rng))
    return captions, images


_captions, _images = shapes(60, 1)
HELD_OUT = Benchmark("shapes", _captions, images=_images)


def job(tmp_path: Path, seed: int = 0, **kwargs) -> TrainingJob:
    captions, images = shapes(240, 0)
    defaults = {
        "texts": captions, "images": images, "output_dir": tmp_path / "out", "seed": seed,
        "tokenizer_texts": shapes(300, 9)[0], "source_digest": "shapes-v1", "cache_dir": tmp_path / "cache",
    }
    return TrainingJob(**{**defaults, **kwargs})


def train(tmp_path: Path, spec: TinyCaptionerSpec = SMALL, **kwargs) -> TinyCaptioner:
    model = trainer_for(spec).train(job(tmp_path, **kwargs))
    assert isinstance(model, TinyCaptioner)
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TinyCaptioner:
    return train(tmp_path_factory.mktemp("trained"))


def test_tiny_captioner_is_a_registered_model_type() -> None:
    assert "tiny-captioner" in model_types()
    assert isinstance(trainer_for(SMALL), TinyCaptionerTrainer)
    assert isinstance(model_spec_from_dict({"type": "tiny-captioner", "max_steps": 5}), TinyCaptionerSpec)


def test_the_model_learns_captions_and_which_image_they_describe(tmp_path: Path, trained: TinyCaptioner) -> None:
    barely = train(tmp_path, SMALL.model_copy(update={"max_steps": 1, "learning_rate": 1e-6}))
    metrics = trained.benchmark_metrics(HELD_OUT)
    assert set(metrics) == {"bpb", "score", "retrieval_acc"}
    assert metrics["bpb"] < barely.benchmark_metrics(HELD_OUT)["bpb"] - 1.0
    assert metrics["score"] == pytest.approx(1 / metrics["bpb"])
    # Four candidate images per caption: chance is 0.25.
    assert metrics["retrieval_acc"] > 0.5


def test_mismatched_captions_teach_no_retrieval(tmp_path: Path, trained: TinyCaptioner) -> None:
    captions, images = shapes(240, 0)
    shuffled = random.Random(5).sample(captions, len(captions))
    mismatched = train(tmp_path, texts=shuffled, images=images).benchmark_metrics(HELD_OUT)
    assert mismatched["retrieval_acc"] < trained.benchmark_metrics(HELD_OUT)["retrieval_acc"] - 0.2


def test_same_seed_gives_identical_metrics_and_another_seed_does_not(tmp_path: Path) -> None:
    spec = SMALL.model_copy(update={"max_steps": 15})
    first = train(tmp_path, spec, seed=3).benchmark_metrics(HELD_OUT)
    assert train(tmp_path, spec, seed=3).benchmark_metrics(HELD_OUT) == first
    assert train(tmp_path, spec, seed=4).benchmark_metrics(HELD_OUT)["bpb"] != first["bpb"]


def test_weight_averaging_is_the_trained_model_and_off_keeps_earlier_cells() -> None:
    """``ema`` came after cells were trained without it: at 0 the config's digest is the one they have
    (this spec's digest before the key existed)."""
    averaged, plain = SMALL.model_copy(update={"ema": 0.9}), SMALL.model_copy(update={"ema": 0.0})
    assert plain.digest() == "8f9bbf1618e5aac9527897a6e38f6f0d5e202f5bbe152b2e37dc1feda36e0a7f"
    assert averaged.digest() != plain.digest()


def test_weight_averaging_changes_what_is_trained(tmp_path: Path) -> None:
    spec = SMALL.model_copy(update={"max_steps": 15})
    plain = train(tmp_path, spec, seed=3).benchmark_metrics(HELD_OUT)
    assert train(tmp_path, spec.model_copy(update={"ema": 0.9}), seed=3).benchmark_metrics(HELD_OUT) != plain


def test_save_and_load_round_trip(tmp_path: Path, trained: TinyCaptioner) -> None:
    trained.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert isinstance(loaded, TinyCaptioner)
    assert loaded.spec == SMALL
    assert loaded.info["steps"] == 120
    assert loaded.benchmark_metrics(HELD_OUT) == pytest.approx(trained.benchmark_metrics(HELD_OUT), rel=1e-6)


def test_training_without_images_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="needs an image-text dataset: set dataset.image_field"):
        train(tmp_path, images=None)


@pytest.mark.parametrize("model", [{"type": "tiny-captioner"}, {"type": "tiny-t2v"}])
def test_a_pair_model_on_text_or_with_text_benchmarks_is_refused_before_any_work(tmp_path: Path, model: dict) -> None:
    media, field = ("images", "image_field") if model["type"] == "tiny-captioner" else ("videos", "video_field")
    raw = spec_dict(tmp_path / "corpus.jsonl", model=model, workspace=str(tmp_path / "ws"),
                    benchmarks=[{"name": "b", "path": str(tmp_path / "b.parquet"), "text_field": "caption"}])
    with pytest.raises(SpecError) as err:
        check_project(parse_spec(raw))
    assert f"model: {model['type']} trains on {media} with their captions, but the dataset has none" in str(err.value)
    assert f"benchmarks: 'b' has no {field}" in str(err.value)
    raw["benchmarks"] = None  # the bundled benchmarks: text only
    raw["dataset"][field] = "media"
    with pytest.raises(SpecError, match=f"the bundled ones are text only.*name benchmarks with their {field}"):
        check_project(parse_spec(raw))
    raw["evaluator"] = {"type": "command", "command": ["true"]}  # an external evaluator reads them its own way
    check_project(parse_spec(raw))


def test_scoring_needs_images(trained: TinyCaptioner) -> None:
    with pytest.raises(EvaluationError, match="image"):
        trained.bits_per_byte(["a red circle"])
    with pytest.raises(EvaluationError, match="has no images"):
        trained.benchmark_metrics(Benchmark("texts-only", ["a red circle"]))


def test_a_corrupt_image_names_its_position(tmp_path: Path) -> None:
    captions, images = shapes(20, 0)
    images[7] = images[7][:40]
    with pytest.raises(TrainingError, match="image of row 8"):
        train(tmp_path, texts=captions, images=images)


def test_transparency_is_composited_on_white() -> None:
    clear = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    ImageDraw.Draw(clear).rectangle([0, 0, 3, 7], fill=(0, 0, 255, 255))
    buffer = io.BytesIO()
    clear.save(buffer, format="PNG")
    pixels = rgb_array(buffer.getvalue(), 8)
    assert pixels.shape == (8, 8, 3)
    assert pixels[:, 6:].tolist() == [[[255, 255, 255]] * 2] * 8  # transparent red turns white
    assert pixels[4, 1].tolist() == [0, 0, 255]


def test_repeated_images_are_decoded_once() -> None:
    _, images = shapes(3, 0)
    pixels = ImagePixels([images[0], images[1], images[0], images[2], images[0]], 16)
    assert pixels.n_unique == 3
    assert pixels.index.tolist() == [0, 1, 0, 2, 0]
    batch = pixels.batch(torch.tensor([0, 2]))
    assert batch.shape == (2, 3, 16, 16) and torch.equal(batch[0], batch[1])
    assert -1.0 <= float(batch.min()) and float(batch.max()) <= 1.0


def test_captions_are_bos_tokens_eos_and_bytes_count_what_is_scored(trained: TinyCaptioner) -> None:
    tokenizer = trained.tokenizer
    full, cut = caption_sequences(tokenizer, ["a red circle", "a blue square " * 10], max_tokens=8)
    assert full[0] == full[-1] == 0 and len(cut) == 10
    assert sequence_bytes(tokenizer, [full])[0] == len("a red circle")
    assert sequence_bytes(tokenizer, [cut])[0] < len("a blue square " * 10)


def test_retrieval_candidates_are_fixed_and_never_copies_of_the_true_image() -> None:
    images = [b"a", b"b", b"a", b"c", b"d", b"e"]
    candidates = retrieval_candidates(images, k=4)
    assert candidates == retrieval_candidates(images, k=4)
    for query, cands in enumerate(candidates):
        assert cands[0] == query and len(cands) == 4 == len(set(cands))
        assert all(images[j] != images[query] for j in cands[1:])


def test_a_benchmark_of_one_picture_has_no_retrieval_accuracy(trained: TinyCaptioner) -> None:
    _, images = shapes(1, 3)
    metrics = trained.benchmark_metrics(Benchmark("one", ["a red circle", "a red disc"], images=images * 2))
    assert set(metrics) == {"bpb", "score"}


def test_all_pools_of_a_dataset_share_the_tiny_lm_tokenizer(tmp_path: Path) -> None:
    captioner = train(tmp_path, SMALL.model_copy(update={"max_steps": 1}))
    lm = trainer_for(TinyLMSpec(vocab_size=300, n_layer=1, n_embd=16, n_head=2, seq_len=16,
                                max_tokens=None, max_steps=1)).train(job(tmp_path, images=None))
    assert captioner.info["tokenizer"] == lm.info["tokenizer"]
    assert len(list((tmp_path / "cache" / "tokenizers").glob("*.json"))) == 1


def test_report_receives_intermediate_scores_and_can_prune(tmp_path: Path) -> None:
    seen: list[tuple[int, float]] = []
    with pytest.raises(TrainingPruned) as pruned:
        train(tmp_path, SMALL.model_copy(update={"eval_every": 5}),
              report=lambda step, score: seen.append((step, score)) or step >= 10)
    assert pruned.value.step == 10
    assert [s for s, _ in seen] == [5, 10] and all(score > 0 for _, score in seen)


def test_budget_is_the_smaller_of_max_steps_and_epochs() -> None:
    assert TinyCaptionerTrainer(SMALL.model_copy(update={"epochs": 2.0})).total_steps(160) == 20
    assert TinyCaptionerTrainer(SMALL.model_copy(update={"epochs": 100.0})).total_steps(160) == 120
    one_epoch = SMALL.model_copy(update={"max_steps": None})
    assert TinyCaptionerTrainer(one_epoch).total_steps(161) == 11


def test_training_restores_the_callers_torch_settings(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    train(tmp_path, SMALL.model_copy(update={"max_steps": 1}))
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"image_size": 30, "patch_size": 4}, "must divide image_size"),
        ({"vision_width": 30, "n_head": 4}, "must be divisible by n_head=4"),
        ({"retrieval_candidates": 1}, "retrieval_candidates"),
        ({"image_field": "image"}, "image_field"),
    ],
)
def test_invalid_specs_are_rejected_with_the_reason(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TinyCaptionerSpec(**settings)


def test_a_benchmark_picture_that_cannot_be_decoded_is_named_by_its_benchmark_and_row() -> None:
    """Benchmark pictures carry no sample ids: the error said only `image 1 (12 bytes)`."""
    good = png("red", "circle", random.Random(0))
    with pytest.raises(EvaluationError, match=r"^benchmark 'b': image of row 2 \(12 bytes\): "):
        ImagePixels([good, b"not a image!"], 16, EvaluationError, context="benchmark 'b': ")
