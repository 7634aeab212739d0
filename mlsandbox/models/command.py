"""External trainers: any script as an argv list, or an MLflow project run as a subprocess.

The command runs without a shell, in the job's output directory, with a timeout; its combined
stdout/stderr go to ``train.log`` there. It must write a metrics file (``metrics.json`` by
default, relative to the output directory) in one of these forms::

    {"benchmarks": {"wiki": {"score": 0.52, "bpb": 1.92}, "news": {"bpb": 2.1}},
     "metrics": {"train_loss": 1.3}}          # optional training metrics
    {"wiki": 0.52, "news": 0.47}              # flat: benchmark name -> score
    {"wiki": {"score": 0.52}}                 # flat, with metric dicts

A ``score`` must be positive and higher-is-better (within
:data:`~mlsandbox.models.benchmarks.SCORE_RANGE`); when only ``bpb`` is given the score is ``1 / bpb``. Any failure (non-zero exit, timeout, missing or malformed metrics) raises
:class:`TrainingError` with the reason and the last lines of the log.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlsandbox.content import local_path
from mlsandbox.credentials import secrets_in
from mlsandbox.errors import EvaluationError
from mlsandbox.models._command_files import read_metrics_file, write_benchmark_files, write_pool_file
from mlsandbox.models._command_process import run_logged, scrub_file
from mlsandbox.models.base import TrainedModel, Trainer, TrainingJob
from mlsandbox.spec import CommandSpec

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
MIN_SECRET = 6  # characters of an ``env`` value scrubbed as a secret


def substitute(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Replace ``{name}`` placeholders known in ``values`` inside each argument.

    Unknown ``{...}`` text is left alone, so arguments that contain JSON or format strings of
    the script itself pass through unchanged.
    """
    return [
        _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), arg) for arg in argv
    ]


def named_files(argv: Sequence[str]) -> dict[int, Path]:
    """The arguments that name an existing local file (absolute, or relative to the working
    directory of mlsandbox), by position: the command runs elsewhere (its output directory), so
    they are passed as absolute paths, and a cell's identity digests their bytes. Arguments with
    a placeholder name the cell's own files, not inputs."""
    named = {i: local_path(arg, files_only=True) for i, arg in enumerate(argv) if not _PLACEHOLDER.search(arg)}
    return {i: path for i, path in named.items() if path is not None}


def with_absolute_files(argv: Sequence[str]) -> list[str]:
    """``argv`` with each argument that names a local file replaced by its absolute path."""
    named = named_files(argv)
    return [str(named[i]) if i in named else arg for i, arg in enumerate(argv)]


#: What the cell wrote into a command's output folder for it to read: not part of its result.
_INPUTS = ("pool.jsonl", "benchmarks", "benchmarks.json")
#: The folder of a saved command model that holds what the command wrote (checkpoints, its log).
OUTPUT = "output"


class CommandModel(TrainedModel):
    """The result of an external trainer: its reported metrics and the files it left behind
    (``output_dir``, saved as ``output/``: checkpoints, ``train.log``, the metrics file).

    It has no in-process likelihood; score it from its reported metrics or with a ``command``
    evaluator that receives its directory.
    """

    type = "command"
    output_dir: Path | None = None

    def bits_per_byte(self, texts: Sequence[str]) -> float:
        raise EvaluationError(
            "a command-trained model has no in-process bits-per-byte; use the metrics its "
            "command reported or an evaluator of type `command`"
        )

    def _save_payload(self, directory: Path) -> None:
        if self.output_dir is None:  # loaded back from a saved folder, whose output/ is there already
            return
        shutil.copytree(self.output_dir, directory / OUTPUT, symlinks=True, dirs_exist_ok=True,
                        ignore=lambda folder, names: [n for n in names if Path(folder) == self.output_dir
                                                      and n in _INPUTS])

    @classmethod
    def _load_payload(cls, directory: Path, manifest: dict[str, Any]) -> CommandModel:
        spec = CommandSpec.model_validate(manifest["spec"])
        return cls(spec, info=manifest.get("info"), metrics=manifest.get("metrics"))


