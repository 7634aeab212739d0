"""Cells: one pool x seed x model config, trained and scored on the benchmarks as an MLflow run.

A cell is identified by the digests of its pool, model config, seed and benchmark sets (the
``mlsandbox.cell`` tag). Asking for a cell that already FINISHED returns its logged scores
without retraining; a cell whose run was killed half-way (KILLED, still RUNNING, or FAILED) is
run again from scratch into a new run. A trainer failure marks the run FAILED with the reason and
the log tail, and the caller goes on with the other cells.

A reused cell is named by the reusing run's ``cells.json``, and not written to, unless its own
parent run did not finish (killed, failed): then it moves under the run that reuses it, its first
parent kept in ``mlsandbox.trained_under``, so a resumed workflow run holds all its cells.

Within one parent run the store is searched once per dataset for its latest finished cells (one
query, not one per cell); a cell it found is reused without taking its lock (a finished run stays
finished). A cell not among them is looked for on its own, under its lock, where it
may be older than the search's latest, or where another process of the workspace may have
finished it since: one held its lock while this one waited, or left its mark (``<key>.done``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow.entities import RunInfo, RunStatus
from mlflow.exceptions import MlflowException

from mlsandbox import artifacts, tracking
from mlsandbox.content import content_digest
from mlsandbox.credentials import Scrubber, scrub_known, scrubbed_output
from mlsandbox.data import IMAGE, VIDEO
from mlsandbox.errors import TrainingError
from mlsandbox.executors.cell_result import (
    BASELINE_RUN,
    BENCHMARKS_DIGEST,
    CELL,
    FAILURE,
    FIDELITY,
    MODEL_DIGEST,
    MODEL_TYPE,
    CellResult,
    CellStatus,
)
from mlsandbox.executors.fidelity import DECIDE
from mlsandbox.executors.prepare import Prepared
from mlsandbox.files import scratch_folder
from mlsandbox.locks import exclusive, mark_done, marked_done_since
from mlsandbox.models import (
    BenchmarkMetrics,
    BenchmarkSet,
    TrainingJob,
    evaluator_for,
    trainer_for,
)
from mlsandbox.pools import Pool
from mlsandbox.spec import EvaluatorSpec, ModelSpec

log = logging.getLogger(__name__)

PREFETCH_RUNS = 1000  # finished cells a step fetches at once (others are looked up one by one)


def cell_key(pool: Pool, seed: int, model: ModelSpec, benchmarks: BenchmarkSet, evaluator: EvaluatorSpec,
             metadata: str = "") -> str:
    """Identity of a cell: everything that determines its scores, the code versions of its trainer
    and evaluator included, so a finished cell is reused only when all of it is unchanged. A
    trainer whose result does not depend on the seed (``seeded(model)`` is False) has one cell per
    pool; one that reads the dataset's metadata columns is keyed by their digest (``metadata``) too, and
    one whose model is a hub name by the commit it resolves to (``Trainer.pins``)."""
    trainer = trainer_for(model)
    code = {"trainer": trainer.version, "evaluator": evaluator_for(evaluator).version}
    identity: list[object] = [pool.digest, seed if trainer.seeded(model) else None, model.digest(), benchmarks.digest,
                              evaluator.digest(), code]
    if trainer.reads_pool_file:
        identity.append(metadata)
    if files := files_digest(model, evaluator):
        identity.append({"files": files})
    if pins := trainer.pins():
        identity.append({"pins": pins})
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def files_digest(model: ModelSpec, evaluator: EvaluatorSpec) -> str:
    """The bytes behind the local paths the trainer and evaluator name (a script, a model folder):
    part of a cell's identity; '' when they name none."""
    return content_digest([*trainer_for(model).files(), *evaluator_for(evaluator).files()])


