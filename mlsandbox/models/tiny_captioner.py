"""``tiny-captioner``: a small image-to-text proxy model trained from scratch on a pool's pairs.

A ViT encoder reads each image and a GPT-2 decoder with cross-attention writes its caption
(transformers' ``VisionEncoderDecoderModel``). Captions use the dataset's byte-level BPE
tokenizer of ``tiny-lm`` (:mod:`~mlsandbox.models.bpe_tokenizer`), trained once per source
dataset from its captions and cached, so every pool of a dataset shares it. Each pool image is
decoded once per job: transparency is composited on white, the image converted to RGB and
resized to ``image_size``; a caption is ``<|endoftext|> + tokens[:max_caption_tokens] +
<|endoftext|>``. Training is the shared loop of :mod:`~mlsandbox.models.torch_training` (AdamW
under linear warmup and cosine decay), seeded and deterministic on CPU like ``tiny-lm``, in the
skeleton :class:`~mlsandbox.models.pair_training.PairTrainer` that ``tiny-t2v`` shares; what
differs is stated on :class:`TinyCaptionerTrainer`.

On a benchmark of (image, caption) pairs the model reports:

* ``bpb``: caption bits per UTF-8 byte given the image — the summed negative log-likelihood of
  every caption token and the closing end-of-text token, over the captions' bytes;
* ``score = 1 / bpb``, the primary, higher-is-better metric used for deltas;
* ``retrieval_acc``: for each caption, its own image and ``retrieval_candidates - 1`` other
  images of the benchmark (drawn with a fixed seed, never a byte-identical copy of the true
  image) are ranked by the caption's log-likelihood given each image; the accuracy is the
  share of captions whose own image ranks first (chance: ``1 / retrieval_candidates``).
  Ranking images for a fixed caption compares likelihoods of one token sequence, so caption
  length and how common a caption is cancel out: it measures only how much the model's
  captions depend on the image, which a pool of mismatched pairs fails to teach.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsandbox.errors import EvaluationError, TrainingError
from mlsandbox.images import decode_rgb
from mlsandbox.models._decoded import DecodedMedia
from mlsandbox.models.base import Benchmark, retrieval_accuracy, score_from_bpb
from mlsandbox.models.bpe_tokenizer import eot_id
from mlsandbox.models.pair_training import PairTrainer, caption_sequences, retrieval_candidates
from mlsandbox.models.torch_training import (
    LossFn,
    TorchModel,
    bpb_from_loss,
    gpt2_config,
    model_device,
    padded,
    torch_runtime,
)
from mlsandbox.pretrained import quiet_transformers
from mlsandbox.spec import TinyCaptionerSpec

if TYPE_CHECKING:
    import numpy as np
    import torch
    from tokenizers import Tokenizer

# --- images ---------------------------------------------------------------------------------


class ImagePixels(DecodedMedia):
    """A job's images decoded once: unique images as uint8 ``[U, 3, S, S]`` plus each sample's row."""

    def __init__(self, images: Sequence[bytes], size: int, error: type[TrainingError] = TrainingError,
                 ids: Sequence[str] | None = None, context: str = "") -> None:
        super().__init__(images, lambda data: rgb_array(data, size), "image", error, ids, context)
        self.pixels = self.pixels.permute(0, 3, 1, 2).contiguous()  # channels first, as the encoder reads them

    def batch(self, samples: torch.Tensor) -> torch.Tensor:
        """Normalised float pixels (``[-1, 1]``) of the given sample indices."""
        return normalise(self.pixels[self.index[samples]])


def rgb_array(data: bytes, size: int) -> np.ndarray:
    """One encoded image as ``size x size x 3`` uint8 RGB, transparency composited on white;
    :class:`DataError` if it cannot be decoded."""
    import numpy as np
    from PIL import Image

    return np.asarray(decode_rgb(data).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to floats in ``[-1, 1]`` (ViT's default mean and std of 0.5)."""
    return pixels.float().div_(127.5).sub_(1.0)


# --- captions -------------------------------------------------------------------------------


