"""External trainers: any script as an argv list, or an MLflow project run as a subprocess.

The command runs without a shell, in the job's output directory, with a timeout; its combined
stdout/stderr go to ``train.log`` there. It must write a metrics file (``metrics.json`` by
default, relative to the output directory) in one of these forms::

    {"benchmarks": {"wiki": {"score": 0.52, "bpb": 1.92}, "news": {"bpb": 2.1}},
     "metrics": {"train_loss": 1.3}}          # optional training metrics
    {"wiki": 0.52, "news": 0.47}              # flat: benchmark name -> score
    {"wiki": {"score": 0.52}}                 # flat, with metric dicts

A ``score`` must be positive and higher-is-better; when only ``bpb`` is given the score is
``1 / bpb``. Any failure (non-zero exit, timeout, missing or malformed metrics) raises
:class:`TrainingError` with the reason and the last lines of the log.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlsandbox.content import local_path
from mlsandbox.credentials import scrub_known, secrets_in
from mlsandbox.errors import EvaluationError, TrainingError
from mlsandbox.images import image_suffix
from mlsandbox.models.base import (
    Benchmark,
    BenchmarkMetrics,
    TrainedModel,
    Trainer,
    TrainingJob,
    score_from_bpb,
)
from mlsandbox.spec import MAX_NAME, CommandSpec

LOG_TAIL_LINES = 40
_LAST_LINE = 300  # characters of the log's last line quoted in a failure's reason
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


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' if it does not exist)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip("\n")
    except FileNotFoundError:
        return ""


def run_logged(
    argv: Sequence[str],
    *,
    cwd: Path,
    log_file: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run ``argv`` (no shell) with output to ``log_file``; raise TrainingError on failure."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log_file.open("w", encoding="utf-8") as log:
        try:
            # A new session lets a timeout kill the whole process group, grandchildren included.
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                start_new_session=True,
            )
        except OSError as exc:
            if exc.errno == errno.ENOENT and Path(argv[0]).is_file():  # the error names the script, not what is missing
                raise TrainingError(f"could not start {argv[0]!r}: the interpreter its #! line names "
                                    "was not found") from None
            raise TrainingError(f"could not start {argv[0]!r}: {exc}") from None
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise _failure(f"command timed out after {timeout_s:g} s", argv, log_file) from None
        except BaseException:
            # Ctrl-C or SIGTERM of the sandbox: its trainer (in a session of its own) goes too.
            _kill_group(proc)
            raise
    if returncode != 0:
        raise _failure(f"command exited with status {returncode}", argv, log_file)


def _failure(what: str, argv: Sequence[str], log_file: Path) -> TrainingError:
    """``what`` happened, with the log's last meaningful line before the (long, cut) command line:
    the reason shown for a FAILED cell must say why, not only what ran."""
    tail = log_tail(log_file)
    said = [line.strip() for line in tail.splitlines() if line.strip(" \t^~=-")]
    last = f" ({said[-1][:_LAST_LINE]})" if said else ""
    shown = " ".join(argv)
    return TrainingError(f"{what}{last}: {shown if len(shown) <= 300 else shown[:297] + '...'}", tail)


def _scrub_file(path: Path) -> None:
    """``path`` rewritten line by line (a long log stays out of memory) through :func:`scrub_known`."""
    if not path.is_file():
        return
    scrubbed = path.with_name(path.name + ".scrubbed")
    with path.open(errors="surrogateescape") as src, scrubbed.open("w", errors="surrogateescape") as dst:
        dst.writelines(scrub_known(line) for line in src)
    scrubbed.replace(path)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def read_json_file(path: Path, log_file: Path) -> Any:
    """Parse a JSON file a command wrote; TrainingError (with the log tail) if unusable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingError(
            f"the command succeeded but wrote no metrics file at {path}", log_tail(log_file)
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainingError(f"metrics file {path} is not valid JSON: {exc}", log_tail(log_file)) from None


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
            _scrub_file(log_file)
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
