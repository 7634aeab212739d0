"""Recipe search with Optuna on a small corpus and the n-gram proxy (a fraction of a second per cell)."""

from __future__ import annotations

import logging
import math
import re
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from conftest import spec_dict, write_jsonl
from optuna.trial import TrialState

from mlsandbox import figures, tracking
from mlsandbox.artifacts import BEST_RECIPE
from mlsandbox.delta import holm
from mlsandbox.errors import SpecError
from mlsandbox.executors.prepare import prepare
from mlsandbox.progress import Progress
from mlsandbox.recipes import load_recipe, parse_recipe
from mlsandbox.search import (
    STUDY,
    TRIAL,
    SearchResult,
    build_space,
    open_storage,
    params_from_recipe,
    recipe_from_params,
    run_search,
    suggest_recipe,
)
from mlsandbox.search import _objective as objective_mod  # patched: a trial's comparison
from mlsandbox.search import _report as report_mod
from mlsandbox.search._claims import trial_claim
from mlsandbox.search._report import LOST_WORKER
from mlsandbox.search._storage import make_pruner
from mlsandbox.spec import SearchSpec, parse_spec

SMALL = {"min_pool_size": 5, "n_trials": 4, "sampler": "random", "warm_start": {"workflow": False, "ksigma": False}}
#: A space whose every pool keeps half the corpus or more, so that every trial trains.
TRAINED = [{"op": "text_length_filter", "bounds": "max", "max_range": [50, 90]}]  # below the top: no pool keeps every sample


@pytest.fixture
def raw(search_raw: dict) -> dict:
    return search_raw


def _spec(raw: dict, **search: object):
    return parse_spec({**raw, "search": {**SMALL, **search}})


def _storage(tmp_path: Path) -> str:
    return str(tmp_path / "study.journal")


def _trial_runs(study: str) -> list[mlflow.entities.Run]:
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.`{STUDY}` = '{study}' and tags.`{tracking.KIND}` = 'trial'")


# --- the search space ------------------------------------------------------------------------


def test_the_search_spec_rejects_bad_settings_with_the_key_named() -> None:
    with pytest.raises(ValueError, match="objectives"):
        SearchSpec(objectives=["size"])
    with pytest.raises(ValueError, match="percentiles"):
        SearchSpec(ops=[{"op": "text_length_filter", "min_range": [-5, 50]}])
    with pytest.raises(ValueError, match="extra"):
        SearchSpec(n_trails=3)
    with pytest.raises(ValueError, match="cmaes"):
        SearchSpec(sampler="cmaes", objectives=["delta", "size"])
    assert SearchSpec(objectives="delta").objectives == ["delta"]


def test_sampled_recipes_stay_within_the_space(raw) -> None:
    spec = _spec(raw, scale="value", repeat=[1, 3], optional=True)
    stats = prepare(spec, progress=False).stats
    space = build_space(spec.search, stats)
    assert {s.stat for s in space.stats} == {"text_len", "alnum_ratio"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1), direction="maximize")
    for _ in range(30):
        trial = study.ask()
        recipe = suggest_recipe(trial, space, stats)
        for s in space.stats:
            for d in s.dims:
                assert d.low <= trial.params[d.name] <= d.high
            values = stats.stat(s.stat)
            for c in (c for c in recipe.conditions if c.stat == s.stat):
                assert values.min() <= c.min <= c.max <= values.max()  # default halves keep min below max
                # split at the median, not the midpoint: every pool holds the median (a skewed stat's
                # midpoint lies above most values, and most trials selected nothing)
                assert c.min <= np.median(values) <= c.max
        assert 1 <= recipe.repeat <= 3
        study.tell(trial, 0.0)


def test_percentile_bounds_are_the_stats_percentiles(raw) -> None:
    spec = _spec(raw, ops=[{"op": "text_length_filter", "bounds": "both", "min_range": [10, 40], "max_range": [60, 90]}])
    stats = prepare(spec, progress=False).stats
    space = build_space(spec.search, stats)
    recipe = recipe_from_params(space, {"text_len.min_pct": 25.0, "text_len.max_pct": 75.0}, stats, "r")
    (cond,) = recipe.conditions
    values = stats.stat("text_len").astype(float)
    assert cond.min == pytest.approx(np.percentile(values, 25)) and cond.max == pytest.approx(np.percentile(values, 75))
    back = params_from_recipe(space, recipe, stats)  # warm start: the same samples, as percentiles
    assert recipe_from_params(space, back, stats, "r").select(stats).digest == recipe.select(stats).digest


@pytest.mark.parametrize("entry, says", [
    ({"scale": "value", "min_range": [10**5, 2 * 10**5]}, "the min range [100000, 200000] lies above every value"),
    ({"scale": "value", "bounds": "max", "max_range": [-9, -1]}, "the max range [-9, -1] lies below every value"),
    ({"min_range": [50, 90], "max_range": [10, 60]}, "the min range [50, 90] starts or ends above the max range [10, 60]"),
])
def test_ranges_that_could_keep_nothing_are_refused_before_any_trial(raw, entry: dict, says: str) -> None:
    spec = _spec(raw, ops=[{"op": "text_length_filter", **entry}])
    with pytest.raises(SpecError, match=re.escape(f"search: text_length_filter.text_len: {says}")):
        build_space(spec.search, prepare(spec, progress=False).stats)


def test_a_default_range_makes_room_for_the_other_sides_given_range(raw) -> None:
    """A min range above the median met the max's default range from the median and was refused."""
    values = prepare(_spec(raw), progress=False).stats.stat("text_len")
    given = [float(np.median(values)) + 1, float(np.median(values)) + 5]
    assert given[1] < values.max()
    spec = _spec(raw, ops=[{"op": "text_length_filter", "scale": "value", "min_range": given}])
    (searched,) = build_space(spec.search, prepare(spec, progress=False).stats).stats
    low, high = searched.dims
    assert [low.low, low.high] == given and (high.low, high.high) == (given[0], values.max())
    # a max range given wider than the values: the min's default reaches its start
    spec = _spec(raw, ops=[{"op": "text_length_filter", "scale": "value", "max_range": [0, float(values.max())]}])
    low, high = build_space(spec.search, prepare(spec, progress=False).stats).stats[0].dims
    assert low.low == 0 == high.low


