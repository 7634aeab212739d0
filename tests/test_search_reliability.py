"""The search as users start it: continued to more trials, through `mlflow run`, by workers
started together, and with storages it cannot use."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import warnings
from contextlib import closing
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from conftest import spec_dict, write_jsonl
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from typer.testing import CliRunner

from mlsandbox import tracking
from mlsandbox.cli import app
from mlsandbox.credentials import Scrubber, redact, scrubbed_output, secrets_in
from mlsandbox.errors import SpecError
from mlsandbox.search import STUDY, TRIAL, open_storage
from mlsandbox.search._names import INVOCATIONS, PARENT_RUN_ATTR, SETTING
from mlsandbox.spec import parse_spec

REPO = Path(__file__).resolve().parents[1]
SEARCH = {"min_pool_size": 5, "sampler": "random", "warm_start": {"workflow": False, "ksigma": False}}


@pytest.fixture
def project(small_corpus: Path, tmp_path: Path) -> Path:
    """A tiny project: the n-gram proxy, one seed, one benchmark; its spec file."""
    bench = write_jsonl(tmp_path / "bench.jsonl",
                        [{"text": f"A clean sentence about topic number {i}, written plainly."} for i in range(20)])
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0], model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench)}], search=SEARCH)
    path = tmp_path / "sandbox.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _search_runs(study: str, kind: str) -> list[mlflow.entities.Run]:
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.`{STUDY}` = '{study}' and tags.`{tracking.KIND}` = '{kind}'")


def _invocations(run_id: str) -> list[str]:
    return [a.path for a in mlflow.MlflowClient().list_artifacts(run_id, INVOCATIONS)]


def _cli(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


class _Records(logging.Handler):
    """The records a logger handed on."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# --- continuing a study ------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "named"), [("model.order=3", "model_digest"), ("seeds=[0, 1]", "seeds 0 -> 0,1")])
def test_a_study_continued_with_another_model_or_seeds_is_refused(project, tracking_uri, tmp_path, change,
                                                                   named) -> None:
    """Its trials were measured with the first settings: new ones would not compare with them."""
    storage = str(tmp_path / "changed.journal")
    first = _cli("search", "-p", str(project), "--study", "changed", "--storage", storage, "-n", "1", "--quiet")
    assert first.exit_code == 0, first.output
    second = _cli("search", "-p", str(project), "--study", "changed", "--storage", storage, "-n", "2",
                  "--set", change, "--quiet")
    assert second.exit_code == 2, second.output
    assert "study 'changed' was measured with other settings" in second.output and named in second.output
    assert "model_type" not in second.output  # still an n-gram
    study = optuna.load_study(study_name="changed", storage=JournalStorage(JournalFileBackend(storage)))
    assert len(study.trials) == 1  # nothing trained, nothing lost
    again = _cli("search", "-p", str(project), "--study", "changed", "--storage", storage, "-n", "2", "--quiet")
    assert again.exit_code == 0, again.output  # the first settings continue it


def test_a_study_continued_with_another_model_and_space_names_both(project, tracking_uri, tmp_path) -> None:
    storage = str(tmp_path / "both.journal")
    assert _cli("search", "-p", str(project), "--study", "both", "--storage", storage, "-n", "1", "--quiet").exit_code == 0
    both = _cli("search", "-p", str(project), "--study", "both", "--storage", storage, "-n", "2",
                "--set", "model.order=3", "--set", "search.scale=value", "--quiet")
    assert both.exit_code == 2, both.output
    assert "study 'both' was measured with other settings (model_digest" in both.output
    assert ") and searched another space (" in both.output


