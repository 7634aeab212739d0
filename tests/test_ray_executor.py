"""Cells and trials as Ray tasks: a quick probe through a Ray cluster ranks as the local executor
does and logs every cell once; a study's trial workers run as Ray tasks on one storage. Set
RAY_ADDRESS to run them on an existing cluster, and MLSANDBOX_TEST_TRACKING_URI to log to an
MLflow tracking server (CI starts both)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import optuna
import pytest
from conftest import spec_dict, write_jsonl

from mlsandbox.search import TRIAL, run_search_on_ray
from mlsandbox.search._names import RUN_ATTR
from mlsandbox.search._trials import counted_trials
from mlsandbox.spec import parse_spec
from mlsandbox.workflows.workflow import run_workflow

pytest.importorskip("ray")


@pytest.fixture
def shared_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The tracking server at MLSANDBOX_TEST_TRACKING_URI, else a SQLite store every task can reach."""
    uri = os.environ.get("MLSANDBOX_TEST_TRACKING_URI") or f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


def _spec(tmp_path: Path, executor: str) -> dict:
    docs = [f"Document {i}: a clean sentence about topic {i}." if i % 2 else "zz qq !! " * (1 + i % 5)
            for i in range(90)]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": f"d{i}", "text": t} for i, t in enumerate(docs)])
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence about topic {i}."} for i in range(20)])
    spec = spec_dict(corpus, workspace=str(tmp_path / "ws"), seeds=[0, 1], model={"type": "ngram", "order": 2},
                     benchmarks=[{"name": "clean", "path": str(bench)}], executor={"type": executor})
    return {**spec, "name": f"probe-{executor}-{uuid.uuid4().hex[:8]}"}  # a server keeps older tests' runs


def test_a_probe_through_ray_ranks_as_the_local_one(cluster: object, tmp_path: Path, shared_store: str) -> None:
    rankings = {}
    for executor in ("local", "ray"):
        (tmp_path / executor).mkdir()
        spec = parse_spec(_spec(tmp_path / executor, executor))
        result = run_workflow(spec, until="probe", progress=False)
        rankings[executor] = result.probe.ranking
        experiment = mlflow.get_experiment_by_name(spec.name).experiment_id
        cells = mlflow.search_runs([experiment], filter_string="tags.`mlsandbox.kind` = 'cell'")
        keys = cells["tags.mlsandbox.cell"]
        assert keys.is_unique  # every cell trained once
        assert len(keys) == sum(not c.reused for c in result.cells)
    columns = ["pool", "delta_pct", "rank"]
    assert rankings["ray"][columns].equals(rankings["local"][columns])


def test_a_studys_trial_workers_run_as_ray_tasks_on_one_storage(cluster: object, tmp_path: Path,
                                                                 shared_store: str) -> None:
    raw = _spec(tmp_path, "ray")
    raw["search"] = {"min_pool_size": 5, "n_trials": 4, "sampler": "random",
                     "warm_start": {"workflow": False, "ksigma": False}}
    spec = parse_spec(raw)
    storage = str(tmp_path / "optuna.journal")
    result = run_search_on_ray(spec, "ray-study", storage, trial_workers=2, progress=False)
    study = optuna.load_study(study_name="ray-study", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(storage)))
    assert counted_trials(study) == 4
    assert result.ran == 4 and len(result.trials) == 4
    runs = [mlflow.get_run(t.user_attrs[RUN_ATTR]) for t in study.trials]  # each trial's own run
    assert len({r.info.run_id for r in runs}) == 4
    assert [r.data.tags[TRIAL] for r in runs] == ["0", "1", "2", "3"]
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {result.run_id}  # all under the study's run
    assert mlflow.get_run(result.run_id).data.metrics["trials_run_now"] == 4  # the workers' trials, not the driver's 0


