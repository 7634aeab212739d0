"""The loaded dataset: its column names, the ``Dataset`` record, its content digest and id check."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlsandbox.errors import DataError

log = logging.getLogger(__name__)

ID = "id"
TEXT = "text"
IMAGE = "image"
VIDEO = "video"


@dataclass
class Dataset:
    """A loaded dataset: ``table`` has ``id`` and ``text`` (then ``image`` or ``video``) columns first, then metadata."""

    table: pa.Table
    digest: str
    source: str
    name: str
    skipped: int = 0
    files: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def uri(self) -> str:
        """A location MLflow can record as the dataset's source: its file, or the folder of its files."""
        if len(self.files) == 1:
            return str(self.files[0].resolve())
        if self.files:
            return os.path.commonpath([str(f.resolve().parent) for f in self.files])
        return self.source

    def holds_file(self, path: str | Path) -> bool:
        """Whether ``path`` is one of the dataset's files, by any name (a symbolic or a hard link too)."""
        return os.path.exists(path) and any(os.path.exists(f) and os.path.samefile(path, f) for f in self.files)

    @property
    def ids(self) -> pa.ChunkedArray:
        return self.table[ID]

    @cached_property
    def metadata_digest(self) -> str:
        """sha256 of the metadata columns (names and values; empty without any). Not part of
        :attr:`digest`, since no statistic reads them, but an external trainer reading the pool
        file may: its cells and the pool files depend on them too."""
        columns = [c for c in self.table.column_names if c not in (ID, TEXT, IMAGE, VIDEO)]
        if not columns:
            return ""
        payload = json.dumps(self.table.select(columns).to_pydict(), sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    @cached_property
    def texts(self) -> list[str]:
        """Each sample's text, converted from the table once: every cell of a workflow reads them (read only)."""
        return self.table[TEXT].to_pylist()

    @cached_property
    def text_bytes(self) -> np.ndarray:
        """Each sample's text length in UTF-8 bytes (int64), counted once: a pool's size in bytes
        is the sum over its rows."""
        return pc.binary_length(self.table[TEXT]).to_numpy().astype(np.int64)

    @property
    def has_images(self) -> bool:
        return IMAGE in self.table.column_names

    @property
    def images(self) -> list[bytes] | None:
        """Each sample's encoded image, or None for a text-only dataset."""
        return self.table[IMAGE].to_pylist() if self.has_images else None

    @property
    def has_videos(self) -> bool:
        return VIDEO in self.table.column_names

    @property
    def videos(self) -> list[bytes] | None:
        """Each sample's encoded video, or None for a dataset without videos."""
        return self.table[VIDEO].to_pylist() if self.has_videos else None


def table_digest(table: pa.Table) -> str:
    """sha256 over every row's id, text and image or video bytes: equal content gives an equal digest."""
    h = hashlib.sha256()
    for col in (ID, TEXT, IMAGE, VIDEO):
        if col not in table.column_names:
            continue
        for chunk in table[col].chunks:
            for value in _values(chunk):
                encoded = value if isinstance(value, bytes) else value.encode("utf-8")
                h.update(len(encoded).to_bytes(8, "little"))
                h.update(encoded)
    return h.hexdigest()[:16]


def _values(chunk: pa.Array, rows: int = 65536) -> Iterator[Any]:
    """The chunk's values as Python objects, a slice at a time: never the whole corpus at once."""
    for start in range(0, len(chunk), rows):
        yield from chunk.slice(start, rows).to_pylist()


def make_dataset(
    table: pa.Table, source: str, name: str, skipped: int = 0, files: list[Path] | None = None
) -> Dataset:
    """A loaded table as a :class:`Dataset`, digested by content; an empty table or a repeated id
    is a :class:`DataError` naming ``source``."""
    if table.num_rows == 0:
        raise DataError(f"{source}: the dataset is empty (no rows)")
    check_unique_ids(table, source)
    if skipped:
        log.warning("skipped %d malformed rows (dataset.on_error=skip)", skipped)
    return Dataset(table=table, digest=table_digest(table), source=source, name=name, skipped=skipped,
                   files=list(files or []))


def check_unique_ids(table: pa.Table, source: str) -> None:
    """Raise :class:`DataError` naming a few ids that occur more than once."""
    counts = pc.value_counts(table[ID]).flatten()
    dupes = pc.filter(counts[0], pc.greater(counts[1], 1))
    if len(dupes):
        shown = ", ".join(repr(v) for v in dupes[:5].to_pylist())
        raise DataError(f"{source}: {len(dupes)} sample ids occur more than once (e.g. {shown}); ids must be unique")
