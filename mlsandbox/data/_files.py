"""Data files: where a path points (file, folder, glob, bundled file), the reader of each format
(Parquet here; JSON and JSONL in ``_json``, CSV in ``_csv``), the normalisation of a read table to
``id``, ``text`` (``image`` or ``video``) first, and the guarded read of a media file."""

from __future__ import annotations

import glob as globlib
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlsandbox.content import unknown_home
from mlsandbox.data._csv import read_csv
from mlsandbox.data._dataset import ID, IMAGE, TEXT, VIDEO
from mlsandbox.data._json import read_json, read_jsonl
from mlsandbox.data._rows import LINE, bad_row
from mlsandbox.errors import DataError, first_line
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

    inside = path.removeprefix(BUILTIN_PREFIX)
    if ".." in Path(inside).parts:
        raise DataError(f"{path}: a bundled file is named by its path under mlsandbox/resources, without '..'")
    return RESOURCES_DIR / inside


def resolve_path(path: str, base_dir: Path | None) -> Path:
    """Where a dataset path points: a bundled file, or the path (``~`` expanded) relative to ``base_dir``."""
    if why := unknown_home(path):
        raise DataError(f"{path}: {why}")
    p = builtin_path(path) or Path(path).expanduser()
    return base_dir / p if not p.is_absolute() and base_dir is not None else p


def resolve_files(path: str, base_dir: Path | None) -> list[Path]:
    """A file, every data file of a folder (sorted), or the files a glob matches (sorted)."""
    p = resolve_path(path, base_dir)
    if p.is_file():
        return [p]
    if p.is_dir():
        if (p / "dataset_info.json").is_file() and (p / "state.json").is_file():  # its JSON files are no data
            raise DataError(f"{p}: a Hugging Face dataset saved with save_to_disk: set dataset.format: hf")
        files = sorted(f for f in p.rglob("*") if f.is_file() and _format_of(f) is not None)
        if not files:
            raise DataError(f"{p}: folder holds no data files ({', '.join(sorted(_SUFFIXES))})")
        return files
    # where it looked, as the folder a relative path was taken in: the path is named once, as given
    relative = base_dir is not None and builtin_path(path) is None and not Path(path).expanduser().is_absolute()
    where = f"relative to {base_dir}" if relative else f"looked in {p}"
    if p.exists():  # a device, a pipe, a socket: nothing a dataset can be read from whole
        raise DataError(f"{path}: not a regular file or folder ({where})")
    matches = _glob(str(p)) or _glob(_literal_folder(p))
    if matches:
        return matches
    raise DataError(f"{path}: no such file, folder or glob match ({where})")


def _glob(pattern: str) -> list[Path]:
    return sorted(Path(m) for m in globlib.glob(pattern, recursive=True) if Path(m).is_file())


def _literal_folder(p: Path) -> str:
    """``p`` as a glob under its deepest existing folder taken literally: a folder named ``data [v2]``
    holds the files of ``data [v2]/*.jsonl``, though ``[v2]`` alone would be a character class."""
    folder = next((a for a in p.parents if a.is_dir()), Path(p.anchor))
    return globlib.escape(str(folder)) + str(p)[len(str(folder)):]


def read_file(path: Path, spec: DatasetSpec, label: str | None = None) -> tuple[pa.Table, int]:
    """One data file as a normalised table, and the number of malformed rows skipped; ``label``
    starts its line ids (default: the file's name without suffix)."""
    fmt = spec.format if spec.format != "auto" else _format_of(path)
    if fmt is None:
        raise DataError(f"{path}: unknown file type; set dataset.format (jsonl, json, parquet, csv)")
    table, bad = _READERS[fmt](path, spec)
    return normalise(table, path, spec, label, unit="object" if fmt == "json" else "line"), bad


