"""A finished cell is reused only while everything that decides its scores is unchanged.

That includes the code: each trainer and evaluator states a ``version``, and a cell scored by
another version of either is trained and evaluated again rather than reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from conftest import spec_dict, write_jsonl

from mlsandbox import tracking
from mlsandbox.delta import relative_delta
from mlsandbox.executors import cells
from mlsandbox.executors.cell_deltas import log_cell_deltas
from mlsandbox.executors.cell_result import CellResult
from mlsandbox.executors.cells import run_cell
from mlsandbox.executors.prepare import prepare
from mlsandbox.models import BenchmarkSet, load_benchmarks, trainer_for
from mlsandbox.models.evaluators import PerplexityEvaluator
from mlsandbox.models.ngram import NgramTrainer
from mlsandbox.pools import Pool, RandomOrigin, random_pool
from mlsandbox.spec import (
    CommandSpec,
    EvaluatorSpec,
    HFLoraSpec,
    TinyCaptionerSpec,
    TinyLMSpec,
    TinyT2VSpec,
    parse_spec,
)


@pytest.fixture
def cell(small_corpus: Path, tmp_path: Path, tracking_uri: str) -> Callable[..., CellResult]:
    """Runs one cell (a random pool of 30, the ngram model) on each seed given (default 0) under a new
    parent run, and returns the last."""
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence about topic {i}."} for i in range(10)])
    spec = parse_spec(spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0],
                                model={"type": "ngram", "order": 2},
                                benchmarks=[{"name": "clean", "path": str(bench)}]))
    prepared = prepare(spec, progress=False)
    pool = random_pool(prepared.stats, 30, seed=0)
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)
    experiment_id = tracking.use_experiment(spec.name)

    seeded_model = spec.model.model_copy(update={"max_tokens": 400})  # a token budget makes the order matter

    def run(*seeds: int, seeded: bool = False) -> Any:
        """The last cell, or with ``seeded`` (a seed-dependent n-gram model) every seed's cell."""
        model = seeded_model if seeded else None
        with tracking.parent_run("train", experiment_id, {}):
            results = [run_cell(prepared, pool, seed, benchmarks, model, experiment_id=experiment_id)
                       for seed in seeds or (0,)]
        return results if seeded else results[-1]

    return run


def test_an_unchanged_cell_is_reused(cell: Callable[..., CellResult]) -> None:
    first = cell()
    again = cell()
    assert first.ok and not first.reused
    assert again.reused and again.run_id == first.run_id
    assert again.scores == pytest.approx(first.scores)


def test_a_model_out_of_memory_fails_its_cell_with_what_to_do(cell: Callable[..., CellResult], monkeypatch) -> None:
    def out_of_memory(self, job):
        raise MemoryError

    monkeypatch.setattr(NgramTrainer, "train", out_of_memory)
    failed = cell()
    assert not failed.ok and failed.reason.startswith("out of memory training or scoring the model on 30 samples (")
    assert "model.max_tokens" in failed.reason and "pools.size" in failed.reason
    assert mlflow.get_run(failed.run_id).info.status == "FAILED"


def test_a_finished_cell_scored_on_other_benchmarks_is_trained_again(cell: Callable[..., CellResult]) -> None:
    # an earlier version reused and counted a benchmark a trainer added to the spec's
    first = cell()
    mlflow.MlflowClient().log_metric(first.run_id, "score.extra", 1000.0)
    again = cell()
    assert not again.reused and again.run_id != first.run_id and set(again.scores) == {"clean"}
    assert cell().reused  # the new cell is


def test_a_time_limit_is_not_part_of_a_cells_identity() -> None:
    pool = Pool("p", "dataset", np.arange(3), np.ones(3, dtype=np.int64), RandomOrigin(seed=0))
    benchmarks = BenchmarkSet(benchmarks=(), digests={"b": "0123"})
    trainer = CommandSpec(command=["train"])

    def key(model: CommandSpec, evaluator: EvaluatorSpec) -> str:
        return cells.cell_key(pool, 0, model, benchmarks, evaluator)

    default = key(trainer, EvaluatorSpec())
    assert key(trainer.model_copy(update={"timeout_s": 7200.0}), EvaluatorSpec(timeout_s=60)) == default
    assert key(trainer.model_copy(update={"metrics_file": "m.json"}), EvaluatorSpec()) != default
    # Digests at the default limits are those of earlier releases: their finished cells stay reusable.
    assert EvaluatorSpec().digest() == "b27d055f98d2c0f22454a9cd11327d72c19b1e88e2471a8ce341d954ad927e22"
    assert trainer.digest() == "460ee7ff1ab1b1be9acd7af9efd805f39fdf5de44989223e08b20c3faf817b43"


