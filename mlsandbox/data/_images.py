"""Images of image-text datasets: an image column (paths, bytes or Hugging Face ``Image`` values)
turned into checked encoded bytes, and a folder of images captioned by ``<name>.txt`` files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from mlsandbox.data._dataset import ID, IMAGE, TEXT, Dataset, table_digest
from mlsandbox.data._files import bad_row, builtin_path
from mlsandbox.errors import DataError
from mlsandbox.images import check_image
from mlsandbox.spec import DatasetSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def load_images(table: pa.Table, base: Path, spec: DatasetSpec, source: str) -> tuple[pa.Table, int]:
    """Replace the raw image column (paths, bytes or HF ``Image`` values) with checked image bytes."""
    images, keep = [], []
    for i, (sample_id, raw) in enumerate(zip(table[ID].to_pylist(), table[IMAGE].to_pylist())):
        try:
            images.append(_image_bytes(raw, base))
            keep.append(i)
        except DataError as err:
            bad_row(spec, f"{source}: sample {sample_id!r}: {err}")
    skipped = table.num_rows - len(keep)
    if skipped:
        table = table.take(pa.array(keep, pa.int64()))
    column = table.column_names.index(IMAGE)
    return table.set_column(column, IMAGE, pa.array(images, pa.binary())), skipped


def load_image_folder(spec: DatasetSpec, base_dir: Path | None) -> Dataset:
    """A folder of images, each captioned by the ``<name>.txt`` file beside it; ids are relative paths."""
    folder = builtin_path(spec.path) or Path(spec.path).expanduser()
    if not folder.is_absolute() and base_dir is not None:
        folder = base_dir / folder
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
            image = _image_bytes(str(f), folder)
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


def _image_bytes(raw: object, base: Path) -> bytes:
    """The encoded image a raw value stands for, after checking that it opens as an image."""
    if isinstance(raw, dict):  # a Hugging Face ``Image`` value: {"bytes": ..., "path": ...}
        raw = raw.get("bytes") or raw.get("path")
    if isinstance(raw, str):
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise DataError(f"cannot read image file {path}: {err.strerror or err}") from None
    if not isinstance(raw, bytes) or not raw:
        raise DataError(f"no image (got {type(raw).__name__}); expected a path or image bytes")
    check_image(raw)
    return raw


def _caption_of(image_file: Path) -> str:
    caption_file = image_file.with_suffix(".txt")
    try:
        return caption_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise DataError(f"no caption file {caption_file.name} beside the image") from None
    except UnicodeDecodeError as err:
        raise DataError(f"caption file {caption_file.name} is not UTF-8 ({err.reason})") from None
