"""Pools against equal-size random pools: one cell per (pool, seed), deltas summarised per pool.

Every comparison in the sandbox — a single-OP pool, a recipe, a pyramid level, a duplication
budget — goes through :func:`compare_pools`, so each is measured the same way: for every seed a
random control of the same size drawn for that seed, Eq. 3 over the same benchmarks, and the
statistics of :mod:`mlsandbox.delta` over seeds (a t-interval, a t-test, and Holm's correction
across the pools of the call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd

from mlsandbox import artifacts, tracking
from mlsandbox.delta import DeltaSummary, adjust_summaries, summarize_deltas
from mlsandbox.executors.cells import CellResult, log_cell_deltas, results_frame, run_cell
from mlsandbox.executors.prepare import Prepared
from mlsandbox.models import BenchmarkSet
from mlsandbox.pools import RANDOM, Pool, random_pool


@dataclass
class PoolComparison:
    pool: Pool
    summary: DeltaSummary | None  # None when every seed's cell (or its baseline) failed
    cells: list[CellResult]
    baselines: dict[int, CellResult]  # seed -> the cell of that seed's random control

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
        """One row per pool: size, unique samples, delta mean ± std (%) with its 95% interval,
        p-value, Holm-adjusted p-value (across the pools of the step), seeds, failed cells, rank."""
        rows = []
        for c in self.items:
            s = c.summary
            rows.append({"pool": c.pool.name, "op": c.pool.op or "", "split": c.pool.origin.split,
                         "size": c.pool.size, "unique": c.pool.unique_size, **summary_columns(s),
                         "seeds": s.seeds if s else 0, "failed": c.failed})
        table = pd.DataFrame(rows)
        if not table.empty:
            table["rank"] = table["delta_pct"].rank(ascending=False, method="min").astype("Int64")
        return table

    def adjust(self) -> None:
        """Set every summary's ``p_adjusted``: Holm's correction across all pools of these comparisons."""
        adjusted = adjust_summaries([c.summary for c in self.items])
        for item, summary in zip(self.items, adjusted):
            item.summary = summary

    def extend(self, other: Comparisons) -> None:
        """Append another step's comparisons; their adjusted p-values stay those of their own step."""
        self.items.extend(other.items)
        self.cells.extend(other.cells)


def summary_columns(summary: DeltaSummary | None) -> dict[str, float]:
    """The table columns of a pool's delta summary (%, p-values); NaN where it was not measured."""
    s = summary
    return {"delta_pct": s.mean_pct if s else np.nan, "std_pct": s.std_pct if s else np.nan,
            "ci_low_pct": s.ci_low_pct if s else np.nan, "ci_high_pct": s.ci_high_pct if s else np.nan,
            "p_value": s.p_value if s else np.nan, "p_adjusted": s.p_adjusted if s else np.nan}


def control_seed(pools_seed: int, seed: int) -> int:
    """The seed that draws training seed ``seed``'s random control: derived from both, in [0, 2**32)."""
    return int(np.random.SeedSequence([pools_seed, seed]).generate_state(1)[0])


def baseline_for(prepared: Prepared, pool: Pool, seed: int) -> Pool:
    """The control group of ``pool`` for training seed ``seed``: a random pool of the same size.

    Each seed draws its own (:func:`control_seed` of ``pools.seed`` and the seed), so the spread
    of the deltas over seeds includes which documents the control happened to get. All pools of
    one size share the control of a seed (its cells are reused by their digest).
    """
    return random_pool(prepared.stats, pool.size, control_seed(prepared.spec.pools.seed, seed),
                       name=f"{RANDOM}-{pool.size}")


def compare_pools(
    prepared: Prepared, pools: Sequence[Pool], benchmarks: BenchmarkSet, experiment_id: str | None = None,
    parent_run_id: str | None = None,
) -> Comparisons:
    """Train and evaluate every pool and, for every seed of the spec, that seed's random control.

    The summaries of the returned comparisons carry Holm-adjusted p-values across all ``pools``
    of the call (one step's family). The cells are children of ``parent_run_id`` (the active run;
    None: whichever run is active), reused from finished runs of ``experiment_id`` (default: the
    parent's experiment).
    """
    seeds = prepared.spec.seeds
    experiment_id = experiment_id or tracking.experiment_of(parent_run_id)
    out = Comparisons()
    controls: dict[tuple[str, int], CellResult] = {}  # (control digest, seed) -> its cell

    def cell(pool: Pool, seed: int) -> CellResult:
        return run_cell(prepared, pool, seed, benchmarks, experiment_id, parent_run_id)

    for pool in pools:
        base: dict[int, CellResult] = {}
        for seed in seeds:
            control = baseline_for(prepared, pool, seed)
            if (control.digest, seed) not in controls:
                controls[control.digest, seed] = cell(control, seed)
                out.cells.append(controls[control.digest, seed])
            base[seed] = controls[control.digest, seed]
        cells = []
        for seed in seeds:
            if pool.digest == base[seed].pool.digest:  # the pool is this seed's control itself
                cells.append(base[seed])
            else:
                cells.append(cell(pool, seed))
                out.cells.append(cells[-1])
        log_cell_deltas(cells, base)
        item = PoolComparison(pool, None, cells, base)
        pairs = item.paired()
        if pairs:
            item.summary = summarize_deltas([c.scores for c, _ in pairs], [b.scores for _, b in pairs])
        out.items.append(item)
    out.adjust()
    return out


def table_markdown(table: pd.DataFrame) -> str:
    """A table as Markdown, 4 significant digits, an undefined (NaN) value shown as ``n/a``."""
    return table.astype(object).where(table.notna(), None).to_markdown(index=False, floatfmt=".4g",
                                                                        missingval="n/a")


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
            for name, value in (("delta_ci_low_pct", c.summary.ci_low_pct),
                                ("delta_ci_high_pct", c.summary.ci_high_pct),
                                ("p_value", c.summary.p_value), ("p_adjusted", c.summary.p_adjusted)):
                if np.isfinite(value):  # undefined with one seed
                    metrics[tracking.metric_key(name, c.pool.name)] = value
    counter = f"{step}." if step else ""
    metrics[f"{counter}cells_run"] = sum(not c.reused for c in comparisons.cells)
    metrics[f"{counter}cells_reused"] = sum(c.reused for c in comparisons.cells)
    metrics[f"{counter}cells_failed"] = sum(not c.ok for c in comparisons.cells)
    tracking.log_batch(run_id, metrics=metrics)
    table = comparisons.table()
    client = mlflow.MlflowClient()
    client.log_table(run_id, table, artifacts.under(step, artifacts.DELTAS_TABLE))
    client.log_text(run_id, table_markdown(table) + "\n",
                    artifacts.under(step, artifacts.DELTAS_MARKDOWN))
    client.log_table(run_id, results_frame(comparisons.cells), artifacts.under(step, artifacts.CELLS_TABLE))
    return table
