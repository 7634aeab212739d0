"""One MLflow run per refine candidate: recipes compared side by side in the MLflow UI.

The cells (pool x seed) remain the runs that trained. A candidate run, a child of the step's run
(``mlsandbox.kind = candidate``), holds what refine's table says of one candidate: its recipe's
conditions, subsample and repeat as params; its size, delta, interval and corrected p-value as
metrics (the same names on every candidate, so the UI's *Compare* lines them up), with the step
whose Holm family corrected that p-value as the param ``p_adjusted_family`` (``probe`` for a pool
refine carried from the probe, its top single-OP rows; else ``refine``); its recipe as
``recipe.yaml``; and its pool as a dataset input (context ``candidate``), whose digest leads to
the cells that measured it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import mlflow
import pandas as pd

from mlsandbox import artifacts, tracking
from mlsandbox.executors.prepare import Prepared
from mlsandbox.pools import Pool
from mlsandbox.recipes import Recipe, recipe_text

#: The ``mlsandbox.kind`` of a candidate run.
CANDIDATE = "candidate"
#: Refine-table columns logged as metrics of a candidate run.
METRICS = ("size", "unique", "level", "delta_pct", "std_pct", "ci_low_pct", "ci_high_pct", "p_value", "p_adjusted")


def log_candidate_runs(prepared: Prepared, table: pd.DataFrame, recipes: Sequence[Recipe],
                       pools: Sequence[Pool | None], parent_run_id: str, carried: Collection[str] = ()) -> None:
    """A child run of ``parent_run_id`` per row of refine's ``table`` (with its recipe and pool);
    ``carried``: the digests of the pools whose numbers, and Holm family, are the probe's."""
    for row, recipe, pool in zip(table.to_dict("records"), recipes, pools):
        tags = {tracking.KIND: CANDIDATE, tracking.RECIPE_DIGEST: recipe.digest()}
        if pool is not None:
            tags |= {tracking.POOL_DIGEST: pool.digest, tracking.DATASET_DIGEST: pool.dataset_digest}
        with tracking.child_run(f"candidate/{row['name']}"[:250], tags, parent_run_id) as run:
            run_id = run.info.run_id
            tracking.log_batch(run_id, params=_params(row, recipe) | _family(row, carried), metrics={
                key: float(row[key]) for key in METRICS if isinstance(row[key], (int, float)) and math.isfinite(row[key])})
            measured = recipe if pool is None else recipe.measured_as(pool, prepared.stats, parent_run_id)  # as refine/recipes/ has it
            mlflow.MlflowClient().log_text(run_id, recipe_text(measured), "recipe.yaml")
            if pool is not None:
                tracking.log_pool_input(pool, prepared.dataset, prepared.stats, prepared.pool_file(pool, prepared.spec.model),
                                        context=CANDIDATE, run_id=run_id)


def _family(row: dict[str, object], carried: Collection[str]) -> dict[str, str]:
    """The step whose Holm family ``row``'s p_adjusted is in (none for a row not measured): one
    candidate's p_adjusted is not comparable to another's without it."""
    if not row["fidelity"]:
        return {}
    return {"p_adjusted_family": artifacts.PROBE if row["pool_digest"] in carried else artifacts.REFINE}


def _params(row: dict[str, object], recipe: Recipe) -> dict[str, object]:
    """The candidate's recipe as params: one ``condition.<op>.<stat>`` per stat (its conditions joined)."""
    conditions: dict[str, list[str]] = {}
    for c in recipe.conditions:
        conditions.setdefault(f"condition.{c.label}", []).append(c.describe())
    params = {"candidate": row["name"], "kind": row["kind"], "recipe": row["recipe"], "fidelity": row["fidelity"],
              "sample_size": recipe.sample_size, "repeat": recipe.repeat, "source": recipe.source, "note": row["note"],
              **{key: "; ".join(described) for key, described in conditions.items()}}
    return {key: value for key, value in params.items() if value not in (None, "")}
