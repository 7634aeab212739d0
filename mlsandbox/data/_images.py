"""Images of image-text datasets: an image column (paths, bytes or Hugging Face ``Image`` values)
turned into checked encoded bytes, and a folder of images captioned by ``<name>.txt`` files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyarrow as pa

from mlsandbox.data._dataset import ID, IMAGE, TEXT, Dataset, table_digest
from mlsandbox.data._files import bad_row, checked_media_column, resolve_path
from mlsandbox.errors import DataError
from mlsandbox.images import check_image
from mlsandbox.spec import DatasetSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def load_images(table: pa.Table, base: Path, spec: DatasetSpec, source: str) -> tuple[pa.Table, int]:
    """Replace the raw image column (paths, bytes or HF ``Image`` values) with checked image bytes."""
    return checked_media_column(table, IMAGE, lambda raw: _image_bytes(raw, base, spec.max_image_bytes), pa.binary(),
                                spec, source)


def load_image_folder(spec: DatasetSpec, base_dir: Path | None) -> Dataset:
    """A folder of images, each captioned by the ``<name>.txt`` file beside it; ids are relative paths."""
    folder = resolve_path(spec.path, base_dir)
    if not folder.is_dir():
        raise DataError(f"{spec.path}: dataset.format 'images' needs a folder of images (looked in {folder})")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    ids, texts, images, skipped = [], [], [], 0
    for f in files:
        sample_id = str(f.relative_to(folder).with_suffix(""))
        try:
            caption = _caption_of(f)
            image = _image_bytes(str(f), folder, spec.max_image_bytes)
        except DataError as err:
            skipped += bad_row(spec, f"{f}: {err}")
            continue
        ids.append(sample_id)
        texts.append(caption)
        images.append(image)
    if not ids:
        raise DataError(f"{folder}: the dataset is empty (no readable captioned images)")
    table = pa.table({ID: ids, TEXT: texts, IMAGE: pa.array(images, pa.binary())})
    return Dataset(table=table, digest=table_digest(table), source=spec.path, name=folder.name,
                   skipped=skipped, files=[folder])


def _image_bytes(raw: object, base: Path, max_bytes: int) -> bytes:
    """The encoded image a raw value stands for, after checking that it opens as an image.

    A path must name a regular file (not a device, a pipe or a folder) of at most ``max_bytes``;
    image bytes are held to the same limit.
    """
    if isinstance(raw, dict):  # a Hugging Face ``Image`` value: {"bytes": ..., "path": ...}
        raw = raw.get("bytes") or raw.get("path")
    if isinstance(raw, str):
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else base / path
        data = _read_image_file(path, max_bytes)
        try:
            check_image(data)
        except DataError as err:
            raise DataError(f"image file {path}: {err}") from None
        return data
    if not isinstance(raw, bytes) or not raw:
        raise DataError(f"no image (got {type(raw).__name__}); expected a path or image bytes")
    if len(raw) > max_bytes:
        raise DataError(f"image is larger than dataset.max_image_bytes ({max_bytes} bytes)")
    check_image(raw)
    return raw


def _read_image_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of an image file: a regular file of at most ``max_bytes``, read no further.

    The file is opened without blocking and checked on the open descriptor, so a pipe or a device
    (``/dev/zero``) is refused before anything is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as err:
        raise DataError(f"cannot read image file {path}: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise DataError(f"image path {path} is {kind}; expected an image file")
        if info.st_size > max_bytes:
            raise DataError(f"image file {path} is larger than dataset.max_image_bytes ({max_bytes} bytes)")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as err:
        raise DataError(f"cannot read image file {path}: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # the file grew while it was read
        raise DataError(f"image file {path} is larger than dataset.max_image_bytes ({max_bytes} bytes)")
    return data


def _caption_of(image_file: Path) -> str:
    caption_file = image_file.with_suffix(".txt")
    try:
        return caption_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise DataError(f"no caption file {caption_file.name} beside the image") from None
    except UnicodeDecodeError as err:
        raise DataError(f"caption file {caption_file.name} is not UTF-8 ({err.reason})") from None