def test_a_study_of_an_earlier_version_is_checked_by_the_digests_its_run_holds(project, tracking_uri, tmp_path,
                                                                               caplog) -> None:
    from mlsandbox.search._names import DEFINITION_ATTR

    storage = str(tmp_path / "old.journal")
    assert _cli("search", "-p", str(project), "--study", "old", "--storage", storage, "-n", "1", "--quiet").exit_code == 0
    study = optuna.load_study(study_name="old", storage=JournalStorage(JournalFileBackend(storage)))
    study.set_user_attr(DEFINITION_ATTR, None)  # as a version that recorded no definition left it
    changed = _cli("search", "-p", str(project), "--study", "old", "--storage", storage, "-n", "2",
                   "--set", "model.order=3", "--quiet")
    assert changed.exit_code == 2 and "study 'old' was measured with other settings (model_digest" in changed.output
    with caplog.at_level(logging.WARNING):
        same = _cli("search", "-p", str(project), "--study", "old", "--storage", storage, "-n", "2", "--quiet")
    assert same.exit_code == 0, same.output
    assert "started by an earlier version, which recorded no definition: its model_type, benchmarks" in caplog.text
    assert isinstance(optuna.load_study(study_name="old", storage=JournalStorage(JournalFileBackend(storage)))
                      .user_attrs[DEFINITION_ATTR], dict)


def test_a_study_continued_after_its_trainer_script_changed_is_refused(project, tracking_uri, tmp_path) -> None:
    script = tmp_path / "train.py"
    script.write_text("import json, sys\njson.dump({'clean': 1.0}, open(sys.argv[1], 'w'))\n")
    model = f"model={{type: command, command: [{sys.executable}, {script}, '{{metrics_file}}']}}"
    storage = str(tmp_path / "script.journal")
    first = _cli("search", "-p", str(project), "--study", "script", "--storage", storage, "-n", "1",
                 "--set", model, "--quiet")
    assert first.exit_code == 0, first.output
    script.write_text(script.read_text().replace("1.0", "2.0"))
    second = _cli("search", "-p", str(project), "--study", "script", "--storage", storage, "-n", "2",
                  "--set", model, "--quiet")
    assert second.exit_code == 2 and "files_digest" in second.output, second.output
    assert "model_digest" not in second.output  # the same spec, another script


def test_a_search_whose_every_trial_failed_exits_2_with_the_first_reason(project, tracking_uri, tmp_path) -> None:
    """As `train` with failed cells: the study's run ends FINISHED with its report, the command exits 2
    (a trainer that crashes is the user's to fix, as bad input is) with one line."""
    storage = str(tmp_path / "failing.journal")
    failing = ["--set", "model={type: command, command: [sh, -c, 'exit 3']}",
               "--set", "search.ops=[{op: text_length_filter, bounds: max, max_range: [50, 90]}]"]  # none keeps all
    optuna_said = _Records()
    logging.getLogger("optuna.study._optimize").addHandler(optuna_said)
    try:
        first = _cli("search", "-p", str(project), "--study", "failing", "--storage", storage, "-n", "2", *failing,
                     "--quiet")
    finally:
        logging.getLogger("optuna.study._optimize").removeHandler(optuna_said)
    assert first.exit_code == 2, first.output
    assert "FAILED: all 2 trials run now failed; the first, trial 0: every cell failed" in first.output
    # One line per failed trial, naming its error: no traceback (each failed cell is logged), no second line.
    assert len(optuna_said.records) == 2 and not any(r.exc_info for r in optuna_said.records)
    assert all("TrialFailed('every cell failed" in r.getMessage() for r in optuna_said.records)
    assert "its run " in first.output
    (parent,) = _search_runs("failing", "search")
    assert parent.info.status == "FINISHED"
    again = _cli("search", "-p", str(project), "--study", "failing", "--storage", storage, "-n", "2", *failing,
                 "--quiet")
    assert again.exit_code == 0, again.output  # the study is full: this call ran no trial