# --- trials ----------------------------------------------------------------------------------


def test_the_objective_is_the_delta_logged_by_the_trial_run(raw, tracking_uri, tmp_path) -> None:
    raw = {**raw, "seeds": [0, 1]}  # an interval and a p-value for each trial
    result = run_search(_spec(raw), "s1", _storage(tmp_path), progress=False)
    study = optuna.load_study(study_name="s1", storage=open_storage(_storage(tmp_path), _spec(raw))[0])
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert complete, result.trials
    client = mlflow.MlflowClient()
    for t in complete:
        run = client.get_run(t.user_attrs["mlflow_run_id"])
        assert t.value == run.data.metrics["delta_pct"]
        assert run.data.tags[TRIAL] == str(t.number) and run.data.tags[STUDY] == "s1"
        assert run.data.tags["mlflow.parentRunId"] == result.run_id
        assert run.data.params["recipe_digest"]
        assert any(i.dataset.digest == run.data.tags[tracking.POOL_DIGEST] for i in run.inputs.dataset_inputs)
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "search")}
    assert {"search/report.md", "search/trials.csv", "search/best_recipe.yaml",
            "search/best_recipe.data_juicer.yaml", "search/history.png"} <= artifacts
    assert result.best_recipe is not None and result.best.value == max(t.value for t in complete)
    exported = mlflow.artifacts.load_text(f"runs:/{result.run_id}/search/best_recipe.yaml")
    shown = mlflow.artifacts.load_text(f"runs:/{result.run_id}/search/report.md")
    assert exported.rstrip() in shown and "measured:" in exported  # the report shows the recipe the user gets
    assert f"Trial {result.best.number}: delta **{result.best.value:+.3f}%** (" in shown  # the delta is bold, not its claim
    params = build_space(_spec(raw).search, prepare(_spec(raw), progress=False).stats).param_names()
    assert list(result.trials.columns) == ["trial", "state", "delta_pct", "ci_low_pct", "ci_high_pct", "p_adjusted",
                                           *params, "reason", "warm_start", "duration_s", "run_id"]
    rows = result.trials.set_index("trial")
    for t in complete:
        assert rows.loc[t.number, "run_id"] == t.user_attrs["mlflow_run_id"] and rows.loc[t.number, "reason"] == ""
        # every delta comes with its interval and its p-value Holm-adjusted across the complete trials
        claim = trial_claim(study, t)
        distinct = {c.user_attrs["measured_pool"]["pool_digest"] for c in complete}  # one test per distinct pool
        assert claim["family"] == len(distinct) and claim["p_adjusted"] >= t.user_attrs["p_value"]
        assert rows.loc[t.number, "ci_low_pct"] == t.user_attrs["delta_ci_low_pct"] < t.value
        assert rows.loc[t.number, "ci_high_pct"] == t.user_attrs["delta_ci_high_pct"] > t.value
        assert rows.loc[t.number, "p_adjusted"] == claim["p_adjusted"]
        logged = yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{t.user_attrs['mlflow_run_id']}/recipe.yaml"))
        assert logged["measured"]["run_id"] == t.user_attrs["mlflow_run_id"]  # the pool this trial measured
        assert logged["measured"]["pool_digest"] == client.get_run(t.user_attrs["mlflow_run_id"]).data.tags[tracking.POOL_DIGEST]
        assert rows.loc[t.number, "delta_pct"] == t.value and rows.loc[t.number, "duration_s"] > 0
        assert [rows.loc[t.number, p] for p in params] == [t.params[p] for p in params]


def test_too_small_pools_are_pruned_with_the_reason(raw, tracking_uri, tmp_path) -> None:
    result = run_search(_spec(raw, min_pool_size=90, n_trials=2), "small", _storage(tmp_path), progress=False)
    assert list(result.trials["state"]) == ["PRUNED", "PRUNED"]
    assert all("below search.min_pool_size=90" in r for r in result.trials["reason"])
    assert result.best is None and "No trial completed" in result.report
    assert " nan " not in result.report and " n/a " in result.report  # a pruned trial has no interval: as in every table
    with pytest.raises(SpecError, match="search.min_pool_size=91 is more than the dataset's 90 samples"):
        run_search(_spec(raw, min_pool_size=91, n_trials=2), "none", _storage(tmp_path), progress=False)


def test_the_trials_of_a_study_search_the_store_for_finished_cells_once(raw, tracking_uri, tmp_path,
                                                                        monkeypatch) -> None:
    """Each trial is its own parent run: a search of the store's latest cells per trial made the
    trials slower as the store grew."""
    from mlsandbox.executors import cells

    searches: list[str] = []
    search_store = cells.finished_cells
    monkeypatch.setattr(cells, "finished_cells", lambda *args: searches.append("x") or search_store(*args))
    result = run_search(_spec(raw, ops=TRAINED, n_trials=3), "once", _storage(tmp_path), progress=False)
    assert (result.trials["state"] == "COMPLETE").sum() == 3 and len(searches) == 1
    run_search(_spec(raw, ops=TRAINED, n_trials=4), "once", _storage(tmp_path), progress=False)
    assert len(searches) == 2  # continued later: the store is searched again, not the old index kept
    monkeypatch.setattr(cells, "SHARED_INDEX_S", -1.0)  # an index older than its time is made again
    run_search(_spec(raw, ops=TRAINED, n_trials=6), "once", _storage(tmp_path), progress=False)
    assert len(searches) >= 2 + 2


