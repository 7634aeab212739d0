"""What image and video datasets share: a raw media value (a path, bytes or a Hugging Face
``{"bytes", "path"}`` value) turned into checked encoded bytes, and a folder of media files
captioned by ``<name>.txt`` files. ``kind`` ("image", "video") is the media's column and the
word its errors and spec keys use (``dataset.max_<kind>_bytes``, ``dataset.format '<kind>s'``)."""

from __future__ import annotations

import glob
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from mlsandbox.data._dataset import ID, TEXT, Dataset, make_dataset
from mlsandbox.data._files import read_media_file, resolve_path
from mlsandbox.data._rows import bad_row
from mlsandbox.errors import DataError
from mlsandbox.spec import DatasetSpec

#: ``scheme://``: a URL, never a path to read here (a relative path would not hold ``://``).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def media_bytes(raw: object, base: Path, max_bytes: int, kind: str, check: Callable[[bytes], object]) -> bytes:
    """The encoded media a raw value stands for, after ``check`` (a :class:`DataError` if it does not
    open). A path (relative to ``base``) must name a regular file (not a device, a pipe or a
    folder) of at most ``max_bytes``; bytes are held to the same limit."""
    limit = f"dataset.max_{kind}_bytes"
    if isinstance(raw, dict):  # a Hugging Face {"bytes": ..., "path": ...} value
        raw = raw.get("bytes") or raw.get("path")
    if isinstance(raw, str):
        if not raw.strip():
            raise DataError(f"empty {kind} path")
        if _URL.match(raw):
            raise DataError(f"{kind} path {raw} is a URL; datasets read local files: download it and name the file")
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else base / path
        data = read_media_file(path, max_bytes, kind, limit)
        try:
            check(data)
        except DataError as err:
            raise DataError(f"{kind} file {path}: {err}") from None
        return data
    if raw == b"":
        raise DataError(f"empty {kind} bytes")
    if not isinstance(raw, bytes):
        raise DataError(f"no {kind} (got {type(raw).__name__}); expected a path or {kind} bytes")
    if len(raw) > max_bytes:
        raise DataError(f"{kind} is larger than {limit} ({max_bytes} bytes)")
    check(raw)
    return raw


def load_media_folder(
    spec: DatasetSpec, base_dir: Path | None, kind: str, suffixes: tuple[str, ...], max_bytes: int,
    check: Callable[[bytes], object], arrow_type: pa.DataType,
) -> Dataset:
    """A folder of media files, each captioned by the ``<name>.txt`` file beside it; ids are relative
    paths. A file without a readable caption or media is a :class:`DataError`, or (``on_error:
    skip``) a skipped, counted sample."""
    folder = resolve_path(spec.path, base_dir)
    if not folder.is_dir():
        raise DataError(f"{spec.path}: dataset.format '{kind}s' needs a folder of {kind}s (looked in {folder})")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in suffixes and f.is_file())
    if not files:
        raise DataError(f"{folder}: no {kind} files ({', '.join(suffixes)})")
    _check_one_file_per_id(files, kind)
    skipped = sum(bad_row(spec, message) for message in _captions_without_media(folder, files, kind, suffixes))
    ids, texts, items = [], [], []
    for f in files:
        try:
            caption = _caption_of(f, kind)
            item = media_bytes(str(f.relative_to(folder)), folder, max_bytes, kind, check)  # a relative folder too
        except DataError as err:  # each names the file
            skipped += bad_row(spec, str(err))
            continue
        ids.append(str(f.relative_to(folder).with_suffix("")))
        texts.append(caption)
        items.append(item)
    if not ids:
        raise DataError(f"{folder}: the dataset is empty (no readable captioned {kind}s)")
    table = pa.table({ID: ids, TEXT: pa.array(texts, pa.large_string()), kind: pa.array(items, arrow_type)})
    return make_dataset(table, spec.path, folder.name, skipped, [folder])


def _check_one_file_per_id(files: list[Path], kind: str) -> None:
    """A sample's id is its path without the suffix, and its caption ``<name>.txt``: two files that
    differ only in their suffix would be two samples with one id and one caption."""
    seen: dict[Path, Path] = {}
    for f in files:
        stem = f.with_suffix("")
        if stem in seen:
            raise DataError(f"{f.parent}: {seen[stem].name} and {f.name} share the id {stem.name!r} and the caption "
                            f"{stem.name}.txt: keep one {kind} per name")
        seen[stem] = f


def _captions_without_media(folder: Path, files: list[Path], kind: str, suffixes: tuple[str, ...]) -> list[str]:
    """One message per ``<name>.txt`` with no media file of a format read here beside it (a sample
    that would otherwise vanish without a word: an ``.svg``, a ``.avif``, a deleted picture)."""
    captioned = {f.with_suffix(".txt") for f in files}
    a_kind = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    messages = []
    for caption in sorted(folder.rglob("*.txt")):
        if caption in captioned or not caption.is_file():
            continue
        others = sorted(p.name for p in caption.parent.glob(f"{glob.escape(caption.stem)}.*") if p != caption)
        why = (f"{', '.join(others)} is not {a_kind} format read here ({', '.join(suffixes)})" if others
               else f"no {kind} of that name beside it")
        messages.append(f"{caption}: a caption without {a_kind}: {why}")
    return messages


def _caption_of(media_file: Path, kind: str) -> str:
    caption_file = media_file.with_suffix(".txt")
    try:
        return caption_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise DataError(f"{media_file}: no caption file {caption_file.name} beside the {kind}") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{media_file}: caption file {caption_file.name} is not UTF-8 ({err.reason})") from None
    except OSError as err:  # a folder of that name, no permission
        raise DataError(f"{media_file}: caption file {caption_file.name} cannot be read ({err.strerror or err})") from None
