"""Images of image-text datasets: an image column (paths, bytes or Hugging Face ``Image`` values)
turned into checked encoded bytes, and a folder of images captioned by ``<name>.txt`` files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from mlsandbox.data._dataset import IMAGE, Dataset
from mlsandbox.data._files import checked_media_column
from mlsandbox.data._media import load_media_folder, media_bytes
from mlsandbox.images import check_image
from mlsandbox.spec import DatasetSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def load_images(table: pa.Table, base: Path, spec: DatasetSpec, source: str) -> tuple[pa.Table, int]:
    """Replace the raw image column (paths, bytes or HF ``Image`` values) with checked image bytes."""
    return checked_media_column(
        table, IMAGE, lambda raw: media_bytes(raw, base, spec.max_image_bytes, IMAGE, check_image), pa.large_binary(),
        spec, source,
    )


def load_image_folder(spec: DatasetSpec, base_dir: Path | None) -> Dataset:
    """A folder of images, each captioned by the ``<name>.txt`` file beside it; ids are relative paths."""
    return load_media_folder(spec, base_dir, IMAGE, IMAGE_SUFFIXES, spec.max_image_bytes, check_image,
                             pa.large_binary())