def test_a_recipe_that_keeps_every_sample_is_pruned_not_measured_as_a_delta_of_zero(raw, tracking_uri, tmp_path) -> None:
    """Every optional OP left out: the pool is the dataset, its random control the same samples."""
    spec = _spec(raw, optional=True, n_trials=1)
    run_search(spec, "all", _storage(tmp_path), progress=False)  # creates the study
    study = optuna.load_study(study_name="all", storage=open_storage(_storage(tmp_path), spec)[0])
    uses = [n for n in build_space(spec.search, prepare(spec, progress=False).stats).param_names() if n.endswith(".use")]
    assert uses
    study.enqueue_trial(dict.fromkeys(uses, False))
    result = run_search(_spec(raw, optional=True, n_trials=2), "all", _storage(tmp_path), progress=False)
    row = result.trials.set_index("trial").loc[1]
    assert row["state"] == "PRUNED" and row["reason"].startswith("the recipe keeps all 90 samples of the dataset")
    # under a budget the whole dataset is subsampled: still a random draw like its control, not a measurement
    budget = _spec(raw, optional=True, n_trials=1, budget=40)
    run_search(budget, "all-budget", _storage(tmp_path), progress=False)
    study = optuna.load_study(study_name="all-budget", storage=open_storage(_storage(tmp_path), budget)[0])
    study.enqueue_trial(dict.fromkeys(uses, False))
    result = run_search(_spec(raw, optional=True, n_trials=2, budget=40), "all-budget", _storage(tmp_path),
                        progress=False)
    row = result.trials.set_index("trial").loc[1]
    assert row["state"] == "PRUNED" and row["reason"].startswith("the recipe keeps all 90 samples of the dataset")


def test_a_crashing_trainer_fails_the_trial_and_the_study_goes_on(raw, tracking_uri, tmp_path) -> None:
    script = tmp_path / "crash.py"
    script.write_text("import sys\nprint('out of memory, giving up')\nsys.exit(1)\n")
    spec = parse_spec({**raw, "model": {"type": "command", "command": [sys.executable, str(script)]},
                       "search": {**SMALL, "n_trials": 2, "ops": TRAINED}})
    result = run_search(spec, "crash", _storage(tmp_path), progress=False)
    assert list(result.trials["state"]) == ["FAIL", "FAIL"]
    assert all("every cell failed" in r for r in result.trials["reason"])
    reason = result.trials["reason"].iloc[0]  # one crash, said once with how many cells it stopped
    assert reason.count("exited with status 1") == 1 and "more cells)" in reason, reason
    statuses = {r.info.status for r in _trial_runs("crash")}
    assert statuses == {"FAILED"}


def test_warm_start_enqueues_the_workflow_best_and_the_ksigma_recipe(raw, tracking_uri, tmp_path, caplog,
                                                                     monkeypatch) -> None:
    spec = _spec(raw, n_trials=2, warm_start={"workflow": True, "ksigma": True})
    drawn: dict[str, object] = {}
    history, importance = figures.history_curve, figures.importance_bars
    monkeypatch.setattr(figures, "history_curve", lambda frame, *a, **kw: history(drawn.setdefault("h", frame), *a, **kw))
    monkeypatch.setattr(figures, "importance_bars",
                        lambda imp, *a, **kw: importance(imp, *a, **drawn.setdefault("i", kw)))
    # An upper bound above the median: a point of the default space, whose upper bounds are searched there.
    upper = float(np.percentile(prepare(spec, progress=False).stats.stat("text_len").astype(float), 75))
    best = {"name": "top-1", "conditions": [{"op": "text_length_filter", "max": upper}]}
    experiment_id = mlflow.set_experiment(spec.name).experiment_id
    with mlflow.start_run(experiment_id=experiment_id, tags={tracking.ENTRY_POINT: "workflow"}):
        mlflow.log_text(yaml.safe_dump(best), BEST_RECIPE)
    caplog.set_level(logging.INFO, logger="mlsandbox.progress")
    result = run_search(spec, "warm", _storage(tmp_path), progress="lines")
    # each progress line names the trial that just ended, not the queued one after it
    assert "1/2 trials (50%), trial 0 complete" in caplog.text and "waiting" not in caplog.text
    stats = prepare(spec, progress=False).stats
    space = build_space(spec.search, stats)
    rows = result.trials.set_index("trial")
    assert rows.loc[0, "warm_start"] == "workflow: top-1" and rows.loc[1, "warm_start"].startswith("ksigma")
    expected = params_from_recipe(space, parse_recipe(best), stats)
    assert rows.loc[0, "text_len.min_pct"] == pytest.approx(expected["text_len.min_pct"])
    assert rows.loc[0, "text_len.max_pct"] == pytest.approx(expected["text_len.max_pct"])
    assert rows.loc[0, "alnum_ratio.min_pct"] == 0.0 and rows.loc[0, "alnum_ratio.max_pct"] == 100.0
    # the warm-start trial trained the workflow's recipe itself, a point of the space
    trained = mlflow.get_run(rows.loc[0, "run_id"]).data.tags[tracking.POOL_DIGEST]
    assert mlflow.get_run(rows.loc[0, "run_id"]).data.tags["mlsandbox.warm_start"] == "workflow: top-1"  # in the UI too
    assert trained == parse_recipe(best).select(stats).digest
    # the history marks both trials as warm starts (and shows their states); importances say their trial count
    assert list(drawn["h"]["warm_start"]) == list(rows["warm_start"]) and "state" in drawn["h"]
    assert drawn["i"]["completed"] == (result.trials["state"] == "COMPLETE").sum() == 2


