"""Load any dataset into an Arrow table with a stable ``id`` column, and digest it by content.

Supported: JSONL (optionally gzipped), JSON (a list of objects), Parquet and CSV files, given
as a file, a folder or a glob; Hugging Face ``datasets`` (a saved dataset folder or a dataset
name) with the ``hf`` extra; a folder of images with ``<name>.txt`` captions; the bundled demo
corpus as ``builtin:demo`` and any other bundled file as ``builtin:<path under resources/>``.

Image-text datasets name an ``image_field``: an image path (relative to the data file), the image
bytes, or a Hugging Face ``Image`` value. The table then has an ``image`` column of encoded bytes
right after ``text``; every image is checked to open when the dataset loads.
"""

from __future__ import annotations

import glob as globlib
import gzip
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlsandbox.errors import DataError
from mlsandbox.images import check_image
from mlsandbox.spec import BUILTIN_DATASET, DatasetSpec

log = logging.getLogger(__name__)

ID = "id"
TEXT = "text"
IMAGE = "image"
BUILTIN_PREFIX = "builtin:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
_SUFFIXES = {
    ".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".ndjson": "jsonl", ".json": "json", ".json.gz": "json",
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".csv.gz": "csv",
}


@dataclass
class Dataset:
    """A loaded dataset: ``table`` has ``id`` and ``text`` (then ``image``) columns first, then metadata."""

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

    @property
    def ids(self) -> pa.ChunkedArray:
        return self.table[ID]

    @property
    def texts(self) -> list[str]:
        return self.table[TEXT].to_pylist()

    @property
    def has_images(self) -> bool:
        return IMAGE in self.table.column_names

    @property
    def images(self) -> list[bytes] | None:
        """Each sample's encoded image, or None for a text-only dataset."""
        return self.table[IMAGE].to_pylist() if self.has_images else None


def load_dataset(spec: DatasetSpec, base_dir: Path | None = None) -> Dataset:
    """Load the dataset a spec names; ``text`` and ``id`` columns are normalised."""
    if spec.path == BUILTIN_DATASET:
        from mlsandbox.resources import DEMO_CORPUS

        return load_files([DEMO_CORPUS], spec, name="demo-corpus", source=BUILTIN_DATASET)
    if spec.format == "hf":
        return _load_hf(spec, base_dir)
    if spec.format == "images":
        return _load_image_folder(spec, base_dir)
    files = resolve_files(spec.path, base_dir)
    return load_files(files, spec, name=Path(spec.path).stem.split(".")[0] or "dataset", source=spec.path)


def load_texts(path: str | Path, text_field: str = TEXT, limit: int | None = None) -> list[str]:
    """The text column of a dataset file (benchmark sets, for instance)."""
    ds = load_files(resolve_files(str(path), None), DatasetSpec(path=str(path), text_field=text_field))
    texts = ds.texts
    return texts[:limit] if limit else texts


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


def load_files(
    files: list[Path], spec: DatasetSpec, name: str | None = None, source: str | None = None
) -> Dataset:
    tables, skipped = [], 0
    for f in files:
        fmt = spec.format if spec.format != "auto" else _format_of(f)
        if fmt is None:
            raise DataError(f"{f}: unknown file type; set dataset.format (jsonl, json, parquet, csv)")
        table, bad = _READERS[fmt](f, spec)
        table = _normalise(table, f, spec, len(files) > 1)
        if spec.image_field is not None:
            table, bad_images = _load_images(table, f.parent, spec, str(f))
            bad += bad_images
        tables.append(table)
        skipped += bad
    if skipped:
        log.warning("skipped %d malformed rows (dataset.on_error=skip)", skipped)
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    if table.num_rows == 0:
        raise DataError(f"{source or files[0]}: the dataset is empty (no rows)")
    _check_unique_ids(table, source or str(files[0]))
    return Dataset(
        table=table, digest=table_digest(table), source=source or str(files[0]),
        name=name or files[0].stem, skipped=skipped, files=list(files),
    )


def table_digest(table: pa.Table) -> str:
    """sha256 over every row's id, text and image bytes: equal content gives an equal digest."""
    h = hashlib.sha256()
    for col in (ID, TEXT, IMAGE):
        if col not in table.column_names:
            continue
        for chunk in table[col].chunks:
            for value in chunk.to_pylist():
                encoded = value if isinstance(value, bytes) else value.encode("utf-8")
                h.update(len(encoded).to_bytes(8, "little"))
                h.update(encoded)
    return h.hexdigest()[:16]


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
            bad += _bad_row(spec, f"{path}:{lineno}: not UTF-8 ({err.reason} at byte {err.start})")
            continue
        except ValueError as err:
            bad += _bad_row(spec, f"{path}:{lineno}: malformed JSON line: {err}")
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
        bad += _bad_row(spec, f"{path}:{row.number}: malformed CSV row: {row.text[:80]!r}")
        return "skip"

    try:
        table = pacsv.read_csv(
            path, parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={spec.text_field: pa.string()}),
        )
    except pa.ArrowInvalid as err:
        raise DataError(f"{path}: {err}") from None
    return table, bad


def _bad_row(spec: DatasetSpec, message: str) -> int:
    if spec.on_error == "raise":
        raise DataError(message + " (set dataset.on_error: skip to skip such rows)")
    log.warning(message)
    return 1


def _rows_to_table(rows: list[dict], path: Path, spec: DatasetSpec) -> pa.Table:
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


