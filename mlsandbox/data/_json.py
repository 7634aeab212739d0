"""JSON and JSONL data files: each line (object) read strictly (UTF-8, one object, each key once, no
lone surrogate escape), and the objects made a table with one column per key."""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlsandbox.data._dataset import ID
from mlsandbox.data._rows import LINE, bad_row, open_bytes
from mlsandbox.errors import DataError
from mlsandbox.spec import DatasetSpec

_RESERVED = f"key {LINE!r} is the reader's own (it numbers the rows): rename it"

# A JSON escape of a UTF-16 surrogate: paired ones decode to one character, a lone one cannot be
# stored as UTF-8 text (Arrow would fail on it later, naming no file or line).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> str | None:
    """The escape of a lone surrogate in a decoded JSON value (``\\ud800``), or None."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        return f"\\u{ord(err.object[err.start]):04x}"
    return None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: readers disagree on which of two values for one key
    wins (Python's keeps the last), so the sandbox could measure a text that another tool never sees."""
    row = dict(pairs)
    if len(row) != len(pairs):
        duplicate = next(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        raise ValueError(f"duplicate key {duplicate!r} in one object")
    return row


#: One decoder for every line: ``json.loads`` with a hook builds a new one per call (a third slower).
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Each non-blank line of a JSONL file (gzipped for a ``.gz`` name; a leading byte-order mark
    ignored) with its number: the object it holds, or why it holds none (not UTF-8, not a JSON
    object, a key written twice, a lone surrogate escape)."""
    for lineno, line in enumerate(open_bytes(path).removeprefix(codecs.BOM_UTF8).split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = _DECODER.decode(line.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
        except UnicodeDecodeError as err:
            yield lineno, f"not UTF-8 ({err.reason} at byte {err.start})"
            continue
        except ValueError as err:
            yield lineno, f"malformed JSON line: {err}"
            continue
        if _SURROGATE_ESCAPE.search(line) and (escape := _lone_surrogate(row)):
            yield lineno, f"not valid Unicode text: lone surrogate escape {escape}"
            continue
        yield lineno, row


def read_jsonl(path: Path, spec: DatasetSpec) -> tuple[pa.Table, int]:
    rows, bad = [], 0
    for lineno, row in jsonl_objects(path):
        if isinstance(row, str) or LINE in row:
            bad += bad_row(spec, f"{path}:{lineno}: {row if isinstance(row, str) else _RESERVED}")
            continue
        row[LINE] = lineno
        rows.append(row)
    rows, wrong = _with_text(rows, path, spec)
    return _rows_to_table(rows, path, spec), bad + wrong


def read_json(path: Path, spec: DatasetSpec) -> tuple[pa.Table, int]:
    raw = open_bytes(path).removeprefix(codecs.BOM_UTF8)  # as a JSONL file's: editors on Windows write one
    try:
        data = _DECODER.decode(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 ({err.reason} at byte {err.start})") from None
    except ValueError as err:
        raise DataError(f"{path}: malformed JSON: {err}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
    rows, bad = [], 0
    check_surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    for i, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            bad += bad_row(spec, f"{path}: object {i}: expected a JSON object, got {type(row).__name__}")
            continue
        if check_surrogates and (escape := _lone_surrogate(row)):
            bad += bad_row(spec, f"{path}: object {i}: not valid Unicode text: lone surrogate escape {escape}")
            continue
        if LINE in row:
            bad += bad_row(spec, f"{path}: object {i}: {_RESERVED}")
            continue
        row[LINE] = i
        rows.append(row)
    rows, wrong = _with_text(rows, path, spec, unit="object")
    return _rows_to_table(rows, path, spec, unit="object"), bad + wrong


def _with_text(rows: list[dict[str, Any]], path: Path, spec: DatasetSpec,
               unit: str = "line") -> tuple[list[dict[str, Any]], int]:
    """The rows whose text field holds a string, and how many others were skipped (``on_error: skip``;
    under ``raise`` the first is a :class:`DataError`). A file whose rows all lack the field names it
    as the setting to fix, skip or not."""
    kept, bad = [], 0
    named = any(spec.text_field in r for r in rows)
    for row in rows:
        value = row.get(spec.text_field)
        if isinstance(value, str):
            kept.append(row)
            continue
        where = f"{path}:{row[LINE]}" if unit == "line" else f"{path}: {unit} {row[LINE]}"
        if spec.text_field not in row:
            keys = ", ".join(k for k in row if k != LINE)
            message = f"{where}: no text field {spec.text_field!r} (fields: {keys}); set dataset.text_field"
            if not named:
                raise DataError(message)
        else:
            kind = "null" if value is None else type(value).__name__  # as the JSON has it
            message = f"{where}: text field {spec.text_field!r} is {kind}, not a string"
        bad += bad_row(spec, message)
    return kept, bad


def _rows_to_table(rows: list[dict[str, Any]], path: Path, spec: DatasetSpec, unit: str = "line") -> pa.Table:
    """JSON objects as a table with one column per key of any row (null where a row lacks it).

    A column whose values are of different JSON types (a number here, a string there) is an
    error naming the column and where each type first occurs; ids may mix numbers and strings.
    """
    if not rows:
        return pa.table({spec.text_field: pa.array([], pa.string())})
    columns = {key: [row.get(key) for row in rows] for key in dict.fromkeys(k for row in rows for k in row)}
    id_field = spec.id_field or ID
    if id_field in columns:
        for value, row in zip(columns[id_field], rows):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, str))):
                raise DataError(f"{path}: {unit} {row[LINE]}: id {value!r} is a {type(value).__name__}; "
                                "ids are integers or strings")
        columns[id_field] = [str(v) if isinstance(v, int) else v for v in columns[id_field]]
    arrays = {}
    for key, values in columns.items():
        try:
            arrays[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise DataError(f"{path}: {_mixed_types(key, values, rows, unit, err)}") from None
        except OverflowError:  # beyond int64: unsigned 64-bit (hashes such as a simhash), else no column type holds it
            arrays[key] = _unsigned(key, values, rows, path, unit)
    return pa.table(arrays)


def _unsigned(column: str, values: list[Any], rows: list[dict[str, Any]], path: Path, unit: str) -> pa.Array:
    """A column of integers of which some exceed int64, as uint64; :class:`DataError` naming the first
    value no 64-bit integer holds."""
    if nested := next((row[LINE] for value, row in zip(values, rows) if isinstance(value, (list, dict))), None):
        raise DataError(f"{path}: column {column!r} holds an integer beyond 64-bit signed inside an array or object "
                        f"(first such column value: {unit} {nested}); write such integers as strings")
    integers = [(value, row[LINE]) for value, row in zip(values, rows) if isinstance(value, int) and not isinstance(value, bool)]
    if beyond := next((line for value, line in integers if value >= 2**64 or value < -(2**63)), None):
        raise DataError(f"{path}: {unit} {beyond}: column {column!r} holds an integer beyond 64 bits; write it as a string")
    negative = next((line for value, line in integers if value < 0), None)
    large = next((line for value, line in integers if value >= 2**63), None)
    if negative is not None and large is not None:
        raise DataError(f"{path}: column {column!r} holds negative integers ({unit} {negative}) and integers above "
                        f"2**63 - 1 ({unit} {large}), which no 64-bit type holds both of; write them as strings")
    try:
        return pa.array(values, pa.uint64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as err:  # negative or non-integer values beside it
        raise DataError(f"{path}: {_mixed_types(column, values, rows, unit, err)}") from None


def _mixed_types(column: str, values: list[Any], rows: list[dict[str, Any]], unit: str, err: Exception) -> str:
    """Which types a column mixes, and the first line of each."""
    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return "boolean"
        return "number" if isinstance(v, (int, float)) else _JSON_TYPES.get(type(v), type(v).__name__)

    first: dict[str, int] = {}
    for value, row in zip(values, rows):
        if value is not None:
            first.setdefault(kind(value), row[LINE])
    where = ", ".join(f"{k} ({unit} {n})" for k, n in first.items())
    if len(first) > 1:
        return f"column {column!r} mixes value types: {where}; give it one type in every row"
    return f"column {column!r} has values of inconsistent types ({err}); give it one type in every row"


_JSON_TYPES: dict[type, str] = {str: "string", dict: "object", list: "array"}
