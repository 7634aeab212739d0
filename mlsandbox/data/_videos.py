"""Videos of video-text datasets: a video column (paths, bytes or Hugging Face ``{"bytes", "path"}``
values) turned into checked encoded bytes, and a folder of clips captioned by ``<name>.txt`` files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from mlsandbox.data._dataset import VIDEO, Dataset
from mlsandbox.data._files import checked_media_column
from mlsandbox.data._media import load_media_folder, media_bytes
from mlsandbox.spec import DatasetSpec
from mlsandbox.videos import check_video

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".ogv")


def load_videos(table: pa.Table, base: Path, spec: DatasetSpec, source: str) -> tuple[pa.Table, int]:
    """Replace the raw video column with checked video bytes; a bad video is a :class:`DataError`
    naming the sample, or (``on_error: skip``) a skipped, counted row."""
    if VIDEO not in table.column_names:  # an empty file: no columns beyond id and text
        return table, 0
    # large_binary: a column of clips easily passes the 2 GiB that 32-bit offsets can address.
    return checked_media_column(
        table, VIDEO, lambda raw: media_bytes(raw, base, spec.max_video_bytes, VIDEO, check_video), pa.large_binary(),
        spec, source,
    )


def load_video_folder(spec: DatasetSpec, base_dir: Path | None) -> Dataset:
    """A folder of videos, each captioned by the ``<name>.txt`` file beside it; ids are relative paths."""
    return load_media_folder(
        spec, base_dir, VIDEO, VIDEO_SUFFIXES, spec.max_video_bytes, check_video, pa.large_binary()
    )