def test_a_warm_start_outside_the_space_is_trained_as_its_nearest_point(raw, tracking_uri, tmp_path) -> None:
    """An upper bound below the median lies outside the searched upper half: no point of the space selects
    the workflow's pool, so its score would be credited to a point that does not produce it. The nearest
    point is enqueued, labelled so, and trained as that point."""
    spec = _spec(raw, n_trials=1, warm_start={"workflow": True, "ksigma": False})
    stats = prepare(spec, progress=False).stats
    upper = float(np.percentile(stats.stat("text_len").astype(float), 20))
    best = {"name": "top-1", "conditions": [{"op": "text_length_filter", "max": upper}]}
    with mlflow.start_run(experiment_id=mlflow.set_experiment(spec.name).experiment_id,
                          tags={tracking.ENTRY_POINT: "workflow"}):
        mlflow.log_text(yaml.safe_dump(best), BEST_RECIPE)
    result = run_search(spec, "warm-off-grid", _storage(tmp_path), progress=False)
    row = result.trials.set_index("trial").loc[0]
    assert row["warm_start"] == "workflow: top-1 (nearest point)"
    space = build_space(spec.search, stats)
    point = params_from_recipe(space, parse_recipe(best), stats)
    assert point["text_len.max_pct"] == pytest.approx(row["text_len.max_pct"]) and point["text_len.max_pct"] > 20
    trained = mlflow.get_run(row["run_id"]).data.tags[tracking.POOL_DIGEST]
    assert trained == recipe_from_params(space, point, stats, name="p").select(stats).digest != parse_recipe(best).select(stats).digest


def test_the_exported_best_recipe_selects_the_pool_its_trial_trained(raw, tracking_uri, tmp_path) -> None:
    spec = _spec(raw, n_trials=3)
    result = run_search(spec, "exact", _storage(tmp_path), progress=False)
    assert result.best is not None
    exported = tracking.download_artifacts(result.run_id, "search/best_recipe.yaml", tmp_path / "best")
    best_run = mlflow.get_run(result.trials.set_index("trial").loc[result.best.number, "run_id"])
    stats = prepare(spec, progress=False).stats
    recipe = load_recipe(exported)
    assert recipe.select(stats).digest == best_run.data.tags[tracking.POOL_DIGEST]
    assert recipe.measured is not None and recipe.measured.run_id == best_run.info.run_id
    from mlsandbox.workflows.train import find_pools  # and the trial's run trains that pool again (--pool-run)

    (pool,) = find_pools(prepare(spec, progress=False), [], [], [best_run.info.run_id])
    assert pool.digest == best_run.data.tags[tracking.POOL_DIGEST]


