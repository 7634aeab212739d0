"""Pools against the equal-size random pool: one cell per (pool, seed), deltas summarised per pool.

Every comparison in the sandbox — a single-OP pool, a recipe, a pyramid level, a duplication
budget — goes through :func:`compare_pools`, so each is measured the same way: the random pool
of the same size, the same seeds, Eq. 3 over the same benchmarks, a paired test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd

from mlsandbox import artifacts, tracking
from mlsandbox.delta import DeltaSummary, summarize_deltas
from mlsandbox.executors.cells import CellResult, log_cell_deltas, results_frame, run_cell
from mlsandbox.executors.prepare import Prepared
from mlsandbox.models import BenchmarkSet
from mlsandbox.pools import RANDOM, Pool, random_pool


@dataclass
class PoolComparison:
    pool: Pool
    summary: DeltaSummary | None  # None when every seed's cell (or its baseline) failed
    cells: list[CellResult]
    baselines: dict[int, CellResult]  # seed -> the random pool's cell

    def paired(self) -> list[tuple[CellResult, CellResult]]:
        """(pool cell, baseline cell) of every seed where both finished."""
        return [(c, self.baselines[c.seed]) for c in self.cells if c.ok and self.baselines[c.seed].ok]

    @property
    def failed(self) -> int:
        return sum(not c.ok for c in self.cells)


@dataclass
class Comparisons:
    """The comparisons of one step, with every cell it ran or reused (baselines included)."""

    items: list[PoolComparison] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per pool: size, delta mean ± std (%), p-value, seeds, failed cells, rank."""
        rows = []
        for c in self.items:
            s = c.summary
            rows.append({"pool": c.pool.name, "op": c.pool.op or "", "split": c.pool.origin.split,
                         "size": c.pool.size, "delta_pct": s.mean_pct if s else np.nan,
                         "std_pct": s.std_pct if s else np.nan, "p_value": s.p_value if s else np.nan,
                         "seeds": len(s.deltas) if s else 0, "failed": c.failed})
        table = pd.DataFrame(rows)
        if not table.empty:
            table["rank"] = table["delta_pct"].rank(ascending=False, method="min").astype("Int64")
        return table

    def extend(self, other: Comparisons) -> None:
        self.items.extend(other.items)
        self.cells.extend(other.cells)


def baseline_for(prepared: Prepared, pool: Pool) -> Pool:
    """The random pool of the same size, drawn with ``pools.seed``: the control group."""
    return random_pool(prepared.stats, pool.size, prepared.spec.pools.seed, name=f"{RANDOM}-{pool.size}")


def compare_pools(
    prepared: Prepared, pools: Sequence[Pool], benchmarks: BenchmarkSet, experiment_id: str | None = None,
    parent_run_id: str | None = None,
) -> Comparisons:
    """Train and evaluate every pool and its random baseline for every seed of the spec.

    The cells are children of ``parent_run_id`` (the active run; None: whichever run is active),
    reused from finished runs of ``experiment_id`` (default: the parent's experiment).
    """
    seeds = prepared.spec.seeds
    experiment_id = experiment_id or tracking.experiment_of(parent_run_id)
    out = Comparisons()
    baselines: dict[str, dict[int, CellResult]] = {}

    def cells_of(pool: Pool) -> dict[int, CellResult]:
        return {s: run_cell(prepared, pool, s, benchmarks, experiment_id, parent_run_id) for s in seeds}

    for pool in pools:
        base_pool = baseline_for(prepared, pool)
        if base_pool.digest not in baselines:
            baselines[base_pool.digest] = cells_of(base_pool)
            out.cells.extend(baselines[base_pool.digest].values())
        base = baselines[base_pool.digest]
        if pool.digest == base_pool.digest:
            cells = list(base.values())
        else:
            cells = list(cells_of(pool).values())
            out.cells.extend(cells)
            log_cell_deltas(cells, base)
        item = PoolComparison(pool, None, cells, base)
        pairs = item.paired()
        if pairs:
            item.summary = summarize_deltas([c.scores for c, _ in pairs], [b.scores for _, b in pairs])
        out.items.append(item)
    return out


def log_comparisons(comparisons: Comparisons, run_id: str, step: str = "") -> pd.DataFrame:
    """Per-pool delta metrics, the cost counters, and the tables, on the given (parent) run.

    ``step`` (``probe``, ``refine``; empty for a lone comparison) prefixes the cost counters
    (``probe.cells_run``) and is the folder of the tables (``probe/deltas.json``).
    """
    metrics: dict[str, float] = {}
    for c in comparisons.items:
        if c.summary is not None:
            metrics[tracking.metric_key("delta_pct", c.pool.name)] = c.summary.mean_pct
            metrics[tracking.metric_key("delta_std_pct", c.pool.name)] = c.summary.std_pct
            if np.isfinite(c.summary.p_value):
                metrics[tracking.metric_key("p_value", c.pool.name)] = c.summary.p_value
    counter = f"{step}." if step else ""
    metrics[f"{counter}cells_run"] = sum(not c.reused for c in comparisons.cells)
    metrics[f"{counter}cells_reused"] = sum(c.reused for c in comparisons.cells)
    metrics[f"{counter}cells_failed"] = sum(not c.ok for c in comparisons.cells)
    tracking.log_batch(run_id, metrics=metrics)
    table = comparisons.table()
    client = mlflow.MlflowClient()
    client.log_table(run_id, table, artifacts.under(step, artifacts.DELTAS_TABLE))
    client.log_text(run_id, table.to_markdown(index=False, floatfmt=".4g") + "\n",
                    artifacts.under(step, artifacts.DELTAS_MARKDOWN))
    client.log_table(run_id, results_frame(comparisons.cells), artifacts.under(step, artifacts.CELLS_TABLE))
    return table
