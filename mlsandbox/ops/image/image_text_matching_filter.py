"""image_text_matching_filter: BLIP's probability that the caption matches the image."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlsandbox.ops.image._hf import PairParams, PairScoreOp
from mlsandbox.ops.registry import register

if TYPE_CHECKING:
    import torch

#: Data-Juicer's default BLIP image-text matching model (needs the model hub).
DATA_JUICER_MODEL = "Salesforce/blip-itm-base-coco"


@register
class ImageTextMatchingFilter(PairScoreOp):
    """Probability that the caption matches the image, from BLIP's image-text matching head.

    ``image_text_matching_score`` = ``softmax(itm_score)[1]``: the "match" probability of the
    ITM head of ``BlipForImageTextRetrieval`` (``use_itm_head=True``) for the (caption, image)
    pair, in [0, 1]. The caption is Data-Juicer's: its special tokens (``<__dj__image>``,
    ``<|__dj__eoc|>``, ...) removed and stripped, tokenized with the model's tokenizer and
    truncated to the text model's ``max_position_embeddings`` (512 for BLIP); the image is the
    sample's decoded RGB image (one decode per batch, shared by all OPs), optionally mirrored
    (``horizontal_flip``) and/or flipped (``vertical_flip``), through the model's image
    processor. ``model``: a hub name or local directory of a BLIP ITM model; batches of
    ``batch_size`` pairs.

    Difference from Data-Juicer: none in the definition. Data-Juicer scores each caption chunk
    against that chunk's images and reduces over them (``reduce_mode``); a sample here is one
    caption with one image, so there is no ``reduce_mode``. Its default model needs the hub;
    offline, set ``model`` to a local directory.

    Data-Juicer 1.6.1 defaults: ``hf_blip="Salesforce/blip-itm-base-coco"``, no flips,
    ``reduce_mode="avg"``, keep ``0.003 <= image_text_matching_score <= 1.0``.
    """

    name = "image_text_matching_filter"
    stat_keys = ("image_text_matching_score",)
    model_class = "BlipForImageTextRetrieval"

    class Params(PairParams):
        model: str = DATA_JUICER_MODEL

    params: Params

    def pair_score(self, output: Any) -> torch.Tensor:
        return output.itm_score.float().softmax(dim=-1)[:, 1]