@pytest.mark.parametrize("step", ["compare_pools", "suggest_recipe"])  # training, or the trial's first steps
def test_an_interrupted_study_resumes_to_n_trials_without_rerunning_trials(
    raw, tracking_uri, tmp_path, monkeypatch, step: str
) -> None:
    spec = _spec(raw, n_trials=4, ops=TRAINED)
    storage = _storage(tmp_path)
    calls = {"n": 0}
    real = getattr(objective_mod, step)

    def interrupted_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(objective_mod, step, interrupted_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_search(spec, "resume", storage, progress=False)
    monkeypatch.setattr(objective_mod, step, real)
    # A worker killed mid-trial leaves a RUNNING trial behind, with the pid of a process now gone.
    study = optuna.load_study(study_name="resume", storage=open_storage(storage, spec)[0])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = study.ask()
    orphan.set_user_attr("host", socket.gethostname())
    orphan.set_user_attr("pid", dead.pid)

    result = run_search(spec, "resume", storage, progress=False)
    states = dict(zip(result.trials["trial"], result.trials["state"]))
    assert states[1] == "FAIL" and states[orphan.number] == "FAIL"  # interrupted and orphaned: not counted
    reasons = dict(zip(result.trials["trial"], result.trials["reason"]))
    assert reasons[1] == "interrupted by SIGINT (Ctrl-C)" and reasons[orphan.number] == LOST_WORKER
    assert sum(s in ("COMPLETE", "PRUNED") for s in states.values()) == 4
    numbers = [int(r.data.tags[TRIAL]) for r in _trial_runs("resume") if r.info.status not in ("FAILED", "KILLED")]
    assert len(numbers) == len(set(numbers)) == 4  # no trial ran twice
    again = run_search(spec, "resume", storage, progress=False)
    assert again.ran == 0 and again.run_id == result.run_id


def test_a_trial_started_once_the_study_is_full_is_a_surplus_not_a_lost_worker(
        raw, tracking_uri, tmp_path, monkeypatch, caplog) -> None:
    """The race at a study's end: this worker saw a trial missing, and another worker started it first."""
    spec = _spec(raw, n_trials=2)
    storage = _storage(tmp_path)
    run_search(spec, "full", storage, progress=False)
    ask = optuna.Study.ask

    def another_worker_first(self: optuna.Study, *args: object, **kwargs: object) -> optuna.Trial:
        monkeypatch.setattr(optuna.Study, "ask", ask)  # once
        optuna.load_study(study_name="full", storage=open_storage(storage, spec)[0]).ask()  # the last trial, RUNNING
        return ask(self, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "ask", another_worker_first)
    optuna_logger = logging.getLogger("optuna")  # it does not propagate to the root logger
    optuna_logger.addHandler(caplog.handler)
    try:
        result = run_search(spec, "full", storage, n_trials=3, progress=False)
    finally:
        optuna_logger.removeHandler(caplog.handler)
    rows = result.trials.set_index("trial")
    assert (rows.loc[3, "state"], rows.loc[3, "reason"]) == ("FAIL", objective_mod.SURPLUS_REASON)
    assert rows.loc[3, "reason"].startswith("surplus: the study already had its trials")
    assert "Surplus" not in caplog.text and "Traceback" not in caplog.text and result.ran == 0
    assert mlflow.get_run(result.run_id).data.metrics["trials_fail"] == 0  # a surplus trial ran nothing and failed nothing


def test_two_objectives_report_the_pareto_front(raw, tracking_uri, tmp_path) -> None:
    result = run_search(_spec(raw, objectives=["delta", "size"], sampler="nsga2", n_trials=5), "pareto",
                        _storage(tmp_path), progress=False)
    done = result.trials[result.trials["state"] == "COMPLETE"]
    assert result.pareto and "pool_size" in result.trials
    front = {t.number for t in result.pareto}
    for t in result.pareto:
        dominated = ((done["delta_pct"] >= t.values[0]) & (done["pool_size"] >= t.values[1])
                     & ((done["delta_pct"] > t.values[0]) | (done["pool_size"] > t.values[1])))
        assert not dominated.any()
    for _, row in done[~done["trial"].isin(front)].iterrows():
        assert any(p.values[0] >= row["delta_pct"] and p.values[1] >= row["pool_size"] for p in result.pareto)
    assert "Pareto front" in result.report and "p_adjusted" in result.report
    front_table = result.report.split("### Pareto front")[1].split("###")[0]
    assert "beat_control" in front_table and "True" not in front_table  # one seed: no trial can be a win
    assert result.best is not None and result.best.values[0] == max(t.values[0] for t in result.pareto)  # exported
    # Optuna does not prune two objectives: the run and the report say so, not the spec's `median`
    assert "pruner `none`" in result.report
    assert mlflow.get_run(result.run_id).data.tags["mlsandbox.search.pruner"] == "none"
    # one seed: each Pareto trial's line says it has no interval rather than showing a bare number
    assert result.pareto_text() == [f"trial {t.number}, delta {t.values[0]:+.3f}% (no interval: no spread over seeds), "
                                    f"pool size {t.values[1]:.0f}: not a win" for t in result.pareto]


def test_each_pareto_line_says_whether_its_trial_beat_the_control() -> None:
    def trial(number: int, delta: float) -> optuna.trial.FrozenTrial:
        made = optuna.trial.create_trial(values=[delta, 500.0])
        made.number = number
        return made

    def claim(p_adjusted: float) -> dict[str, float]:
        return {"ci_low_pct": 0.1, "ci_high_pct": 2.0, "p_value": p_adjusted / 2, "p_adjusted": p_adjusted, "family": 3.0}

    pareto = [trial(0, 1.0), trial(1, 2.0), trial(2, -1.0)]
    result = SearchResult("s", "journal", "r", pd.DataFrame(), pareto[1], None, pareto, {}, 3, 1.0, "",
                          pareto_claims=[claim(0.2), claim(0.01), claim(0.01)])
    assert [line.rsplit(": ", 1)[1] for line in result.pareto_text()] == [
        "not a win", "beat the random control", "not a win"]  # significant, but worse than the control


def test_a_later_calls_export_replaces_the_word_lists_of_an_earlier_best(tracking_uri, tmp_path) -> None:
    """The search's folder is logged again on every call: a word list the new best does not count
    must not stay beside its config, where Data-Juicer would read it."""
    run_id = mlflow.MlflowClient().create_run(mlflow.set_experiment("words").experiment_id).info.run_id

    def log(*lists: str) -> set[str]:
        out = tmp_path / f"out{len(lists)}"
        (out / "best_recipe.data_juicer_words").mkdir(parents=True)
        (out / "best_recipe.data_juicer.yaml").write_text("process: []\n")
        for name in lists:
            (out / "best_recipe.data_juicer_words" / f"{name}.json").write_text("{}")
        if not lists:
            (out / "best_recipe.data_juicer_words").rmdir()
        report_mod._replace_artifacts(run_id, out, pd.DataFrame())
        listed = mlflow.MlflowClient().list_artifacts(run_id, "search/best_recipe.data_juicer_words")
        return {a.path.rsplit("/", 1)[1] for a in listed}

    assert log("flagged_words", "stopwords") == {"flagged_words.json", "stopwords.json"}
    assert log("flagged_words") == {"flagged_words.json"}
    assert log() == set()


def test_a_study_with_other_objectives_is_refused(raw, tracking_uri, tmp_path) -> None:
    run_search(_spec(raw, n_trials=1), "fixed", _storage(tmp_path), progress=False)
    with pytest.raises(SpecError, match="objective"):
        run_search(_spec(raw, objectives=["delta", "size"], n_trials=1), "fixed", _storage(tmp_path), progress=False)


def test_a_study_continued_with_another_space_is_refused(raw, tracking_uri, tmp_path) -> None:
    """Trials drawn from two spaces would mix params (``*.max_pct`` and ``*.max``) and TPE would model both."""
    from mlsandbox.search._storage import SPACE_ATTR

    run_search(_spec(raw, n_trials=1, ops=TRAINED), "space", _storage(tmp_path), progress=False)
    value = [{"op": "text_length_filter", "bounds": "max", "scale": "value"}]
    with pytest.raises(SpecError, match=r"study 'space' searched another space \(text_len\.max_pct \(no longer "
                                        r"searched\); text_len\.max \(new\)\): .*; use another --study"):
        run_search(_spec(raw, n_trials=2, ops=value), "space", _storage(tmp_path), progress=False)
    narrower = [{**TRAINED[0], "max_range": [60, 90]}]
    with pytest.raises(SpecError, match=r"max_pct text_length_filter max \(percentile\) \[50, 90\] -> .*\[60, 90\]"):
        run_search(_spec(raw, n_trials=2, ops=narrower), "space", _storage(tmp_path), progress=False)
    with pytest.raises(SpecError, match=r"; and \d+ more\): its trials would not compare"):  # one line, kept short
        run_search(_spec(raw, n_trials=2, optional=True, repeat=[1, 3]), "space", _storage(tmp_path), progress=False)
    study = optuna.load_study(study_name="space", storage=open_storage(_storage(tmp_path), _spec(raw))[0])
    assert len(study.trials) == 1  # nothing drawn from the other spaces
    study.set_user_attr(SPACE_ATTR, None)  # as a version that recorded no space left it: accepted, then recorded
    assert run_search(_spec(raw, n_trials=2, ops=TRAINED), "space", _storage(tmp_path), progress=False).ran == 1
    assert isinstance(optuna.load_study(study_name="space", storage=open_storage(_storage(tmp_path), _spec(raw))[0])
                      .user_attrs[SPACE_ATTR], dict)


def test_a_winning_best_trial_is_confirmed_on_fresh_seeds(small_corpus, tracking_uri, tmp_path, caplog,
                                                           monkeypatch) -> None:
    # clean sentences and long letter salad, scored on clean sentences: a recipe that keeps the short
    # documents clearly wins
    rng = np.random.default_rng(0)
    salad = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz    "), 300)) for _ in range(200)]
    docs = [f"Document {i}: a clean sentence about topic number {i}, written plainly." if i % 3 else salad[i // 3]
            for i in range(600)]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": f"doc-{i:03d}", "text": t} for i, t in enumerate(docs)])
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence about topic {i}, written plainly."}
                                                   for i in range(20)])
    raw = spec_dict(corpus, workspace=str(tmp_path / "ws"), seeds=[0, 1, 2, 3], model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench)}], confirm={"seeds": [100, 101, 102]})
    under_way: list[str] = []
    working = Progress.working
    monkeypatch.setattr(Progress, "working", lambda bar, status: (under_way.append(status), working(bar, status)))
    caplog.set_level(logging.INFO, logger="mlsandbox.progress")
    from mlsandbox.search import _study

    confirmed_before_report: list[int] = []
    report = _study.log_results

    def report_after_counting(study, ctx, run_id, *args):  # the report runs under the lock the other workers wait for
        cells = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                   filter_string=f"tags.`{tracking.PARENT_RUN_ID}` = '{run_id}'")
        confirmed_before_report.append(sum(c.data.params.get("seed") in ("100", "101", "102") for c in cells))
        return report(study, ctx, run_id, *args)

    monkeypatch.setattr(_study, "log_results", report_after_counting)
    result = run_search(_spec(raw, min_pool_size=20), "s-confirm", _storage(tmp_path), progress="lines")
    # progress names the trial and seed a long wait is spent on, and reports the confirmation's cells
    assert {"trial 0 seed 0 (1 of 4, running)", "decide trial-0 seed 0 (running)"} <= set(under_way)
    assert caplog.text.count("confirm cells: 6/6 cells (100%)") == 1  # once: the report's pass reuses them quietly
    claim = result.claim
    assert result.best_delta_pct > 0 and claim["p_adjusted"] < 0.05 and claim["confirmed_seeds"] == 3
    assert claim["confirmed_p"] < 0.05 and claim["confirmed_ci_low_pct"] > 0
    metrics = mlflow.get_run(result.run_id).data.metrics
    assert metrics["best_confirmed_pct"] == claim["confirmed_pct"] and metrics["confirm.cells_run"] >= 3
    cells = mlflow.search_runs(search_all_experiments=True, output_format="list",
                               filter_string=f"tags.`{tracking.PARENT_RUN_ID}` = '{result.run_id}'")
    assert {int(c.data.params["seed"]) for c in cells if "seed" in c.data.params} >= {100, 101, 102}
    # every confirmation cell was trained before the report's lock, not under it
    assert confirmed_before_report == [sum(c.data.params.get("seed") in ("100", "101", "102") for c in cells)] != [0]
    assert "one test): confirmed" in result.best_text() and "free of that choice" in result.report
    # a resume logs the study's tables again: each is replaced, not appended to
    spec = _spec(raw, min_pool_size=20)
    again = run_search(spec, "s-confirm", _storage(tmp_path), n_trials=spec.search.n_trials + 1, progress=False)
    experiment = mlflow.get_run(again.run_id).info.experiment_id
    for table, rows in (("confirm/deltas.json", 1), ("search/trials.json", spec.search.n_trials + 1)):
        logged = mlflow.MlflowClient().load_table(experiment, artifact_file=table, run_ids=[again.run_id])
        assert len(logged) == rows, table
    # a continuation that confirms nothing withdraws the earlier confirmation, and search/ holds its files only
    client = mlflow.MlflowClient()
    client.log_text(again.run_id, "an earlier call's file", "search/stale.txt")
    unconfirmed = run_search(_spec({**raw, "confirm": None}, min_pool_size=20), "s-confirm", _storage(tmp_path),
                             n_trials=spec.search.n_trials + 2, progress=False)
    assert unconfirmed.run_id == again.run_id and not unconfirmed.confirmed
    assert math.isnan(mlflow.get_run(again.run_id).data.metrics["best_confirmed_pct"])
    assert "confirm" not in {f.path for f in client.list_artifacts(again.run_id)}  # not even an empty folder
    listed = {f.path for f in client.list_artifacts(again.run_id, "search")}
    assert "search/report.md" in listed and "search/stale.txt" not in listed
    assert len(client.list_artifacts(again.run_id, "search/invocations")) == 3  # one record per call, kept


