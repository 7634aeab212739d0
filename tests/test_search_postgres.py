"""Two worker processes run one study against a real PostgreSQL server: no trial lost or run twice."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from conftest import spec_dict, write_jsonl
from optuna.trial import TrialState

from mlsandbox import tracking
from mlsandbox.executors.prepare import prepare
from mlsandbox.search import STUDY, TRIAL
from mlsandbox.spec import parse_spec

N_TRIALS = 8


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: drop to the `postgres` system user when we are root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free loopback port; yields its base URL."""
    initdb, pg_ctl, psql = _pg_bin("initdb"), _pg_bin("pg_ctl"), _pg_bin("psql")
    if not (initdb and pg_ctl and psql):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed: run .ci/postgres.sh")
    root = Path(tempfile.mkdtemp(prefix="mlsandbox-pg-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    subprocess.run(_as_server_user([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        for db in ("optuna", "mlflow"):
            subprocess.run([psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", f"CREATE DATABASE {db}"],
                           check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}"  # psycopg2-binary: the driver installed
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), check=False,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_one_study_without_losing_or_repeating_trials(postgres, small_corpus, tmp_path, monkeypatch):
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence number {i}."} for i in range(20)])
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0], model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench)}],
                    search={"min_pool_size": 5, "sampler": "random", "warm_start": {"workflow": False, "ksigma": False}})
    project = tmp_path / "sandbox.yaml"
    project.write_text(yaml.safe_dump(raw))
    prepare(parse_spec(raw), progress=False)  # stats cached once, before the workers start
    storage = f"{postgres}/optuna"
    tracking_uri = f"{postgres}/mlflow"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    mlflow.set_tracking_uri(tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    mlflow.set_experiment(raw["name"])  # the MLflow schema is created once, not by both workers at once

    started = time.perf_counter()
    workers = [
        subprocess.Popen([sys.executable, "-m", "mlsandbox.cli", "search", "--project", str(project), "--study", "shared",
                          "--storage", storage, "--n-trials", str(N_TRIALS), "--worker", str(i), "--quiet"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [o[-3000:] for o in outputs]
    print(f"two workers, {N_TRIALS} trials: {time.perf_counter() - started:.1f} s")

    trials = optuna.load_study(study_name="shared", storage=storage).trials
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == N_TRIALS
    assert len({t.number for t in trials}) == len(trials)
    assert not [t for t in trials if t.state == TrialState.FAIL and "fail_reason" in t.user_attrs]
    assert {t.user_attrs["worker"] for t in done} == {0, 1}  # both workers took trials
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.`{STUDY}` = 'shared' and tags.`{tracking.KIND}` = 'trial'")
    numbers = [int(r.data.tags[TRIAL]) for r in runs]
    assert sorted(numbers) == sorted(t.number for t in done)  # each trial ran once, as one MLflow run
