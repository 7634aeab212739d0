"""Probe: every OP's low/mid/high pools against the random pool, ranked (paper Table 1)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from mlsandbox import artifacts, figures, tracking
from mlsandbox.executors.compare import compare_pools, log_comparisons, table_markdown, without_constant
from mlsandbox.executors.comparison import Comparisons
from mlsandbox.executors.fidelity import DECIDE
from mlsandbox.executors.prepare import Prepared
from mlsandbox.files import scratch_folder
from mlsandbox.models import BenchmarkSet
from mlsandbox.pools import RANDOM, Pool, RandomOrigin
from mlsandbox.progress import StyleArg
from mlsandbox.workflows.pool import single_op_splits


@dataclass
class ProbeResult:
    comparisons: Comparisons
    ranking: pd.DataFrame  # one row per (op, split), best first; degenerate splits last, unranked

    def pools_by_name(self) -> dict[str, Pool]:
        """The single-OP pools the probe compared (the random control left out), by name."""
        return {c.pool.name: c.pool for c in self.comparisons.items}

    def best(self, k: int, distinct_ops: bool = True) -> pd.DataFrame:
        """The k best (OP, split) rows with a measured delta (one split per OP by default)."""
        ranked = self.ranking.dropna(subset=["delta_pct"])
        if distinct_ops:
            ranked = ranked.drop_duplicates("op")
        return ranked.head(k)


def ranking_table(comparisons: Comparisons) -> pd.DataFrame:
    """Per OP and split: delta mean ± std (%) over seeds with its 95% interval, the t-test's p-value
    against the random control, the p-value Holm-adjusted across the probe's pools, rank (1 = best)."""
    table = comparisons.table()
    table = table[table["split"] != RANDOM].sort_values(["rank", "pool"], na_position="last")
    return table.reset_index(drop=True)


def with_degenerate(ranking: pd.DataFrame, degenerate: list[tuple[str, str]]) -> pd.DataFrame:
    """The ranking followed by one unranked row per degenerate split, its reason in ``note``."""
    rows = [{"pool": name, "op": name.split("/", 1)[0], "split": name.split("/", 1)[1], "note": f"degenerate: {why}"}
            for name, why in degenerate]
    ranked = ranking.assign(note="")
    return pd.concat([ranked, pd.DataFrame(rows)], ignore_index=True) if rows else ranked


def probe(prepared: Prepared, benchmarks: BenchmarkSet, run_id: str, progress: StyleArg = False) -> ProbeResult:
    """Run (or reuse) every single-OP cell as a child of ``run_id`` (the active run); log the ranking to it."""
    pools, degenerate = single_op_splits(prepared)
    pools = [p for p in pools if not isinstance(p.origin, RandomOrigin)]
    comparisons = compare_pools(prepared, pools, benchmarks, parent_run_id=run_id, top_k=prepared.spec.refine.top_k,
                                progress=progress, step=artifacts.PROBE)
    log_comparisons(comparisons, run_id, step=artifacts.PROBE)
    ranking = ranking_table(comparisons)
    table = with_degenerate(ranking, degenerate)
    _log_ranking(table, ranking, run_id, looks=max((c.looks for c in comparisons.at(DECIDE)), default=1))
    return ProbeResult(comparisons, table)


def screen_settled_note(drawn: int, rows: int, table_file: str) -> str:
    """A figure's title line when it draws only the deciding model's ``drawn`` of ``rows`` (a screen's
    deltas are on another model's scale), or "" when it draws them all."""
    if drawn == rows:
        return ""
    return f"\n(the deciding model's {drawn} pools; the {rows - drawn} the screen settled are in {table_file})"


def _log_ranking(table: pd.DataFrame, ranking: pd.DataFrame, run_id: str, looks: int) -> None:
    """The table (degenerate splits included) as JSON and Markdown; the measured pools as bars, their
    intervals race-corrected for ``looks`` tests."""
    client = mlflow.MlflowClient()
    tracking.log_table(run_id, table, artifacts.RANKING_TABLE)
    client.log_text(run_id, table_markdown(without_constant(table, "fidelity")) + "\n", artifacts.RANKING_MARKDOWN)
    # One model's deltas on one axis: a screen's are on another scale, and rank below the deciding model's.
    decided = ranking[ranking["fidelity"] == DECIDE]
    title = "Single-OP pools: relative change over the random pool" + screen_settled_note(
        len(decided), len(ranking), Path(artifacts.RANKING_MARKDOWN).name)
    if not decided.empty:  # a screen whose cells all failed leaves the deciding model nothing: no bars to draw
        with scratch_folder("probe") as tmp:
            bars = decided.assign(label=decided["pool"])
            figures.ranking_bars(bars, artifacts.local(tmp, artifacts.RANKING_FIGURE), title=title, looks=looks)
            client.log_artifacts(run_id, str(tmp))
    best = ranking.dropna(subset=["delta_pct"]).head(1)
    if not best.empty:
        tracking.log_batch(run_id, metrics=headline_metrics("best_single_op", best.iloc[0]),
                           tags={tracking.TAG + "best_single_op_pool": best["pool"].iloc[0]})


#: The table columns a headline metric of the parent run is logged with: a delta is never a claim alone.
HEADLINE_COLUMNS = ("delta_pct", "ci_low_pct", "ci_high_pct", "p_adjusted")


def headline_metrics(name: str, row: Mapping[str, float]) -> dict[str, float]:
    """``<name>_delta_pct`` with its 95% interval and Holm-adjusted p (``<name>_ci_low_pct``, ...) from
    a table row, so that the run's headline delta never stands without them; a NaN (undefined with one
    seed) is left out, as for the per-pool metrics."""
    return {f"{name}_{column}": float(row[column]) for column in HEADLINE_COLUMNS
            if column in row and math.isfinite(float(row[column]))}