def test_the_best_trial_comes_with_its_interval_and_a_p_value_corrected_across_the_trials(
        raw, tracking_uri, tmp_path) -> None:
    spec = _spec({**raw, "seeds": [0, 1, 2]})
    result = run_search(spec, "s-claim", _storage(tmp_path), progress=False)
    study = optuna.load_study(study_name="s-claim", storage=open_storage(_storage(tmp_path), spec)[0])
    tested = [t for t in study.trials if t.state == TrialState.COMPLETE and "p_value" in t.user_attrs]
    assert len(tested) >= 2 and result.best is not None
    # one test per distinct pool: trials whose recipes select the same pool share its cells
    pools = {t.number: t.user_attrs["measured_pool"]["pool_digest"] for t in tested}
    first = {}
    for t in tested:
        first.setdefault(pools[t.number], t.user_attrs["p_value"])
    adjusted = dict(zip(first, holm(list(first.values()))))
    claim = result.claim
    assert (claim["p_adjusted"], claim["family"]) == (adjusted[pools[result.best.number]], len(first))
    assert claim["p_value"] <= claim["p_adjusted"]
    assert claim["ci_low_pct"] <= result.best_delta_pct <= claim["ci_high_pct"]
    metrics = mlflow.get_run(result.run_id).data.metrics
    assert (metrics["best_p_adjusted"], metrics["best_ci_low_pct"]) == (claim["p_adjusted"], claim["ci_low_pct"])
    trial_run = mlflow.get_run(result.best.user_attrs["mlflow_run_id"]).data.metrics
    assert trial_run["delta_ci_high_pct"] == claim["ci_high_pct"] and trial_run["p_value"] == claim["p_value"]
    assert (f"Holm-adjusted p = {claim['p_adjusted']:.3g} across the complete trials' {len(first)} distinct pools "
            "with a p-value" in result.report)
    assert "biased upwards" in result.report and "Holm-adjusted p" in result.best_text()


