"""The ``train`` and ``evaluate`` entry points: pools against the equal-size random pool, per seed."""

from __future__ import annotations

import difflib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from mlsandbox import artifacts, tracking
from mlsandbox.data import ID
from mlsandbox.errors import DataError, EvaluationError, InvalidInputError, InvalidRunError, PoolError
from mlsandbox.executors.cell_result import FAILURE
from mlsandbox.executors.compare import compare_pools, log_comparisons
from mlsandbox.executors.comparison import Comparisons
from mlsandbox.executors.fidelity import deciding
from mlsandbox.executors.prepare import Prepared, log_prepared, prepare
from mlsandbox.files import scratch_folder
from mlsandbox.models import check_models, load_benchmarks, load_model
from mlsandbox.models.evaluators import evaluator_for
from mlsandbox.pools import RANDOM, FileOrigin, Pool, pool_file_path
from mlsandbox.progress import StyleArg
from mlsandbox.recipes import Recipe, load_recipe
from mlsandbox.spec import ExperimentSpec
from mlsandbox.workflows.pool import single_op_splits

log = logging.getLogger(__name__)


@dataclass
class TrainingResult:
    parent_run_id: str
    comparisons: Comparisons
    where: str


@dataclass
class Evaluation:
    run_id: str  # the evaluation's own run
    metrics: dict[str, dict[str, float]]  # per benchmark


def find_pools(
    prepared: Prepared, names: list[str], files: list[Path], run_ids: list[str], recipes: list[Recipe] | None = None
) -> list[Pool]:
    """Pools by single-OP name (``<op>/<split>``), by pool file, by the run that logged them, or by
    recipe (the pool it selects, as it was measured when it was exported); their names distinct."""
    split_pools, degenerate = single_op_splits(prepared) if names else ([], [])  # only OP pools need splits
    available = {p.name: p for p in split_pools}
    pools = []
    for name in names:
        if why := dict(degenerate).get(name):
            raise PoolError(f"pool {name!r} is left out of this project's pools: {why}")
        if name not in available:
            raise PoolError(f"no pool {name!r}; pools of this project: {', '.join(available)}")
        pools.append(available[name])
    pools.extend(pool_from_file(prepared, f) for f in files)
    for run_id in run_ids:  # named as the run logged it, not after its file (a digest)
        path, name = _pool_file_of_run(run_id, prepared.pools_dir, prepared.dataset.digest)
        pools.append(pool_from_file(prepared, path, name))
    for recipe in recipes or []:
        pools.append(selected := recipe.select(prepared.stats))
        if len(selected.rows) == len(prepared.dataset):
            log.warning("recipe %r keeps every sample of the dataset: it selects nothing out (no condition, or a "
                        "bound beyond its stat's range?), and its pool draws what its random control draws", recipe.name)
    if not pools:
        raise PoolError(NO_POOL)
    twice = sorted(name for name, n in Counter(p.name for p in pools).items() if n > 1)
    if twice:  # their metrics and table rows would be indistinguishable
        raise PoolError(f"two pools are named {twice[0]!r}; pools of one run need distinct names "
                        "(a recipe's `name:`, a pool file's name)")
    by_key: dict[str, list[str]] = {}
    for pool in pools:
        by_key.setdefault(tracking.metric_key(pool.name), []).append(pool.name)
    if clash := next((names for names in by_key.values() if len(names) > 1), None):
        raise PoolError(f"pools {clash[0]!r} and {clash[1]!r} would share the MLflow metric name "
                        f"{tracking.metric_key(clash[0])!r} (characters MLflow does not take become _): rename one")
    return pools


NO_POOL = "name at least one pool (--pool op/split, --pool-file, --pool-run or --recipe)"


