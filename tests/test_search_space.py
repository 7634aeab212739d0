"""The search space: which recipes are points of it, and which dimensions it leaves out."""

from __future__ import annotations

import logging

import mlflow
import numpy as np
import pytest
import yaml

from mlsandbox import tracking
from mlsandbox.artifacts import BEST_RECIPE
from mlsandbox.executors.prepare import prepare
from mlsandbox.pools import cut_splits
from mlsandbox.recipes import parse_recipe
from mlsandbox.search import build_space, params_from_recipe, recipe_from_params, run_search
from mlsandbox.spec import parse_spec

SMALL = {"min_pool_size": 5, "n_trials": 1, "sampler": "random", "warm_start": {"workflow": False, "ksigma": False}}


@pytest.fixture
def raw(search_raw: dict) -> dict:
    return search_raw


def _spec(raw: dict, **search: object):
    return parse_spec({**raw, "search": {**SMALL, **search}})


@pytest.mark.parametrize("split", ["low", "high"])
def test_a_low_or_high_split_is_a_point_of_a_space_over_whole_ranges(raw, split: str) -> None:
    """Both bounds drawn over the whole range and sorted: a tercile at either end is a point of the
    space whose recipe selects the split's pool (a warm start credits the right point)."""
    for scale, whole in (("percentile", [0, 100]), ("value", None)):
        stats0 = prepare(_spec(raw), progress=False).stats
        values = stats0.stat("text_len").astype(float)
        span = whole or [float(values.min()), float(values.max())]
        spec = _spec(raw, scale=scale, ops=[{"op": "text_length_filter", "scale": scale, "min_range": span,
                                             "max_range": span}])
        stats = prepare(spec, progress=False).stats
        space = build_space(spec.search, stats)
        cut = next(c for c in cut_splits(stats, "text_length_filter", spec.pools) if c.split == split)
        recipe = parse_recipe({"name": cut.name, "conditions": [{"op": "text_length_filter", "min": cut.lower,
                                                                 "max": cut.upper}]})
        point = recipe_from_params(space, params_from_recipe(space, recipe, stats), stats, "point")
        assert point.select(stats).digest == recipe.select(stats).digest, scale
        assert point.select(stats).unique_size < len(stats) / 2  # a tercile, not a pool holding the median


def test_the_default_halves_keep_the_median_and_sorted_draws_make_the_smaller_the_lower_bound(raw) -> None:
    halves = build_space(_spec(raw, ops=[{"op": "text_length_filter"}]).search,
                         prepare(_spec(raw), progress=False).stats)
    assert [(d.low, d.high) for d in halves.stats[0].dims] == [(0.0, 50.0), (50.0, 100.0)]
    spec = _spec(raw, ops=[{"op": "text_length_filter", "min_range": [0, 100], "max_range": [0, 100]}])
    stats = prepare(spec, progress=False).stats
    space = build_space(spec.search, stats)
    assert [(d.name, d.low, d.high) for d in space.stats[0].dims] == [("text_len.min_pct", 0.0, 100.0),
                                                                      ("text_len.max_pct", 0.0, 100.0)]
    (cond,) = recipe_from_params(space, {"text_len.min_pct": 80.0, "text_len.max_pct": 20.0}, stats, "r").conditions
    values = stats.stat("text_len").astype(float)
    assert (cond.min, cond.max) == (np.percentile(values, 20), np.percentile(values, 80))


def test_a_percentile_range_that_gives_one_bound_is_left_out(raw, caplog) -> None:
    """``word_rep_ratio`` is mostly zeros: every percentile up to the median is the bound 0, which cuts nothing."""
    spec = _spec({**raw, "ops": [{"name": "word_repetition_filter"}]},
                 ops=[{"op": "word_repetition_filter", "min_range": [0, 50], "max_range": [50, 100]}])
    stats = prepare(spec, progress=False).stats
    assert np.mean(stats.stat("word_rep_ratio") == 0) > 0.5
    caplog.set_level(logging.INFO, logger="mlsandbox.search")
    space = build_space(spec.search, stats)
    assert space.param_names() == ["word_rep_ratio.max_pct"]
    assert "word_rep_ratio.min_pct left out of the space: every percentile of [0, 50] gives the bound 0" in caplog.text
    # the whole range keeps both: the stretch of zeros is where the lower end is left uncut
    whole = build_space(_spec({**raw, "ops": [{"name": "word_repetition_filter"}]}, ops=[
        {"op": "word_repetition_filter", "min_range": [0, 100], "max_range": [0, 100]}]).search, stats)
    assert whole.param_names() == ["word_rep_ratio.min_pct", "word_rep_ratio.max_pct"]


def test_a_warm_start_that_is_no_point_of_the_space_is_enqueued_as_its_nearest_point(
        raw, tracking_uri, tmp_path, caplog) -> None:
    spec = _spec(raw, warm_start={"workflow": True, "ksigma": False})
    best = {"name": "twice", "repeat": 2, "conditions": [{"op": "text_length_filter", "max": 40.0}]}  # no repeat searched
    with mlflow.start_run(experiment_id=mlflow.set_experiment(spec.name).experiment_id,
                          tags={tracking.ENTRY_POINT: "workflow"}):
        mlflow.log_text(yaml.safe_dump(best), BEST_RECIPE)
    result = run_search(spec, "nearest", str(tmp_path / "study.journal"), progress=False)
    assert "warm start: the workflow recipe 'twice' is no point of the search space" in caplog.text
    row = result.trials.iloc[0]
    assert row["warm_start"] == "workflow: twice (nearest point)"
    stats = prepare(spec, progress=False).stats
    space = build_space(spec.search, stats)
    point = recipe_from_params(space, {p: row[p] for p in space.param_names()}, stats, "point")
    trained = mlflow.get_run(row["run_id"]).data.tags[tracking.POOL_DIGEST]
    assert trained == point.select(stats).digest != parse_recipe(best).select(stats).digest
