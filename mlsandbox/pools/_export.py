"""A pool written out as a dataset file for the run its recipe is meant for: its samples in dataset
order, each as often as it repeats, every column under the dataset's own field names."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlsandbox.data import Dataset
from mlsandbox.errors import InvalidInputError
from mlsandbox.files import published
from mlsandbox.pools._pool import Pool
from mlsandbox.progress import Progress, StyleArg

#: The files a pool can be written as (the dataset loader reads each back).
EXPORT_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
#: Samples taken from the dataset and written at a time.
_BATCH_ROWS = 20_000


def export_format(path: Path) -> str:
    """The suffix of :data:`EXPORT_SUFFIXES` that ``path`` ends with; an input error otherwise."""
    for suffix in EXPORT_SUFFIXES:
        if path.name.lower().endswith(suffix) and len(path.name) > len(suffix):
            return suffix
    raise InvalidInputError(f"--out {path}: name a {', '.join(EXPORT_SUFFIXES)} file")


def check_exportable(schema: pa.Schema, path: Path) -> None:
    """A JSON line holds no bytes: a dataset with a binary column (images, videos) is written as Parquet."""
    binary = [f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    if binary and export_format(path) != ".parquet":
        raise InvalidInputError(f"--out {path}: the dataset holds bytes ({', '.join(binary)}), which JSON lines "
                                "cannot: write a .parquet file")


def export_pool(pool: Pool, dataset: Dataset, path: Path, names: Mapping[str, str], progress: StyleArg = True) -> Path:
    """Write the pool's samples to ``path`` (:data:`EXPORT_SUFFIXES`), columns renamed by ``names``
    (``text`` to the dataset's text field, ...), put in place whole once written."""
    check_exportable(dataset.table.schema, path)
    order = np.repeat(pool.rows, pool.repeats)
    columns = [names.get(c, c) for c in dataset.table.column_names]
    with published(path) as tmp, tmp.open("wb") as raw, \
            Progress(len(order), f"writing {path.name}", "sample", progress) as bar:
        if export_format(path) == ".parquet":
            schema = pa.schema([f.with_name(name) for f, name in zip(dataset.table.schema, columns)])
            with pq.ParquetWriter(raw, schema) as writer:
                for batch in _batches(dataset, order, columns, bar):
                    writer.write_table(batch)
        else:
            with _text_stream(raw, gzipped=path.name.lower().endswith(".gz")) as text:
                for batch in _batches(dataset, order, columns, bar):
                    text.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in batch.to_pylist())
    return path


def _batches(dataset: Dataset, order: np.ndarray, columns: list[str], bar: Progress) -> Iterator[pa.Table]:
    for start in range(0, len(order), _BATCH_ROWS):
        batch = dataset.table.take(pa.array(order[start:start + _BATCH_ROWS])).rename_columns(columns)
        yield batch
        bar.advance(batch.num_rows)


def _text_stream(raw: BinaryIO, gzipped: bool) -> io.TextIOWrapper:
    """UTF-8 text into ``raw``, through gzip (no name or time in its header: equal pools, equal bytes)."""
    target = cast(BinaryIO, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)) if gzipped else raw
    return io.TextIOWrapper(target, encoding="utf-8", newline="\n")