def sequence_bytes(tokenizer: Tokenizer, seqs: Sequence[Sequence[int]]) -> list[int]:
    """UTF-8 bytes each sequence spells: byte-level BPE writes one character per byte.

    Equal to the caption's UTF-8 length unless the caption was cut to ``max_caption_tokens``,
    in which case only the bytes that are scored count.
    """
    eot = eot_id(tokenizer)
    lengths = {i: len(token) for token, i in tokenizer.get_vocab().items()}
    return [sum(lengths[t] for t in seq if t != eot) for seq in seqs]


# --- model ----------------------------------------------------------------------------------


def build_model(spec: TinyCaptionerSpec, vocab_size: int) -> Any:
    """A randomly initialised ViT + GPT-2 encoder-decoder of the spec's shape (call after seeding)."""
    from transformers import VisionEncoderDecoderConfig, VisionEncoderDecoderModel, ViTConfig

    quiet_transformers()
    encoder = ViTConfig(
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        num_channels=3,
        hidden_size=spec.vision_width,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.n_head,
        intermediate_size=4 * spec.vision_width,
        hidden_dropout_prob=spec.dropout,
        attention_probs_dropout_prob=spec.dropout,
    )
    # from_encoder_decoder_configs sets is_decoder on it.
    decoder = gpt2_config(vocab_size, spec.max_caption_tokens + 2, spec.n_embd, spec.n_layer, spec.n_head,
                          spec.dropout, add_cross_attention=True, pad_token_id=0)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = 0
    config.pad_token_id = 0
    config.eos_token_id = 0
    return VisionEncoderDecoderModel(config=config)


def token_nll(model: Any, ids: torch.Tensor, mask: torch.Tensor, **inputs: Any) -> torch.Tensor:
    """Per-token next-token NLL (nats) of ``ids[:, 1:]``, zero where ``mask`` marks padding.

    ``inputs`` is ``pixel_values=`` or ``encoder_outputs=`` for the image side.
    """
    import torch.nn.functional as F

    logits = model(decoder_input_ids=ids[:, :-1], decoder_attention_mask=mask[:, :-1].long(), **inputs).logits
    nll = F.cross_entropy(logits.float().transpose(1, 2), ids[:, 1:], reduction="none")
    return nll * mask[:, 1:]


def pair_nll_bits(
    model: Any,
    pixels: torch.Tensor,
    seqs: Sequence[Sequence[int]],
    pairs: Sequence[tuple[int, int]],
    batch_size: int,
) -> list[float]:
    """Summed NLL in bits of caption ``c`` given image ``i`` for every ``(i, c)`` pair.

    Each image is encoded once; pairs are batched by caption length to keep padding small. Scoring
    runs in float32 on the model's device.
    """
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    device = model_device(model)
    model.eval()
    with torch.inference_mode():
        states = torch.cat([
            model.encoder(pixel_values=normalise(pixels[s : s + batch_size].to(device))).last_hidden_state
            for s in range(0, int(pixels.shape[0]), batch_size)
        ])
        order = sorted(range(len(pairs)), key=lambda k: len(seqs[pairs[k][1]]))
        bits = [0.0] * len(pairs)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ids, mask = (t.to(device) for t in padded([seqs[pairs[k][1]] for k in chunk]))
            images = torch.tensor([pairs[k][0] for k in chunk], dtype=torch.long, device=device)
            encoded = BaseModelOutput(last_hidden_state=states[images])
            sums = token_nll(model, ids, mask, encoder_outputs=encoded).sum(dim=1) / math.log(2)
            for k, value in zip(chunk, sums.tolist()):
                bits[k] = value
    return bits