@pytest.mark.parametrize("spec_class", [TinyLMSpec, TinyCaptionerSpec, TinyT2VSpec, HFLoraSpec])
def test_torch_threads_and_intermediate_reports_are_not_part_of_a_cells_identity(spec_class: type) -> None:
    """Cells train without reports, so ``eval_every`` computes nothing; ``threads: 1`` (the advice on
    shared cores) must not retrain every finished cell."""
    pool = Pool("p", "dataset", np.arange(3), np.ones(3, dtype=np.int64), RandomOrigin(seed=0))
    benchmarks = BenchmarkSet(benchmarks=(), digests={"b": "0123"})
    keys = {cells.cell_key(pool, 0, spec_class(**changed), benchmarks, EvaluatorSpec())
            for changed in ({}, {"threads": 1}, {"threads": 2}, {"eval_every": 5})}
    assert len(keys) == 1
    assert spec_class(threads=1, eval_every=5).model_dump()["threads"] == 1  # still logged with the model's params
    assert spec_class(batch_size=3).digest() != spec_class().digest()


def test_a_script_edited_in_place_is_a_new_cell_but_a_copy_elsewhere_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = Pool("p", "dataset", np.arange(3), np.ones(3, dtype=np.int64), RandomOrigin(seed=0))
    benchmarks = BenchmarkSet(benchmarks=(), digests={"b": "0123"})
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.py").write_text("SMOOTHING = 0.1\n")
        (tmp_path / folder / "score.py").write_text("print('score')\n")
    trainer = CommandSpec(command=["python", "train.py", "{pool_file}"])
    evaluator = EvaluatorSpec(type="command", command=["python", "score.py", "{model_dir}"])

    def key() -> str:
        return cells.cell_key(pool, 0, trainer, benchmarks, evaluator)

    monkeypatch.chdir(tmp_path / "a")  # relative paths name files of the working directory
    first = key()
    (tmp_path / "a" / "train.py").touch()  # new times, same bytes
    monkeypatch.chdir(tmp_path / "b")  # the same project in another place
    assert key() == first
    (tmp_path / "b" / "train.py").write_text("SMOOTHING = 50.0\n")
    assert key() != first
    (tmp_path / "b" / "train.py").write_text("SMOOTHING = 0.1\n")
    (tmp_path / "b" / "score.py").write_text("print('another score')\n")
    assert key() != first


def test_a_local_model_folder_is_keyed_by_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pool = Pool("p", "dataset", np.arange(3), np.ones(3, dtype=np.int64), RandomOrigin(seed=0))
    benchmarks = BenchmarkSet(benchmarks=(), digests={"b": "0123"})
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    spec = HFLoraSpec(model="my-model")

    def key() -> str:
        return cells.cell_key(pool, 0, spec, benchmarks, EvaluatorSpec())

    first = key()
    (model / ".lock").write_text("x")  # hidden entries and byte-code caches are not content
    (model / "__pycache__").mkdir()
    (model / "__pycache__" / "m.pyc").write_bytes(b"x")
    assert key() == first
    (model / "model.safetensors").write_bytes(b"fine-tuned")
    assert key() != first
    assert trainer_for(HFLoraSpec(model="org/no-such-model")).files() == []  # a hub name: its name is its identity


@pytest.mark.parametrize("code", [NgramTrainer, PerplexityEvaluator], ids=["trainer", "evaluator"])
def test_a_new_code_version_retrains_the_cell(
    cell: Callable[..., CellResult], monkeypatch: pytest.MonkeyPatch, code: type
) -> None:
    first = cell()
    monkeypatch.setattr(code, "version", "2")
    retrained = cell()
    assert retrained.ok and not retrained.reused and retrained.run_id != first.run_id
    assert cell().run_id == retrained.run_id  # the new version's cell is reused in turn
    monkeypatch.undo()
    assert cell().run_id == first.run_id  # and the old version still finds its own