def run_cell(
    prepared: Prepared, pool: Pool, seed: int, benchmarks: BenchmarkSet, model: ModelSpec | None = None,
    experiment_id: str | None = None, parent_run_id: str | None = None, fidelity: str = "",
) -> CellResult:
    """Train ``model`` (default: the spec's) on the pool and evaluate it, as a child of
    ``parent_run_id`` (the active run), or return its finished result from ``experiment_id``
    (default: the parent's experiment). ``fidelity`` tags the run with the role of its model."""
    spec = prepared.spec
    model = model or spec.model
    key = cell_key(pool, seed, model, benchmarks, spec.evaluator, prepared.dataset.metadata_digest)
    experiment_id = experiment_id or tracking.experiment_of(parent_run_id)
    lock = prepared.workspace / "locks" / "cells" / f"{key}.lock"
    parent = parent_run_id or active_run_id()
    index = _index_under(parent)
    known = _reusable(index, key, index.finished.get(key) or _prefetched(index, experiment_id, key, pool, seed),
                      benchmarks)
    if known is None:  # not known finished: another process may be training it, so under its lock
        with exclusive(lock, f"cell {pool.name} seed {seed}") as waited:  # held elsewhere: wait, then reuse it
            found = _search_finished(index, experiment_id, key, pool, seed, lock, waited)
            known = _reusable(index, key, found, benchmarks)
            if known is None:
                result = _train_cell(prepared, model, pool, seed, benchmarks, key, parent_run_id, fidelity or DECIDE)
                if result.ok:
                    index.finished[key] = _Finished(result, {tracking.PARENT_RUN_ID: parent})
                    mark_done(lock)  # for the other processes that searched the store before it finished
                return result
    log.debug("cell %s seed %d: reusing finished run %s", pool.name, seed, known.result.run_id)
    adopt_orphaned_cell(known, parent_run_id)
    return dataclasses.replace(known.result, pool=pool, seed=seed, reused=True, fidelity=fidelity or DECIDE)


def _reusable(index: _Index, key: str, known: _Finished | None, benchmarks: BenchmarkSet) -> _Finished | None:
    """``known`` unless it was scored on other benchmarks too (an earlier version let a trainer add
    some): its delta would mix them in, so it is trained again."""
    if known is None or set(known.result.metrics) == set(benchmarks.names):
        return known
    log.info("cell %s seed %d: run %s scored benchmarks %s, not the spec's %s: training it again", known.result.pool.name,
             known.result.seed, known.result.run_id, sorted(known.result.metrics), list(benchmarks.names))
    index.finished.pop(key, None)
    return None


@dataclass
class _Finished:
    """A finished cell as its reusing parent run knows it: its result and its run's tags (kept up to date)."""

    result: CellResult
    tags: dict[str, str]


@dataclass
class _Index:
    """What one parent run knows of the store: the cells it has linked, by cell key, and the
    finished cell runs of each (experiment, dataset) it has asked about, fetched in one search."""

    finished: dict[str, _Finished] = field(default_factory=dict)
    stored: dict[str, mlflow.entities.Run] = field(default_factory=dict)
    fetched: dict[tuple[str, str], bool] = field(default_factory=dict)  # scope -> all its finished cells fetched
    searched_at: dict[tuple[str, str], float] = field(default_factory=dict)  # scope -> wall time of its search
    prefetch: bool = True
    made: float = field(default_factory=time.monotonic)


#: The index of the current parent run. A new parent run (the next step or command) searches the
#: store again, so it sees runs killed, deleted or added since.
_INDEX: dict[str, _Index] = {}
#: The run whose one index serves the parents nested in it (:func:`one_index_under`).
_SHARED_BY: list[str] = []
#: How long a shared index serves before the store is searched again: cells that other machines
#: finished, or that were deleted, since (within one step, the step's whole length).
SHARED_INDEX_S = 300.0


@contextmanager
def one_index_under(run_id: str) -> Iterator[None]:
    """While it lasts, the cells of every parent run (each trial of a search study) share the index of
    ``run_id`` (the study's run): the store is searched once every :data:`SHARED_INDEX_S` seconds,
    not once per trial, which cost each trial a search of up to :data:`PREFETCH_RUNS` runs. Cells that
    other processes of the workspace finish meanwhile are found under their locks, as within a step."""
    _SHARED_BY.append(run_id)
    try:
        yield
    finally:
        _SHARED_BY.pop()
        _INDEX.pop(run_id, None)  # a study continued later in this process searches the store again