def test_a_study_continued_to_more_trials_runs_only_the_extra_ones_under_its_run(project, tracking_uri, tmp_path):
    storage = str(tmp_path / "grow.journal")
    first = _cli("search", "-p", str(project), "--study", "grow", "--storage", storage, "-n", "2", "--quiet")
    assert first.exit_code == 0, first.output
    second = _cli("search", "-p", str(project), "--study", "grow", "--storage", storage, "-n", "3", "--quiet")
    assert second.exit_code == 0, second.output
    assert "1 trial run now, 3 in study 'grow'" in second.stdout

    (parent,) = _search_runs("grow", "search")  # one run for the study, continued
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[SETTING + "n_trials"] == "3"  # the latest call's setting: a tag, not a param
    assert "n_trials" not in parent.data.params and parent.data.params["study_name"] == "grow"
    assert len(_invocations(parent.info.run_id)) == 2
    numbers = sorted(int(r.data.tags[TRIAL]) for r in _search_runs("grow", "trial"))
    assert numbers == [0, 1, 2]
    study = optuna.load_study(study_name="grow", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(storage)))
    for _ in range(2):  # queued (as warm starts are), and more than the study's total leaves room for
        study.enqueue_trial(study.trials[0].params, skip_if_exists=False)
    third = _cli("search", "-p", str(project), "--study", "grow", "--storage", storage, "-n", "4", "--quiet")
    assert "1 trial run now, 5 in study 'grow' (1 queued, not run yet)" in third.stdout, third.output
    study = optuna.load_study(study_name="grow", storage=open_storage(storage, parse_spec(yaml.safe_load(
        project.read_text())))[0])
    assert study.user_attrs[PARENT_RUN_ATTR] == parent.info.run_id
    # Another worker index and sampler seed on the same study: tags of the same run, not a conflict.
    third = _cli("search", "-p", str(project), "--study", "grow", "--storage", storage, "-n", "4", "--worker", "1",
                 "--set", "search.seed=7", "--quiet")
    assert third.exit_code == 0, third.output
    assert [r.info.run_id for r in _search_runs("grow", "search")] == [parent.info.run_id]
    assert mlflow.get_run(parent.info.run_id).data.tags[SETTING + "worker"] == "1"


# --- passwords ---------------------------------------------------------------------------------


def test_a_password_is_hidden_in_the_url_and_scrubbed_from_logs_warnings_and_errors() -> None:
    url = "postgresql+psycopg2://u:SECRET%40PW@db:5432/optuna?sslpassword=KEYPASS&sslmode=require"
    assert redact(url) == "postgresql+psycopg2://u:***@db:5432/optuna?sslmode=require&sslpassword=***"
    scrub = Scrubber(secrets_in(url))
    assert set(scrub.secrets) >= {"SECRET@PW", "SECRET%40PW", "KEYPASS"}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("mlsandbox.test-secrets")
    logger.addHandler(handler)
    try:
        with scrubbed_output(scrub):
            logger.warning("connecting to %s", url)
            try:
                raise ValueError(f"cannot parse {url}")
            except ValueError:
                logger.exception("failed")
            warned = warnings.formatwarning(f"slow {url}", UserWarning, "x.py", 1)
        logger.warning("after: %s", "SECRET@PW")  # only while the search runs
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert "u:***@db" in logged and "cannot parse" in logged and "u:***@db" in warned
    assert not any(s in logged.rsplit("after:", 1)[0] + warned for s in ("SECRET", "KEYPASS"))
    try:
        raise SpecError("storage unusable") from OSError(f"open {url}")
    except SpecError as err:
        assert scrub.leaks(err)  # a traceback would show the error it came from
        clean = scrub.clean_error(err)
    assert isinstance(clean, SpecError) and "SECRET" not in str(clean)
    assert str(scrub.clean_error(RuntimeError(f"x {url}"))) == (
        "RuntimeError: x postgresql+psycopg2://u:***@db:5432/optuna?sslpassword=***&sslmode=require")
    weak = Scrubber(secrets_in("postgresql://u:pg@db/optuna"))  # a short password: hidden where it stands alone
    assert weak("postgresql://u:pg@db/optuna, pg_hba.conf") == "postgresql://u:***@db/optuna, pg_hba.conf"


def test_a_password_with_an_unencoded_at_sign_is_hidden_whole():
    url = "postgresql+psycopg2://alice:S3cr@tPW9@127.0.0.1:1/optuna"
    assert redact(url) == "postgresql+psycopg2://alice:***@127.0.0.1:1/optuna"
    scrub = Scrubber(secrets_in(url))  # a driver splits it at the first "@": each part is hidden too
    assert scrub('could not translate host name "tPW9@127.0.0.1"; S3cr@tPW9') == (
        'could not translate host name "***@127.0.0.1"; ***')


