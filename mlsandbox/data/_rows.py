"""What every reader of data files shares: a file's bytes (gzip or not), and the policy for a malformed row."""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

from mlsandbox.errors import DataError
from mlsandbox.spec import DatasetSpec

log = logging.getLogger(__name__)


#: How a dataset's malformed row may be skipped instead (a benchmark's may not: it is read whole).
SKIP_HINT = " (set dataset.on_error: skip to skip such rows)"


class MalformedRow(DataError):
    """A malformed row of a dataset, which ``on_error: skip`` would skip: ``row`` names it, and the
    message adds how to skip such rows (a reader that cannot skip, a benchmark's, quotes ``row``)."""

    def __init__(self, row: str) -> None:
        super().__init__(row + SKIP_HINT)
        self.row = row


def bad_row(spec: DatasetSpec, message: str) -> int:
    """A malformed row: raise under ``on_error: raise``, else log it and count 1 skipped row."""
    if spec.on_error == "raise":
        raise MalformedRow(message)
    log.warning(message)
    return 1


#: The column in which the readers number each row (dropped once the ids are made from it).
LINE = "__line"


def gzipped(path: Path) -> bool:
    """Whether a data file is read through gzip: a ``.gz`` name, in any case (``X.JSONL.GZ``), as its format is found."""
    return path.name.lower().endswith(".gz")


def open_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped for a ``.gz`` name (a corrupt or cut-short gzip file is a DataError)."""
    raw = path.read_bytes()
    if not gzipped(path):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:  # a bad header, corrupt data, a truncated file
        raise DataError(f"{path}: not a readable gzip file ({err})") from None
