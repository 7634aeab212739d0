"""CSV files: read by pyarrow, with every malformed row named by its line (Python's reader finds the lines)."""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import itertools
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mlsandbox.data._dataset import ID
from mlsandbox.data._rows import LINE, bad_row, gzipped, open_bytes
from mlsandbox.errors import DataError
from mlsandbox.spec import DatasetSpec


def read_csv(path: Path, spec: DatasetSpec) -> tuple[pa.Table, int]:
    """A CSV file, every column read as the text it holds: CSV has no types, and inferring them lost
    what a user wrote (``02134`` became 2134, ``N/A`` null, ``TRUE`` true) in the files written back.

    A row with the wrong number of fields is named by its line. Arrow cannot number lines when
    values may span lines, so the handler only records such rows (raising inside it would be
    swallowed) and the lines are found afterwards by Python's reader of the same dialect.
    """
    invalid: list[pacsv.InvalidRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row)
        return "error" if spec.on_error == "raise" else "skip"

    def read(block_size: int) -> pa.Table:
        invalid.clear()
        return pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(block_size=block_size),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=text_columns),
        )

    try:
        if _check_utf8(path):  # it holds a quote
            _check_closing_quotes(path)
        text_columns = {name: pa.string() for name in [spec.text_field, spec.id_field or ID, *_header(path)]}
        table = _in_blocks_long_enough(read)
    except pa.ArrowInvalid as err:
        if invalid:
            bad_row(spec, _ragged_rows(path, invalid, spec)[0][0])
        raise DataError(f"{path}: {err}") from None
    except (OSError, EOFError, zlib.error) as err:  # e.g. a corrupt or truncated .csv.gz
        kind = "gzip" if gzipped(path) else "CSV"
        raise DataError(f"{path}: not a readable {kind} file ({err})") from None
    ragged, kept = _ragged_rows(path, invalid, spec)
    bad = sum(bad_row(spec, message) for message in ragged)
    if invalid and len(kept) == table.num_rows:
        table = table.append_column(LINE, pa.array(kept, pa.int64()))  # ids keep their rows' numbers
    if unterminated := _unterminated_quote(path, table):
        bad += bad_row(spec, unterminated)
        table = table.slice(0, table.num_rows - 1)
    return table, bad


