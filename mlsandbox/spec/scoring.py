"""What trained models are scored on and how: the benchmark sets and the evaluator of a spec."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from mlsandbox.errors import KeyValueError
from mlsandbox.spec._base import MAX_NAME, DataPath, OutputFile, StrictModel


class BenchmarkSpec(StrictModel):
    """A benchmark set: a dataset file (JSONL, JSONL.gz, Parquet, CSV) or a bundled default."""

    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9_.-]+$")
    path: DataPath | None = Field(
        default=None,
        description="dataset file (or builtin:<file under mlsandbox/resources>); None = bundled bench_<name>",
    )
    text_field: str = Field(default="text", min_length=1)
    image_field: str | None = Field(
        default=None, description="image-text benchmarks: the column with each caption's image (path or bytes)"
    )
    video_field: str | None = Field(
        default=None, description="video-text benchmarks: the column with each caption's video (path or bytes)"
    )
    max_docs: int | None = Field(default=500, gt=0)

    @model_validator(mode="after")
    def _one_medium(self) -> BenchmarkSpec:
        if self.image_field is not None and self.video_field is not None:
            raise KeyValueError("video_field", self.video_field, "a benchmark pairs captions with images or with "
                                f"videos, and image_field is set too ({self.image_field!r}): keep one")
        return self


class EvaluatorSpec(StrictModel):
    """How trained models are scored: bits-per-byte in process, or an external command.

    A ``command`` evaluator runs once per benchmark with placeholders ``{model_dir}``,
    ``{benchmark_file}``, ``{benchmark_name}`` and ``{metrics_file}``.
    """

    type: Literal["perplexity", "command"] = "perplexity"
    command: list[str] | None = Field(default=None, min_length=1)
    timeout_s: float = Field(default=3600.0, gt=0)
    metrics_file: OutputFile = "eval_metrics.json"

    limit_keys: ClassVar[frozenset[str]] = frozenset({"timeout_s"})

    @model_validator(mode="after")
    def _command_iff_needed(self) -> EvaluatorSpec:
        if self.type == "command" and not self.command:
            raise KeyValueError("command", self.command, "a `command` evaluator needs an argv list")
        if self.type == "perplexity" and self.command is not None:
            raise KeyValueError("command", self.command, "is only allowed with type: command")
        return self
