"""Hugging Face image models for the image OPs: loaded by name or path, once per process, quietly.

Every model-backed image OP names its model the way Data-Juicer does (a Hugging Face hub name)
or by a local directory written by ``save_pretrained`` (model and processor together). Loading
goes through this module so that each model is read once per process however many OPs use it,
and a model that cannot be found fails with one kind of error, :class:`ModelUnavailableError`,
saying which OP param to set. The inputs are prepared the way Data-Juicer prepares them: its
multimodal special tokens stripped from captions, optional flips, batches under
``torch.inference_mode``.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from mlsandbox.errors import ModelUnavailableError
from mlsandbox.ops.base import Op, OpParams
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.pretrained import quiet_transformers

if TYPE_CHECKING:
    import torch
    from PIL import Image

#: The extra that installs what the image OPs need beyond the core dependencies.
INSTALL = "pip install 'mlsandbox[image]'"

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
) -> tuple[Any, Any]:
    """``(model, processor)`` in float32 eval mode, loaded once per process.

    ``model_class`` is a ``transformers`` class name (``"AutoModelForImageClassification"``,
    ``"BlipForImageTextRetrieval"``, ...) or a class with ``from_pretrained``. A name that is
    neither a local directory nor reachable on the hub raises :class:`ModelUnavailableError`
    naming ``op``'s ``param``.
    """
    try:
        return _load(name_or_path, model_class, processor_class)
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
    return AutoConfig.from_pretrained(name_or_path)


@cache
def _load(name_or_path: str, model_class: str | type, processor_class: str) -> tuple[Any, Any]:
    import torch
    import transformers

    quiet_transformers()
    # A transformers class, or one built on one: either has from_pretrained.
    cls: Any = getattr(transformers, model_class) if isinstance(model_class, str) else model_class
    processor = getattr(transformers, processor_class).from_pretrained(name_or_path)
    model = cls.from_pretrained(name_or_path, dtype=torch.float32)
    model.eval()
    return model, processor


def _hint(name_or_path: str, op: str, param: str, exc: Exception) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if Path(name_or_path).expanduser().exists():
        return (
            f"{op}: could not load {param}={name_or_path!r} (local directory): {reason}. The directory must "
            "hold a model of the kind this OP runs and its processor (written by save_pretrained)"
        )
    return (
        f"{op}: could not load {param}={name_or_path!r} (Hugging Face name): {reason}. Without access to the "
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
        self, name_or_path: str, label: str | int | None, keyword: str | None, *, op: str, label_param: str
    ) -> None:
        self.model, self.processor = load_pretrained(
            name_or_path, "AutoModelForImageClassification", processor_class="AutoImageProcessor", op=op
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
    """``model(**processor(images)).logits`` for all images, ``(n, classes)`` float32, in batches."""
    import torch

    parts = []
    with torch.inference_mode():
        for part in chunks(len(images), batch_size):
            inputs = processor(images=list(images[part]), return_tensors="pt")
            parts.append(model(**inputs).logits.float())
    return torch.cat(parts) if parts else torch.zeros((0, 1))


def paired_scores(
    model: Any,
    processor: Any,
    texts: Sequence[str],
    images: Sequence[Image.Image],
    batch_size: int,
    read: Callable[[Any], torch.Tensor],
) -> np.ndarray:
    """One score per (caption i, image i) pair: ``read(model(**processor(texts, images)))`` in batches.

    Captions are padded per batch and truncated to the text model's
    ``max_position_embeddings``, as Data-Juicer does.
    """
    import torch

    max_length = int(model.config.text_config.max_position_embeddings)
    out = np.zeros(len(texts), dtype=np.float64)
    with torch.inference_mode():
        for part in chunks(len(texts), batch_size):
            inputs = processor(
                text=list(texts[part]), images=list(images[part]), return_tensors="pt",
                padding=True, truncation=True, max_length=max_length,
            )
            out[part] = read(model(**inputs)).double().numpy()
    return out


# --- image-text pair OPs ---------------------------------------------------------------------


class PairParams(OpParams):
    """Params of an OP that scores (caption, image) pairs with one model (set ``model``'s default)."""

    model: str
    horizontal_flip: bool = False
    vertical_flip: bool = False
    batch_size: int = Field(32, ge=1)


class PairScoreOp(Op[ImageBatch]):
    """An image-text OP whose one stat is a model's score of each (caption, image) pair.

    Subclasses set ``name``, ``stat_keys``, ``model_class`` (the transformers class to load),
    a ``Params`` subclass of :class:`PairParams` with the default ``model``, and :meth:`pair_score`.
    """

    modality = "image-text"
    max_batch = 256
    model_class: ClassVar[str]
    Params: ClassVar[type[OpParams]] = PairParams
    params: PairParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._loaded: tuple[Any, Any] | None = None

    @abstractmethod
    def pair_score(self, output: Any) -> torch.Tensor:
        """Pair ``i``'s score from the model's output on a batch of pairs."""

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        key = self.stat_keys[0]
        if len(batch) == 0:
            return {key: np.zeros(0, dtype=np.float64)}
        p = self.params
        if self._loaded is None:
            self._loaded = load_pretrained(p.model, self.model_class, op=self.name)
        model, processor = self._loaded
        images = oriented(batch.rgb, p.horizontal_flip, p.vertical_flip)
        texts = [dj_caption(t) for t in batch.texts]
        return {key: paired_scores(model, processor, texts, images, p.batch_size, self.pair_score)}