def _check_pool_names(spec: ExperimentSpec, names: list[str]) -> None:
    """Refuse, before the stats, a pool name that none of the spec's OPs and splits can give (the
    stats then say which of the possible pools are usable)."""
    possible = [f"{op.name}/{split}" for op in spec.ops for split in spec.pools.splits]
    for name in names:
        if name == RANDOM or name.startswith(f"{RANDOM}-"):
            raise PoolError(f"--pool {name}: a random pool is the control, which `train` draws and trains for every pool "
                            "and seed itself; name the pools to compare with it (op/split, --pool-file, --pool-run "
                            "or --recipe)")
        if name not in possible:
            close = difflib.get_close_matches(name, possible, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PoolError(f"no pool {name!r}{hint}; the pools this project's OPs and splits can give: "
                            f"{', '.join(possible)}")


def pool_from_file(prepared: Prepared, path: Path, name: str | None = None) -> Pool:
    """A pool given as a dataset file whose ``id`` column names samples of the project's dataset."""
    index = pd.Index(prepared.stats.ids)
    counts = Counter(_read_ids(path))
    ids = list(counts)
    rows = index.get_indexer(ids)
    if (rows < 0).any():
        unknown = [i for i, r in zip(ids, rows) if r < 0][:5]
        raise PoolError(f"{path}: ids not in the project's dataset, e.g. {unknown}")
    order = np.argsort(rows)
    repeats = np.array([counts[i] for i in ids], dtype=np.int64)[order]
    return Pool(name or Path(path).name.split(".")[0], prepared.stats.dataset_digest, rows[order].astype(np.int64),
                repeats, FileOrigin(str(path)))


def _read_ids(path: Path) -> list[str]:
    ids = []
    try:
        with open(path, encoding="utf-8-sig") as f:  # a BOM, as some editors write, is not part of the JSON
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    ids.append(_line_id(line, f"{path}:{lineno}"))
    except FileNotFoundError:
        raise DataError(f"pool file {path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"pool file {path}: is a folder, expected a JSONL file of sample ids") from None
    except UnicodeDecodeError as err:
        raise DataError(f"pool file {path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise DataError(f"pool file {path}: cannot be read: {err.strerror or err}") from None
    if not ids:
        raise DataError(f"{path}: the pool file is empty")
    return ids


def _line_id(line: str, where: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: not valid JSON ({err.msg})") from None
    if not isinstance(record, dict) or ID not in record:
        raise DataError(f"{where}: expected a JSON object with an {ID!r} field")
    return str(record[ID])


#: What ``--pool-run`` takes.
POOL_RUN = "the run id of a pool (a child run of `mlsandbox pool`), of a refine candidate, of a search trial or of a cell"
#: The dataset-input contexts of the runs ``--pool-run`` takes (a pool's, a candidate's, a trial's, a cell's).
POOL_CONTEXTS = ("pool", "candidate", "trial", "training")


def _pool_file_of_run(run_id: str, pools_dir: Path, dataset_digest: str) -> tuple[Path, str]:
    """The pool file the run logged, or the same pool's file in this project's pool folder (by its
    digest: an earlier version kept pool files in another folder), and the pool's name; refused when
    the run's pool is of another dataset than the project's (``dataset_digest``)."""
    run = tracking.find_run(run_id, POOL_RUN)
    theirs = run.data.tags.get(tracking.DATASET_DIGEST)
    if theirs and theirs != dataset_digest:
        raise PoolError(f"run {run_id}'s pool is of dataset {theirs}, and this project's dataset is {dataset_digest}: "
                        "train it with the project it came from")
    logged = run.inputs.dataset_inputs if run.inputs is not None else []
    inputs = [i for i in logged if any(t.value in POOL_CONTEXTS for t in i.tags)]
    if not inputs and run.data.tags.get(tracking.ENTRY_POINT) == "pool":
        raise InvalidRunError(f"run {run_id} is the parent run of `mlsandbox pool`: pass one of its pools' runs "
                              "(the run ids `mlsandbox pool` prints, or its child runs in the MLflow UI)")
    if not inputs:
        raise InvalidRunError(f"run {run_id} is {tracking.describe_run(run)} that logged no pool; expected {POOL_RUN}")
    path = Path(json.loads(inputs[0].dataset.source)["uri"])
    if not path.exists():  # the same pool's file here: its samples, or their ids (pools.materialize)
        here = [pool_file_path(pools_dir, inputs[0].dataset.digest, records) for records in (True, False)]
        path = next((p for p in here if p.exists()), path)
    if not path.exists():
        raise PoolError(f"run {run_id} logged its pool as {path}, which is not on this machine; pass the file "
                        f"with --pool-file, or write it again here: `mlsandbox pool` for a single-OP or random pool, "
                        f"`--recipe` with the recipe the run logged for a refine candidate or a search trial")
    return path, inputs[0].dataset.name


def run_training(
    spec: ExperimentSpec,
    pool_names: list[str] | None = None,
    pool_files: list[Path] | None = None,
    pool_runs: list[str] | None = None,
    workers: int | None = None,
    progress: StyleArg = True,
    recipes: list[Path] | None = None,
) -> TrainingResult:
    """Train each pool and its equal-size random baseline for every seed; log deltas, mean ± std, p."""
    for run_id in pool_runs or []:  # first: a run id that names no run (in no store: none is created)
        tracking.find_run(run_id, POOL_RUN)
    experiment_id = tracking.use_experiment(spec.name)  # a store that cannot be used stops it before any work
    chosen = [load_recipe(path) for path in recipes or []]  # a bad recipe file stops it before the stats
    _check_pool_names(spec, pool_names or [])  # as does a misspelt pool name
    for path in pool_files or []:  # and a pool file that is missing or malformed
        _read_ids(path)
    if not (pool_names or pool_files or pool_runs or recipes):
        raise PoolError(NO_POOL)
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)  # small: a bad one stops it before the stats
    check_models([spec.model], spec.executor.type)  # and a model that cannot be loaded here (no screen: one model)
    prepared = prepare(spec, workers=workers, progress=progress)
    pools = find_pools(prepared, list(pool_names or []), list(pool_files or []), list(pool_runs or []), chosen)
    tags = {tracking.KIND: "workflow", tracking.ENTRY_POINT: "train", tracking.PROJECT: spec.name,
            tracking.DATASET_DIGEST: prepared.dataset.digest}
    with tracking.parent_run("train", experiment_id, tags) as parent:
        log_prepared(prepared, benchmarks, parent.info.run_id, pools=",".join(p.name for p in pools))
        comparisons = compare_pools(prepared, pools, benchmarks, experiment_id, parent_run_id=parent.info.run_id,
                                    levels=[deciding(spec)], progress=progress, step="train")
        log_comparisons(comparisons, parent.info.run_id)
        return TrainingResult(parent.info.run_id, comparisons, tracking.run_url(parent))


#: What ``evaluate`` takes.
TRAINING_RUN = "the run id of a training run (a cell that logged a model/ artifact)"


def check_training_run(run_id: str) -> None:
    """Refuse a run id that names no run, a cell that has not FINISHED (its model may be half
    uploaded), or one that logged no model (InvalidRunError)."""
    run = tracking.find_run(run_id, TRAINING_RUN)
    if run.data.tags.get(tracking.KIND) != "cell":
        raise InvalidRunError(f"run {run_id} is {tracking.describe_run(run)}, not a cell; expected {TRAINING_RUN}")
    if run.info.status != "FINISHED":
        raise InvalidRunError(f"run {run_id} is a cell that {_unfinished(run)}: its model may be incomplete; "
                              "expected a training run that FINISHED")
    if not mlflow.MlflowClient().list_artifacts(run_id, artifacts.MODEL):
        raise InvalidRunError(f"run {run_id} is a cell that logged no model (status {run.info.status}); "
                              f"expected {TRAINING_RUN}")


def _unfinished(run: mlflow.entities.Run) -> str:
    """Why a cell has no model to evaluate yet, or never will: still training, or stopped (and why)."""
    status, tags = run.info.status, run.data.tags
    if status == "RUNNING":
        gone = tracking.owner_gone(tags)
        return f"never finished (status RUNNING, but its {gone})" if gone else "is still training (status RUNNING)"
    why = tags.get(tracking.END_REASON) or tags.get(FAILURE, "")  # a trainer's failure, as the cell logged it
    reason = (why.strip().splitlines() or [""])[0][:200]
    return f"stopped {status}{f' ({reason})' if reason else ''} before it finished"


def run_evaluation(spec: ExperimentSpec, model_run_id: str) -> Evaluation:
    """Load the model a cell logged and score it on the project's benchmarks, as a new run."""
    check_training_run(model_run_id)
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)
    experiment_id = tracking.use_experiment(spec.name)
    with scratch_folder("train") as tmp:
        model_dir = tracking.download_artifacts(model_run_id, artifacts.MODEL, tmp)
        try:
            model = load_model(model_dir)
        except EvaluationError as err:  # it names the download folder, gone when the command ends
            raise EvaluationError(f"run {model_run_id}'s `{artifacts.MODEL}` artifact: "
                                  f"{str(err).replace(str(model_dir), artifacts.MODEL)}") from None
        if model.type == "command" and spec.evaluator.type != "command":  # before a run that could only fail
            raise InvalidInputError(f"run {model_run_id} holds a command-trained model, which only its command or "
                                    "an evaluator of type `command` can score; set evaluator.type: command")
        tags = {tracking.KIND: "evaluation", tracking.ENTRY_POINT: "evaluate", tracking.PROJECT: spec.name,
                tracking.TAG + "model_run": model_run_id}
        with tracking.parent_run("evaluate", experiment_id, tags) as run:
            tracking.log_benchmark_inputs(benchmarks, run_id=run.info.run_id)
            metrics = evaluator_for(spec.evaluator).evaluate(model_dir, benchmarks.benchmarks, model)
            flat = {f"{k}.{b}": v for b, m in metrics.items() for k, v in m.items()}
            tracking.log_batch(run.info.run_id, params={"model_run": model_run_id, "model_type": model.type},
                               metrics={**flat, "score_sum": sum(m["score"] for m in metrics.values())})
    return Evaluation(run.info.run_id, metrics)