def _index_under(parent_run_id: str) -> _Index:
    if not parent_run_id:
        return _Index(prefetch=False)  # no run to remember cells for: look each one up on its own
    owner = _SHARED_BY[-1] if _SHARED_BY else parent_run_id
    stale = owner in _INDEX and _SHARED_BY and time.monotonic() - _INDEX[owner].made > SHARED_INDEX_S
    if owner not in _INDEX or stale:
        _INDEX.clear()
        _INDEX[owner] = _Index()
    return _INDEX[owner]


def _prefetched(index: _Index, experiment_id: str, key: str, pool: Pool, seed: int) -> _Finished | None:
    """The cell if the step's one search of the dataset's latest finished cells found it. A FINISHED
    run stays finished, so it is reused without taking the cell's lock."""
    scope = (experiment_id, pool.dataset_digest)
    if index.prefetch and scope not in index.fetched:
        index.searched_at[scope] = time.time()
        stored_runs = finished_cells(experiment_id, pool.dataset_digest)
        index.fetched[scope] = len(stored_runs) < PREFETCH_RUNS
        for stored in stored_runs:  # latest first: it wins a shared key
            index.stored.setdefault(stored.data.tags.get(CELL, ""), stored)
    run = index.stored.pop(key, None)
    return None if run is None else _known(index, key, pool, seed, run)


def _search_finished(index: _Index, experiment_id: str, key: str, pool: Pool, seed: int, lock: Path,
                     waited: bool) -> _Finished | None:
    """The cell looked for on its own (under its lock) where the step's search may have missed it."""
    scope = (experiment_id, pool.dataset_digest)
    if index.fetched.get(scope) and not waited and not marked_done_since(lock, index.searched_at[scope]):
        return None
    run = find_finished_cell(experiment_id, key)
    return None if run is None else _known(index, key, pool, seed, run)


def _known(index: _Index, key: str, pool: Pool, seed: int, run: mlflow.entities.Run) -> _Finished:
    index.finished[key] = known = _Finished(_result_from_run(pool, seed, run), dict(run.data.tags))
    return known


def active_run_id() -> str:
    active = mlflow.active_run()
    return active.info.run_id if active is not None else ""


def _train_cell(prepared: Prepared, model: ModelSpec, pool: Pool, seed: int, benchmarks: BenchmarkSet, key: str,
                parent_run_id: str | None, fidelity: str) -> CellResult:
    model_digest = model.digest()[:16]
    tags = {**tracking.pool_tags(pool, kind="cell"), CELL: key, tracking.SEED: str(seed),
            MODEL_DIGEST: model_digest, BENCHMARKS_DIGEST: benchmarks.digest, FIDELITY: fidelity,
            MODEL_TYPE: model.type}
    started = time.perf_counter()
    tracking.heartbeat()
    with (tracking.child_run(f"{pool.name}/seed{seed}", tags, parent_run_id) as run,
          scrubbed_output(Scrubber(trainer_for(model).secrets()))):
        result = _train_and_evaluate(prepared, model, pool, seed, benchmarks, run.info)
        result.fidelity = fidelity
        if not result.ok:  # ended FAILED here, never FINISHED first: a failed cell is never reused
            mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
    result.wall_s = time.perf_counter() - started  # the run's end included
    tracking.heartbeat()
    return result


def finished_cells(experiment_id: str, dataset_digest: str) -> list[mlflow.entities.Run]:
    """The latest ``PREFETCH_RUNS`` FINISHED cell runs of the experiment on the dataset, latest first:
    one bounded search, so a step in a large experiment does not pay for cells it will not ask about."""
    query = (f"tags.`{tracking.KIND}` = 'cell' and tags.`{tracking.DATASET_DIGEST}` = '{dataset_digest}' "
             "and attributes.status = 'FINISHED'")
    return list(tracking.search_runs([experiment_id], query, max_results=PREFETCH_RUNS,
                                     order_by=["attributes.end_time DESC"]))


