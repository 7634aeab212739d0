"""A batch of samples handed to every OP, with derived views computed once and shared.

Word-based OPs all need the same split of each text into words; computing it once per batch
(instead of once per OP, per row) is most of the speed of running several OPs together. Image
OPs likewise share one decode of each image (:class:`ImageBatch`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from mlsandbox.errors import DataError
from mlsandbox.images import decode_rgb
from mlsandbox.ops.kernels.words import (
    CharCounts,
    RefinedWords,
    WordIds,
    WordSpans,
    char_counts,
    code_points,
    lower_code_points,
    refined_words,
    text_offsets,
    word_ids,
)

if TYPE_CHECKING:
    from PIL import Image


class TextBatch:
    """The texts of a batch plus lazily derived, cached views of them."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts: list[str] = list(texts)

    def __len__(self) -> int:
        return len(self.texts)

    @cached_property
    def lengths(self) -> np.ndarray:
        """Length of each text in code points."""
        return np.fromiter(map(len, self.texts), dtype=np.int64, count=len(self.texts))

    @cached_property
    def offsets(self) -> np.ndarray:
        """Where each text starts in the concatenation of all texts (``len + 1`` entries)."""
        return text_offsets(self.lengths)

    @cached_property
    def codepoints(self) -> np.ndarray:
        """All texts' code points, concatenated (``uint32``); text ``i`` is ``offsets[i:i+2]``."""
        return code_points(self.texts)

    @cached_property
    def char_counts(self) -> CharCounts:
        """Per text: alphanumeric and special characters, and refined (not lower-cased) words."""
        return char_counts(self.codepoints, self.offsets)

    @cached_property
    def refined_word_counts(self) -> np.ndarray:
        """Words per text after Data-Juicer's split and strip (not lower-cased)."""
        return self.char_counts.words

    @cached_property
    def lower_texts(self) -> list[str]:
        """The texts, lower-cased with ``str.lower``."""
        return [t.lower() for t in self.texts]

    @cached_property
    def _lower(self) -> tuple[np.ndarray, np.ndarray]:
        return lower_code_points(self.texts, self.codepoints, self.offsets)

    @cached_property
    def lower_codepoints(self) -> np.ndarray:
        """``codepoints`` of the lower-cased texts (lower-casing can change a text's length)."""
        return self._lower[0]

    @cached_property
    def lower_offsets(self) -> np.ndarray:
        """``offsets`` of the lower-cased texts in ``lower_codepoints``."""
        return self._lower[1]

    @cached_property
    def lower_word_spans(self) -> WordSpans:
        """Where in ``lower_codepoints`` every lower-cased refined word lies; words per text."""
        return self.word_ids.spans

    @cached_property
    def refined_words_lower(self) -> RefinedWords:
        """Data-Juicer's lower-cased, stripped words of every text, as one flat list."""
        return refined_words(self.lower_codepoints, self.lower_word_spans)

    @cached_property
    def word_ids(self) -> WordIds:
        """The lower-cased refined words as ids into the batch's vocabulary (first-seen order)."""
        return word_ids(self.lower_codepoints, self.lower_offsets)


#: The EXIF orientation tag, and its values that show the stored picture turned by 90° (5-8).
EXIF_ORIENTATION = 0x0112
TURNED = frozenset({5, 6, 7, 8})


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation the header holds. A PNG's eXIf chunk after its pixel data is not read:
    Pillow would decode the pixels to reach it (and such files are rare)."""
    if image.format == "PNG" and "exif" not in image.info:
        return None
    return image.getexif().get(EXIF_ORIENTATION)


class ImageBatch(TextBatch):
    """Captions with their encoded images; each image is decoded at most once per batch.

    Header-only views (``shapes``) never decode pixels; ``rgb`` decodes every image once and
    all OPs that need pixels share it. A corrupt image raises :class:`DataError` naming the
    sample id.
    """

    def __init__(self, texts: Sequence[str], images: Sequence[bytes], ids: Sequence[str] | None = None) -> None:
        super().__init__(texts)
        if len(images) != len(self.texts):
            raise ValueError(f"an image batch needs one image per text ({len(images)} images, {len(self.texts)} texts)")
        self.images: list[bytes] = list(images)
        self.ids: list[str] = list(ids) if ids is not None else [str(i) for i in range(len(self.texts))]

    @cached_property
    def image_sizes(self) -> np.ndarray:
        """Encoded size of each image in bytes."""
        return np.fromiter((len(b) for b in self.images), dtype=np.int64, count=len(self.images))

    @cached_property
    def shapes(self) -> np.ndarray:
        """``(n, 2)`` int array of (width, height) as the image is shown, read from the headers only:
        an EXIF orientation that turns the picture by 90° swaps the two, as the ``rgb`` decode and
        Data-Juicer's image loading (``exif_transpose``) do."""
        out = np.zeros((len(self.images), 2), dtype=np.int64)
        for i in range(len(self.images)):
            with self._open(i) as image:
                width, height = image.size
                out[i] = (height, width) if _orientation(image) in TURNED else (width, height)
        return out

    @cached_property
    def rgb(self) -> list[Image.Image]:
        """Every image decoded once to RGB (EXIF orientation applied, transparency on white)."""
        return [self._decode(i) for i in range(len(self.images))]

    def _open(self, i: int) -> Image.Image:
        from PIL import Image, UnidentifiedImageError

        try:
            return Image.open(io.BytesIO(self.images[i]))
        except UnidentifiedImageError:
            raise DataError(f"sample {self.ids[i]!r}: its image is not in a format Pillow reads") from None
        except (OSError, ValueError) as err:
            raise DataError(f"sample {self.ids[i]!r}: cannot read its image: {err}") from None

    def _decode(self, i: int) -> Image.Image:
        try:
            return decode_rgb(self.images[i])
        except DataError as err:
            raise DataError(f"sample {self.ids[i]!r}: {err}") from None