def checked_media_column(
    table: pa.Table, column: str, check: Callable[[Any], bytes], arrow_type: pa.DataType, spec: DatasetSpec,
    source: str,
) -> tuple[pa.Table, int]:
    """Replace a raw media column (images, videos) with each row's checked bytes (``check``); a row
    that fails is a :class:`DataError` naming the sample, or (``on_error: skip``) dropped and counted."""
    values, keep = [], []
    for i, (sample_id, raw) in enumerate(zip(table[ID].to_pylist(), table[column].to_pylist())):
        try:
            values.append(check(raw))
            keep.append(i)
        except DataError as err:
            bad_row(spec, f"{source}: sample {sample_id!r}: {err}")
    skipped = table.num_rows - len(keep)
    if skipped:
        table = table.take(pa.array(keep, pa.int64()))
    return table.set_column(table.column_names.index(column), column, pa.array(values, arrow_type)), skipped


def normalise(table: pa.Table, path: Path, spec: DatasetSpec, label: str | None = None, unit: str = "line") -> pa.Table:
    """Put ``id`` and ``text`` first; a missing id becomes ``<label>:<line>`` (stable across loads;
    ``label`` defaults to the file's name without suffix). ``unit`` is what the reader numbered: the
    lines of a file, or the objects of a JSON list."""
    names = table.column_names
    _check_named_once(names, path)
    if table.num_rows == 0:  # an empty file (or shard) has no fields to check: it adds no samples
        return pa.table({ID: pa.array([], pa.string()), TEXT: pa.array([], pa.large_string())})
    if spec.text_field not in table.column_names:
        raise DataError(
            f"{path}: no text field {spec.text_field!r} (columns: {_columns(table)}); "
            "set dataset.text_field"
        )
    text = table[spec.text_field]
    if text.null_count:
        row = pc.index(pc.is_null(text), True).as_py()
        raise DataError(f"{path}: row {_row_number(table, row, unit)} has no text (null {spec.text_field!r})")
    if pa.types.is_dictionary(text.type) and pa.types.is_string(text.type.value_type):  # a pandas category
        text = pc.cast(text, pa.string())
    if not pa.types.is_string(text.type) and not pa.types.is_large_string(text.type):
        raise DataError(f"{path}: text field {spec.text_field!r} has type {text.type}, not string")
    id_field = spec.id_field or (ID if ID in table.column_names else None)
    if id_field is not None:
        if id_field not in table.column_names:
            raise DataError(f"{path}: no id field {id_field!r} (columns: {_columns(table)})")
        ids = _string_ids(table[id_field], path, id_field)
        if ids.null_count:
            row = pc.index(pc.is_null(ids), True).as_py()
            raise DataError(f"{path}: row {_row_number(table, row, unit)} has no id (null {id_field!r})")
        _check_unique_in_file(ids, table, path, unit)
    else:
        stem = label or path.stem.split(".")[0]
        lines = table[LINE].to_pylist() if LINE in table.column_names else range(1, table.num_rows + 1)
        ids = pa.array([f"{stem}:{n}" for n in lines], pa.string())
    fields = {ID: id_field, TEXT: spec.text_field, IMAGE: spec.image_field, VIDEO: spec.video_field}
    if lost := next((c for c, field in fields.items() if field not in (None, c) and c in names), None):
        raise DataError(f"{path}: its column {lost!r} would be lost: the loaded table calls the {lost} field "
                        f"({fields[lost]!r}) {lost!r}; rename or remove that column")
    media = {}
    for column, media_field in ((IMAGE, spec.image_field), (VIDEO, spec.video_field)):
        if media_field is not None:
            if media_field not in table.column_names:
                raise DataError(
                    f"{path}: no {column} field {media_field!r} (columns: {_columns(table)}); "
                    f"set dataset.{column}_field"
                )
            media = {column: table[media_field]}
    drop = {spec.text_field, id_field, spec.image_field, spec.video_field, LINE, ID, TEXT, IMAGE, VIDEO}
    rest = [c for c in table.column_names if c not in drop]
    # 64-bit offsets: a column of text (or of metadata strings) past 2 GiB, a few million web
    # documents, cannot be taken from or concatenated with 32-bit ones.
    return pa.table({ID: ids, TEXT: pc.cast(text, pa.large_string()), **media, **{c: _large(table[c]) for c in rest}})


