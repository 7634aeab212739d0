"""`mlsandbox pool` logs one parent run and one child run per pool, with dataset lineage."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import spec_dict
from typer.testing import CliRunner

from mlsandbox import tracking
from mlsandbox.cli import app
from mlsandbox.spec import parse_spec
from mlsandbox.workflows.pool import run_pools


@pytest.fixture
def spec(small_corpus: Path, tmp_path: Path):
    return parse_spec(spec_dict(small_corpus, workspace=str(tmp_path / "ws")))


def test_each_pool_is_a_child_run_with_its_dataset_input(spec, tracking_uri: str, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="mlsandbox.progress"):
        result = run_pools(spec, progress="lines")
    shown = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pool runs: ")]
    assert shown and shown[-1].startswith("pool runs: 8/8 pools (100%)")  # each run writes its pool file: minutes at scale
    client = mlflow.MlflowClient()
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags[tracking.KIND] == "workflow"
    assert parent.data.metrics["dataset_size"] == 90
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    names = sorted(r.info.run_name for r in children)
    splits = [p.pool for p in result.pools if p.pool.origin.split != "random"]
    sizes = sorted({p.size for p in splits})
    assert len(sizes) > 1  # the two OPs' splits differ in size: a control of each size
    assert names == sorted([f"{op}/{s}" for op in ("text_length_filter", "alphanumeric_filter")
                            for s in ("low", "mid", "high")] + [f"random-{size}" for size in sizes])
    assert parent.data.params["pool_size"] == ",".join(map(str, sizes))
    by_name = {r.info.run_name: r for r in children}
    low = by_name["text_length_filter/low"]
    logged = next(p for p in result.pools if p.pool.name == "text_length_filter/low")
    assert low.data.params["op"] == "text_length_filter" and low.data.params["split"] == "low"
    assert low.data.metrics["size"] == logged.pool.size
    assert low.data.tags[tracking.DATASET_DIGEST] == result.prepared.dataset.digest
    assert low.data.tags[tracking.POOL_DIGEST] == logged.pool.digest
    (dataset_input,) = low.inputs.dataset_inputs
    assert dataset_input.dataset.name == "text_length_filter/low"
    assert dataset_input.dataset.digest == logged.pool.digest
    assert json.loads(dataset_input.dataset.source)["uri"] == str(logged.file)
    assert json.loads(dataset_input.dataset.profile)["num_rows"] == logged.pool.size
    assert dataset_input.tags[0].value == "pool"
    artifacts = {f.path for f in client.list_artifacts(parent.info.run_id, "stats")}
    assert artifacts == {f"stats/{name}" for name in ("summary.csv", "summary.md", "categorical.yaml",
                                                      "stat_histograms.png", "sandbox.yaml")}


def test_the_cli_runs_pools_and_reuses_cached_stats(spec, small_corpus: Path, tmp_path: Path, tracking_uri: str) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "sandbox.yaml").write_text(yaml.safe_dump(spec_dict(small_corpus, workspace=str(tmp_path / "ws"))))
    runner = CliRunner()
    first = runner.invoke(app, ["pool", "-p", str(project), "-q"])
    assert first.exit_code == 0, first.output
    assert "text_length_filter/low" in first.output and "logged 8 pool runs" in first.output  # 6 splits, a control for each of 2 sizes
    stats = runner.invoke(app, ["stats", "-p", str(project), "-q"])
    assert stats.exit_code == 0 and "0 of 2 OPs computed, 2 from cache" in stats.output


def test_bad_input_exits_2_with_a_message(tmp_path: Path, small_corpus: Path, tracking_uri: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["pool", "-p", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no experiment spec" in result.output
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(spec_dict(small_corpus)))
    result = runner.invoke(app, ["pool", "-p", str(tmp_path), "--set", "pools.size=500"])
    assert result.exit_code == 2 and "pools.size=500" in result.output
    result = runner.invoke(app, ["pool", "-p", str(tmp_path), "--set", "ops=[{name: nope}]"])
    assert result.exit_code == 2 and "unknown OP 'nope'" in result.output


def test_ops_lists_every_op() -> None:
    result = CliRunner().invoke(app, ["ops"])
    assert result.exit_code == 0
    for name in ("alphanumeric_filter", "word_repetition_filter", "language_id_score_filter"):
        assert name in result.output
    assert "lang_score" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, body: dict | None = None) -> dict:
    """GET without a body, POST with one: MLflow's REST API."""
    url = f"{base}/api/2.0/mlflow/{path}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
def test_pools_log_to_a_real_tracking_server(spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ},
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail("mlflow server did not start")
                time.sleep(0.5)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", base)
        mlflow.set_tracking_uri(base)
        result = run_pools(spec, progress=False)
        experiment = _api(base, "experiments/get-by-name?experiment_name=test-project")["experiment"]
        runs = _api(base, "runs/search", {
            "experiment_ids": [experiment["experiment_id"]],
            "filter": f"tags.mlflow.parentRunId = '{result.parent_run_id}'", "max_results": 100,
        })["runs"]
        assert len(runs) == 8  # 6 splits, a control for each of 2 sizes
        digests = {p.pool.name: p.pool.digest for p in result.pools}
        for run in runs:
            (ds_input,) = run["inputs"]["dataset_inputs"]
            assert ds_input["dataset"]["digest"] == digests[ds_input["dataset"]["name"]]
            tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
            assert tags[tracking.DATASET_DIGEST] == result.prepared.dataset.digest
    finally:
        mlflow.set_tracking_uri(None)
        server.terminate()
        server.wait(timeout=30)