def test_each_complete_trials_run_holds_its_holm_adjusted_p_logged_again_by_every_call(
        raw, tracking_uri, tmp_path, monkeypatch) -> None:
    """A trial's run showed its raw p-value only; its family grows as trials complete, so each call
    logs the adjusted p again, in one request per run. The history figure gets the same claims."""
    from mlsandbox.search._claims import trial_claims

    requests: list[str] = []
    log_batch = tracking.log_batch
    monkeypatch.setattr(tracking, "log_batch", lambda run_id, **kw: (
        requests.append(run_id) if "p_adjusted" in (kw.get("metrics") or {}) else None, log_batch(run_id, **kw))[1])
    drawn: list[object] = []
    history = figures.history_curve
    monkeypatch.setattr(figures, "history_curve", lambda frame, *a, **kw: history(drawn.append(frame) or frame, *a, **kw))
    spec = _spec({**raw, "seeds": [0, 1, 2]}, n_trials=3)
    storage = _storage(tmp_path)
    run_search(spec, "s-adjusted", storage, progress=False)
    first = list(requests)
    run_search(spec, "s-adjusted", storage, n_trials=5, progress=False)
    study = optuna.load_study(study_name="s-adjusted", storage=open_storage(storage, spec)[0])
    claims = trial_claims(study)
    tested = {t.number: t.user_attrs["mlflow_run_id"] for t in study.trials
              if t.state == TrialState.COMPLETE and math.isfinite(claims[t.number]["p_adjusted"])}
    assert len(first) >= 2 and sorted(first) == sorted(set(first))  # one request per run and call
    assert sorted(requests[len(first):]) == sorted(tested.values())
    client = mlflow.MlflowClient()
    for number, run_id in tested.items():
        metrics = client.get_run(run_id).data.metrics
        assert (metrics["p_adjusted"], metrics["p_adjusted_family_size"]) == (claims[number]["p_adjusted"],
                                                                         claims[number]["family"])
        assert metrics["p_adjusted"] >= metrics["p_value"]
    for run_id in first:  # the first call's trials: logged again by the second
        assert len(client.get_metric_history(run_id, "p_adjusted")) == 2
    rows = drawn[-1].set_index("trial")  # the history figure's frame: each trial's interval and adjusted p
    for number in tested:
        assert rows.loc[number, "p_adjusted"] == claims[number]["p_adjusted"]
        assert rows.loc[number, "ci_low_pct"] == claims[number]["ci_low_pct"]
        assert rows.loc[number, "ci_high_pct"] == claims[number]["ci_high_pct"]


def test_the_search_command_shows_no_delta_for_a_pruned_trial_and_says_whether_the_best_won(
        raw, tracking_uri, tmp_path, monkeypatch) -> None:
    """A pruned trial's value is Optuna's last intermediate one (a running delta after some seeds, no
    interval): trials.csv keeps it, the tables people read show n/a. The best line says whether it
    beat the control, as the workflow's answer does, not only its delta and interval."""
    import io

    import pandas as pd
    from typer.testing import CliRunner

    from mlsandbox.cli import app
    from mlsandbox.search._claims import verdict_text

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: self.number == 0)
    path = tmp_path / "sandbox.yaml"
    defined = {**raw, "seeds": [0, 1], "search": {**SMALL, "n_trials": 3, "ops": TRAINED}}
    path.write_text(yaml.safe_dump(defined))
    storage = _storage(tmp_path)
    out = CliRunner().invoke(app, ["search", "-p", str(path), "--study", "s-shown", "--storage", storage, "-q"])
    assert out.exit_code == 0, out.output
    study = optuna.load_study(study_name="s-shown", storage=open_storage(storage, parse_spec(defined))[0])
    pruned, best = study.trials[0], study.best_trial
    assert pruned.state == TrialState.PRUNED and math.isfinite(pruned.value)
    (row,) = [line for line in out.output.splitlines() if line.startswith("|") and "PRUNED" in line]
    assert re.match(r"\|\s*0\s*\|\s*PRUNED\s*\|\s*n/a\s*\|", row), row
    verdict = verdict_text(best, trial_claim(study, best))
    assert verdict.startswith(("It beat", "This is not a win")) and f". {verdict}" in out.output
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                filter_string=f"tags.`{STUDY}` = 's-shown' and tags.`{tracking.KIND}` = 'search'")
    report = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/search/report.md")
    best_section = report.split("### Best recipe")[1].split("###")[0]
    assert verdict in best_section
    (row,) = [line for line in report.split("### Trials")[1].splitlines() if "PRUNED" in line]
    assert re.match(r"\|\s*0\s*\|\s*PRUNED\s*\|\s*n/a\s*\|", row), row
    csv = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/search/trials.csv")))
    assert csv.loc[0, "delta_pct"] == pytest.approx(pruned.value)  # the last intermediate value, as documented


def test_the_verdict_on_the_best_trial_is_the_workflow_answers() -> None:
    from mlsandbox.search._claims import verdict_text

    def trial(delta: float) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(value=delta, params={}, distributions={})

    assert verdict_text(trial(2.0), {"p_adjusted": 0.01}) == "It beat the random control after Holm's correction (adjusted p < 0.05)."
    assert verdict_text(trial(-2.0), {"p_adjusted": 0.01}) == "This is not a win: it is worse than the random control."
    assert verdict_text(trial(2.0), {"p_adjusted": 0.2}).startswith("This is not a win: it is not distinguishable")
    assert verdict_text(trial(2.0), {"p_adjusted": math.nan}).startswith("This is not a win: without a spread")
    assert verdict_text(None, {}) == ""
    # The workflow's own answer, as a warm start, was chosen by its deltas on these same seeds (its cells reused).
    chosen = optuna.trial.create_trial(value=2.0, params={}, distributions={}, user_attrs={"warm_start": "workflow: top-1"})
    assert verdict_text(chosen, {"p_adjusted": 0.01}).endswith(
        "the correction across the study's trials does not count that choice, a confirmation on fresh seeds does.")
    rule = optuna.trial.create_trial(value=2.0, params={}, distributions={}, user_attrs={"warm_start": "ksigma: k"})
    assert "chose" not in verdict_text(rule, {"p_adjusted": 0.01})  # k-sigma is chosen by a rule, not by deltas
    nearest = optuna.trial.create_trial(value=2.0, params={}, distributions={},
                                        user_attrs={"warm_start": "workflow: top-1 (nearest point)"})
    assert "chose" not in verdict_text(nearest, {"p_adjusted": 0.01})  # another pool than the workflow measured