def test_ray_tasks_resolve_relative_paths_as_the_driver_does(cluster: object, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The default workspace (`.mlsandbox`) and store (`sqlite:///mlflow.db`) are relative to the
    driver's folder: the tasks lock, write pools and log cells there, not in the folder Ray started in."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    raw = {**_spec(tmp_path, "ray"), "workspace": "ws"}
    result = run_workflow(parse_spec(raw), until="probe", progress=False)
    trained = [c for c in result.cells if not c.reused]
    assert trained and all(c.ok for c in trained)
    assert len(list((tmp_path / "ws" / "locks" / "cells").glob("*.lock"))) == len(trained)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`mlsandbox.kind` = 'cell'")
    assert len(runs) == len(trained)  # every task logged to the driver's store
    while mlflow.active_run():
        mlflow.end_run()


def test_connecting_keeps_the_commands_sigterm_handler() -> None:
    """ray.init installs a SIGTERM handler that exits at once (code 15): connecting must put back
    the command's, which ends its runs KILLED and exits with 143."""
    script = (
        "import os, signal\n"
        "handler = lambda signum, frame: None\n"
        "signal.signal(signal.SIGTERM, handler)\n"
        "from mlsandbox.cluster import connect\n"
        "ray = connect(os.environ.get('RAY_ADDRESS'))\n"
        "assert signal.getsignal(signal.SIGTERM) is handler, signal.getsignal(signal.SIGTERM)\n"
        "ray.shutdown()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_cell_whose_ray_worker_dies_fails_and_the_others_go_on(cluster: object) -> None:
    from types import SimpleNamespace

    from mlsandbox.executors.cell_result import CellStatus
    from mlsandbox.executors.runners import RayRunner

    def task(where: object, request: SimpleNamespace, environment: dict) -> str:
        if request.seed == 1:
            os._exit(1)  # the worker process dies, as under the OOM killer or kill -9
        return f"ran seed {request.seed}"

    runner = RayRunner(SimpleNamespace(parent_run_id=None))  # type: ignore[arg-type]
    runner.task = cluster.remote(max_retries=0)(task)  # type: ignore[attr-defined]
    requests = [SimpleNamespace(pool=SimpleNamespace(name="p"), seed=seed) for seed in (0, 1, 2)]
    results: dict[int, object] = {}
    runner.run(requests, lambda request, result: results.__setitem__(request.seed, result))  # type: ignore[arg-type]
    assert results[0] == "ran seed 0" and results[2] == "ran seed 2"
    assert results[1].status == CellStatus.FAILED and "WorkerCrashedError" in results[1].reason


def test_an_error_a_cell_raises_on_ray_comes_back_as_its_own_type_without_rays_chain(cluster: object) -> None:
    """Re-raised as Ray wrapped it, a lost tracking server printed a chained traceback of some 390 lines."""
    from types import SimpleNamespace

    from mlsandbox.errors import DataError
    from mlsandbox.executors.runners import RayRunner

    def task(where: object, request: SimpleNamespace, environment: dict) -> str:
        raise DataError("row 3 has no text")

    runner = RayRunner(SimpleNamespace(parent_run_id=None))  # type: ignore[arg-type]
    runner.task = cluster.remote(max_retries=0)(task)  # type: ignore[attr-defined]
    with pytest.raises(DataError, match="row 3 has no text") as err:
        runner.run([SimpleNamespace(pool=SimpleNamespace(name="p"), seed=0)], lambda *_: None)  # type: ignore[list-item]
    assert err.value.__suppress_context__ and err.value.__cause__ is None


def test_an_interrupted_driver_ends_the_cells_its_ray_tasks_were_running(cluster: object, shared_store: str) -> None:
    """Its tasks' workers stop with the driver, so their cells would stay RUNNING until a later
    command found their owner gone: the driver ends them KILLED with its own reason."""
    from types import SimpleNamespace

    from mlsandbox.errors import Terminated
    from mlsandbox.executors.runners import RayRunner

    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment(f"interrupted-{uuid.uuid4().hex[:8]}")
    parent = client.create_run(experiment_id).info.run_id
    cell = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent}).info.run_id  # a task's running cell

    def task(where: object, request: SimpleNamespace, environment: dict) -> int:
        if request.seed == 1:
            import time

            time.sleep(15)  # still training when the driver is stopped (and a CPU of a shared cluster soon free)
        return request.seed

    def done(request: SimpleNamespace, result: object) -> None:
        raise Terminated(15)  # SIGTERM arrives while the other task runs

    runner = RayRunner(SimpleNamespace(parent_run_id=parent))  # type: ignore[arg-type]
    runner.task = cluster.remote(max_retries=0)(task)  # type: ignore[attr-defined]
    with pytest.raises(Terminated):
        runner.run([SimpleNamespace(seed=0), SimpleNamespace(seed=1)], done)  # type: ignore[list-item]
    ended = client.get_run(cell)
    assert ended.info.status == "KILLED" and ended.data.tags["mlsandbox.end_reason"] == "terminated by SIGTERM"
    assert client.get_run(parent).info.status == "RUNNING"  # the driver's own run is its command's to end


