"""Evaluators: score a saved model on benchmark sets.

``perplexity`` computes bits-per-byte in process (any model type except ``command``);
``command`` runs an external argv once per benchmark and reads its metrics file. Both return
``{benchmark: {"score": ..., ...}}`` with ``score`` positive and higher-is-better, so the
relative change over a baseline, ``sum(s - s') / sum(s')``, is meaningful.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from mlsandbox.errors import EvaluationError, TrainingError
from mlsandbox.models._command_files import parse_metrics, read_json_file, write_benchmark_files
from mlsandbox.models._command_process import run_logged
from mlsandbox.models.base import Benchmark, BenchmarkMetrics, TrainedModel, load_model, read_manifest
from mlsandbox.models.command import named_files, substitute, with_absolute_files
from mlsandbox.spec import EvaluatorSpec


class Evaluator(ABC):
    """Scores a saved model directory on benchmark sets."""

    #: Bump whenever a change to the evaluator changes its scores: finished cells scored by
    #: another version are not reused.
    version: ClassVar[str] = "1"

    def files(self) -> list[Path]:
        """The local files its spec names whose content shapes the scores (see ``Trainer.files``)."""
        return []

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

    def files(self) -> list[Path]:
        """The local files its ``command`` names."""
        return list(named_files(self.spec.command or []).values())

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
            argv = substitute(with_absolute_files(self.spec.command or []), values)
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


def evaluator_class(spec: EvaluatorSpec) -> type[Evaluator]:
    """The evaluator class for a validated spec."""
    return CommandEvaluator if spec.type == "command" else PerplexityEvaluator


def evaluator_for(spec: EvaluatorSpec) -> Evaluator:
    """The evaluator for a validated spec."""
    if spec.type == "command":
        return CommandEvaluator(spec)
    return PerplexityEvaluator()