def test_trials_of_a_version_that_kept_no_claim_attributes_are_read_from_their_runs(tracking_uri) -> None:
    from mlsandbox.search._claims import trial_claim

    client = mlflow.MlflowClient()
    experiment_id = mlflow.set_experiment("claims").experiment_id
    study = optuna.create_study(direction="maximize")
    for i, p in enumerate([0.01, 0.2, 0.03]):
        run_id = client.create_run(experiment_id).info.run_id
        for key, value in {"p_value": p, "delta_ci_low_pct": 1.0 + i, "delta_ci_high_pct": 3.0 + i,
                           "delta_std_pct": 0.5}.items():
            client.log_metric(run_id, key, value)
        attrs = {"mlflow_run_id": run_id} if i < 2 else {"mlflow_run_id": run_id, "p_value": p,
                                                         "delta_ci_low_pct": 9.0, "delta_ci_high_pct": 9.5}
        study.add_trial(optuna.trial.create_trial(value=float(i), user_attrs=attrs))
    claim = trial_claim(study, study.trials[0])  # an old trial: nothing but its run
    assert (claim["ci_low_pct"], claim["ci_high_pct"], claim["p_value"], claim["family"]) == (1.0, 3.0, 0.01, 3.0)
    assert claim["p_adjusted"] == pytest.approx(holm([0.01, 0.2, 0.03])[0])
    assert trial_claim(study, study.trials[2])["ci_low_pct"] == 9.0  # a trial's own attributes come first


def test_a_complete_trial_without_a_p_value_is_no_member_of_the_holm_family() -> None:
    """One seed gives a trial a delta but no p-value: it is not among the tests the best was picked from."""
    from mlsandbox.search._claims import trial_claim

    study = optuna.create_study(direction="maximize")
    for value, attrs in ((1.0, {"p_value": 0.01}), (2.0, {"p_value": 0.04}), (3.0, {})):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs=attrs))
    claim = trial_claim(study, study.trials[0])
    assert claim["family"] == 2 and claim["p_adjusted"] == pytest.approx(holm([0.01, 0.04])[0])
    assert math.isnan(trial_claim(study, study.trials[2])["p_adjusted"])


def test_the_pruner_stops_a_trial_after_the_seed_whose_running_delta_it_judges_poor(
        raw, tracking_uri, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: True)  # a pruner that prunes everything
    spec = _spec({**raw, "seeds": [0, 1]}, n_trials=2, ops=TRAINED)
    result = run_search(spec, "s-prune", _storage(tmp_path), progress=False)
    assert list(result.trials["state"]) == ["PRUNED", "PRUNED"]
    assert all(r.startswith("pruned after 1 of 2 seeds: running delta") for r in result.trials["reason"])
    study = optuna.load_study(study_name="s-prune", storage=open_storage(_storage(tmp_path), spec)[0])
    assert [list(t.intermediate_values) for t in study.trials] == [[0], [0]]  # the second seed never trained


def test_a_trial_is_never_pruned_at_its_last_seed(raw, tracking_uri, tmp_path, monkeypatch) -> None:
    """Pruning after the last seed would throw away a fully measured trial: it completes, whatever the pruner says."""
    reported: dict[str, int] = {}
    report = optuna.trial.Trial.report

    def recording(self, value: float, step: int) -> None:
        reported["step"] = step
        report(self, value, step)

    monkeypatch.setattr(optuna.trial.Trial, "report", recording)
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: reported["step"] == 1)  # only at the last
    spec = _spec({**raw, "seeds": [0, 1]}, n_trials=2, ops=TRAINED)
    result = run_search(spec, "s-last", _storage(tmp_path), progress=False)
    assert list(result.trials["state"]) == ["COMPLETE", "COMPLETE"], list(result.trials["reason"])
    assert all(math.isfinite(d) for d in result.trials["delta_pct"])


def test_the_percentile_pruner_prunes_the_bottom_quarter() -> None:
    """Optuna's ``percentile`` is the share of trials kept: the docs' "below the 25th percentile" is 75."""
    study = optuna.create_study(direction="maximize", pruner=make_pruner(SearchSpec(pruner="percentile"), seeds=5))
    for value in [1.0, 2.0, 3.0, 4.0, 5.0]:
        trial = study.ask()
        trial.report(value, 0)
        study.tell(trial, value)
    for value, pruned in [(3.0, False), (1.0, True)]:  # the 25th percentile of 1..5 is 2
        trial = study.ask()
        trial.report(value, 0)
        assert bool(trial.should_prune()) is pruned, value
        study.tell(trial, state=TrialState.FAIL)


def test_only_a_best_trial_that_beat_its_control_is_confirmed_on_fresh_seeds() -> None:
    """A significant loss (p_adjusted < 0.05, delta below 0) is no answer to confirm."""
    from mlsandbox.search._claims import beat_control

    def trial(delta: float) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(value=delta, params={}, distributions={})

    assert beat_control(trial(2.0), {"p_adjusted": 0.01})
    assert not beat_control(trial(-2.0), {"p_adjusted": 0.01})
    assert not beat_control(trial(2.0), {"p_adjusted": 0.2}) and not beat_control(None, {"p_adjusted": 0.01})
