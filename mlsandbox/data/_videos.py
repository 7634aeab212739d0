"""Videos of video-text datasets: a video column (paths, bytes or Hugging Face ``{"bytes", "path"}``
values) turned into checked encoded bytes, and a folder of clips captioned by ``<name>.txt`` files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from mlsandbox.data._dataset import ID, TEXT, VIDEO, Dataset, table_digest
from mlsandbox.data._files import bad_row, checked_media_column, read_media_file, resolve_path
from mlsandbox.errors import DataError
from mlsandbox.spec import DatasetSpec
from mlsandbox.videos import check_video

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".ogv")
_LIMIT = "dataset.max_video_bytes"


def load_videos(table: pa.Table, base: Path, spec: DatasetSpec, source: str) -> tuple[pa.Table, int]:
    """Replace the raw video column with checked video bytes; a bad video is a :class:`DataError`
    naming the sample, or (``on_error: skip``) a skipped, counted row."""
    if VIDEO not in table.column_names:  # an empty file: no columns beyond id and text
        return table, 0
    # large_binary: a column of clips easily passes the 2 GiB that 32-bit offsets can address.
    return checked_media_column(table, VIDEO, lambda raw: _video_bytes(raw, base, spec.max_video_bytes),
                                pa.large_binary(), spec, source)


def load_video_folder(spec: DatasetSpec, base_dir: Path | None) -> Dataset:
    """A folder of videos, each captioned by the ``<name>.txt`` file beside it; ids are relative paths."""
    folder = resolve_path(spec.path, base_dir)
    if not folder.is_dir():
        raise DataError(f"{spec.path}: dataset.format 'videos' needs a folder of videos (looked in {folder})")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES and f.is_file())
    if not files:
        raise DataError(f"{folder}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    ids, texts, videos, skipped = [], [], [], 0
    for f in files:
        try:
            caption = _caption_of(f)
            video = _video_bytes(str(f), folder, spec.max_video_bytes)
        except DataError as err:
            skipped += bad_row(spec, f"{f}: {err}")
            continue
        ids.append(str(f.relative_to(folder).with_suffix("")))
        texts.append(caption)
        videos.append(video)
    if not ids:
        raise DataError(f"{folder}: the dataset is empty (no readable captioned videos)")
    table = pa.table({ID: ids, TEXT: texts, VIDEO: pa.array(videos, pa.large_binary())})
    return Dataset(table=table, digest=table_digest(table), source=spec.path, name=folder.name,
                   skipped=skipped, files=[folder])


def _video_bytes(raw: object, base: Path, max_bytes: int) -> bytes:
    """The encoded video a raw value stands for, after checking that its container opens and its
    first frame decodes. A path must name a regular file of at most ``max_bytes``."""
    if isinstance(raw, dict):  # a Hugging Face {"bytes": ..., "path": ...} value
        raw = raw.get("bytes") or raw.get("path")
    if isinstance(raw, str):
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else base / path
        data = read_media_file(path, max_bytes, "video", _LIMIT)
        try:
            check_video(data)
        except DataError as err:
            raise DataError(f"video file {path}: {err}") from None
        return data
    if not isinstance(raw, bytes) or not raw:
        raise DataError(f"no video (got {type(raw).__name__}); expected a path or video bytes")
    if len(raw) > max_bytes:
        raise DataError(f"video is larger than {_LIMIT} ({max_bytes} bytes)")
    check_video(raw)
    return raw


def _caption_of(video_file: Path) -> str:
    caption_file = video_file.with_suffix(".txt")
    try:
        return caption_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise DataError(f"no caption file {caption_file.name} beside the video") from None
    except UnicodeDecodeError as err:
        raise DataError(f"caption file {caption_file.name} is not UTF-8 ({err.reason})") from None
