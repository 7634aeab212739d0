"""A cell's delta: its relative change over the random control cell of the same seed, logged on
the cell's own run, so the MLflow UI sorts cells by it."""

from __future__ import annotations

from collections.abc import Sequence

from mlsandbox import tracking
from mlsandbox.delta import relative_delta
from mlsandbox.executors.cell_result import BASELINE_RUN, CellResult


def log_cell_deltas(results: Sequence[CellResult], baselines: dict[int, CellResult]) -> None:
    """Each cell's ``delta_pct`` against the random cell of the same seed, on the cell's run at step =
    the seed (a seed-independent cell serves every seed: one value each, one request per run), with the
    control's run in the tag ``mlsandbox.baseline_run.<seed>``, once: a logged delta stands."""
    per_run: dict[str, tuple[dict[int, float], dict[str, str]]] = {}
    for cell in results:
        base = baselines.get(cell.seed)
        if (cell.ok and base is not None and base.ok and cell.run_id != base.run_id
                and cell.baselines.get(cell.seed) != base.run_id):
            deltas, tags = per_run.setdefault(cell.run_id, ({}, {}))
            deltas[cell.seed] = 100 * relative_delta(cell.scores, base.scores)
            tags[f"{BASELINE_RUN}.{cell.seed}"] = base.run_id
            cell.baselines[cell.seed] = base.run_id
    for run_id, (deltas, tags) in per_run.items():
        tracking.log_batch(run_id, series={"delta_pct": deltas}, tags=tags)