def _normalise(table: pa.Table, path: Path, spec: DatasetSpec, many_files: bool) -> pa.Table:
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
        if "__line" in table.column_names:
            lines = table["__line"].to_pylist()
        else:
            lines = range(1, table.num_rows + 1)
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


def _load_images(table: pa.Table, base: Path, spec: DatasetSpec, source: str) -> tuple[pa.Table, int]:
    """Replace the raw image column (paths, bytes or HF ``Image`` values) with checked image bytes."""
    images, keep = [], []
    for i, (sample_id, raw) in enumerate(zip(table[ID].to_pylist(), table[IMAGE].to_pylist())):
        try:
            images.append(_image_bytes(raw, base))
            keep.append(i)
        except DataError as err:
            _bad_row(spec, f"{source}: sample {sample_id!r}: {err}")
    skipped = table.num_rows - len(keep)
    if skipped:
        table = table.take(pa.array(keep, pa.int64()))
    column = table.column_names.index(IMAGE)
    return table.set_column(column, IMAGE, pa.array(images, pa.binary())), skipped


def _image_bytes(raw: object, base: Path) -> bytes:
    """The encoded image a raw value stands for, after checking that it opens as an image."""
    if isinstance(raw, dict):  # a Hugging Face ``Image`` value: {"bytes": ..., "path": ...}
        raw = raw.get("bytes") or raw.get("path")
    if isinstance(raw, str):
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            raw = path.read_bytes()
        except OSError as err:
            raise DataError(f"cannot read image file {path}: {err.strerror or err}") from None
    if not isinstance(raw, bytes) or not raw:
        raise DataError(f"no image (got {type(raw).__name__}); expected a path or image bytes")
    check_image(raw)
    return raw


def _load_image_folder(spec: DatasetSpec, base_dir: Path | None) -> Dataset:
    """A folder of images, each captioned by the ``<name>.txt`` file beside it; ids are relative paths."""
    folder = builtin_path(spec.path) or Path(spec.path).expanduser()
    if not folder.is_absolute() and base_dir is not None:
        folder = base_dir / folder
    if not folder.is_dir():
        raise DataError(f"{spec.path}: dataset.format 'images' needs a folder of images (looked in {folder})")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    ids, texts, images, skipped = [], [], [], 0
    for f in files:
        sample_id = str(f.relative_to(folder).with_suffix(""))
        try:
            caption = _caption_of(f)
            image = _image_bytes(str(f), folder)
        except DataError as err:
            skipped += _bad_row(spec, f"{f}: {err}")
            continue
        ids.append(sample_id)
        texts.append(caption)
        images.append(image)
    if not ids:
        raise DataError(f"{folder}: the dataset is empty (no readable captioned images)")
    table = pa.table({ID: ids, TEXT: texts, IMAGE: pa.array(images, pa.binary())})
    return Dataset(table=table, digest=table_digest(table), source=spec.path, name=folder.name,
                   skipped=skipped, files=[folder])


def _caption_of(image_file: Path) -> str:
    caption_file = image_file.with_suffix(".txt")
    try:
        return caption_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise DataError(f"no caption file {caption_file.name} beside the image") from None
    except UnicodeDecodeError as err:
        raise DataError(f"caption file {caption_file.name} is not UTF-8 ({err.reason})") from None


def _row_number(table: pa.Table, index: int) -> str:
    if "__line" in table.column_names:
        return f"at line {table['__line'][index].as_py()}"
    return str(index + 1)


def _check_unique_ids(table: pa.Table, source: str) -> None:
    counts = pc.value_counts(table[ID]).flatten()
    dupes = pc.filter(counts[0], pc.greater(counts[1], 1))
    if len(dupes):
        shown = ", ".join(repr(v) for v in dupes[:5].to_pylist())
        raise DataError(f"{source}: {len(dupes)} sample ids occur more than once (e.g. {shown}); ids must be unique")


def _load_hf(spec: DatasetSpec, base_dir: Path | None) -> Dataset:
    try:
        import datasets
    except ImportError:
        raise DataError("Hugging Face datasets need the 'hf' extra: pip install 'mlsandbox[hf]'") from None
    local = Path(spec.path).expanduser()
    if not local.is_absolute() and base_dir is not None and (base_dir / local).exists():
        local = base_dir / local
    if local.is_dir():
        loaded = datasets.load_from_disk(str(local))
    else:
        loaded = datasets.load_dataset(spec.path, split=spec.split)
    if isinstance(loaded, datasets.DatasetDict):
        if spec.split not in loaded:
            raise DataError(f"{spec.path}: no split {spec.split!r} (splits: {', '.join(loaded)})")
        loaded = loaded[spec.split]
    table = loaded.data.table if hasattr(loaded.data, "table") else loaded.with_format("arrow")[:]
    table = _normalise(table, Path(spec.path), spec, many_files=False)
    skipped = 0
    if spec.image_field is not None:
        table, skipped = _load_images(table, local if local.is_dir() else Path.cwd(), spec, spec.path)
    if table.num_rows == 0:
        raise DataError(f"{spec.path}: the dataset is empty (no rows)")
    _check_unique_ids(table, spec.path)
    return Dataset(table=table, digest=table_digest(table), source=spec.path, name=Path(spec.path).name,
                   skipped=skipped, files=[local] if local.is_dir() else [])


_READERS = {"jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet, "csv": _read_csv}