# --- storages the search cannot use ------------------------------------------------------------


def test_a_storage_url_with_one_slash_is_an_input_error_that_writes_nothing(project, tracking_uri, tmp_path,
                                                                           monkeypatch):
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    result = _cli("search", "-p", str(project), "--storage", "postgresql+psycopg2:/alice:S3cr3tPW@db/optuna", "--quiet")
    line = _one_error_line(result)
    assert "a URL needs '://'" in line and "S3cr3tPW" not in result.output
    assert not any(here.iterdir())  # not taken for a journal file's path


def test_a_storage_url_with_a_bad_port_is_an_input_error(project, tracking_uri):
    result = _cli("search", "-p", str(project), "--storage", "postgresql+psycopg2://u:S3cr3tPW@db:notaport/x", "--quiet")
    assert "not a database URL" in _one_error_line(result) and "S3cr3tPW" not in result.output


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_an_unknown_storage_scheme_is_an_input_error(project, tracking_uri):
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", "foo://bar", "--quiet"))
    assert "foo://bar" in line and "unknown database type 'foo'" in line


def test_a_sampler_that_cannot_be_made_is_refused_before_a_study_or_stats_exist(project, tracking_uri, tmp_path,
                                                                              monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else real(name, *a))
    journal = tmp_path / "s.journal"
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", str(journal), "--study", "cm",
                                "--set", "search.sampler=cmaes", "-n", "1", "--quiet"))
    assert "search.sampler 'cmaes' needs the cmaes package" in line
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    assert not optuna.get_all_study_summaries(storage) and not (tmp_path / "ws").exists()


