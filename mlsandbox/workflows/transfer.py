"""Rank transfer: the probe's pools at two or more fidelities, and how far the cheaper ranking holds.

Every model of ``transfer.models`` (cheapest first) trains every single-OP pool of the probe and
its per-seed random controls on ``transfer.seeds``. For each pair of fidelities the step logs
the Spearman correlation of the pools' mean deltas and the decision accuracy (the share of
pairs of pools that both order the same way, as AI2's DataDecide measures it), with a scatter
figure: how far a cheap model's ranking of pools can be trusted on this data.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import mlflow
import pandas as pd

from mlsandbox import artifacts, figures, tracking
from mlsandbox.agreement import rank_agreement
from mlsandbox.delta import holm
from mlsandbox.errors import PoolError, SpecError
from mlsandbox.executors.cell_result import CellResult
from mlsandbox.executors.compare import compare_pools, log_comparisons, table_markdown
from mlsandbox.executors.fidelity import Fidelity
from mlsandbox.executors.prepare import log_prepared, prepare
from mlsandbox.files import scratch_folder
from mlsandbox.models import check_models, load_benchmarks
from mlsandbox.pools import RandomOrigin
from mlsandbox.progress import StyleArg
from mlsandbox.spec import ExperimentSpec
from mlsandbox.workflows.pool import single_op_splits

#: The agreement statistics of each pair of fidelities, each logged with its interval and adjusted p.
STATISTICS = ("spearman", "decision_accuracy")
STATISTIC_COLUMNS = tuple(f"{name}{suffix}" for name in STATISTICS
                          for suffix in ("", "_low", "_high", "_p_value", "_p_adjusted"))


@dataclass
class TransferResult:
    run_id: str
    deltas: pd.DataFrame  # index: pool; one column of mean delta (%) per fidelity, cheapest first
    pairs: pd.DataFrame  # one row per pair of fidelities: see agreement()
    cells: list[CellResult]
    wall_s: float
    where: str
    #: Per fidelity, each pool's delta with its 95% interval and Holm-adjusted p (across that model's pools).
    claims: dict[str, pd.DataFrame] = field(default_factory=dict)

    def claims_table(self) -> pd.DataFrame:
        """One row per pool; per model its delta (%), 95% interval and Holm-adjusted p: the deltas as
        claims, where :attr:`deltas` holds the means that the agreement ranks."""
        shown = pd.DataFrame(index=self.deltas.index)
        for name, table in self.claims.items():
            shown[f"{name} delta %"] = table["delta_pct"]
            shown[f"{name} 95% interval"] = [
                f"[{lo:+.2f}, {hi:+.2f}]" if pd.notna(lo) and pd.notna(hi) else "n/a"
                for lo, hi in zip(table["ci_low_pct"].reindex(shown.index), table["ci_high_pct"].reindex(shown.index))]
            shown[f"{name} p (Holm)"] = table["p_adjusted"]
        return shown


def transfer_levels(spec: ExperimentSpec) -> list[Fidelity]:
    """One fidelity per model of ``transfer.models``, each on every seed of ``transfer.seeds``."""
    models = spec.transfer.models
    if not models and "models" in spec.transfer.model_fields_set:
        raise SpecError("transfer.models is empty: give at least two models (cheapest first)")
    if not models:
        raise SpecError(f"project {spec.name!r} has no `transfer:` section: add one with `models:`, at least two "
                        "models (cheapest first), or pass them with --set 'transfer={models: [...]}' "
                        "(docs/commands.md#mlsandbox-transfer)")
    if len(models) < 2:
        raise SpecError(f"transfer.models needs at least two models (cheapest first), got {len(models)}")
    seeds = tuple(spec.transfer.seeds)
    return [Fidelity(label, model, seeds, len(seeds)) for label, model in zip(spec.transfer.labels(), models)]


def overlap_column(top_k: int) -> str:
    """The column (and metric family) of how many of the top-k pools two models share."""
    return f"top{top_k}_overlap"


def agreement(deltas: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """For each pair of columns: Spearman and decision accuracy, each with its 95% interval over pools
    and its permutation p-value, raw and Holm-adjusted across the pairs that have one, and the overlap
    of the top-k pools (NA where a column ranks nothing, or where there are no more than k pools: then
    it is all of them). A pool missing from either column is left out."""
    rows = []
    for cheap, costly in itertools.combinations(deltas.columns, 2):
        both = deltas[[cheap, costly]].dropna()
        measured = rank_agreement(both[cheap], both[costly])
        estimates = [getattr(measured, name) for name in STATISTICS]
        top = [set(both[c].nlargest(top_k).index) for c in (cheap, costly)]
        ranked = math.isfinite(measured.decision_accuracy.value)  # else a top-k is the table's order, not a ranking
        chosen = ranked and measured.pools > top_k  # with top_k pools or fewer, every pool is in both top-ks
        rows.append([cheap, costly, measured.pools]
                    + [v for e in estimates for v in (e.value, e.low, e.high, e.p_value, math.nan)]
                    + [len(top[0] & top[1]) if chosen else None])
    overlap = overlap_column(top_k)
    pairs = pd.DataFrame(rows, columns=["cheap", "costly", "pools", *STATISTIC_COLUMNS, overlap])
    pairs[overlap] = pairs[overlap].astype("Int64")
    for name in STATISTICS:  # one Holm family per statistic: its p-values across the pairs
        pairs[f"{name}_p_adjusted"] = holm(pairs[f"{name}_p_value"].tolist())
    return pairs


def run_transfer(spec: ExperimentSpec, workers: int | None = None, progress: StyleArg = True) -> TransferResult:
    """Train the probe's pools at every fidelity of ``transfer.models`` in one parent run; log the agreement."""
    levels = transfer_levels(spec)
    started = time.perf_counter()
    experiment_id = tracking.use_experiment(spec.name)  # first: a store that cannot be used stops it before any work
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)  # small: a bad one stops it before the stats
    check_models([level.model for level in levels], spec.executor.type)  # and a model that cannot be loaded here
    prepared = prepare(spec, workers=workers, progress=progress)
    pools = [p for p in single_op_splits(prepared)[0] if not isinstance(p.origin, RandomOrigin)]
    if len(pools) < 2:  # nothing to rank: stop before training a cell
        raise PoolError(f"transfer compares how models rank the probe's pools, and the probe gives only "
                        f"{len(pools)} ({', '.join(p.name for p in pools)}): add OPs to `ops:` or splits to "
                        "`pools.splits` (degenerate splits give no pool)")
    tags = {tracking.KIND: "workflow", tracking.ENTRY_POINT: "transfer", tracking.PROJECT: spec.name,
            tracking.DATASET_DIGEST: prepared.dataset.digest}
    with tracking.parent_run("transfer", experiment_id, tags) as parent:
        run_id = parent.info.run_id
        log_prepared(prepared, benchmarks, run_id, fidelities=",".join(level.name for level in levels),
                     seeds=list(spec.transfer.seeds), pools=len(pools))
        columns, claims, cells = {}, {}, []
        for i, level in enumerate(levels, 1):  # the progress says which model of how many: each has its count
            measured = compare_pools(prepared, pools, benchmarks, parent_run_id=run_id, levels=[level], progress=progress,
                                     step=f"{artifacts.TRANSFER}/{level.name} (model {i} of {len(levels)})")
            log_comparisons(measured, run_id, step=f"{artifacts.TRANSFER}/{level.name}", model=level.name)
            claims[level.name] = measured.table().set_index("pool")[["delta_pct", "ci_low_pct", "ci_high_pct", "p_adjusted"]]
            columns[level.name] = claims[level.name]["delta_pct"]
            cells += measured.cells
        deltas = pd.DataFrame(columns)
        pairs = agreement(deltas, spec.refine.top_k)
        _log(run_id, deltas, pairs, spec.refine.top_k, cells)
        return TransferResult(run_id, deltas, pairs, cells, time.perf_counter() - started, tracking.run_url(parent),
                              claims)


