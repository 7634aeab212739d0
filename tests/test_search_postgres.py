"""A real PostgreSQL server as the study's storage: two workers share one study without losing or
repeating a trial, and a password in the storage URL is never logged, printed or stored."""

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
from contextlib import contextmanager
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from conftest import spec_dict, write_jsonl
from mlflow.entities import ViewType
from optuna.trial import TrialState

from mlsandbox import tracking
from mlsandbox.executors.prepare import prepare
from mlsandbox.search import STUDY, TRIAL
from mlsandbox.search._names import STUDY_RUN
from mlsandbox.spec import parse_spec

REPO = Path(__file__).resolve().parents[1]
N_TRIALS = 8
PASSWORD = "SECRETPW"


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


@contextmanager
def _server(password: str | None = None) -> Iterator[str]:
    """A throwaway PostgreSQL server on a free loopback port with the databases optuna and mlflow;
    its base URL (user ``postgres``, no password in it).

    With a ``password``, connections over TCP must give it (scram-sha-256); else they are trusted.
    """
    initdb, pg_ctl, psql = _pg_bin("initdb"), _pg_bin("pg_ctl"), _pg_bin("psql")
    if not (initdb and pg_ctl and psql):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed: run .ci/postgres.sh")
    root = Path(tempfile.mkdtemp(prefix="mlsandbox-pg-"))
    root.chmod(0o755)
    auth = ["--auth=trust"]
    if password is not None:
        (root / "pw").write_text(password + "\n")
        auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={root / 'pw'}"]
    if os.geteuid() == 0:
        for path in [root, *root.iterdir()]:
            shutil.chown(path, "postgres", "postgres")
    data, port = root / "data", _free_port()
    subprocess.run(_as_server_user([initdb, "-D", str(data), "-U", "postgres", *auth, "-E", "UTF8"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        env = {**os.environ, **({"PGPASSWORD": password} if password is not None else {})}
        for db in ("optuna", "mlflow"):
            subprocess.run([psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c", f"CREATE DATABASE {db}"],
                           check=True, capture_output=True, env=env)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}"  # psycopg2-binary: the driver installed
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), check=False,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[str]:
    """A server that trusts every connection; yields its base URL."""
    with _server() as url:
        yield url


@pytest.fixture
def postgres_with_password() -> Iterator[str]:
    """A server whose TCP connections need the password PASSWORD; yields its base URL (without it)."""
    with _server(PASSWORD) as url:
        yield url


def _project(corpus: Path, tmp_path: Path, ksigma: bool = False) -> tuple[dict, Path]:
    """A tiny project (the n-gram proxy, one seed, random sampling): its spec and its spec file."""
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence number {i}."} for i in range(20)])
    raw = spec_dict(corpus, workspace=str(tmp_path / "ws"), seeds=[0], model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench)}],
                    search={"min_pool_size": 5, "sampler": "random", "warm_start": {"workflow": False, "ksigma": ksigma}})
    project = tmp_path / "sandbox.yaml"
    project.write_text(yaml.safe_dump(raw))
    return raw, project


@pytest.mark.slow
def test_two_workers_share_one_study_without_losing_or_repeating_trials(postgres, small_corpus, tmp_path, monkeypatch):
    raw, project = _project(small_corpus, tmp_path)
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
    parents = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                 filter_string=f"tags.`{STUDY}` = 'shared' and tags.`{tracking.KIND}` = 'search'")
    assert len(parents) == 1  # one study, one parent run


def _everything_logged(tmp_path: Path) -> dict[str, str]:
    """Every param, tag, input and artifact file of every run in the store, by where it is."""
    found: dict[str, str] = {}
    client = mlflow.MlflowClient()
    for exp in client.search_experiments(view_type=ViewType.ALL):
        for run in client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL):
            rid = run.info.run_id
            found[f"{rid} params"] = repr(run.data.params)
            found[f"{rid} tags"] = repr(run.data.tags)
            found[f"{rid} inputs"] = repr(run.inputs)
            found[f"{rid} info"] = repr(run.info)
            dst = tmp_path / "artifacts" / rid
            dst.mkdir(parents=True)
            mlflow.artifacts.download_artifacts(run_id=rid, dst_path=str(dst))
            for file in dst.rglob("*"):
                if file.is_file():
                    found[f"{rid} {file.relative_to(dst)}"] = file.read_bytes().decode("utf-8", "replace")
    return found


@pytest.mark.slow
def test_a_storage_password_is_never_logged_printed_or_stored(postgres_with_password, small_corpus, tmp_path,
                                                              monkeypatch):
    _, project = _project(small_corpus, tmp_path, ksigma=True)
    base = postgres_with_password  # postgresql+psycopg2://postgres@127.0.0.1:<port>
    with_password = base.replace("postgres@", f"postgres:{PASSWORD}@") + "/optuna"
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PG"))}
    env.update(MLFLOW_TRACKING_URI=tracking_uri, PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    cli = [sys.executable, "-m", "mlsandbox.cli", "--log-level", "debug", "search", "--project", str(project),
           "--study", "secret"]
    said: dict[str, str] = {}

    def run(name: str, argv: list[str], code: int = 0, **extra_env: str) -> str:
        done = subprocess.run(argv, env={**env, **extra_env}, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        said[name] = done.stdout + done.stderr
        assert done.returncode == code, said[name][-5000:]
        return said[name]

    # The password in the URL given to the command line, every log line shown.
    run("cli", [*cli, "--storage", with_password, "--n-trials", "1"])
    # `mlflow run` logs its parameters: the storage comes from the environment, the password from PGPASSWORD.
    run("mlflow run", [sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "search", "--env-manager", "local",
                       "-P", f"project={project}", "-P", "study=secret", "-P", "n_trials=2"],
        MLSANDBOX_STORAGE=f"{base}/optuna", PGPASSWORD=PASSWORD)
    # A wrong password: one line naming the storage, the password hidden, exit code 2.
    wrong = run("wrong password", [*cli, "--storage", with_password.replace(PASSWORD, "WRONGPW42"), "-n", "3"],
                code=2)
    assert wrong.strip().splitlines()[-1].startswith(f"error: storage {base.replace('postgres@', 'postgres:***@')}")
    assert "password authentication failed" in wrong and "WRONGPW42" not in wrong

    mlflow.set_tracking_uri(tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    study = optuna.load_study(study_name="secret", storage=with_password)
    assert [t.state.is_finished() for t in study.trials] == [True, True]
    parents = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                 filter_string=f"tags.`{STUDY}` = 'secret' and tags.`{tracking.KIND}` = 'search'")
    assert len(parents) == 1
    # The `mlflow run` run continued the study's run, which holds the trials; it names that run.
    (linked,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                   filter_string=f"tags.`{STUDY_RUN}` = '{parents[0].info.run_id}'")
    assert linked.info.status == "FINISHED" and linked.data.params["study"] == "secret"
    stored = _everything_logged(tmp_path)
    stored["study"] = repr((study.user_attrs, [t.user_attrs for t in study.trials]))
    assert any(name.endswith("search/report.md") for name in stored)
    calls = [text for name, text in stored.items() if "search/invocations/" in name]
    assert len(calls) == 2 and any("postgres:***@" in text for text in calls)  # the storage, password hidden
    leaks = [name for name, text in {**stored, **said}.items() if PASSWORD in text]
    assert not leaks, leaks
