"""Benchmark sets: held-out texts (and images or videos) that every trained model is scored on.

A project names its sets in ``benchmarks:``; by default it gets the bundled held-out sets. A
:class:`BenchmarkSet` carries one digest over every set's content, part of each cell's identity.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlsandbox.data import (
    BUILTIN_PREFIX,
    IMAGE,
    TEXT,
    VIDEO,
    Dataset,
    MalformedRow,
    builtin_path,
    jsonl_objects,
    load_files,
    resolve_files,
)
from mlsandbox.errors import DataError, EvaluationError, TrainingError, first_line
from mlsandbox.models.base import Benchmark, BenchmarkMetrics
from mlsandbox.spec import BenchmarkSpec, DatasetSpec
from mlsandbox.videos import check_every_frame

log = logging.getLogger(__name__)


def texts_digest(texts: Sequence[str], media: Sequence[bytes] | None = None) -> str:
    """Content digest of a list of texts, and of their images or videos if given (order matters)."""
    h = hashlib.sha256()
    for text in texts:
        h.update(hashlib.sha256(text.encode("utf-8")).digest())
    for item in media or ():
        h.update(hashlib.sha256(item).digest())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class BenchmarkSet:
    """The loaded benchmark sets of a project, with one digest over their contents."""

    benchmarks: tuple[Benchmark, ...]
    digests: dict[str, str]  # benchmark name -> content digest

    @property
    def digest(self) -> str:
        """One digest over every set's name and content."""
        payload = json.dumps(sorted(self.digests.items()))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.benchmarks]

    def samples_in(self, dataset: Dataset) -> dict[str, int]:
        """Per benchmark, how many of its samples the dataset holds too (the same text; for an image-text or
        video-text benchmark, the same picture or clip): a pool that draws them is scored on what it trained on."""
        found = {}
        for bench in self.benchmarks:
            media, column = ((bench.images, IMAGE) if bench.images is not None
                             else (bench.videos, VIDEO) if bench.videos is not None else (bench.texts, TEXT))
            if column not in dataset.table.column_names:
                found[bench.name] = 0
                continue
            values = dataset.table[column]
            found[bench.name] = pc.sum(pc.is_in(pa.array(media, values.type), value_set=values)).as_py() or 0
        return found

    def check_metrics(self, metrics: BenchmarkMetrics) -> None:
        """TrainingError unless a model's metrics score exactly these benchmarks (a delta over other
        names would compare unlike cells), each within :data:`SCORE_RANGE`."""
        missing, unknown = set(self.names) - set(metrics), set(metrics) - set(self.names)
        if missing:
            raise TrainingError(f"the model's metrics lack benchmarks {sorted(missing)}")
        if unknown:
            raise TrainingError(f"the model's metrics name benchmarks the spec does not have: {sorted(unknown)} "
                                f"(the spec's: {self.names})")
        for name, values in metrics.items():
            if not SCORE_RANGE[0] <= values.get("score", 0.0) <= SCORE_RANGE[1]:
                raise TrainingError(f"benchmark {name!r}: score {values.get('score')!r} is outside "
                                    f"[{SCORE_RANGE[0]:g}, {SCORE_RANGE[1]:g}]: report a score on a scale where the "
                                    "ratio of two scores is a finite number (e.g. 1 / bits per byte)")


#: The scores a cell may report. Within it the ratio of any two is at most 1e300, so a delta is a
#: finite number; a score beyond it (a likelihood of thousands of tokens, say) would overflow one.
SCORE_RANGE = (1e-150, 1e150)


def bundled_text_dir() -> Path:
    """The directory of the bundled text corpus and its benchmark sets."""
    return Path(str(resources.files("mlsandbox") / "resources" / "text"))


def bundled_benchmarks(max_docs: int | None = 500) -> list[BenchmarkSpec]:
    """Specs for every bundled ``bench_<name>.jsonl.gz`` (sorted by name)."""
    found = sorted(bundled_text_dir().glob("bench_*.jsonl.gz"))
    return [
        BenchmarkSpec(name=p.name.removeprefix("bench_").removesuffix(".jsonl.gz"), max_docs=max_docs)
        for p in found
    ]


def _iter_records(path: Path) -> Iterator[dict]:
    """The records of a benchmark file in file order. A file its reader cannot read (corrupt, cut
    short, malformed) is a :class:`DataError` naming it, worded as the dataset loader words it."""
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        kind, records = "JSONL", _jsonl_records(path)
    elif suffixes.endswith(".parquet"):
        kind, records = "Parquet", _table_records(path, "parquet")
    elif suffixes.endswith((".csv", ".csv.gz")):
        kind, records = "CSV", _table_records(path, "csv")
    else:
        raise EvaluationError(
            f"unsupported benchmark file {path.name}: use .jsonl, .jsonl.gz, .parquet or .csv"
        )
    try:
        yield from records
    except DataError:
        raise
    # What the readers raise on a file they cannot read: gzip (OSError, EOFError, zlib.error), UTF-8
    # (UnicodeDecodeError), pandas' CSV parser (ParserError, EmptyDataError: ValueErrors), Arrow.
    except (OSError, EOFError, zlib.error, ValueError, pa.ArrowException) as err:
        gzipped = suffixes.endswith(".gz") and isinstance(err, (OSError, EOFError, zlib.error))
        raise DataError(f"{path}: not a readable {'gzip' if gzipped else kind} file ({first_line(err)})") from None