def find_finished_cell(experiment_id: str, key: str) -> mlflow.entities.Run | None:
    runs = tracking.search_runs(
        [experiment_id], f"tags.`{CELL}` = '{key}' and attributes.status = 'FINISHED'", max_results=1,
        order_by=["attributes.end_time DESC"],
    )
    return runs[0] if runs else None


def adopt_orphaned_cell(cell: _Finished, parent_run_id: str | None = None) -> None:
    """Move a reused cell whose own parent was stopped (KILLED or FAILED with an ``end_reason``: an
    interruption, a crash, a lost owner) or deleted under
    the reusing run (``parent_run_id``, default the active run), its first parent kept in
    ``mlsandbox.trained_under``: a resumed run then holds all its cells. A cell of a parent that
    finished, or still runs, stays where it is and is not written to: the reusing run's
    ``cells.json`` names it, so a re-run costs no write per cell."""
    parent_run_id = parent_run_id or active_run_id()
    first = cell.tags.get(tracking.PARENT_RUN_ID)
    if not parent_run_id or not first or first == parent_run_id or not _did_not_finish(first):
        return
    tags = {tracking.PARENT_RUN_ID: parent_run_id, tracking.TRAINED_UNDER: cell.tags.get(tracking.TRAINED_UNDER, first)}
    log.info("cell run %s moves from unfinished run %s to %s", cell.result.run_id, first, parent_run_id)
    tracking.log_batch(cell.result.run_id, tags=tags)
    cell.tags.update(tags)


# Parent runs seen FINISHED: a finished run stays finished, so each is looked up once per process.
_FINISHED_PARENTS: set[str] = set()


def _did_not_finish(run_id: str) -> bool:
    if run_id in _FINISHED_PARENTS:
        return False
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        return True  # deleted for good
    if run.info.lifecycle_stage == "active" and run.info.status == "FINISHED":
        _FINISHED_PARENTS.add(run_id)
    # KILLED or FAILED by an interruption, a crash or a lost owner: each records why. A run that
    # ended so by its own decision (a pruned trial ends KILLED) keeps the cells it measured.
    stopped = run.info.status in ("KILLED", "FAILED") and tracking.END_REASON in run.data.tags
    return run.info.lifecycle_stage == "deleted" or stopped


def _result_from_run(pool: Pool, seed: int, run: mlflow.entities.Run) -> CellResult:
    metrics: BenchmarkMetrics = {}
    for name, value in run.data.metrics.items():
        if "." in name and name.split(".", 1)[0] in ("score", "bpb"):
            kind, bench = name.split(".", 1)
            metrics.setdefault(bench, {})[kind] = value
    tags = run.data.tags
    return CellResult(pool, seed, run.info.run_id, CellStatus.FINISHED, metrics, reused=True,
                      train_s=run.data.metrics.get("train_s", 0.0), eval_s=run.data.metrics.get("eval_s", 0.0),
                      baselines={int(k.rsplit(".", 1)[1]): v for k, v in tags.items() if k.startswith(BASELINE_RUN + ".")})


