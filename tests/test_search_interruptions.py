"""A search interrupted at awkward moments: what the next call on the same study finds and does."""

from __future__ import annotations

import signal
import sqlite3
from contextlib import closing
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from mlsandbox import figures
from mlsandbox.errors import SpecError, Terminated
from mlsandbox.search import open_storage, run_search
from mlsandbox.search._names import HOST
from mlsandbox.spec import parse_spec

SMALL = {"min_pool_size": 5, "sampler": "random", "warm_start": {"workflow": False, "ksigma": False},
         "ops": [{"op": "text_length_filter", "bounds": "max", "max_range": [50, 90]}]}  # every pool trains (none keeps all)


@pytest.fixture
def spec(search_raw: dict):
    return parse_spec({**search_raw, "search": SMALL})


def _study(spec, storage: str) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=open_storage(storage, spec)[0])


@pytest.mark.parametrize("named", [(), (HOST,)], ids=["nothing", "host only"])
def test_a_trial_killed_before_it_named_its_owner_is_failed_and_not_counted(spec, tracking_uri, tmp_path: Path,
                                                                             named: tuple[str, ...]) -> None:
    """A kill between Optuna creating a trial and the trial recording its worker left it RUNNING for
    good, and counted: the study then ended a trial short on every later call."""
    storage = str(tmp_path / "s.journal")
    assert run_search(spec, "s", storage, n_trials=1, progress=False).ran == 1
    orphan = _study(spec, storage).ask()  # what a worker killed at that moment leaves
    for key in named:
        orphan.set_user_attr(key, "elsewhere")
    result = run_search(spec, "s", storage, n_trials=2, progress=False)
    trials = _study(spec, storage).trials
    assert trials[orphan.number].state == TrialState.FAIL
    assert result.ran == 1
    assert [t.state for t in trials if t.number != orphan.number] == [TrialState.COMPLETE] * 2
    assert not mlflow.search_runs(search_all_experiments=True, filter_string="attributes.status = 'RUNNING'",
                                  output_format="list")
    assert mlflow.get_run(result.run_id).data.metrics["trials_fail"] == 0  # interrupted: neither run nor failed
    assert result.report.splitlines()[2].startswith("3 trials (2 complete, 1 not counted)")


def _search_files(run_id: str) -> set[str]:
    return {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "search")}


def test_a_kill_while_the_report_is_drawn_leaves_the_earlier_report_whole(spec, tracking_uri, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The earlier report, trials table and best recipe were removed before the new ones were drawn:
    a kill while drawing the figures (a second or more) left the study's run without any of them."""
    storage = str(tmp_path / "s.journal")
    first = run_search(spec, "s", storage, n_trials=1, progress=False)
    before = _search_files(first.run_id)
    assert {"search/report.md", "search/trials.json", "search/best_recipe.yaml"} <= before

    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(figures, "history_curve", killed)
    with pytest.raises(KeyboardInterrupt):
        run_search(spec, "s", storage, n_trials=2, progress=False)
    assert _search_files(first.run_id) == before
    report = Path(mlflow.MlflowClient().download_artifacts(first.run_id, "search/report.md", str(tmp_path)))
    assert "1 trial (1 complete)" in report.read_text(encoding="utf-8")  # the first call's, whole
    monkeypatch.undo()
    again = run_search(spec, "s", storage, n_trials=2, progress=False)  # the same command, run again
    assert again.ran == 0 and len(again.trials) == 2
    assert _search_files(first.run_id) == before


def test_a_trial_killed_after_its_run_logged_its_outcome_keeps_that_outcome(spec, tracking_uri, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill after the trial's run logged its delta, before Optuna was told, FAILED a trial that was
    measured whole (its run FINISHED beside a FAIL in the trials table), and a new trial replaced it."""
    storage = str(tmp_path / "s.journal")

    def killed(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(optuna.study._optimize, "_tell_with_warning", killed)
    with pytest.raises((KeyboardInterrupt, UnboundLocalError)):  # Optuna's own clean-up trips over it
        run_search(spec, "s", storage, n_trials=1, progress=False)
    monkeypatch.undo()
    assert _study(spec, storage).trials[0].state == TrialState.RUNNING
    result = run_search(spec, "s", storage, n_trials=1, progress=False)  # the same command, run again
    trial = _study(spec, storage).trials[0]
    assert result.ran == 0 and len(result.trials) == 1
    run = mlflow.MlflowClient().get_run(trial.user_attrs["mlflow_run_id"])
    assert trial.state == TrialState.COMPLETE and trial.value == run.data.metrics["delta_pct"]
    assert run.info.status == "FINISHED" and "mlsandbox.end_reason" not in run.data.tags
    assert result.best is not None and result.best.number == 0


def test_a_sigterm_while_optuna_records_a_trial_ends_the_search_as_terminated(spec, tracking_uri, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Optuna's clean-up after an interruption inside its tell raised UnboundLocalError in its place:
    the command exited 1 with a traceback, its runs FAILED, instead of 143 and KILLED."""
    storage = str(tmp_path / "s.journal")

    def terminated(*_: object, **__: object) -> None:
        raise Terminated(signal.SIGTERM)

    monkeypatch.setattr(optuna.study._optimize, "_tell_with_warning", terminated)
    with pytest.raises(Terminated):
        run_search(spec, "s", storage, n_trials=1, progress=False)
    parent = mlflow.MlflowClient().get_run(_study(spec, storage).user_attrs["mlflow_parent_run_id"])
    assert parent.info.status == "KILLED" and parent.data.tags["mlsandbox.end_reason"] == "terminated by SIGTERM"


def test_the_mlflow_store_given_as_the_storage_is_refused_before_optuna_adds_its_tables(spec, tracking_uri) -> None:
    """Optuna created its tables in the MLflow store, then refused it for MLflow's schema version,
    telling the user to update Optuna."""
    mlflow.MlflowClient().search_experiments()  # the store's tables
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    with pytest.raises(SpecError, match="is an MLflow tracking store") as err:
        open_storage(tracking_uri, spec)
    assert len(str(err.value).splitlines()) == 1
    with closing(sqlite3.connect(db)) as conn:
        assert "studies" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
