"""The files an external command exchanges with the sandbox: the pool and the benchmarks as JSONL in,
a metrics JSON document out (its forms: :mod:`mlsandbox.models.command`)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlsandbox.errors import TrainingError
from mlsandbox.images import image_suffix
from mlsandbox.models._command_process import log_tail
from mlsandbox.models.base import Benchmark, BenchmarkMetrics, score_from_bpb
from mlsandbox.spec import MAX_NAME


def parse_metrics(data: Any, source: str = "metrics") -> tuple[BenchmarkMetrics, dict[str, float]]:
    """Normalise a metrics document into (per-benchmark metrics, training metrics); ValueError naming
    the offending entry where the document has neither form."""
    if not isinstance(data, dict):
        raise ValueError(f"{source} must be a JSON object, got {type(data).__name__}")
    if "benchmarks" in data:
        if unknown := sorted(set(data) - {"benchmarks", "metrics"}):  # a misspelt `metrics` would drop them all
            raise ValueError(f"{source}: unknown key {unknown[0]!r} beside `benchmarks` (only `metrics` may be)")
        benchmarks = data["benchmarks"]
        if not isinstance(benchmarks, dict):
            raise ValueError(f"{source}: `benchmarks` must be an object of name -> metrics")
        extra = data.get("metrics", {})
        if not isinstance(extra, dict):
            raise ValueError(f"{source}: `metrics` must be an object of name -> number")
        training = {_metric_key(k, f"{source}: metrics"): _number(v, f"{source}: metrics.{k}")
                    for k, v in extra.items()}
    else:
        benchmarks, training = data, {}
    result: BenchmarkMetrics = {}
    for name, value in benchmarks.items():
        where = f"{source}: benchmark {name!r}"
        if isinstance(value, dict):
            metrics = {_metric_key(k, where): _number(v, f"{where}.{k}") for k, v in value.items()}
        else:
            metrics = {"score": _number(value, where)}
        if "score" not in metrics:
            if "bpb" not in metrics:
                raise ValueError(f"{where} needs a `score` or a `bpb`")
            if metrics["bpb"] <= 0:
                raise ValueError(f"{where}: bpb must be positive, got {metrics['bpb']!r}")
            metrics["score"] = score_from_bpb(metrics["bpb"])
        if metrics["score"] <= 0:
            raise ValueError(f"{where}: score must be positive (higher is better)")
        result[str(name)] = metrics
    return result, training


def _metric_key(key: object, where: str) -> str:
    """``key`` if MLflow accepts it as a metric name (logged as ``train.<key>`` or ``<key>.<benchmark>``,
    within MLflow's 250 characters): a name MLflow refuses would fail the cell after its model was logged."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_metric_name

    name = str(key)
    if len(name) > MAX_NAME:
        raise ValueError(f"{where}: {name[:40]!r}... is {len(name)} characters long; a metric name may have at most {MAX_NAME}")
    try:
        _validate_metric_name(name)
    except MlflowException:
        raise ValueError(f"{where}: {name!r} is not a metric name MLflow accepts (letters, digits, "
                         "'_', '-', '.', ' ', '/' and ':')") from None
    return name


def _number(value: Any, where: str) -> float:
    try:  # JSON's integers have no bound: 10**400 is one, and no float
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        shown = repr(value)
        raise ValueError(f"{where} must be a finite number, got "
                         + (shown if len(shown) <= 40 else f"{shown[:20]}... ({len(shown)} characters)"))
    return number


def read_json_file(path: Path, log_file: Path) -> Any:
    """Parse a JSON file a command wrote; TrainingError (with the log tail) if unusable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingError(
            f"the command succeeded but wrote no metrics file at {path}", log_tail(log_file)
        ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4,300 digits
        raise TrainingError(f"metrics file {path} is not valid JSON: {exc}", log_tail(log_file)) from None
    except RecursionError:
        raise TrainingError(f"metrics file {path} nests its JSON too deeply to read", log_tail(log_file)) from None
    except OSError as exc:  # a folder, a file it may not read
        raise TrainingError(f"metrics file {path} cannot be read: {exc.strerror or exc}", log_tail(log_file)) from None


def read_metrics_file(path: Path, log_file: Path) -> tuple[BenchmarkMetrics, dict[str, float]]:
    """Read and validate a metrics file written by a command; TrainingError if unusable."""
    data = read_json_file(path, log_file)
    try:
        return parse_metrics(data, source=path.name)
    except ValueError as exc:
        raise TrainingError(f"invalid metrics file: {exc}", log_tail(log_file)) from None


def write_benchmark_files(benchmarks: Sequence[Benchmark], directory: Path) -> dict[str, str]:
    """Materialise benchmarks as JSONL and return ``{name: path}``.

    Each line has a ``text`` field; image-text benchmarks also an ``image`` field, the path of
    the image file (written to ``<name>_images/``) relative to the JSONL file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for bench in benchmarks:
        path = directory / f"{bench.name}.jsonl"
        images: Sequence[bytes | None] = bench.images or [None] * len(bench.texts)
        with path.open("w", encoding="utf-8") as handle:
            for i, (text, image) in enumerate(zip(bench.texts, images)):
                record = {"text": text}
                if image is not None:
                    image_path = Path(f"{bench.name}_images") / f"{i:06d}{image_suffix(image)}"
                    (directory / image_path).parent.mkdir(exist_ok=True)
                    (directory / image_path).write_bytes(image)
                    record["image"] = image_path.as_posix()
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        paths[bench.name] = str(path.resolve())
    return paths


def write_pool_file(texts: Sequence[str], path: Path) -> Path:
    """Write a pool as JSONL with a ``text`` field (one line per occurrence, repeats kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for text in texts:
            handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return path
