"""Throughput of the image OPs: all OPs over one shared ImageBatch vs. each OP decoding for itself.

    python benchmarks/image_ops.py [--images 96] [--batch-size 32] [--repeats 2] [--generated] [--skip-nsfw]

Images: the bundled demo set ``builtin:images/captions.parquet`` when it exists (small clip-art,
emoji and stamp pictures, cheap to decode), else, or with ``--generated``, generated pictures
(gradients, shapes and noise, 200-640 px a side, PNG and JPEG) with short captions.
The stats engine hands every OP the same :class:`ImageBatch`, whose ``rgb`` decodes each image
once; the naive baseline measured beside it gives each OP a fresh batch, so every
pixel-reading OP decodes every image again (what running the OPs one after another costs).

Models: ``image_nsfw_filter`` runs its packaged default (Yahoo open-NSFW, ONNX, a real
ResNet-50-sized network). No other image model installs offline, so the CLIP, BLIP, OWL-ViT and
classifier OPs run TINY RANDOMLY INITIALISED models (2 layers, width 32, 224-px input, as the
tests build them): their rows measure the OP machinery and the processors' preprocessing
(resizing, normalising, tokenizing), not the cost of the real networks, which is far higher.
"""

from __future__ import annotations

import argparse
import io
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _cli import count, run

from mlsandbox.ops import ImageBatch, Op, create_op

DEMO = Path(__file__).resolve().parents[1] / "mlsandbox" / "resources" / "images" / "captions.parquet"
HEADER_OPS = ["image_aspect_ratio_filter", "image_shape_filter", "image_size_filter"]
TINY = "tiny random model"
WORDS = [
    "a", "the", "red", "blue", "big", "small", "cat", "dog", "car", "house", "tree", "man", "woman", "child",
    "ball", "mat", "sky", "field", "road", "boat", "bird", "on", "in", "under", "near", "with", "and", "of",
    "sits", "runs", "stands",
]


def load_images(n: int, generate: bool) -> tuple[list[str], list[bytes], str]:
    """``n`` (caption, encoded image) pairs: the demo set (repeated if smaller) or generated ones."""
    if DEMO.exists() and not generate:
        from mlsandbox.data import load_dataset
        from mlsandbox.spec import DatasetSpec

        table = load_dataset(DatasetSpec(path="builtin:images/captions.parquet", image_field="image")).table
        texts, images = table["text"].to_pylist(), table["image"].to_pylist()
        source = f"{DEMO.name} ({len(texts)} images)"
    else:
        texts, images = generated(n)
        source = "generated images (200-640 px, PNG and JPEG)"
    return [texts[i % len(texts)] for i in range(n)], [images[i % len(images)] for i in range(n)], source


