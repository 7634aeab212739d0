"""A run id (or a pool file) that names nothing, or the wrong kind of run, is one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import spec_dict, write_jsonl
from typer.testing import CliRunner

from mlsandbox import tracking
from mlsandbox.cli import app
from mlsandbox.spec import parse_spec
from mlsandbox.workflows.pool import run_pools


@pytest.fixture
def project(small_corpus: Path, tmp_path: Path) -> Path:
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence number {i}."} for i in range(10)])
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0], model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench)}])
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    return folder


@pytest.fixture
def pool_runs(project: Path, tracking_uri: str) -> tuple[str, str]:
    """The `pool` parent run and one of its pool runs."""
    result = run_pools(parse_spec(yaml.safe_load((project / "sandbox.yaml").read_text())), progress=False)
    return result.parent_run_id, result.pools[0].run_id


def _fails_with(args: list[str], *expected: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error: ")]  # MLflow may log too
    for text in expected:
        assert text in line


@pytest.mark.parametrize("command, expected", [
    (["evaluate", "deadbeef"], "training run"),
    (["report", "deadbeef"], "workflow run"),
    (["train", "--pool-run", "deadbeef"], "pool"),
])
def test_a_run_id_that_names_no_run(project: Path, tracking_uri: str, command: list[str], expected: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def not_yet(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dataset was loaded before the run id was checked")

    monkeypatch.setattr("mlsandbox.workflows.train.prepare", not_yet)
    project_option = ["-p", str(project)] if command[0] != "report" else []
    _fails_with(command + project_option, "no run 'deadbeef'", expected)


def test_a_run_id_in_a_store_that_does_not_exist_is_refused_without_making_one(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`report ID` run from the wrong folder made an empty mlflow.db there before saying "no run"."""
    store = tmp_path / "elsewhere" / "mlflow.db"
    store.parent.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    for command in (["report", "deadbeef"], ["evaluate", "deadbeef", "-p", str(project)]):
        _fails_with(command, "no run 'deadbeef': the tracking store", "does not exist")
    assert not list(store.parent.iterdir())


def test_an_empty_run_id(tracking_uri: str) -> None:
    _fails_with(["report", ""], "a run id is required", "workflow run")