def test_a_cells_delta_is_logged_once_per_seed_and_control(cell: Callable[..., CellResult],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pool_cell, control = cell(), cell()  # one finished run stands in for both; only the run ids matter here
    control = dataclasses.replace(control, run_id="control-run")
    writes: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(tracking, "log_batch",
                        lambda run_id, series, **_: writes.append((run_id, sorted(series["delta_pct"]))))
    log_cell_deltas([pool_cell], {0: control})
    log_cell_deltas([pool_cell], {0: control})  # a later race round: the same pair
    assert writes == [(pool_cell.run_id, [0])] and pool_cell.baselines == {0: "control-run"}
    log_cell_deltas([pool_cell], {0: dataclasses.replace(control, run_id="retrained-control")})
    assert writes == [(pool_cell.run_id, [0])] * 2


def test_a_seed_independent_cell_keeps_one_delta_per_seed(cell: Callable[..., CellResult],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """An n-gram cell serves every seed: each seed's delta against its own control is its own step."""
    first = cell()
    controls = {seed: dataclasses.replace(first, seed=seed, run_id=f"{first.run_id[::-1]}{seed}") for seed in (0, 3)}
    requests = _count_requests(monkeypatch)
    log_cell_deltas([dataclasses.replace(first, seed=seed) for seed in controls], controls)  # as each seed got it
    history = mlflow.MlflowClient().get_metric_history(first.run_id, "delta_pct")
    assert sorted(m.step for m in history) == [0, 3] and requests == [first.run_id]  # both seeds in one request
    logged = {seed: control.run_id for seed, control in controls.items()}
    assert cell().baselines == logged  # a later run reads them from the run's tags and writes neither again


def test_a_finished_cell_is_searched_for_once_per_parent_run(cell: Callable[..., CellResult],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    first = cell()
    searches = _count_searches(monkeypatch)
    again = cell(0, 1)  # the n-gram cell serves both seeds: the second comes from memory
    assert again.run_id == first.run_id and again.reused and searches == ["all"]
    cell()  # a new parent run searches the store again
    assert searches == ["all", "all"]


def test_one_search_finds_every_finished_cell_of_a_step(cell: Callable[..., CellResult],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    trained = cell(0, 1, 2, seeded=True)
    searches = _count_searches(monkeypatch)
    reused = cell(0, 1, 2, seeded=True)
    assert [r.run_id for r in reused] == [r.run_id for r in trained] and all(r.reused for r in reused)
    assert searches == ["all"]  # not one search per cell
    cell(3, seeded=True)  # a cell the store lacked and no other process has finished since: no search of its own
    assert searches == ["all", "all"]


def test_a_finished_cell_beyond_the_fetched_ones_is_still_found(cell: Callable[..., CellResult], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    trained = cell(0, 1, 2, seeded=True)
    for mark in (tmp_path / "ws" / "locks" / "cells").glob("*.done"):  # as if another workspace had trained them
        mark.unlink()
    monkeypatch.setattr(cells, "PREFETCH_RUNS", 1)  # the search brings only the latest cell
    searches = _count_searches(monkeypatch)
    reused = cell(0, 1, 2, seeded=True)
    assert [r.run_id for r in reused] == [r.run_id for r in trained] and all(r.reused for r in reused)
    assert searches == ["all", "one", "one"]


def test_a_done_mark_older_than_the_steps_search_costs_no_search_of_its_own(
        cell: Callable[..., CellResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mark outlives its run when the store goes (a deleted ``mlflow.db``, another tracking URI):
    made before the step searched the store, it is of a run the search would have found, so it
    costs no search per cell."""
    trained = cell(0, 1, seeded=True)
    marks = sorted((tmp_path / "ws" / "locks" / "cells").glob("*.done"))
    assert len(marks) == 2
    for mark in marks:
        os.utime(mark, (time.time() - 3600, time.time() - 3600))
    for result in trained:
        mlflow.MlflowClient().delete_run(result.run_id)
    cells._INDEX.clear()  # a new command
    searches = _count_searches(monkeypatch)
    again = cell(0, 1, seeded=True)
    assert not any(r.reused for r in again) and searches == ["all"]


def test_a_cell_the_steps_search_found_finished_is_reused_without_taking_its_lock(
        cell: Callable[..., CellResult], monkeypatch: pytest.MonkeyPatch) -> None:
    """A FINISHED run stays finished: only a cell not known finished waits for another process."""
    first = cell()
    cells._INDEX.clear()  # a new command
    locked: list[Path] = []
    take = cells.exclusive
    monkeypatch.setattr(cells, "exclusive", lambda path, what: locked.append(path) or take(path, what))
    again = cell()
    assert again.reused and again.run_id == first.run_id and locked == []
    assert not cell(5, seeded=True)[0].reused and len(locked) == 1  # a new cell: trained under its lock


def _count_searches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each store search of the cell module: ``all`` of a dataset's cells, or ``one`` cell."""
    searches: list[str] = []
    for name, label in (("finished_cells", "all"), ("find_finished_cell", "one")):
        search = getattr(cells, name)
        monkeypatch.setattr(cells, name, lambda *args, _s=search, _l=label: searches.append(_l) or _s(*args))
    return searches


def _count_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the run of each ``tracking.log_batch`` request, still sending it."""
    requests: list[str] = []
    send = tracking.log_batch
    monkeypatch.setattr(tracking, "log_batch", lambda run_id, **kw: requests.append(run_id) or send(run_id, **kw))
    return requests


def test_a_cells_delta_is_its_relative_change_over_the_seeds_control(cell: Callable[..., CellResult]) -> None:
    pool_cell = cell()
    weaker = dataclasses.replace(pool_cell, run_id="control-run",
                                 metrics={b: {**m, "score": m["score"] * 0.8} for b, m in pool_cell.metrics.items()})
    log_cell_deltas([pool_cell], {0: weaker})
    (logged,) = mlflow.MlflowClient().get_metric_history(pool_cell.run_id, "delta_pct")
    assert logged.value == pytest.approx(100 * relative_delta(pool_cell.scores, weaker.scores)) == pytest.approx(25.0)


@pytest.mark.parametrize("status", ["FAILED", "KILLED"])
def test_a_cell_of_a_parent_that_did_not_finish_moves_under_the_run_that_reuses_it(
        cell: Callable[..., CellResult], status: str) -> None:
    first = cell()
    trained_under = mlflow.get_run(first.run_id).data.tags[tracking.PARENT_RUN_ID]
    mlflow.MlflowClient().set_tag(trained_under, tracking.END_REASON, "interrupted by SIGINT (Ctrl-C)")
    mlflow.MlflowClient().set_terminated(trained_under, status)
    cells._INDEX.clear()  # a new command: it knows nothing of the store yet
    again = cell()
    tags = mlflow.get_run(first.run_id).data.tags
    assert again.reused and tags[tracking.PARENT_RUN_ID] != trained_under
    assert mlflow.get_run(tags[tracking.PARENT_RUN_ID]).info.status == "FINISHED"  # the run that reused it
    assert tags[tracking.TRAINED_UNDER] == trained_under


def test_a_cell_of_a_parent_that_ended_killed_by_its_own_decision_stays_under_it(
        cell: Callable[..., CellResult]) -> None:
    """A pruned search trial ends KILLED on purpose, with no end reason: it keeps the cells it measured."""
    first = cell()
    trained_under = mlflow.get_run(first.run_id).data.tags[tracking.PARENT_RUN_ID]
    mlflow.MlflowClient().set_terminated(trained_under, "KILLED")
    cells._INDEX.clear()
    assert cell().reused
    tags = mlflow.get_run(first.run_id).data.tags
    assert tags[tracking.PARENT_RUN_ID] == trained_under and tracking.TRAINED_UNDER not in tags


def _cell_on(corpus: Path, bench: Path, tmp_path: Path) -> CellResult:
    """One cell (a random pool of 30, seed 0) of a project on ``corpus`` scored on ``bench``, as files are now."""
    spec = parse_spec(spec_dict(corpus, workspace=str(tmp_path / "ws"), seeds=[0], model={"type": "ngram", "order": 2},
                                benchmarks=[{"name": "clean", "path": str(bench)}]))
    prepared = prepare(spec, progress=False)
    experiment_id = tracking.use_experiment(spec.name)
    with tracking.parent_run("train", experiment_id, {}):
        return run_cell(prepared, random_pool(prepared.stats, 30, seed=0), 0,
                        load_benchmarks(spec.benchmarks, spec.base_dir), experiment_id=experiment_id)


@pytest.mark.parametrize("edited", ["benchmark", "dataset"])
def test_a_cell_is_trained_again_when_a_file_it_read_changed_in_place(
        small_corpus: Path, tmp_path: Path, tracking_uri: str, edited: str) -> None:
    """Same names, same ids, other content: its finished scores no longer describe it."""
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence about topic {i}."} for i in range(10)])
    first = _cell_on(small_corpus, bench, tmp_path)
    assert _cell_on(small_corpus, bench, tmp_path).reused
    if edited == "benchmark":
        write_jsonl(bench, [{"text": f"zzz qqq {i} !!!"} for i in range(10)])
    else:
        rows = [json.loads(line) for line in small_corpus.read_text().splitlines()]
        write_jsonl(small_corpus, [{**row, "text": row["text"] + " and some words more"} for row in rows])
    again = _cell_on(small_corpus, bench, tmp_path)
    assert not again.reused and again.run_id != first.run_id and again.scores != first.scores


def test_a_reused_cell_of_a_finished_parent_is_not_written_to(cell: Callable[..., CellResult]) -> None:
    """Reusing a cell costs no write to it: the reusing run's cells.json names it (an n-gram cell
    also serves every seed of its own run)."""
    served = cell(0, 1)  # seed 1 gets seed 0's cell, under the same parent run
    before = mlflow.get_run(served.run_id).data.tags
    cells._INDEX.clear()  # another command
    again = cell()
    assert served.reused and again.reused and again.run_id == served.run_id
    assert mlflow.get_run(served.run_id).data.tags == before


@pytest.mark.parametrize(("marked", "waited"), [(True, False), (False, True), (False, False)],
                         ids=["marked", "waited-for-its-lock", "neither"])
def test_a_cell_another_process_finished_after_the_steps_search_is_found_by_its_mark(
        small_corpus: Path, tmp_path: Path, tracking_uri: str, marked: bool, waited: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A step searches the store once; a cell finished after that by another process of the workspace
    is looked up again because that process marked it done beside the cell's lock, or held the lock
    while this one waited for it."""
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence about topic {i}."} for i in range(10)])
    spec = parse_spec(spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0], model={"type": "ngram", "order": 2},
                                benchmarks=[{"name": "clean", "path": str(bench)}]))
    prepared = prepare(spec, progress=False)
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)
    experiment_id = tracking.use_experiment(spec.name)
    first, second = random_pool(prepared.stats, 30, seed=0), random_pool(prepared.stats, 30, seed=1)
    with tracking.parent_run("train", experiment_id, {}) as step:
        assert not run_cell(prepared, first, 0, benchmarks, experiment_id=experiment_id).reused  # searched the store
    searched = dict(cells._INDEX)
    with tracking.parent_run("train", experiment_id, {}):  # the other process
        other = run_cell(prepared, second, 0, benchmarks, experiment_id=experiment_id)
    marks = sorted((prepared.workspace / "locks" / "cells").glob("*.done"))
    assert len(marks) == 2
    if not marked:
        for path in marks:
            path.unlink()
    cells._INDEX.clear()
    cells._INDEX.update(searched)  # the first step goes on, with what its search found
    if waited:
        @contextlib.contextmanager
        def held(path: Path, what: str) -> Iterator[bool]:
            yield True  # as if the other process had held the lock while this one waited

        monkeypatch.setattr(cells, "exclusive", held)
    with tracking.continue_run(step.info.run_id):
        again = run_cell(prepared, second, 0, benchmarks, experiment_id=experiment_id)
    assert again.reused == (marked or waited) and (again.run_id == other.run_id) == (marked or waited)