def _string_ids(column: pa.ChunkedArray, path: Path, id_field: str) -> pa.ChunkedArray:
    """The id column as strings: integers or strings only, as in a JSON file (a float, a boolean or
    a list would become a text its reader never wrote: ``3.0`` reads ``3``)."""
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if not (pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_string_view(kind) or pa.types.is_null(kind)):
        raise DataError(f"{path}: id field {id_field!r} has type {column.type}; ids are integers or strings")
    return pc.cast(column, pa.string())


def _large(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(column.type):
        return pc.cast(column, pa.large_string())
    if pa.types.is_binary(column.type):
        return pc.cast(column, pa.large_binary())
    return column


def read_media_file(path: Path, max_bytes: int, kind: str, limit: str) -> bytes:
    """The bytes of a media file (``kind``: "image", "video"): a regular file of at most
    ``max_bytes`` (the spec key ``limit``), read no further.

    The file is opened without blocking and checked on the open descriptor, so a pipe or a device
    (``/dev/zero``) is refused before anything is read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as err:
        raise DataError(f"cannot read {kind} file {path}: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            article = "an" if kind[0] in "aeiou" else "a"
            raise DataError(f"{kind} path {path} is {what}; expected {article} {kind} file")
        if info.st_size > max_bytes:
            raise DataError(f"{kind} file {path} is larger than {limit} ({max_bytes} bytes)")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as err:
        raise DataError(f"cannot read {kind} file {path}: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # the file grew while it was read
        raise DataError(f"{kind} file {path} is larger than {limit} ({max_bytes} bytes)")
    return data


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    return None


def _read_parquet(path: Path, spec: DatasetSpec) -> tuple[pa.Table, int]:
    try:
        _check_named_once(pq.read_schema(path).names, path)  # Arrow's own complaint lists its internal columns
        return pq.read_table(path), 0
    except (pa.ArrowInvalid, OSError) as err:
        raise DataError(f"{path}: not a readable Parquet file: {first_line(err)}") from None


def _check_named_once(names: list[str], path: Path) -> None:
    if twice := next((name for name in names if names.count(name) > 1), None):
        raise DataError(f"{path}: column {twice!r} appears {names.count(twice)} times: name each column once")


def _columns(table: pa.Table) -> str:
    """The dataset's own columns, for a message (not the line numbers the reader adds)."""
    return ", ".join(name for name in table.column_names if name != LINE)


def _check_unique_in_file(ids: pa.ChunkedArray, table: pa.Table, path: Path, unit: str) -> None:
    """Raise :class:`DataError` naming the first id the file repeats and the lines (rows) of its first two."""
    counts = pc.value_counts(ids).flatten()
    repeated = pc.filter(counts[0], pc.greater(counts[1], 1))
    if len(repeated):
        first = repeated[0].as_py()
        rows = [i for i, v in enumerate(ids.to_pylist()) if v == first][:2]
        units, numbers = (f"{unit}s", [table[LINE][i].as_py() for i in rows]) if LINE in table.column_names \
            else ("rows", [i + 1 for i in rows])
        raise DataError(f"{path}: {len(repeated)} sample ids occur more than once, the first {first!r} at {units} "
                        f"{numbers[0]} and {numbers[1]}; ids must be unique")


def _row_number(table: pa.Table, index: int, unit: str) -> str:
    if LINE in table.column_names:
        return f"at {unit} {table[LINE][index].as_py()}"
    return str(index + 1)


_READERS: dict[str, Callable[[Path, DatasetSpec], tuple[pa.Table, int]]] = {
    "jsonl": read_jsonl, "json": read_json, "parquet": _read_parquet, "csv": read_csv,
}