def test_a_missing_pool_file_or_no_pool_at_all_is_refused_before_the_stats(project: Path, tracking_uri: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def not_yet(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dataset was loaded before the pools were checked")

    monkeypatch.setattr("mlsandbox.workflows.train.prepare", not_yet)
    _fails_with(["train", "-p", str(project), "--pool-file", "/missing/pool.jsonl", "-q"],
                "pool file /missing/pool.jsonl", "no such file")
    _fails_with(["train", "-p", str(project), "-q"], "name at least one pool")


def test_a_pool_run_is_neither_a_training_run_nor_a_workflow_run(
    project: Path, pool_runs: tuple[str, str], tmp_path: Path
) -> None:
    parent, pool = pool_runs
    _fails_with(["evaluate", pool, "-p", str(project)], f"run {pool} is a pool run", "not a cell")
    _fails_with(["report", pool, "--out", str(tmp_path / "r")], f"run {pool} is a pool run", "not a workflow run")
    _fails_with(["report", parent, "--out", str(tmp_path / "r")], f"run {parent} is a `pool` run", "workflow run")
    _fails_with(["train", "-p", str(project), "--pool-run", parent, "-q"],
                f"run {parent} is the parent run of `mlsandbox pool`", "the run ids `mlsandbox pool` prints")
    assert not (tmp_path / "r").exists()
    for run_id in (parent, pool):  # nothing written into the pool runs
        assert "report" not in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}


def test_the_run_of_stats_under_mlflow_run_is_a_command_run(
    project: Path, tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tagged as every command's run (kind `workflow`, docs/mlflow-ui.md), not as a run mlsandbox did not make."""
    experiment_id = mlflow.set_experiment("test-project").experiment_id
    run_id = mlflow.MlflowClient().create_run(experiment_id).info.run_id  # what `mlflow run . -e stats` starts
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    result = CliRunner().invoke(app, ["stats", "-p", str(project), "-q"])
    assert result.exit_code == 0, result.output
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)  # MLflow may have unset it when the run ended
    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    assert tags[tracking.KIND] == "workflow" and tags[tracking.DATASET_DIGEST]  # its lineage, as a pool run's
    _fails_with(["report", run_id, "--out", str(tmp_path / "r")], f"run {run_id} is a `stats` run", "workflow run")


def test_a_cell_without_a_model_cannot_be_evaluated(project: Path, tracking_uri: str) -> None:
    experiment_id = mlflow.set_experiment("test-project").experiment_id
    empty = mlflow.MlflowClient().create_run(experiment_id, tags={tracking.KIND: "cell"}).info.run_id
    mlflow.MlflowClient().set_terminated(empty, "FINISHED")
    _fails_with(["evaluate", empty, "-p", str(project)], f"run {empty} is a cell that logged no model",
                "status FINISHED")


def _dead_owner() -> dict[str, str]:
    """Owner tags of a process that has exited (this process's, with the pid of one that ran and ended)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return {**tracking.owner_tags(), tracking.OWNER_PID: str(proc.pid)}


@pytest.mark.parametrize("status, owner, expected", [
    ("KILLED", "dead", "stopped KILLED (terminated by SIGTERM) before it finished"),
    ("FAILED", "dead", "stopped FAILED (terminated by SIGTERM) before it finished"),
    ("RUNNING", "dead", "never finished (status RUNNING, but its owner process"),
    ("RUNNING", "alive", "is still training (status RUNNING)"),
])
def test_a_cell_that_did_not_finish_cannot_be_evaluated(project: Path, tracking_uri: str, status: str, owner: str,
                                                        expected: str) -> None:
    """Its model may be half uploaded (a kill mid-upload): one line naming why, no traceback, no run."""
    client = mlflow.MlflowClient()
    experiment_id = mlflow.set_experiment("test-project").experiment_id
    tags = {tracking.KIND: "cell", **(_dead_owner() if owner == "dead" else tracking.owner_tags())}
    cell = client.create_run(experiment_id, tags=tags).info.run_id
    manifest = {"format": 1, "type": "ngram", "spec": {"type": "ngram", "order": 2}}
    client.log_text(cell, json.dumps(manifest), "model/manifest.json")  # the rest of model/ never arrived
    if status != "RUNNING":
        client.set_tag(cell, tracking.END_REASON, "terminated by SIGTERM")
        client.set_terminated(cell, status)
    _fails_with(["evaluate", cell, "-p", str(project)], f"run {cell} is a cell that {expected}",
                "its model may be incomplete")
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [cell]  # no evaluation run started


def test_a_train_run_is_not_taken_for_a_cell(project: Path, tracking_uri: str) -> None:
    """It was "a `train` run, not a training run": its cells are what `evaluate` takes."""
    experiment_id = mlflow.set_experiment("test-project").experiment_id
    tags = {tracking.KIND: "workflow", tracking.ENTRY_POINT: "train"}
    run_id = mlflow.MlflowClient().create_run(experiment_id, tags=tags).info.run_id
    _fails_with(["evaluate", run_id, "-p", str(project)], f"run {run_id} is a `train` run, not a cell;",
                "expected the run id of a training run")


def test_a_cell_whose_trainer_failed_says_why(project: Path, tracking_uri: str) -> None:
    from mlsandbox.executors.cell_result import FAILURE

    client = mlflow.MlflowClient()
    experiment_id = mlflow.set_experiment("test-project").experiment_id
    cell = client.create_run(experiment_id, tags={tracking.KIND: "cell", FAILURE: "command exited with status 3"})
    client.set_terminated(cell.info.run_id, "FAILED")
    _fails_with(["evaluate", cell.info.run_id, "-p", str(project)],
                "is a cell that stopped FAILED (command exited with status 3) before it finished")


def test_a_run_that_logged_no_pool_is_not_a_pool_run(project: Path, tracking_uri: str) -> None:
    experiment_id = mlflow.set_experiment("test-project").experiment_id
    run_id = mlflow.MlflowClient().create_run(experiment_id, tags={tracking.KIND: "search"}).info.run_id
    _fails_with(["train", "-p", str(project), "--pool-run", run_id, "-q"],
                f"run {run_id} is a search run that logged no pool")


def test_a_pool_run_of_another_dataset_is_named_as_such(project: Path, tracking_uri: str) -> None:
    """It was refused by its pool file's ids, naming a cache file instead of the two datasets."""
    experiment_id = mlflow.set_experiment("test-project").experiment_id
    tags = {tracking.KIND: "pool", tracking.DATASET_DIGEST: "0123456789abcdef"}
    run_id = mlflow.MlflowClient().create_run(experiment_id, tags=tags).info.run_id
    _fails_with(["train", "-p", str(project), "--pool-run", run_id, "-q"],
                f"run {run_id}'s pool is of dataset 0123456789abcdef, and this project's dataset is")


@pytest.mark.parametrize("second, says", [
    ('{"id": ', "not valid JSON (Expecting value)"),
    ('["d1"]', "expected a JSON object with an 'id' field"),
    ('{"text": "no id"}', "expected a JSON object with an 'id' field"),
])
def test_a_bad_line_of_a_pool_file_is_named_by_what_is_wrong(project: Path, tracking_uri: str, tmp_path: Path,
                                                             second: str, says: str) -> None:
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"id": "d1"}\n' + second + "\n")
    _fails_with(["train", "-p", str(project), "--pool-file", str(pool), "-q"], f"{pool}:2: {says}")


@pytest.mark.parametrize("run_id", ["../x", "x y"])
def test_a_run_id_mlflow_calls_malformed_is_no_run_too(run_id: str, tracking_uri: str) -> None:
    """MLflow answers these with INVALID_PARAMETER_VALUE, not RESOURCE_DOES_NOT_EXIST: still one line."""
    from mlsandbox.errors import InvalidRunError

    mlflow.set_experiment("ids")  # the store exists
    with pytest.raises(InvalidRunError, match=f"no run {run_id!r} in the tracking store"):
        tracking.find_run(run_id, "a pool run")
