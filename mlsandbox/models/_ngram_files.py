"""The saved tables of an n-gram model: an Arrow IPC file, or the ``.npz`` of earlier versions.

A model is saved with every cell, so its file is written often and must be quick to write: per
order, the steps between its sorted keys and its counts (narrow integers), zstd-compressed,
which Arrow writes ~3x faster than numpy's deflated ``.npz`` and in fewer bytes.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

TABLES = "ngram.arrow"
NPZ = "ngram.npz"  # the tables as earlier versions saved them
_COLUMNS = ("key_steps", "counts")
UNREADABLE_TABLES = (zipfile.BadZipFile, pa.ArrowException)  # besides OSError, ValueError, KeyError


def write_tables(path: Path, arrays: dict[str, np.ndarray], order: int) -> None:
    """One record batch per order, each column in the widest of its orders' types, the discounts
    in the schema's metadata."""
    types = {c: np.result_type(*(arrays[f"o{k}_{c}"].dtype for k in range(1, order + 1))) for c in _COLUMNS}
    discounts = [float(arrays[f"o{k}_discount"]) for k in range(1, order + 1)]
    schema = pa.schema([(c, pa.from_numpy_dtype(types[c])) for c in _COLUMNS],
                       metadata={"discounts": json.dumps(discounts)})
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema, options=options) as writer:
        for k in range(1, order + 1):
            writer.write_batch(pa.record_batch([arrays[f"o{k}_{c}"].astype(types[c]) for c in _COLUMNS],
                                               schema=schema))


def read_tables(path: Path, order: int) -> dict[str, Any]:
    """The arrays of :func:`write_tables` (or of an earlier version's ``.npz``) by their names."""
    if path.name == NPZ:
        saved = _read_npz(path)
        if missing := [f"o{k}_discount" for k in range(1, order + 1) if f"o{k}_discount" not in saved]:
            raise KeyError(f"{missing[0]} is not an array in the archive")
        return saved
    with open(path, "rb") as source:
        reader = pa.ipc.open_file(source)
        discounts = json.loads((reader.schema.metadata or {}).get(b"discounts", b"null"))
        if not isinstance(discounts, list) or len(discounts) != order or reader.num_record_batches != order:
            raise ValueError(f"expected {order} orders, each with its discount")
        arrays: dict[str, Any] = {}
        for k in range(1, order + 1):
            batch = reader.get_batch(k - 1)
            arrays.update({f"o{k}_{c}": batch.column(c).to_numpy() for c in _COLUMNS})
            arrays[f"o{k}_discount"] = discounts[k - 1]
    return arrays


def _read_npz(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        if not zipfile.is_zipfile(handle):  # np.load would take any file that is not .npz or .npy for a pickle
            raise ValueError("not an .npz archive")
        handle.seek(0)
        with np.load(handle, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}