class CommandTrainer(Trainer):
    """Runs :class:`~mlsandbox.spec.CommandSpec` jobs and collects their metrics."""

    type = "command"
    version = "1"
    reads_pool_file = True
    spec: CommandSpec

    def train(self, job: TrainingJob) -> CommandModel:
        out = job.output_dir.resolve()
        out.mkdir(parents=True, exist_ok=True)
        pool_file = job.pool_file or write_pool_file(job.texts, out / "pool.jsonl")
        metrics_path = out / self.spec.metrics_file
        metrics_path.unlink(missing_ok=True)  # a stale file must not pass for this run's result
        metrics_path.parent.mkdir(parents=True, exist_ok=True)  # a `metrics_file` in a subfolder
        bench_paths = write_benchmark_files(job.benchmarks, out / "benchmarks")
        benchmarks_file = out / "benchmarks.json"
        benchmarks_file.write_text(json.dumps(bench_paths, indent=2))
        values = {
            "pool_file": str(Path(pool_file).resolve()),
            "output_dir": str(out),
            "seed": str(job.seed),
            "metrics_file": str(metrics_path),
            "benchmarks_file": str(benchmarks_file),
            "cache_dir": str(job.cache_dir.resolve()),
        }
        argv = self._argv(values)
        if self.spec.mlflow_project is not None and job.mlflow_experiment_id and job.mlflow_run_name:
            argv += ["--experiment-id", job.mlflow_experiment_id, "--run-name", job.mlflow_run_name]
        log_file = out / "train.log"
        try:
            run_logged(argv, cwd=out, log_file=log_file, timeout_s=self.spec.timeout_s,
                       env={**tracking_environment(), **self.spec.environment()})
        finally:  # the log is saved with the model: without the secrets the command may have printed
            scrub_file(log_file)
        benchmarks, training = read_metrics_file(metrics_path, log_file)
        info: dict[str, Any] = {"argv": argv, **training}
        model = CommandModel(self.spec, info=info, metrics=benchmarks)
        model.output_dir = out
        return model

    def secrets(self) -> list[str]:
        """Its ``env`` values, and the passwords of the URLs among them as a driver may quote them; not
        values under :data:`MIN_SECRET` characters (a thread count, a flag), which would blank out words."""
        values = self.spec.environment().values()
        return [s for value in values for s in (value, *secrets_in(value)) if len(s) >= MIN_SECRET]

    def files(self) -> list[Path]:
        """The local files its ``command`` names, or its local MLflow project folder."""
        if self.spec.command is not None:
            return list(named_files(self.spec.command).values())
        project = local_path(self.spec.mlflow_project or "")
        return [project] if project is not None else []

    def _argv(self, values: Mapping[str, str]) -> list[str]:
        spec = self.spec
        if spec.command is not None:
            argv = substitute(with_absolute_files(spec.command), values)
            for key, value in spec.params.items():
                argv += [f"--{key}", _param_text(value)]
            return argv
        assert spec.mlflow_project is not None
        local = local_path(spec.mlflow_project)  # the command runs in the output directory
        project = str(local) if local is not None else spec.mlflow_project
        argv = [sys.executable, "-m", "mlflow", "run", project, "-e", spec.entry_point,
                "--env-manager", "local"]
        standard = {k: values[k] for k in ("pool_file", "output_dir", "seed", "metrics_file",
                                            "benchmarks_file")}
        for key, value in {**standard, **spec.params}.items():
            argv += ["-P", f"{key}={_param_text(value)}"]
        return argv


def tracking_environment() -> dict[str, str]:
    """This process's tracking store by an absolute URI, for a command it starts in its output folder,
    where a relative store (MLflow's default ``sqlite:///mlflow.db``, ``./mlruns``) would be another,
    empty one, without the experiment its MLflow project run goes to. A trainer's ``env`` may override it."""
    import mlflow
    from mlflow.utils.uri import resolve_uri_if_local
    from sqlalchemy.engine import make_url

    uri = mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:"):
        return {"MLFLOW_TRACKING_URI": resolve_uri_if_local(uri)}
    url = make_url(uri)  # the store's engine parsed it already
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        uri = url.set(database=str(Path(url.database).expanduser().resolve())).render_as_string(hide_password=False)
    return {"MLFLOW_TRACKING_URI": uri}


def _param_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
