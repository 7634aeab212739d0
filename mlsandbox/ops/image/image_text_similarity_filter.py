"""image_text_similarity_filter: CLIP similarity of the image and its caption."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlsandbox.ops.image._hf import PairParams, PairScoreOp
from mlsandbox.ops.registry import register

if TYPE_CHECKING:
    import torch

#: Data-Juicer's default CLIP (needs the model hub).
DATA_JUICER_MODEL = "openai/clip-vit-base-patch32"


@register
class ImageTextSimilarityFilter(PairScoreOp):
    """Similarity of the image and its caption under a CLIP model.

    ``image_text_similarity`` = ``logits_per_text / 100`` for the (caption, image) pair, i.e.
    ``cos(text_embeds, image_embeds) * exp(logit_scale) / 100``: the cosine of CLIP's projected
    text and image embeddings, scaled by the model's learned temperature over 100. OpenAI's
    CLIP checkpoints have ``exp(logit_scale) = 100`` exactly, so for them the stat is the
    cosine, in [-1, 1] (typically 0.1-0.4). The caption is Data-Juicer's: its special tokens
    (``<__dj__image>``, ``<|__dj__eoc|>``, ...) removed and stripped, tokenized with the model's
    tokenizer and truncated to the text model's ``max_position_embeddings`` (77 for CLIP); the
    image is the sample's decoded RGB image (one decode per batch, shared by all OPs),
    optionally mirrored (``horizontal_flip``) and/or flipped (``vertical_flip``), through the
    model's image processor. ``model``: a hub name or local directory of a CLIP-like model whose
    output has ``logits_per_text``; batches of ``batch_size`` pairs.

    Difference from Data-Juicer: none in the definition. Data-Juicer scores each caption chunk
    (text up to ``<|__dj__eoc|>``) against that chunk's images and reduces over them
    (``reduce_mode``); a sample here is one caption with one image, where every reduction gives
    the same value, so there is no ``reduce_mode``. Its default model needs the hub; offline,
    set ``model`` to a local directory.

    Data-Juicer 1.6.1 defaults: ``hf_clip="openai/clip-vit-base-patch32"``, no flips,
    ``reduce_mode="avg"``, keep ``0.1 <= image_text_similarity <= 1.0``.
    """

    name = "image_text_similarity_filter"
    stat_keys = ("image_text_similarity",)
    model_class = "AutoModel"

    class Params(PairParams):
        model: str = DATA_JUICER_MODEL

    params: Params

    def pair_score(self, output: Any) -> torch.Tensor:
        # Pair i's logit is the diagonal of the batch's text-by-image matrix.
        return output.logits_per_text.diagonal() / 100.0