def _train_and_evaluate(
    prepared: Prepared, model_spec: ModelSpec, pool: Pool, seed: int, benchmarks: BenchmarkSet, run: RunInfo
) -> CellResult:
    spec, dataset, stats, run_id = prepared.spec, prepared.dataset, prepared.stats, run.run_id
    pool_file = prepared.pool_file(pool, model_spec)
    tracking.log_pool_input(pool, dataset, stats, pool_file, context="training", run_id=run_id, benchmarks=benchmarks)
    params = {  # logged with the results, in one request (a killed cell's tags name its pool and seed)
        "pool": pool.name, "pool_digest": pool.digest, "pool_size": pool.size, "seed": seed,
        "benchmarks": ",".join(benchmarks.names), "evaluator": spec.evaluator.type,
        **{f"model.{k}": v for k, v in model_spec.model_dump(mode="json").items()},
        **pool.origin.params(),
    }
    order = pool.training_order(seed)
    every_text = dataset.texts
    texts = [every_text[i] for i in order]
    pool_bytes = int(dataset.text_bytes[order].sum())  # repeats included (tokens: the model's train.train_tokens)
    images = dataset.table[IMAGE].take(order).to_pylist() if dataset.has_images else None
    videos = dataset.table[VIDEO].take(order).to_pylist() if dataset.has_videos else None
    ids = dataset.ids.take(order).to_pylist() if dataset.has_images or dataset.has_videos else None
    experiment, project_run = _project_run(model_spec, run_id)
    with scratch_folder("cell") as tmp:
        model_dir = tmp / artifacts.MODEL
        job = TrainingJob(
            texts=texts, output_dir=tmp / "work", seed=seed, pool_file=pool_file,
            tokenizer_texts=dataset.texts, source_digest=dataset.digest,
            cache_dir=prepared.workspace / "models", benchmarks=benchmarks.benchmarks, images=images,
            videos=videos, ids=ids, mlflow_experiment_id=experiment, mlflow_run_name=project_run, rows=order.tolist(),
        )
        try:
            t0 = time.perf_counter()
            model = trainer_for(model_spec).train(job)
            train_s = time.perf_counter() - t0
            model.save(model_dir)
            t0 = time.perf_counter()
            metrics = model.metrics or evaluator_for(spec.evaluator).evaluate(model_dir, benchmarks.benchmarks, model)
            eval_s = time.perf_counter() - t0
            benchmarks.check_metrics(metrics)
        except TrainingError as err:
            return _failed(pool, seed, run_id, params, err.reason, err.log_tail)
        except MemoryError:  # this cell's pool is too large for its model here; the next may fit
            return _failed(pool, seed, run_id, params, f"out of memory training or scoring the model on {len(texts)} samples "
                           f"({pool_bytes} bytes of text): give the model a budget (model.max_tokens, where it has "
                           "one) or the pools fewer samples (pools.size)", "")
        finally:
            if experiment and project_run:
                tracking.adopt_runs_named(experiment, project_run, run_id,
                                          "its cell stopped the trainer (a timeout, an interruption)")
        tracking.log_artifacts(run, model_dir, artifacts.MODEL)
    flat = {f"{kind}.{bench}": value for bench, m in metrics.items() for kind, value in m.items()}
    info = {f"train.{k}": v for k, v in model.info.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    placed = {f"{tracking.TAG}{k}": str(model.info[k]) for k in ("device", "precision") if k in model.info}
    tracking.log_batch(run_id, params=params, tags=placed, metrics={
        **flat, **info, "train_s": train_s, "eval_s": eval_s, "pool_bytes": pool_bytes,
        "score_sum": sum(m["score"] for m in metrics.values())})
    return CellResult(pool, seed, run_id, CellStatus.FINISHED, metrics, train_s=train_s, eval_s=eval_s)


def _project_run(model_spec: ModelSpec, run_id: str) -> tuple[str | None, str | None]:
    """Where an MLflow project trainer starts its own run, and the run's name (after the cell's):
    the cell finds it there, to link it and to end it if the trainer is stopped."""
    if not getattr(model_spec, "mlflow_project", None):
        return None, None
    return tracking.experiment_of(run_id), f"trainer-{run_id}"


def _failed(pool: Pool, seed: int, run_id: str, params: dict[str, object], reason: str, log_tail: str) -> CellResult:
    reason, log_tail = scrub_known(reason), scrub_known(log_tail)  # a trainer may quote a URL with its password
    # Chatter, as each cell's progress: the step's progress counts the failures, and each command ends
    # with them (train: one line with the first reason; the workflow steps: their tables and counts).
    log.info("cell %s seed %d failed: %s", pool.name, seed, reason)
    tracking.log_batch(run_id, params=params, tags={FAILURE: reason[:5000]})
    if log_tail:
        mlflow.MlflowClient().log_text(run_id, log_tail, artifacts.FAILURE_LOG_TAIL)
    return CellResult(pool, seed, run_id, CellStatus.FAILED, reason=reason)