def _log(run_id: str, deltas: pd.DataFrame, pairs: pd.DataFrame, top_k: int, cells: list[CellResult]) -> None:
    metrics: dict[str, float] = {"cells_run": sum(not c.reused for c in cells),  # every model's
                                 "cells_reused": sum(c.reused for c in cells),
                                 "cells_failed": sum(not c.ok for c in cells)}
    for row in pairs.to_dict("records"):
        for column in (*STATISTIC_COLUMNS, overlap_column(top_k)):
            if not pd.isna(row[column]):  # NaN or NA: undefined
                metrics[tracking.metric_key(column, row["cheap"], row["costly"])] = float(row[column])
    tracking.log_batch(run_id, metrics=metrics)
    client = mlflow.MlflowClient()
    tracking.log_table(run_id, deltas.reset_index(), artifacts.TRANSFER_DELTAS)
    tracking.log_table(run_id, pairs, artifacts.TRANSFER_PAIRS)
    client.log_text(run_id, table_markdown(shown_pairs(pairs)) + "\n", artifacts.TRANSFER_MARKDOWN)
    with scratch_folder("transfer") as tmp:
        figures.transfer_scatter(deltas, pairs, artifacts.local(tmp, artifacts.TRANSFER_FIGURE),
                                 title="Pools' deltas over random: cheaper vs costlier fidelity")
        client.log_artifacts(run_id, str(tmp))


def shown_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` with its p-values as text: ``≤`` where one is a bound, since the permutation test
    cannot resolve below its floor (:func:`mlsandbox.figures.p_texts`)."""
    shown = pairs.copy()
    for name in STATISTICS:
        raw, adjusted = pairs[f"{name}_p_value"], pairs[f"{name}_p_adjusted"]
        shown[f"{name}_p_value"], shown[f"{name}_p_adjusted"] = figures.p_texts(raw), figures.p_texts(raw, adjusted)
    return shown
