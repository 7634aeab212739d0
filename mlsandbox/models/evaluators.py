"""Benchmarks and evaluators: score a saved model on benchmark sets.

``perplexity`` computes bits-per-byte in process (any model type except ``command``);
``command`` runs an external argv once per benchmark and reads its metrics file. Both return
``{benchmark: {"score": ..., ...}}`` with ``score`` positive and higher-is-better, so the
relative change over a baseline, ``sum(s - s') / sum(s')``, is meaningful.
"""

from __future__ import annotations

import gzip
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path

from mlsandbox.data import builtin_path, load_files, resolve_files
from mlsandbox.errors import DataError, EvaluationError, TrainingError
from mlsandbox.models.base import Benchmark, BenchmarkMetrics, TrainedModel, load_model, read_manifest
from mlsandbox.models.command import (
    parse_metrics,
    read_json_file,
    run_logged,
    substitute,
    write_benchmark_files,
)
from mlsandbox.spec import BenchmarkSpec, DatasetSpec, EvaluatorSpec


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
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        opener = gzip.open if suffixes.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise EvaluationError(f"{path}:{line_no} is not valid JSON: {exc}") from None
        return
    import pandas as pd  # only tabular formats need pandas

    if suffixes.endswith(".parquet"):
        frame = pd.read_parquet(path)
    elif suffixes.endswith((".csv", ".csv.gz")):
        frame = pd.read_csv(path)
    else:
        raise EvaluationError(
            f"unsupported benchmark file {path.name}: use .jsonl, .jsonl.gz, .parquet or .csv"
        )
    yield from frame.to_dict(orient="records")


def load_benchmark(spec: BenchmarkSpec) -> Benchmark:
    """Read a benchmark's texts (first ``max_docs`` non-empty ones, in file order)."""
    path = _benchmark_path(spec)
    if spec.image_field is not None:
        return _load_image_benchmark(spec, path)
    if not path.exists():
        hint = "" if spec.path else f"; bundled: {[b.name for b in bundled_benchmarks()]}"
        raise EvaluationError(f"benchmark {spec.name!r}: no file at {path}{hint}")
    texts: list[str] = []
    for record in _iter_records(path):
        if spec.text_field not in record:
            raise EvaluationError(
                f"benchmark {spec.name!r}: records in {path} have no field {spec.text_field!r}"
            )
        text = record[spec.text_field]
        if isinstance(text, str) and text:
            texts.append(text)
            if spec.max_docs is not None and len(texts) >= spec.max_docs:
                break
    if not texts:
        raise EvaluationError(f"benchmark {spec.name!r}: {path} has no non-empty texts")
    return Benchmark(spec.name, texts, path)


def _benchmark_path(spec: BenchmarkSpec) -> Path:
    if not spec.path:
        return bundled_text_dir() / f"bench_{spec.name}.jsonl.gz"
    return builtin_path(spec.path) or Path(spec.path)


def _load_image_benchmark(spec: BenchmarkSpec, path: Path) -> Benchmark:
    """Captions and images of an image-text benchmark, read like a dataset (paths relative to the file)."""
    try:
        files = resolve_files(str(path), None)
        dataset = load_files(files, DatasetSpec(path=str(path), text_field=spec.text_field,
                                                image_field=spec.image_field))
    except DataError as err:
        raise EvaluationError(f"benchmark {spec.name!r}: {err}") from None
    table = dataset.table.slice(0, spec.max_docs) if spec.max_docs else dataset.table
    return Benchmark(spec.name, table["text"].to_pylist(), path, table["image"].to_pylist())


class Evaluator(ABC):
    """Scores a saved model directory on benchmark sets."""

    @abstractmethod
    def evaluate(
        self,
        model_dir: Path,
        benchmarks: Sequence[Benchmark],
        model: TrainedModel | None = None,
    ) -> BenchmarkMetrics:
        """Metrics per benchmark; ``model`` may pass the already-loaded model."""


class PerplexityEvaluator(Evaluator):
    """Bits-per-byte of the model on each benchmark; ``score = 1 / bpb``.

    Image-text models score captions given their images and may add metrics (retrieval accuracy).
    """

    def evaluate(
        self,
        model_dir: Path,
        benchmarks: Sequence[Benchmark],
        model: TrainedModel | None = None,
    ) -> BenchmarkMetrics:
        model = model if model is not None else load_model(model_dir)
        return {bench.name: model.benchmark_metrics(bench) for bench in benchmarks}


class CommandEvaluator(Evaluator):
    """Runs an external evaluator once per benchmark and reads the metrics it writes.

    Placeholders: ``{model_dir}``, ``{benchmark_file}`` (JSONL with a ``text`` field),
    ``{benchmark_name}``, ``{metrics_file}``. The metrics file holds ``{"score": ...}`` and/or
    ``{"bpb": ...}`` for that benchmark, or any form accepted by the command trainer.
    """

    def __init__(self, spec: EvaluatorSpec) -> None:
        assert spec.command is not None
        self.spec = spec

    def evaluate(
        self,
        model_dir: Path,
        benchmarks: Sequence[Benchmark],
        model: TrainedModel | None = None,
    ) -> BenchmarkMetrics:
        model_dir = Path(model_dir).resolve()
        read_manifest(model_dir)  # fail early with a clear message if nothing was saved there
        work = model_dir / "eval"
        files = write_benchmark_files(benchmarks, work / "benchmarks")
        results: BenchmarkMetrics = {}
        for bench in benchmarks:
            metrics_path = work / bench.name / self.spec.metrics_file
            metrics_path.parent.mkdir(parents=True, exist_ok=True)
            metrics_path.unlink(missing_ok=True)
            values = {
                "model_dir": str(model_dir),
                "benchmark_file": files[bench.name],
                "benchmark_name": bench.name,
                "metrics_file": str(metrics_path),
            }
            log_file = metrics_path.parent / "eval.log"
            argv = substitute(self.spec.command or [], values)
            try:
                run_logged(argv, cwd=metrics_path.parent, log_file=log_file, timeout_s=self.spec.timeout_s)
                data = read_json_file(metrics_path, log_file)
            except TrainingError as exc:
                raise EvaluationError(f"benchmark {bench.name!r}: {exc.reason}", exc.log_tail) from None
            results[bench.name] = _single(data, bench.name, metrics_path)
        return results


def _single(data: object, name: str, path: Path) -> dict[str, float]:
    # One benchmark per run, so a top-level {"score": x} or {"bpb": y} is that benchmark's.
    if isinstance(data, dict) and "benchmarks" not in data and ({"score", "bpb"} & set(data)):
        data = {name: data}
    try:
        metrics, _ = parse_metrics(data, source=path.name)
    except ValueError as exc:
        raise EvaluationError(f"invalid metrics file: {exc}") from None
    if name not in metrics:
        raise EvaluationError(f"{path} has no metrics for benchmark {name!r}")
    return metrics[name]


def evaluator_for(spec: EvaluatorSpec) -> Evaluator:
    """The evaluator for a validated spec."""
    if spec.type == "command":
        return CommandEvaluator(spec)
    return PerplexityEvaluator()
