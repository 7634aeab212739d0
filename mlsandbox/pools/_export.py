"""A pool written out as a dataset file for the run its recipe is meant for: its samples in dataset
order, each as often as it repeats, every column under the dataset's own field names."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
    """A JSON line holds no bytes: a dataset with bytes in a column (images, videos, a list of blobs)
    is written as Parquet."""
    binary = [f.name for f in schema if _holds_bytes(f.type)]
    if binary and export_format(path) != ".parquet":
        raise InvalidInputError(f"--out {path}: the dataset holds bytes ({', '.join(binary)}), which JSON lines "
                                "cannot: write a .parquet file")


def _holds_bytes(kind: pa.DataType) -> bool:
    if (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)
            or pa.types.is_binary_view(kind)):
        return True
    if isinstance(kind, pa.StructType):
        return any(_holds_bytes(kind.field(i).type) for i in range(kind.num_fields))
    if isinstance(kind, pa.MapType):
        return _holds_bytes(kind.key_type) or _holds_bytes(kind.item_type)
    inner = getattr(kind, "value_type", None)  # lists, dictionaries
    return inner is not None and _holds_bytes(inner)


@contextlib.contextmanager
def export_pool(pool: Pool, dataset: Dataset, path: Path, names: Mapping[str, str],
                progress: StyleArg = True) -> Iterator[Path]:
    """Write the pool's samples for ``path`` (:data:`EXPORT_SUFFIXES`), columns renamed by ``names``
    (``text`` to the dataset's text field, ...), beside it; the file is put in place whole when the
    block (the caller's record of it) ends, and not at all if the block is interrupted: a complete
    file then always has its record."""
    check_exportable(dataset.table.schema, path)
    order = np.repeat(pool.rows, pool.repeats)
    columns = [names.get(c, c) for c in dataset.table.column_names]
    with published(path) as tmp:
        with tmp.open("wb") as raw, Progress(len(order), f"writing {path.name}", "sample", progress) as bar:
            if export_format(path) == ".parquet":
                schema = pa.schema([f.with_name(name) for f, name in zip(dataset.table.schema, columns)])
                with pq.ParquetWriter(raw, schema) as writer:
                    for batch in _batches(dataset, order, columns, bar):
                        writer.write_table(batch)
            else:
                with _text_stream(raw, gzipped=path.name.lower().endswith(".gz")) as text:
                    for batch in _batches(dataset, order, columns, bar):
                        text.writelines(_json_line(r) for r in _nan_as_null(batch).to_pylist())
        yield path


def _batches(dataset: Dataset, order: np.ndarray, columns: list[str], bar: Progress) -> Iterator[pa.Table]:
    for start in range(0, len(order), _BATCH_ROWS):
        batch = dataset.table.take(pa.array(order[start:start + _BATCH_ROWS])).rename_columns(columns)
        yield batch
        bar.advance(batch.num_rows)


def _nan_as_null(batch: pa.Table) -> pa.Table:
    """JSON has no NaN: a float column's NaN is written as null, as pandas writes it."""
    for i, field in enumerate(batch.schema):
        if pa.types.is_floating(field.type):
            column = batch.column(i)
            batch = batch.set_column(i, field, pc.if_else(pc.is_nan(column), pa.scalar(None, field.type), column))
    return batch


def _json_line(record: dict) -> str:
    try:
        return json.dumps(record, ensure_ascii=False, default=str, allow_nan=False) + "\n"
    except ValueError:  # a NaN or infinity nested in a list or struct, or an infinity
        raise InvalidInputError("the samples hold a float that JSON cannot (an infinity, or a NaN in a list or "
                                "struct): write a .parquet file") from None


def _text_stream(raw: BinaryIO, gzipped: bool) -> io.TextIOWrapper:
    """UTF-8 text into ``raw``, through gzip (no name or time in its header: equal pools, equal bytes)."""
    target = cast(BinaryIO, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)) if gzipped else raw
    return io.TextIOWrapper(target, encoding="utf-8", newline="\n")
