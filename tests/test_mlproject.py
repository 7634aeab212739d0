"""Every MLproject entry point runs end to end through `mlflow run`, and no parameter reaches a shell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import write_jsonl

from mlsandbox import tracking

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project: 120 documents, three cheap OPs, the n-gram proxy, one seed."""
    folder = tmp_path_factory.mktemp("mlproject")
    rows = []
    for i in range(120):
        text = (f"Document {i} says something plain about topic {i % 7}." if i % 2
                else "spam spam spam " * (1 + i % 5) + "!!!" * (i % 4))
        rows.append({"id": f"d{i:03d}", "text": text})
    write_jsonl(folder / "corpus.jsonl", rows)
    write_jsonl(folder / "bench.jsonl", [{"text": f"A plain sentence about topic {i}."} for i in range(20)])
    spec = {
        "name": "mlproject-test",
        "dataset": {"path": "corpus.jsonl"},
        "ops": [{"name": "text_length_filter"}, {"name": "alphanumeric_filter"}, {"name": "word_repetition_filter"}],
        "stats": {"workers": 1},
        "seeds": [0],
        "model": {"type": "ngram", "order": 3},
        "benchmarks": [{"name": "plain", "path": "bench.jsonl"}],
        "refine": {"top_k": 2, "duplication": [1, 2], "min_pool_size": 3},
        "workspace": str(folder / "ws"),
    }
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


def mlflow_run(entry: str, store: str, *params: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``mlflow run <repo> -e entry --env-manager local -P ...`` with this interpreter's tools on PATH,
    from ``cwd`` (default: the store's folder, where the runs' artifacts then go)."""
    cwd = cwd or Path(store.removeprefix("sqlite:///")).parent
    env = {**os.environ, "MLFLOW_TRACKING_URI": store,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(var, None)
    argv = [sys.executable, "-m", "mlflow", "run", str(ROOT), "-e", entry, "--env-manager", "local"]
    for param in params:
        argv += ["-P", param]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _finished_entry_points(store: str) -> set[str]:
    client = mlflow.MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "attributes.status = 'FINISHED'")
    return {r.data.tags.get(tracking.ENTRY_POINT, "") for r in runs}


@pytest.mark.slow
def test_every_entry_point_runs_with_its_defaults(project: Path, store: str) -> None:
    for entry in ("stats", "pool", "train", "probe", "analyze", "refine", "workflow"):
        done = mlflow_run(entry, store, f"project={project}")
        assert done.returncode == 0, f"{entry}:\n{done.stderr[-3000:]}"
    client = mlflow.MlflowClient(store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    cell = client.search_runs(experiments, f"tags.`{tracking.KIND}` = 'cell' and attributes.status = 'FINISHED'",
                              max_results=1)[0]
    done = mlflow_run("evaluate", store, f"run_id={cell.info.run_id}", f"project={project}")
    assert done.returncode == 0, done.stderr[-3000:]
    (workflow,) = client.search_runs(experiments, f"tags.`{tracking.ENTRY_POINT}` = 'workflow'")
    out = Path(store.removeprefix("sqlite:///")).parent / "selected.jsonl"
    done = mlflow_run("apply", store, f"source={workflow.info.run_id}", f"out={out}", f"project={project}")
    assert done.returncode == 0, done.stderr[-3000:]
    (applied,) = client.search_runs(experiments, f"tags.`{tracking.ENTRY_POINT}` = 'apply'")
    assert applied.data.params["source"] == workflow.info.run_id  # mlflow run's, beside the command's own params
    assert applied.data.params["recipe_source"] == f"runs:/{workflow.info.run_id}/refine/best_recipe.yaml"
    assert len(out.read_text(encoding="utf-8").splitlines()) == applied.data.metrics["samples"] > 0
    assert {"stats", "pool", "train", "probe", "analyze", "refine", "workflow", "evaluate", "apply"} <= \
        _finished_entry_points(store)
    (stats,) = client.search_runs(experiments, f"tags.`{tracking.ENTRY_POINT}` = 'stats'")  # the project's own run
    assert {"stats/summary.csv", "stats/stat_histograms.png"} <= {
        f.path for f in client.list_artifacts(stats.info.run_id, "stats")}


def test_a_parameter_is_one_argument_never_shell_code(project: Path, store: str, tmp_path: Path) -> None:
    marker = tmp_path / "INJECTED"
    for entry, params in (("stats", [f"workers=0;touch {marker};#"]),
                          ("search", [f"study=x;touch {marker};#", "n_trials=1"]),
                          ("search", [f"study=x';touch {marker};'", "n_trials=1"])):
        mlflow_run(entry, store, f"project={project}", *params)
        assert not marker.exists(), f"{entry} {params} ran shell code"


@pytest.mark.parametrize("entry", ["stats", "apply", "pool", "workflow"])
def test_an_entry_points_run_is_owned_during_the_stats_pass(entry: str, project: Path, tracking_uri: str,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Taken over only after the pass, a run that `kill -9` stopped in it had no owner: RUNNING for good."""
    from typer.testing import CliRunner

    from mlsandbox.cli import app
    from mlsandbox.workflows import apply, pool, workflow

    experiment = mlflow.set_experiment("mlproject-test").experiment_id
    run = mlflow.MlflowClient().create_run(experiment)  # as `mlflow run` makes it
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    seen: dict[str, str] = {}

    def interrupted_pass(*args: object, **kwargs: object) -> None:
        seen.update(mlflow.MlflowClient().get_run(run.info.run_id).data.tags)
        raise KeyboardInterrupt

    monkeypatch.setattr(pool, "prepare", interrupted_pass)
    monkeypatch.setattr(apply, "prepare", interrupted_pass)
    monkeypatch.setattr(workflow, "prepare", interrupted_pass)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "long", "conditions": [
        {"op": "text_length_filter", "stat": "text_len", "min": 40}]}), encoding="utf-8")
    args = {"apply": ["apply", str(recipe), "--out", str(tmp_path / "out.jsonl")]}.get(entry, [entry])
    result = CliRunner().invoke(app, [*args, "-p", str(project), "-q"])
    assert result.exit_code == 130, result.output
    assert seen.get(tracking.OWNER_PID) == str(os.getpid())  # a kill -9 here: the next command ends it
    assert mlflow.MlflowClient().get_run(run.info.run_id).info.status == "KILLED"
    assert not (tmp_path / "out.jsonl").exists()