def _check_utf8(path: Path) -> bool:
    """Stop at the first byte that is not UTF-8, naming its line, even under ``on_error: skip``: Arrow
    would read a column holding one as bytes, or fail inside its own handler of a malformed row,
    naming no line either way. Whether the file holds a quote (:func:`_check_closing_quotes`), from
    the same reading."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, line_start, offset = 1, 0, 0  # offset: the file's bytes before this chunk
    quoted = False
    with (gzip.open if gzipped(path) else open)(path, "rb") as stream:
        for chunk in itertools.chain(iter(lambda: stream.read(1 << 20), b""), [b""]):  # b"": the end
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                at = max(0, err.start - (len(err.object) - len(chunk)))  # the decoder held a partial character
                before = chunk.rfind(b"\n", 0, at)
                start = offset + before + 1 if before >= 0 else line_start
                where = line + chunk.count(b"\n", 0, at)
                raise DataError(f"{path}:{where}: not UTF-8 ({err.reason} at byte {offset + at - start})") from None
            line += chunk.count(b"\n")
            if (last := chunk.rfind(b"\n")) >= 0:
                line_start = offset + last + 1
            offset += len(chunk)
            quoted = quoted or b'"' in chunk
    return quoted


def _in_blocks_long_enough(read: Callable[[int], pa.Table]) -> pa.Table:
    """``read`` with Arrow's 1 MiB blocks, or larger ones (up to 512 MiB) while a row spans more than
    one: with values that may span lines, Arrow cannot read a row longer than its block."""
    block_size = 1 << 20
    while True:
        try:
            return read(block_size)
        except pa.ArrowInvalid as err:
            if "straddling" not in str(err) or block_size >= 1 << 29:
                raise
            block_size *= 8


def _unterminated_quote(path: Path, table: pa.Table) -> str | None:
    """A quote opened in the last record and never closed, which Arrow reads as one value running
    to the end of the file (silently swallowing every row after it); None if there is none. (A stray
    quote closed at the very end of a later line makes valid CSV, which no reader can tell from a
    value spanning lines; one closed before more text is :func:`_check_closing_quotes`'s.)

    It leaves a value spanning lines, so only then is the file read again, and only the records
    that span lines, and the last, by Python's strict reader.
    """
    if not any(pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py()
               for column in table.columns if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return None
    last = None
    for last in _csv_records(path):
        if _spans_lines(last[2]) and (left_open := _strictly(path, last[0], last[2])):
            return left_open
    if last is not None and not _spans_lines(last[2]):  # a quote opened on the last line runs to the end
        return _strictly(path, last[0], last[2])
    return None


def _spans_lines(text: str) -> bool:
    body = text.rstrip("\r\n")
    return "\n" in body or "\r" in body


def _strictly(path: Path, line: int, text: str) -> str | None:
    """Read one record with Python's strict reader: the malformed-row message of a quote left open
    (the record runs to the end of the file), else None."""
    try:
        with _no_field_limit():
            list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as err:
        if "unexpected end of data" in str(err):
            after = len(text.splitlines()) - 1
            return (f"{path}:{line}: malformed CSV row: a quoted value opened on this line is never closed, "
                    + (f"so it and the {after} lines after it would be read as one value" if after
                       else "so it would run to the end of the file"))
    return None


def _check_closing_quotes(path: Path) -> None:
    """A quoted value with text after its closing quote (``"stray "quote here``) stops the load naming
    its line, even under ``on_error: skip``: the readers keep the text after the quote and drop the
    quote, and where the quote was a stray one inside the value, the value's remaining lines are read
    as rows of their own (fake samples), or its later lines as one value; which cannot be told. Read
    again, strictly, only for a file that holds a quote."""
    with _text(path) as f, _no_field_limit():
        reader, start = csv.reader(f, strict=True), 1
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error as err:
            if "unexpected end of data" in str(err):
                return  # a quote never closed: _unterminated_quote names it (skippable)
            where = "" if reader.line_num == start else f" on line {reader.line_num}"
            lines = "" if reader.line_num == start else f", lines {start}-{reader.line_num} are read as one row"
            raise DataError(f"{path}:{start}: malformed CSV: the quoted value opened on this line is followed by "
                            f"more text after its closing quote{where} ({err}); if that quote is a stray one"
                            f"{lines or ', the lines after it may be read as rows of their own'}: fix the quotes "
                            "(a quote inside a quoted value is written twice)") from None


def _ragged_rows(path: Path, invalid: list[pacsv.InvalidRow], spec: DatasetSpec) -> tuple[list[str], list[int]]:
    """One message per row with the wrong number of fields, in file order, each naming its line (a
    row spanning lines: its first; under ``on_error: raise`` Arrow stopped at one, the first is
    named), and the numbers of the other rows (1 = the first after the header), in one reading."""
    if not invalid:
        return [], []
    expected = invalid[0].expected_columns
    found, kept = [], []
    for number, (line, fields, text) in enumerate(_csv_records(path), 1):
        if len(fields) == expected:
            kept.append(number)
        else:
            found.append(f"{path}:{line}: malformed CSV row: expected {expected} fields, got {len(fields)}: "
                         f"{text.rstrip()[:80]!r}")
    if found and (spec.on_error == "raise" or len(found) == len(invalid)):
        return found, kept
    # The two readers disagree on this file: name the rows without their lines.
    return [f"{path}: malformed CSV row: expected {r.expected_columns} fields, got {r.actual_columns}: "
            f"{r.text[:80]!r}" for r in invalid], kept


def _header(path: Path) -> list[str]:
    """The column names (the first record; Arrow skips blank lines before it), read without the rest of the file."""
    with _text(path) as f, _no_field_limit():
        return next((record for record in csv.reader(f) if record), [])


def _text(path: Path) -> TextIO:
    """The file as text for Python's reader: gunzipped, past a byte-order mark, line ends kept."""
    if gzipped(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _csv_records(path: Path) -> Iterator[tuple[int, list[str], str]]:
    """Every non-empty record after the header: its first line, its fields and its text."""
    raw = open_bytes(path)
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(raw.decode("utf-8", errors="replace"), newline=""):
            consumed.append(line)
            yield line

    with _no_field_limit():
        reader = csv.reader(lines())
        previous = 0
        try:
            for index, fields in enumerate(reader):
                text = "".join(consumed)
                consumed.clear()
                start, previous = previous + 1, reader.line_num
                if index > 0 and fields:
                    yield start, fields, text
        except csv.Error as err:  # what Arrow read, Python's reader could not: name where it stopped
            raise DataError(f"{path}:{previous + 1}: malformed CSV: {err}") from None


@contextlib.contextmanager
def _no_field_limit() -> Iterator[None]:
    """Python's reader refuses values over 128 KiB, which Arrow reads: as long as Arrow's, here."""
    previous = csv.field_size_limit(2**31 - 1)  # the largest a C long holds everywhere
    try:
        yield
    finally:
        csv.field_size_limit(previous)
