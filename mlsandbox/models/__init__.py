"""Proxy models behind small interfaces: trainers and evaluators, registered by ``type``.

Trainer modules (torch, transformers, peft) load only when their type is first used.
"""

from mlsandbox.models.base import (
    Benchmark,
    BenchmarkMetrics,
    ReportCallback,
    TrainedModel,
    Trainer,
    TrainingJob,
    check_models,
    load_model,
    model_types,
    register_model_type,
    score_from_bpb,
    trainer_class,
    trainer_for,
    utf8_bytes,
)
from mlsandbox.models.benchmarks import BenchmarkSet, bundled_benchmarks, load_benchmark, load_benchmarks
from mlsandbox.models.evaluators import (
    CommandEvaluator,
    Evaluator,
    PerplexityEvaluator,
    evaluator_class,
    evaluator_for,
)

__all__ = [
    "Benchmark",
    "BenchmarkMetrics",
    "BenchmarkSet",
    "CommandEvaluator",
    "Evaluator",
    "PerplexityEvaluator",
    "ReportCallback",
    "TrainedModel",
    "Trainer",
    "TrainingJob",
    "bundled_benchmarks",
    "evaluator_class",
    "evaluator_for",
    "load_benchmark",
    "load_benchmarks",
    "load_model",
    "model_types",
    "register_model_type",
    "score_from_bpb",
    "check_models",
    "trainer_class",
    "trainer_for",
    "utf8_bytes",
]