class TinyCaptioner(TorchModel):
    """A trained tiny image captioner with its dataset tokenizer."""

    type = "tiny-captioner"
    spec_class = TinyCaptionerSpec
    spec: TinyCaptionerSpec

    def bits_per_byte(self, texts: Sequence[str]) -> float:
        raise EvaluationError(
            "tiny-captioner scores captions given their images, and texts alone have none: "
            "evaluate it on image-text benchmarks (set the benchmark's image_field)"
        )

    def benchmark_metrics(self, benchmark: Benchmark) -> dict[str, float]:
        """``bpb`` and ``score`` of the captions given their images, and ``retrieval_acc``."""
        captions, images = benchmark.captioned("images", self.type)
        spec = self.spec
        pixels = ImagePixels(images, spec.image_size, EvaluationError, context=f"benchmark {benchmark.name!r}: ")
        seqs = caption_sequences(self.tokenizer, captions, spec.max_caption_tokens)
        candidates = retrieval_candidates(images, spec.retrieval_candidates)
        # Caption c against image i; the true pairs (c, c) come first and give bpb.
        pairs = [(c, c) for c in range(len(captions))]
        pairs += [(i, c) for c, cands in enumerate(candidates) for i in cands[1:]]
        unique_pairs = [(int(pixels.index[i]), c) for i, c in pairs]  # rows of the decoded images
        with torch_runtime(spec.threads):
            bits = pair_nll_bits(self.model, pixels.pixels, seqs, unique_pairs, spec.eval_batch_size)
        n = len(captions)
        bpb = sum(bits[:n]) / sum(sequence_bytes(self.tokenizer, seqs))
        metrics = {"bpb": bpb, "score": score_from_bpb(bpb)}
        rivals = iter(bits[n:])  # each caption's other images, in candidate order
        scored = ((bits[c], [next(rivals) for _ in cands[1:]]) for c, cands in enumerate(candidates))
        accuracy = retrieval_accuracy(scored)
        if accuracy is not None:
            metrics["retrieval_acc"] = accuracy
        return metrics

    @classmethod
    def load_network(cls, path: Path, spec: TinyCaptionerSpec, info: dict[str, Any]) -> Any:
        from transformers import VisionEncoderDecoderModel

        return VisionEncoderDecoderModel.from_pretrained(path)


# --- training -------------------------------------------------------------------------------


def caption_loss(model: Any, pixels: ImagePixels, ids: torch.Tensor, mask: torch.Tensor, device: str = "cpu") -> LossFn:
    """The captioner's training loss: mean NLL of the real caption tokens of a batch of pair
    indices given their images, the batch cut to its longest caption so no work goes to padding.

    The pairs' pixels and captions move to ``device`` once, where the batches of indices gather them.
    """
    pixels, ids, mask = pixels.to(device), ids.to(device), mask.to(device)
    lengths = mask.sum(dim=1)

    def loss(samples: torch.Tensor) -> torch.Tensor:
        width = int(lengths[samples].max())
        batch_mask = mask[samples, :width]
        nll = token_nll(model, ids[samples, :width], batch_mask, pixel_values=pixels.batch(samples))
        return nll.sum() / batch_mask[:, 1:].sum()

    return loss


class TinyCaptionerTrainer(PairTrainer):
    """Trains :class:`TinyCaptioner` models from a :class:`~mlsandbox.spec.TinyCaptionerSpec`.

    What is particular to the captioner: its media are images, the loss is :func:`caption_loss`,
    there is no weight averaging, and intermediate scores are the captions' bits per byte estimated
    from the training loss (a pool has no held-out images).
    """

    type = "tiny-captioner"
    version = "1"
    spec: TinyCaptionerSpec
    media = "images"
    item = "image"
    needs_media = "tiny-captioner needs an image-text dataset: set dataset.image_field"
    model_class = TinyCaptioner

    def decode(self, media: list[bytes], ids: list[str] | None) -> ImagePixels:
        return ImagePixels(media, self.spec.image_size, ids=ids)

    def network(self, media: ImagePixels, tokenizer: Tokenizer, seqs: list[list[int]], ids: torch.Tensor,
                mask: torch.Tensor, device: str) -> tuple[Any, LossFn, Callable[[float], float]]:
        model = build_model(self.spec, tokenizer.get_vocab_size())
        bytes_per_token = max(sum(sequence_bytes(tokenizer, seqs)), 1) / int(mask[:, 1:].sum())
        return model, caption_loss(model, media, ids, mask, device), bpb_from_loss(bytes_per_token)

    def extra_info(self, mask: torch.Tensor, steps: int) -> dict[str, float]:
        """``train_tokens``: the caption tokens the run trained on (pairs repeat across epochs)."""
        return {"train_tokens": steps * self.spec.batch_size * int(mask[:, 1:].sum()) / len(mask)}
