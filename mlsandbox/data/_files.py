"""Data files: where a path points (file, folder, glob, bundled file), the JSONL, JSON, Parquet
and CSV readers, and the normalisation of a read table to ``id``, ``text`` (``image``) first."""

from __future__ import annotations

import glob as globlib
import gzip
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlsandbox.data._dataset import ID, IMAGE, TEXT
from mlsandbox.errors import DataError
from mlsandbox.spec import BUILTIN_DATASET, DatasetSpec

log = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"
_SUFFIXES = {
    ".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".ndjson": "jsonl", ".json": "json", ".json.gz": "json",
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv",
}


def builtin_path(path: str) -> Path | None:
    """The bundled file a ``builtin:<relative path>`` names, or None for any other path."""
    if not path.startswith(BUILTIN_PREFIX) or path == BUILTIN_DATASET:
        return None
    from mlsandbox.resources import RESOURCES_DIR

    return RESOURCES_DIR / path.removeprefix(BUILTIN_PREFIX)


def resolve_files(path: str, base_dir: Path | None) -> list[Path]:
    """A file, every data file of a folder (sorted), or the files a glob matches (sorted)."""
    p = builtin_path(path) or Path(path).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and _format_of(f) is not None)
        if not files:
            raise DataError(f"{p}: folder holds no data files ({', '.join(sorted(_SUFFIXES))})")
        return files
    matches = sorted(Path(m) for m in globlib.glob(str(p), recursive=True) if Path(m).is_file())
    if matches:
        return matches
    raise DataError(f"{path}: no such file, folder or glob match (looked in {p})")


def read_file(path: Path, spec: DatasetSpec, many_files: bool) -> tuple[pa.Table, int]:
    """One data file as a normalised table, and the number of malformed rows skipped."""
    fmt = spec.format if spec.format != "auto" else _format_of(path)
    if fmt is None:
        raise DataError(f"{path}: unknown file type; set dataset.format (jsonl, json, parquet, csv)")
    table, bad = _READERS[fmt](path, spec)
    return normalise(table, path, spec, many_files), bad


def bad_row(spec: DatasetSpec, message: str) -> int:
    """A malformed row: raise under ``on_error: raise``, else log it and count 1 skipped row."""
    if spec.on_error == "raise":
        raise DataError(message + " (set dataset.on_error: skip to skip such rows)")
    log.warning(message)
    return 1


def normalise(table: pa.Table, path: Path, spec: DatasetSpec, many_files: bool) -> pa.Table:
    """Put ``id`` and ``text`` first; a missing id becomes ``<file>:<line>`` (stable across loads)."""
    if spec.text_field not in table.column_names:
        if table.num_rows == 0:
            return pa.table({ID: pa.array([], pa.string()), TEXT: pa.array([], pa.string())})
        raise DataError(
            f"{path}: no text field {spec.text_field!r} (columns: {', '.join(table.column_names)}); "
            "set dataset.text_field"
        )
    text = table[spec.text_field]
    if text.null_count:
        row = pc.index(pc.is_null(text), True).as_py()
        raise DataError(f"{path}: row {_row_number(table, row)} has no text (null {spec.text_field!r})")
    if not pa.types.is_string(text.type) and not pa.types.is_large_string(text.type):
        raise DataError(f"{path}: text field {spec.text_field!r} has type {text.type}, not string")
    id_field = spec.id_field or (ID if ID in table.column_names else None)
    if id_field is not None:
        if id_field not in table.column_names:
            raise DataError(f"{path}: no id field {id_field!r} (columns: {', '.join(table.column_names)})")
        ids = pc.cast(table[id_field], pa.string())
        if ids.null_count:
            row = pc.index(pc.is_null(ids), True).as_py()
            raise DataError(f"{path}: row {_row_number(table, row)} has no id (null {id_field!r})")
    else:
        stem = path.name if many_files else path.stem.split(".")[0]
        lines = table["__line"].to_pylist() if "__line" in table.column_names else range(1, table.num_rows + 1)
        ids = pa.array([f"{stem}:{n}" for n in lines], pa.string())
    image = {}
    if spec.image_field is not None:
        if spec.image_field not in table.column_names:
            raise DataError(
                f"{path}: no image field {spec.image_field!r} (columns: {', '.join(table.column_names)}); "
                "set dataset.image_field"
            )
        image = {IMAGE: table[spec.image_field]}
    drop = {spec.text_field, id_field, spec.image_field, "__line", ID, TEXT, IMAGE}
    rest = [c for c in table.column_names if c not in drop]
    return pa.table(
        {ID: ids, TEXT: pc.cast(text, pa.string()), **image, **{c: table[c] for c in rest}}
    )


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    return None


def _open_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


def _read_jsonl(path: Path, spec: DatasetSpec) -> tuple[pa.Table, int]:
    rows, bad = [], 0
    for lineno, line in enumerate(_open_bytes(path).split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
        except UnicodeDecodeError as err:
            bad += bad_row(spec, f"{path}:{lineno}: not UTF-8 ({err.reason} at byte {err.start})")
            continue
        except ValueError as err:
            bad += bad_row(spec, f"{path}:{lineno}: malformed JSON line: {err}")
            continue
        row["__line"] = lineno
        rows.append(row)
    return _rows_to_table(rows, path, spec), bad


def _read_json(path: Path, spec: DatasetSpec) -> tuple[pa.Table, int]:
    try:
        data = json.loads(_open_bytes(path).decode("utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 ({err.reason} at byte {err.start})") from None
    except ValueError as err:
        raise DataError(f"{path}: malformed JSON: {err}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
    for i, row in enumerate(data, start=1):
        row["__line"] = i
    return _rows_to_table(data, path, spec), 0


def _read_parquet(path: Path, spec: DatasetSpec) -> tuple[pa.Table, int]:
    try:
        return pq.read_table(path), 0
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"{path}: not a readable Parquet file: {err}") from None


def _read_csv(path: Path, spec: DatasetSpec) -> tuple[pa.Table, int]:
    bad = 0

    def on_invalid(row: pacsv.InvalidRow) -> str:
        nonlocal bad
        bad += bad_row(spec, f"{path}:{row.number}: malformed CSV row: {row.text[:80]!r}")
        return "skip"

    try:
        table = pacsv.read_csv(
            path, parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={spec.text_field: pa.string()}),
        )
    except pa.ArrowInvalid as err:
        raise DataError(f"{path}: {err}") from None
    return table, bad


def _rows_to_table(rows: list[dict[str, Any]], path: Path, spec: DatasetSpec) -> pa.Table:
    if not rows:
        return pa.table({spec.text_field: pa.array([], pa.string())})
    for row in rows:
        value = row.get(spec.text_field)
        if not isinstance(value, str):
            where = f"{path}:{row['__line']}"
            if spec.text_field not in row:
                keys = ", ".join(k for k in row if k != "__line")
                raise DataError(f"{where}: no text field {spec.text_field!r} (fields: {keys}); set dataset.text_field")
            raise DataError(f"{where}: text field {spec.text_field!r} is {type(value).__name__}, not a string")
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise DataError(f"{path}: rows have inconsistent types: {err}") from None


def _row_number(table: pa.Table, index: int) -> str:
    if "__line" in table.column_names:
        return f"at line {table['__line'][index].as_py()}"
    return str(index + 1)


_READERS: dict[str, Callable[[Path, DatasetSpec], tuple[pa.Table, int]]] = {
    "jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet, "csv": _read_csv,
}