def test_a_trial_worker_whose_process_dies_counts_no_trial_and_the_study_goes_on(
        cluster: object, caplog: pytest.LogCaptureFixture) -> None:
    """Its trial is failed and run again by the driver once the others are done; a crash of the
    driver would leave that trial and its runs RUNNING."""
    from mlsandbox.search._ray import _trials_ran

    def dies() -> int:
        os._exit(1)  # as under the OOM killer or kill -9

    ref = cluster.remote(max_retries=0)(dies).remote()  # type: ignore[attr-defined]
    assert _trials_ran(cluster, ref) == 0
    assert "a trial worker stopped: " in caplog.text and "the study goes on without it" in caplog.text


def test_a_trial_workers_own_error_comes_back_as_its_type(cluster: object) -> None:
    from mlsandbox.errors import DataError
    from mlsandbox.search._ray import _trials_ran

    def fails() -> int:
        raise DataError("row 3 has no text")

    ref = cluster.remote(max_retries=0)(fails).remote()  # type: ignore[attr-defined]
    with pytest.raises(DataError, match="row 3 has no text"):
        _trials_ran(cluster, ref)


@pytest.mark.parametrize("state, ended", [(optuna.trial.TrialState.RUNNING, False),
                                          (optuna.trial.TrialState.COMPLETE, True),
                                          (optuna.trial.TrialState.PRUNED, True)])
def test_the_ray_searchs_progress_counts_trials_that_ended(state: optuna.trial.TrialState, ended: bool) -> None:
    from mlsandbox.search._ray import _ended

    trial = optuna.trial.create_trial(state=state, value=1.0 if state == optuna.trial.TrialState.COMPLETE else None)
    assert _ended(trial) is ended


def test_a_ray_worker_stopped_by_sigterm_ends_its_run_killed_with_the_reason(cluster: object, shared_store: str) -> None:
    """Ray sends SIGTERM to a job's workers when its driver dies (kill -9), and its workers turn it into
    SystemExit: a search's study run, created by a worker, read FAILED with no reason."""
    import signal
    import time

    from mlsandbox import tracking

    experiment_id = mlflow.MlflowClient().create_experiment(f"stopped-{uuid.uuid4().hex[:8]}")

    def task(uri: str) -> None:
        mlflow.set_tracking_uri(uri)
        with tracking.parent_run("search", experiment_id, {tracking.KIND: "search"}):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)

    ref = cluster.remote(max_retries=0)(task).remote(shared_store)  # type: ignore[attr-defined]
    with pytest.raises(cluster.exceptions.RayError):  # type: ignore[attr-defined]  # the worker died
        cluster.get(ref, timeout=120)  # type: ignore[attr-defined]
    (run,) = mlflow.MlflowClient().search_runs([experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags[tracking.END_REASON].startswith("its process was stopped (")