def _jsonl_records(path: Path) -> Iterator[dict]:
    """The dataset loader's reading of each line (a byte-order mark, a key written twice, a lone
    surrogate): a benchmark is read whole, so a bad line stops it, named."""
    for line_no, record in jsonl_objects(path):
        if isinstance(record, str):
            raise DataError(f"{path}:{line_no}: {record}")
        yield record


def _table_records(path: Path, fmt: str) -> Iterator[dict]:
    if fmt == "parquet":  # a null stays None (pandas would make it NaN, a float)
        yield from pq.read_table(path).to_pylist()
        return
    import pandas as pd  # only CSV needs pandas

    # Every cell as written: an empty cell is "", and "NA" or "null" is a text, not a missing value.
    yield from pd.read_csv(path, dtype=str, keep_default_na=False).to_dict(orient="records")


def shared_samples_warning(name: str, count: int) -> str:
    """What :meth:`BenchmarkSet.samples_in` found, said once for every command."""
    return (f"benchmark {name}: {count} of its samples are in the dataset too, so pools that draw them are scored on "
            "what they trained on: take them out of the benchmark")


def load_benchmark(spec: BenchmarkSpec) -> Benchmark:
    """Read a benchmark's texts (first ``max_docs`` non-empty ones, in file order)."""
    path = _benchmark_path(spec)
    if spec.image_field is not None or spec.video_field is not None:
        return _load_media_benchmark(spec, path)
    if not path.exists():
        hint = "" if spec.path else f"; bundled: {[b.name for b in bundled_benchmarks()]}"
        raise EvaluationError(f"benchmark {spec.name!r}: no file at {path}{hint}")
    texts: list[str] = []
    empty = 0
    try:
        for number, record in enumerate(_iter_records(path), 1):
            if spec.text_field not in record:
                fields = ", ".join(map(str, record))
                raise EvaluationError(f"benchmark {spec.name!r}: record {number} of {path} has no field "
                                      f"{spec.text_field!r} (fields: {fields}); set the benchmark's text_field")
            text = record[spec.text_field]
            if text is not None and not isinstance(text, str):
                raise EvaluationError(f"benchmark {spec.name!r}: record {number} of {path}: "
                                      f"{spec.text_field!r} is {type(text).__name__}, not text")
            if not text:
                empty += 1
                continue
            texts.append(text)
            if spec.max_docs is not None and len(texts) >= spec.max_docs:
                break
    except DataError as err:  # a file it cannot read, named as the media benchmarks' files are
        raise EvaluationError(f"benchmark {spec.name!r}: {err}") from None
    if not texts:
        raise EvaluationError(f"benchmark {spec.name!r}: {path} has no non-empty texts")
    if empty:
        log.warning("benchmark %r: skipped %d empty or null texts of %s", spec.name, empty, path)
    return Benchmark(spec.name, texts, path)


def _benchmark_path(spec: BenchmarkSpec) -> Path:
    if not spec.path:
        return bundled_text_dir() / f"bench_{spec.name}.jsonl.gz"
    return builtin_path(spec.path) or Path(spec.path)


def _load_media_benchmark(spec: BenchmarkSpec, path: Path) -> Benchmark:
    """Captions and images (or videos) of an image-text (video-text) benchmark, read like a dataset
    (paths relative to the file)."""
    try:
        files = resolve_files(str(path), None)
        dataset = load_files(files, DatasetSpec(path=str(path), text_field=spec.text_field,
                                                image_field=spec.image_field, video_field=spec.video_field))
    except DataError as err:  # a benchmark is read whole: a bad row is fixed or removed, never skipped
        reason = err.row if isinstance(err, MalformedRow) else str(err)
        # the loader names the dataset's keys; here the key to set is the benchmark's own
        reason = reason.replace("; set dataset.", "; set the benchmark's ")
        raise EvaluationError(f"benchmark {spec.name!r}: {reason}") from None
    table = dataset.table.slice(0, spec.max_docs) if spec.max_docs else dataset.table
    texts = table[TEXT].to_pylist()
    if spec.image_field is not None:
        return Benchmark(spec.name, texts, path, images=table[IMAGE].to_pylist())
    clips = table[VIDEO].to_pylist()
    for row, data in enumerate(clips, 1):  # the load checked first frames; every frame, before any training
        try:
            check_every_frame(data)
        except DataError as err:
            raise EvaluationError(f"benchmark {spec.name!r}: video of row {row} ({len(data)} bytes): {err}") from None
    return Benchmark(spec.name, texts, path, videos=clips)


def load_benchmarks(specs: Sequence[BenchmarkSpec] | None, base_dir: Path) -> BenchmarkSet:
    """The project's benchmark sets (default: the bundled held-out sets), paths relative to the spec."""
    chosen = list(specs) if specs else bundled_benchmarks()
    resolved = [
        s.model_copy(update={"path": str(base_dir / s.path)})
        if s.path and not s.path.startswith(BUILTIN_PREFIX) and not Path(s.path).is_absolute() else s
        for s in chosen
    ]
    loaded = tuple(load_benchmark(s) for s in resolved)
    return BenchmarkSet(loaded, {b.name: texts_digest(b.texts, b.images or b.videos) for b in loaded})
