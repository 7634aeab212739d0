"""Load any dataset into an Arrow table with a stable ``id`` column, and digest it by content.

Supported: JSONL (optionally gzipped), JSON (a list of objects), Parquet and CSV files, given
as a file, a folder or a glob; Hugging Face ``datasets`` (a saved dataset folder or a dataset
name) with the ``hf`` extra; a folder of images with ``<name>.txt`` captions; the bundled demo
corpus as ``builtin:demo`` and any other bundled file as ``builtin:<path under resources/>``.

Image-text datasets name an ``image_field``: an image path (relative to the data file), the image
bytes, or a Hugging Face ``Image`` value. The table then has an ``image`` column of encoded bytes
right after ``text``; every image is checked to open when the dataset loads.

Video-text datasets name a ``video_field`` (a path relative to the data file, or the video bytes)
or are a folder of clips with ``<name>.txt`` captions (``format: videos``): the table then has a
``video`` column of encoded bytes, and every video is checked (container, first frame, the count of coded
frames against its header's) when the dataset loads.

The readers live in ``_files`` (data files; ``_json`` and ``_csv`` read those formats), ``_images``
(image columns and image folders), ``_videos`` (video columns and video folders), ``_media`` (what those two share) and ``_hf``
(Hugging Face datasets); ``_dataset`` holds the loaded ``Dataset`` and its digest.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mlsandbox.data._dataset import ID, IMAGE, TEXT, VIDEO, Dataset, make_dataset, table_digest
from mlsandbox.data._files import BUILTIN_PREFIX, builtin_path, read_file, resolve_files
from mlsandbox.data._hf import load_hf
from mlsandbox.data._images import IMAGE_SUFFIXES, load_image_folder, load_images
from mlsandbox.data._json import jsonl_objects
from mlsandbox.data._rows import MalformedRow
from mlsandbox.data._videos import VIDEO_SUFFIXES, load_video_folder, load_videos
from mlsandbox.errors import DataError
from mlsandbox.spec import BUILTIN_DATASET, DatasetSpec

__all__ = [
    "BUILTIN_PREFIX", "ID", "IMAGE", "IMAGE_SUFFIXES", "TEXT", "VIDEO", "VIDEO_SUFFIXES", "Dataset", "MalformedRow",
    "builtin_path", "jsonl_objects", "load_dataset", "load_files", "resolve_files", "table_digest",
]


#: Data files larger than this together are announced as they load (shown under ``--quiet`` too).
LARGE_BYTES = 256 * 2**20


def load_dataset(spec: DatasetSpec, base_dir: Path | None = None) -> Dataset:
    """Load the dataset a spec names; ``text`` and ``id`` columns are normalised."""
    if spec.path == BUILTIN_DATASET:
        from mlsandbox.resources import DEMO_CORPUS

        if spec.format in ("hf", "images", "videos"):  # no file reader of that name: KeyError otherwise
            raise DataError(f"dataset.format: {BUILTIN_DATASET} is a JSONL file of texts, not a Hugging Face dataset "
                            f"or a folder; leave dataset.format at auto (got {spec.format!r})")
        return load_files([DEMO_CORPUS], spec, name="demo-corpus", source=BUILTIN_DATASET)
    if spec.format == "hf":
        if spec.video_field is not None:
            raise DataError(f"{spec.path}: video_field is read from data files and video folders, not from Hugging Face "
                            "datasets; write the dataset to Parquet (video bytes) or JSONL (video paths)")
        return load_hf(spec, base_dir)
    if spec.format == "images":
        return load_image_folder(spec, base_dir)
    if spec.format == "videos":
        return load_video_folder(spec, base_dir)
    files = resolve_files(spec.path, base_dir)
    return load_files(files, spec, name=Path(spec.path).stem.split(".")[0] or "dataset", source=spec.path)


def load_files(
    files: list[Path], spec: DatasetSpec, name: str | None = None, source: str | None = None
) -> Dataset:
    """Data files read, normalised, their images or videos checked, and concatenated into one dataset."""
    size = sum(f.stat().st_size for f in files)
    if size > LARGE_BYTES:  # a minute or more of silence otherwise, on every command
        logging.getLogger("mlsandbox.progress").info("loading dataset %s: %.1f GB in %d file(s)", source or files[0],
                                                     size / 1e9, len(files))
    tables, skipped = [], 0
    for f, label in zip(files, _id_labels(files)):
        table, bad = read_file(f, spec, label)
        if table.num_rows == 0:  # an empty shard: nothing to read its media for, or to join
            skipped, empty = skipped + bad, table
            continue
        if spec.image_field is not None:
            table, bad_images = load_images(table, f.parent, spec, str(f))
            bad += bad_images
        if spec.video_field is not None:
            table, bad_videos = load_videos(table, f.parent, spec, str(f))
            bad += bad_videos
        tables.append(table)
        skipped += bad
    tables = tables or [empty]  # every file empty: the dataset says so
    table = _concat(tables, files) if len(tables) > 1 else tables[0]
    return make_dataset(table, source or str(files[0]), name or files[0].stem, skipped, files)


def _id_labels(files: list[Path]) -> list[str | None]:
    """What each file's line ids start with: for several files, each one's name with its suffix, or
    (two of them sharing a name, in subfolders) its path under their common folder."""
    if len(files) == 1:
        return [None]
    names = [f.name for f in files]
    if len(set(names)) == len(names):
        return list(names)
    root = os.path.commonpath([str(f.parent) for f in files])
    return [f.relative_to(root).as_posix() for f in files]


def _concat(tables: list[pa.Table], files: list[Path]) -> pa.Table:
    """The files' rows as one table; a column of one type in one file and of an incompatible one in
    another is a :class:`DataError` naming both, as a column that mixes types within one file is."""
    unsigned = {f.name for table in tables for f in table.schema if pa.types.is_uint64(f.type)}
    tables = [_as_unsigned(table, unsigned) for table in tables]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    seen: dict[str, tuple[pa.DataType, Path]] = {}
    for table, path in zip(tables, files):
        for field in table.schema:
            first, where = seen.setdefault(field.name, (field.type, path))
            if not _merges(first, field.type) or pa.types.is_uint64(first) != pa.types.is_uint64(field.type):
                raise DataError(f"column {field.name!r} is {_kind(first)} in {where} but {_kind(field.type)} in {path}: "
                                "give it one type in every file")
    raise DataError(f"the files of {files[0].parent} cannot be read as one table")


def _as_unsigned(table: pa.Table, names: set[str]) -> pa.Table:
    """The table with its signed 64-bit integer columns among ``names`` as unsigned ones where no value is
    negative: a file of a 64-bit hash whose values all fall below 2**63 reads as signed, the others as unsigned."""
    for name in names & set(table.column_names):
        column = table[name]
        if pa.types.is_int64(column.type) and (pc.min(column).as_py() or 0) >= 0:
            table = table.set_column(table.schema.get_field_index(name), name, column.cast(pa.uint64()))
    return table


def _merges(a: pa.DataType, b: pa.DataType) -> bool:
    try:
        pa.unify_schemas([pa.schema([("c", a)]), pa.schema([("c", b)])], promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return False
    return True


def _kind(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return f"numbers ({arrow_type})"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    return str(arrow_type)