def test_a_folder_as_storage_is_an_input_error(project, tracking_uri, tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", str(folder), "--quiet"))
    assert str(folder) in line and "is a folder" in line


@pytest.mark.parametrize("content, says", [
    (b"garbage{\n", "line 1 is not JSON"),
    (b'{"op_code": 0}\n', "KeyError"),
    (b"\x80\x81binary\n", "line 1 is not JSON"),
    (b"\x80\x81no newline", "line 1 is not JSON"),  # Optuna would take it for a write in progress
])
def test_a_file_that_is_no_journal_is_an_input_error_and_left_alone(project, tracking_uri, tmp_path, content, says):
    journal = tmp_path / "broken.journal"
    journal.write_bytes(content)
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", str(journal), "-n", "1", "--quiet"))
    assert f"storage {journal}: not an Optuna journal file" in line and says in line
    assert journal.read_bytes() == content and not _search_runs("broken", "search")


def test_a_sqlite_database_given_as_a_path_is_refused_and_left_alone(project, tracking_uri, tmp_path):
    db = tmp_path / "mine.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("create table t (a)")
    content = db.read_bytes()
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", str(db), "-n", "1", "--quiet"))
    assert line == f"error: storage {db} is a SQLite database: give it as a URL, sqlite:///{db}"
    assert db.read_bytes() == content and not [p.name for p in tmp_path.iterdir() if p.name.startswith("mine.db.")]
    store = Path(tracking_uri.removeprefix("sqlite:///"))
    mlflow.MlflowClient().search_experiments()  # the store's tables
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", str(store), "-n", "1", "--quiet"))
    assert f"storage {store} is an MLflow tracking store" in line


def test_a_sqlite_file_that_is_no_database_is_one_line(project, tracking_uri, tmp_path):
    (tmp_path / "bad.db").write_text("not a database")
    with warnings.catch_warnings(record=True) as shown:  # Optuna's notes on its heartbeats are not for users
        warnings.simplefilter("always")
        result = _cli("search", "-p", str(project), "--storage", f"sqlite:///{tmp_path / 'bad.db'}", "--quiet")
    line = _one_error_line(result)
    assert f"{tmp_path / 'bad.db'} is not a SQLite database: name a new file, or an existing Optuna database" in line
    assert not [w for w in shown if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("bad.db.")]  # no lock file beside it


def test_a_sqlite_url_that_sqlalchemy_cannot_read_is_one_line(project, tracking_uri):
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", "sqlite://u:pw@/x.db", "--quiet"))
    assert "not a database URL (Invalid SQLite URL" in line


def test_a_sqlite_storage_in_a_missing_folder_is_an_input_error(project, tracking_uri, tmp_path):
    url = f"sqlite:///{tmp_path / 'missing' / 'optuna.db'}"
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", url, "--quiet"))
    assert url in line and f"the folder {tmp_path / 'missing'} does not exist" in line
    assert not (tmp_path / "missing").exists()
    journal = tmp_path / "missing" / "optuna.journal"  # a journal file too
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", str(journal), "--quiet"))
    assert line == f"error: storage {journal}: the folder {tmp_path / 'missing'} does not exist"
    assert not (tmp_path / "missing").exists()


def test_a_database_driver_that_is_not_installed_is_an_input_error_without_the_password(project, tracking_uri):
    pytest.importorskip("psycopg2")
    if __import__("importlib").util.find_spec("pg8000") is not None:
        pytest.skip("pg8000 is installed: no driver left to miss")
    url = "postgresql+pg8000://user:SECRETPW@127.0.0.1:1/optuna"
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", url, "--quiet"))
    assert "postgresql+pg8000://user:***@127.0.0.1:1/optuna" in line and "'pg8000'" in line
    assert "SECRETPW" not in line


def test_a_storage_from_the_environment_is_used_when_none_is_given(project, tracking_uri, monkeypatch):
    monkeypatch.setenv("MLSANDBOX_STORAGE", "foo://from-env")
    line = _one_error_line(_cli("search", "-p", str(project), "--storage", "", "--quiet"))  # `mlflow run`'s ''
    assert "foo://from-env" in line


# --- `mlflow run` and workers started together (subprocesses) ---------------------------------


def _env(tracking_uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `python`: this one
    return env


@pytest.mark.slow
def test_the_mlproject_search_entry_point_runs_with_the_default_study_storage_and_trials(project, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    raw = yaml.safe_load(project.read_text(encoding="utf-8"))
    project.write_text(yaml.safe_dump({**raw, "search": {**raw["search"], "n_trials": 1}}), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mlflow", "run", str(REPO), "-e", "search", "--env-manager", "local",
                           "-P", f"project={project}"],  # every parameter at its default: the spec's n_trials
                          env=_env(uri), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    mlflow.set_tracking_uri(uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    (parent,) = _search_runs("test-project-search", "search")  # the project's run is the study's run
    assert parent.info.status == "FINISHED"
    assert parent.data.params["study"] in ("", "''")  # as `mlflow run` logged it, left alone
    assert parent.data.tags[SETTING + "storage"] == str((tmp_path / "optuna.journal").resolve())  # the default
    assert len(_search_runs("test-project-search", "trial")) == 1


@pytest.mark.slow
def test_workers_started_together_share_one_run_and_draw_different_trials(project, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # a new store: both workers find it empty
    n_trials = 8
    command = [sys.executable, "-m", "mlsandbox.cli", "search", "--project", str(project), "--study", "duo",
               "--n-trials", str(n_trials), "--quiet"]
    workers = [subprocess.Popen(command, env=_env(uri), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [o[-3000:] for o in outputs]

    mlflow.set_tracking_uri(uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    study = optuna.load_study(study_name="duo", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal"))))
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(done) == n_trials
    drawn = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(drawn)) == len(drawn), drawn  # no parameter set drawn twice
    assert len({t.user_attrs["pid"] for t in done}) == 2  # both workers ran trials

    (parent,) = _search_runs("duo", "search")  # one study, one parent run
    assert study.user_attrs[PARENT_RUN_ATTR] == parent.info.run_id
    # shared: its heartbeat, not the pid of whichever worker continued it last, says whether it lives
    assert (parent.info.status, parent.data.tags[tracking.SHARED]) == ("FINISHED", "true")
    trial_runs = _search_runs("duo", "trial")
    assert sorted(int(r.data.tags[TRIAL]) for r in trial_runs) == sorted(t.number for t in done)
    assert {r.data.tags["mlflow.parentRunId"] for r in trial_runs} == {parent.info.run_id}
    records = _invocations(parent.info.run_id)
    assert len(records) == 2
    seeds = {json.loads(mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/{r}"))["sampler_seed"] for r in records}
    assert len(seeds) == 2  # no --worker: a seed of its own each


def test_an_interrupted_warm_start_trial_is_queued_again_once() -> None:
    """The recipes known to be good are measured even when their first trial was killed; a warm
    start that ran to an outcome (a counted failure too) is not run twice."""
    from mlsandbox.search._names import FAIL_REASON, WARM_RECIPE, WARM_START
    from mlsandbox.search._warm_start import requeue_interrupted_warm_starts

    study = optuna.create_study()
    for label in ("workflow: top-1", "ksigma: k2", "ksigma: crashed"):
        study.enqueue_trial({"x.min_pct": 10.0}, user_attrs={WARM_START: label, WARM_RECIPE: {"name": label}})
    interrupted, finished, crashed = (study.ask() for _ in range(3))
    study.tell(interrupted, state=TrialState.FAIL)  # killed: no reason, not counted
    study.tell(finished, 1.0)
    crashed.set_user_attr(FAIL_REASON, "trainer exited 1")
    study.tell(crashed, state=TrialState.FAIL)
    assert requeue_interrupted_warm_starts(study) == ["workflow: top-1"]
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert waiting.user_attrs == {WARM_START: "workflow: top-1", WARM_RECIPE: {"name": "workflow: top-1"}}
    assert waiting.system_attrs["fixed_params"] == {"x.min_pct": 10.0}
    assert requeue_interrupted_warm_starts(study) == []  # already waiting


def test_only_trials_whose_worker_is_gone_from_this_machine_are_failed() -> None:
    from mlsandbox.search._trials import fail_stale_trials
    from mlsandbox.tracking._owners import _start_ticks

    me = tracking.owner_tags()
    machine, host = me[tracking.OWNER_PROCESS].rpartition("/")[0], me[tracking.OWNER_HOST]
    if not machine:
        pytest.skip("no process identity on this platform")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = os.getppid()
    study = optuna.create_study()
    workers = {
        "gone": {"host": host, "pid": dead.pid, "process": f"{machine}/1"},
        "pid taken by another process": {"host": host, "pid": alive, "process": f"{machine}/1"},
        "an earlier version's, gone": {"host": host, "pid": dead.pid},
        "alive": {"host": host, "pid": alive, "process": f"{machine}/{_start_ticks(alive)}"},
        # a container under this host name: another pid namespace, whose pids say nothing here
        "another pid namespace": {"host": host, "pid": dead.pid, "process": f"{machine}-other/7"},
        "another host": {"host": host + "-other", "pid": dead.pid, "process": f"{machine}/1"},
    }
    numbers = {}
    for label, attrs in workers.items():
        trial = study.ask()
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        numbers[trial.number] = label
    failed = {numbers[n] for n in fail_stale_trials(study)}
    assert failed == {"gone", "pid taken by another process", "an earlier version's, gone"}


#: A worker killed mid-trial (kill -9): it asked a trial, recorded itself as a worker does, started
#: the trial's run and a cell under it, and died without ending any of them.
_KILLED_WORKER = """
import sys, mlflow, optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from mlsandbox import tracking
from mlsandbox.search import TRIAL
from mlsandbox.search._names import HOST, PID, PROCESS, RUN_ATTR
storage, parent = sys.argv[1:]
trial = optuna.load_study(study_name="killed", storage=JournalStorage(JournalFileBackend(storage))).ask()
owner = tracking.owner_tags()
for key, value in ((HOST, owner[tracking.OWNER_HOST]), (PID, int(owner[tracking.OWNER_PID])),
                   (PROCESS, owner[tracking.OWNER_PROCESS])):
    trial.set_user_attr(key, value)
client = mlflow.MlflowClient()
experiment = client.get_run(parent).info.experiment_id
run = client.create_run(experiment, run_name=f"trial-{trial.number}", tags={
    **owner, tracking.KIND: "trial", TRIAL: str(trial.number), "mlflow.parentRunId": parent})
trial.set_user_attr(RUN_ATTR, run.info.run_id)
client.create_run(experiment, run_name="cell", tags={**owner, tracking.KIND: "cell", "mlflow.parentRunId": run.info.run_id})
"""


def test_a_worker_killed_mid_trial_is_failed_by_the_survivor_runs_and_all(project, tracking_uri, tmp_path,
                                                                          monkeypatch) -> None:
    """The survivor fails the dead worker's trial before its next trial, ends that trial's runs, and
    runs the study to n_trials real trials: nothing is left RUNNING once it exits."""
    from mlsandbox.search import _study
    from mlsandbox.search._trials import counted_trials

    storage = str(tmp_path / "killed.journal")
    objective = _study.objective

    def with_a_worker_killed(trial: optuna.Trial, ctx, n_trials: int):
        if trial.number == 0:
            subprocess.run([sys.executable, "-c", _KILLED_WORKER, storage, ctx.run_id], check=True, timeout=120)
        return objective(trial, ctx, n_trials)

    monkeypatch.setattr(_study, "objective", with_a_worker_killed)
    result = _cli("search", "-p", str(project), "--study", "killed", "--storage", storage, "-n", "2", "--quiet")
    assert result.exit_code == 0, result.output

    study = optuna.load_study(study_name="killed", storage=JournalStorage(JournalFileBackend(storage)))
    assert [t.state for t in study.trials if t.number == 1] == [TrialState.FAIL]
    assert counted_trials(study) == 2 and len(study.trials) == 3  # the lost trial was run again
    assert not study.get_trials(states=(TrialState.RUNNING,))
    running = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                 filter_string="attributes.status = 'RUNNING'")
    assert [r.info.run_name for r in running] == []
    lost = mlflow.MlflowClient().get_run(study.trials[1].user_attrs["mlflow_run_id"])
    assert lost.info.status == "KILLED" and "stopped without an outcome" in lost.data.tags[tracking.END_REASON]


def test_the_runs_of_a_trial_that_a_heartbeat_failed_are_ended(tracking_uri) -> None:
    """Optuna's heartbeat (in any worker) fails a trial whose worker on another machine died: its
    run and cells end KILLED too; the runs of a trial still at work elsewhere are left alone."""
    from mlsandbox.search._names import HOST, PID, PROCESS
    from mlsandbox.search._trials import fail_stale_trials

    client = mlflow.MlflowClient()
    experiment = mlflow.set_experiment("heartbeat").experiment_id
    far = {**tracking.owner_tags(), tracking.OWNER_HOST: "elsewhere"}  # alive, for all this machine can tell
    parent = client.create_run(experiment, tags={tracking.KIND: "search"}).info.run_id
    study = optuna.create_study()
    study.set_user_attr(PARENT_RUN_ATTR, parent)
    runs = {}
    for trial in (study.ask(), study.ask()):
        trial.set_user_attr(HOST, "elsewhere")
        trial.set_user_attr(PID, 1)
        trial.set_user_attr(PROCESS, far[tracking.OWNER_PROCESS])
        run = client.create_run(experiment, tags={**far, tracking.KIND: "trial", TRIAL: str(trial.number),
                                                  "mlflow.parentRunId": parent}).info.run_id
        cell = client.create_run(experiment, tags={**far, tracking.KIND: "cell", "mlflow.parentRunId": run}).info.run_id
        runs[trial.number] = (run, cell)
    study.tell(0, state=TrialState.FAIL)  # as optuna.storages.fail_stale_trials does, here or in another worker

    assert fail_stale_trials(study) == []
    for run_id in runs[0]:
        ended = client.get_run(run_id)
        assert ended.info.status == "KILLED" and "stopped without an outcome" in ended.data.tags[tracking.END_REASON]
    assert [client.get_run(r).info.status for r in (*runs[1], parent)] == ["RUNNING"] * 3