def generated(n: int, seed: int = 0) -> tuple[list[str], list[bytes]]:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    texts, images = [], []
    for i in range(n):
        w, h = rng.randint(200, 640), rng.randint(200, 640)
        x = np.linspace(0, 1, w)[None, :]
        y = np.linspace(0, 1, h)[:, None]
        channels = [255 * (0.5 + 0.5 * np.sin(rng.uniform(1, 9) * x + rng.uniform(1, 9) * y + c)) for c in range(3)]
        pixels = np.stack(channels, axis=2) + np.random.default_rng(i).normal(0, 12, (h, w, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(rng.randint(1, 5)):
            x0, y0 = rng.randrange(w), rng.randrange(h)
            box = [x0, y0, x0 + rng.randint(10, w // 2), y0 + rng.randint(10, h // 2)]
            colour = tuple(rng.randrange(256) for _ in range(3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG" if i % 3 else "PNG", quality=90)
        images.append(buffer.getvalue())
        texts.append(" ".join(rng.choices(WORDS, k=rng.randint(4, 14))))
    return texts, images


def tiny_models(root: Path) -> dict[str, str]:
    """Tiny random CLIP, BLIP ITM, OWL-ViT and ViT classifier/regressor directories (224-px input)."""
    import torch
    from transformers.utils import logging

    logging.set_verbosity_error()  # before the processor classes load: no torchvision-fallback notices
    logging.disable_progress_bar()
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
        CLIPTokenizer,
        OwlViTConfig,
        OwlViTForObjectDetection,
        OwlViTImageProcessor,
        OwlViTProcessor,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    torch.manual_seed(0)
    size = 224
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    vision = {**small, "image_size": size, "patch_size": 32}
    printable = {*range(33, 127), *range(161, 173), *range(174, 256)}
    unprintable = [b for b in range(256) if b not in printable]
    chars = [chr(b) if b in printable else chr(256 + unprintable.index(b)) for b in range(256)]  # CLIP's byte map
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    tokenizer = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[])
    tokenizer.model_max_length = 77
    text = {**small, "vocab_size": len(vocab), "bos_token_id": len(vocab) - 2, "eos_token_id": len(vocab) - 1,
            "pad_token_id": len(vocab) - 1}
    paths = {}

    def save(name: str, model: Any, processor: Any) -> None:
        paths[name] = str(root / name)
        model.eval().save_pretrained(paths[name])
        processor.save_pretrained(paths[name])

    clip_images = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    save("clip", CLIPModel(CLIPConfig(text_config={**text, "max_position_embeddings": 77}, vision_config=vision,
                                      projection_dim=16)),
         CLIPProcessor(image_processor=clip_images, tokenizer=tokenizer))
    bert_vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    save("blip", BlipForImageTextRetrieval(BlipConfig(
        text_config={**small, "vocab_size": len(bert_vocab), "max_position_embeddings": 64},
        vision_config=vision, projection_dim=16, image_text_hidden_size=16)),
        BlipProcessor(image_processor=BlipImageProcessor(size={"height": size, "width": size}),
                      tokenizer=BertTokenizer(vocab={t: i for i, t in enumerate(bert_vocab)})))
    owl_tokenizer = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=[])
    owl_tokenizer.model_max_length = 16
    save("owlvit", OwlViTForObjectDetection(OwlViTConfig(
        text_config={**text, "max_position_embeddings": 16}, vision_config=vision, projection_dim=32)),
        OwlViTProcessor(image_processor=OwlViTImageProcessor(size={"height": size, "width": size},
                                                             crop_size={"height": size, "width": size}),
                        tokenizer=owl_tokenizer))
    for name, labels in {"watermark": ["no_watermark", "watermark"], "aesthetics": ["score"]}.items():
        config = ViTConfig(**vision, id2label=dict(enumerate(labels)), label2id={v: k for k, v in enumerate(labels)})
        save(name, ViTForImageClassification(config), ViTImageProcessor(size={"height": size, "width": size}))
    return paths


def op_specs(models: dict[str, str], with_nsfw: bool) -> list[tuple[str, dict[str, Any], str]]:
    """(OP, params, model note) for every image OP."""
    specs = [(name, {}, "header only") for name in HEADER_OPS]
    if with_nsfw:
        specs.append(("image_nsfw_filter", {}, "packaged open-NSFW (ONNX)"))
    specs += [
        ("image_aesthetics_filter", {"model": models["aesthetics"]}, TINY),
        ("image_watermark_filter", {"model": models["watermark"]}, TINY),
        ("image_text_similarity_filter", {"model": models["clip"]}, TINY),
        ("image_text_matching_filter", {"model": models["blip"]}, TINY),
        ("phrase_grounding_recall_filter", {"model": models["owlvit"]}, TINY + " + spaCy tagger"),
    ]
    return specs


class Clock:
    """Wall and process-CPU seconds of the timed blocks, summed."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def time(self, fn: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        return out


def shared_run(texts: Sequence[str], images: Sequence[bytes], ops: Sequence[Op], batch_size: int
               ) -> tuple[Clock, dict[str, Clock]]:
    """All OPs over one ImageBatch per batch: the decode timed once, then each OP's compute."""
    decode, per_op = Clock(), {op.name: Clock() for op in ops}
    for start in range(0, len(texts), batch_size):
        batch = ImageBatch(texts[start : start + batch_size], images[start : start + batch_size])
        decode.time(lambda batch=batch: batch.rgb)
        for op in ops:
            per_op[op.name].time(lambda op=op, batch=batch: op.compute(batch))
    return decode, per_op


def naive_run(texts: Sequence[str], images: Sequence[bytes], ops: Sequence[Op], batch_size: int) -> dict[str, Clock]:
    """Each OP on fresh batches: every pixel-reading OP pays its own decode."""
    per_op = {op.name: Clock() for op in ops}
    for op in ops:
        for start in range(0, len(texts), batch_size):
            part = slice(start, start + batch_size)
            per_op[op.name].time(lambda op=op, part=part: op.compute(ImageBatch(texts[part], images[part])))
    return per_op


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=count(1), default=96, help="images to score")
    parser.add_argument("--batch-size", type=count(1), default=32, help="images per ImageBatch")
    parser.add_argument("--repeats", type=count(1), default=2, help="timed passes of each run; the best is kept")
    parser.add_argument("--generated", action="store_true", help="generated 200-640 px images, not the demo set")
    parser.add_argument("--skip-nsfw", action="store_true", help="leave out the packaged NSFW model")
    args = parser.parse_args()

    texts, images, source = load_images(args.images, args.generated)
    shapes = ImageBatch(texts, images).shapes
    megapixels = float((shapes[:, 0] * shapes[:, 1]).sum()) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        specs = op_specs(tiny_models(Path(tmp)), not args.skip_nsfw)
        ops = [create_op(name, params) for name, params, _ in specs]
        notes = {name: note for name, _, note in specs}
        warm = min(args.batch_size, len(texts))
        for op in ops:  # load every model and the spaCy pipeline, size the buffers, before timing
            op.compute(ImageBatch(texts[:warm], images[:warm]))
        runs = []
        for _ in range(args.repeats):  # alternate, keep each clock's best: a shared machine is noisy
            runs.append((*shared_run(texts, images, ops, args.batch_size), naive_run(texts, images, ops, args.batch_size)))
        decode = min((r[0] for r in runs), key=lambda c: c.wall)
        shared = {op.name: min((r[1][op.name] for r in runs), key=lambda c: c.wall) for op in ops}
        naive = {op.name: min((r[2][op.name] for r in runs), key=lambda c: c.wall) for op in ops}

    n = len(texts)
    print(f"images: {source}; {n} images, {megapixels:.1f} Mpixel, "
          f"{sum(map(len, images)) / 1e6:.1f} MB encoded; batches of {args.batch_size}; best of {args.repeats}")
    print("tiny random models measure the OP machinery and preprocessing, not the real networks' cost\n")
    print(f"{'OP':<32}{'shared img/s':>13}{'alone img/s':>13}{'CPU img/s':>11}  model")
    for op in ops:
        s, a = shared[op.name], naive[op.name]
        print(f"{op.name:<32}{n / s.wall:>13,.0f}{n / a.wall:>13,.0f}{n / s.cpu:>11,.0f}  {notes[op.name]}")
    print(f"{'decode (ImageBatch.rgb)':<32}{n / decode.wall:>13,.0f}{'':>13}{n / decode.cpu:>11,.0f}  "
          f"{decode.wall / n * 1e3:.2f} ms/image")
    shared_wall = decode.wall + sum(c.wall for c in shared.values())
    naive_wall = sum(c.wall for c in naive.values())
    decoding_ops = [op for op in ops if op.name not in HEADER_OPS]
    print(f"\nall {len(ops)} OPs, one shared decode per batch: {shared_wall:.2f} s ({n / shared_wall:,.1f} img/s)")
    print(f"all {len(ops)} OPs, each on fresh batches ({len(decoding_ops)} decodes per image): {naive_wall:.2f} s "
          f"({n / naive_wall:,.1f} img/s)")
    print(f"shared vs naive: x{naive_wall / shared_wall:.2f}; decode share of the shared run: "
          f"{decode.wall / shared_wall:.0%}, of the naive run: ~{len(decoding_ops) * decode.wall / naive_wall:.0%}")
    print("('alone' includes each OP's own decode; 'shared' and 'CPU' exclude it. CPU img/s is per "
          "process-CPU second: torch and ONNX Runtime use several threads, so it can be below wall img/s)")


if __name__ == "__main__":
    run(main)
