"""The ``pool`` entry point: stats, then every single-OP pool and the random pool as MLflow runs."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import yaml

from mlsandbox import artifacts, figures, tracking
from mlsandbox.errors import PoolError
from mlsandbox.executors.prepare import Prepared, prepare
from mlsandbox.files import scratch_folder
from mlsandbox.pools import RANDOM, Pool, SplitOrigin, cut_splits, materialize, random_pool, split_pools
from mlsandbox.pools import degenerate_splits as op_degenerate_splits
from mlsandbox.progress import Progress, StyleArg
from mlsandbox.spec import ExperimentSpec, RefineSpec
from mlsandbox.stats import categorical_summary, summarize, summary_markdown

log = logging.getLogger(__name__)


@dataclass
class LoggedPool:
    pool: Pool
    run_id: str
    file: Path


@dataclass
class PoolsResult:
    parent_run_id: str
    prepared: Prepared
    pools: list[LoggedPool]
    where: str


def single_op_pools(prepared: Prepared) -> list[Pool]:
    """Every OP's usable split pools plus one random pool of the same size (the control group).

    Degenerate splits (ties: empty, everything, or one tied value spanning several splits) are
    left out; :func:`degenerate_splits` lists them with the reason.
    """
    return single_op_splits(prepared)[0]


def degenerate_splits(prepared: Prepared) -> list[tuple[str, str]]:
    """``(pool name, reason)`` of every split left out of :func:`single_op_pools` (tied values)."""
    spec = prepared.spec
    return [d for op in spec.ops for d in op_degenerate_splits(prepared.stats, op.name, spec.pools)]


def single_op_splits(prepared: Prepared) -> tuple[list[Pool], list[tuple[str, str]]]:
    """:func:`single_op_pools` and :func:`degenerate_splits` together, cutting each OP's stat once."""
    spec, stats = prepared.spec, prepared.stats
    pools: list[Pool] = []
    degenerate: list[tuple[str, str]] = []
    for op in spec.ops:
        cuts = cut_splits(stats, op.name, spec.pools)
        pools += split_pools(stats, op.name, spec.pools, cuts)
        degenerate += [(cut.name, cut.degenerate) for cut in cuts if cut.degenerate]
    if not pools:
        first: dict[str, str] = {}
        for name, why in degenerate:
            first.setdefault(name.split("/")[0], why)  # each OP's first reason
        reasons = "; ".join(f"{op}: {why}" for op, why in first.items())
        raise PoolError(f"no OP gives a usable split of the {len(stats):,} samples (every split is degenerate; the "
                        f"first split of each OP): {reasons}")
    return pools + random_controls(prepared, pools), degenerate


def too_small_to_refine(spec: RefineSpec, largest: int) -> PoolError:
    """Where no probe pool has ``refine.min_pool_size`` distinct samples and ``on_small_pool: skip``."""
    return PoolError(f"no probe pool has refine.min_pool_size={spec.min_pool_size} distinct samples (the largest "
                     f"has {largest}): lower it, or set refine.on_small_pool: use")


def check_refinable(prepared: Prepared) -> None:
    """Stop before the probe trains anything where refine could combine none of its pools."""
    spec = prepared.spec.refine
    if spec.on_small_pool == "skip":
        pools = [p for p in single_op_splits(prepared)[0] if isinstance(p.origin, SplitOrigin)]
        if (largest := max((p.unique_size for p in pools), default=0)) < spec.min_pool_size:
            raise too_small_to_refine(spec, largest)


def random_controls(prepared: Prepared, pools: list[Pool]) -> list[Pool]:
    """One random pool of each size among ``pools`` (an OP's pools share a size; OPs may differ), drawn
    with ``pools.seed``: named ``random``, or ``random-<size>`` where the sizes differ."""
    sizes = sorted({p.size for p in pools})
    seed = prepared.spec.pools.seed
    if len(sizes) == 1:
        return [random_pool(prepared.stats, sizes[0], seed)]
    return [random_pool(prepared.stats, size, seed, name=f"{RANDOM}-{size}") for size in sizes]


def run_pools(spec: ExperimentSpec, workers: int | None = None, progress: StyleArg = True) -> PoolsResult:
    """Compute stats, build the single-OP pools, log one parent run and one child run per pool."""
    experiment_id = tracking.use_experiment(spec.name)  # first: a store that cannot be used stops it before any work
    prepared = prepare(spec, workers=workers, progress=progress)
    pools, degenerate = single_op_splits(prepared)
    for name, reason in degenerate:
        log.warning("no pool %s: %s", name, reason)
    tags = {tracking.KIND: "workflow", tracking.ENTRY_POINT: "pool", tracking.PROJECT: spec.name,
            tracking.DATASET_DIGEST: prepared.dataset.digest}
    with tracking.parent_run("pool", experiment_id, tags) as parent:
        run_id = parent.info.run_id
        _log_parent(prepared, pools, run_id)
        logged = []
        with Progress(len(pools), "pool runs", "pool", progress) as bar:  # each writes its pool file
            for pool in pools:
                logged.append(_log_pool(prepared, pool, run_id))
                bar.advance(status=pool.name)
        return PoolsResult(parent.info.run_id, prepared, logged, tracking.run_url(parent))


def _log_parent(prepared: Prepared, pools: list[Pool], run_id: str) -> None:
    spec, dataset = prepared.spec, prepared.dataset
    tracking.log_batch(
        run_id,
        params={"dataset": dataset.source, "dataset_digest": dataset.digest, "ops": ",".join(o.name for o in spec.ops),
                "splits": ",".join(spec.pools.splits), "cut_points": spec.pools.cut_points(),
                "pool_size": ",".join(str(size) for size in sorted({p.size for p in pools})),
                "pool_seed": spec.pools.seed},
        metrics={"pool_size_min": min(p.size for p in pools), "pool_size_max": max(p.size for p in pools),
                 "pools": len(pools)},
    )
    log_stats(prepared, run_id)


def tracked_stats(spec: ExperimentSpec, workers: int | None = None, progress: StyleArg = True) -> Prepared:
    """The stats of the project's dataset; under ``mlflow run`` (``MLFLOW_RUN_ID``), in its run, owned
    from the start as any command's (a kill during the pass ends it KILLED, and one left RUNNING by
    ``kill -9`` is ended by the next command), which then shows what the pass found."""
    if not os.environ.get("MLFLOW_RUN_ID"):
        return prepare(spec, workers=workers, progress=progress)
    tags = {tracking.KIND: "workflow", tracking.ENTRY_POINT: "stats", tracking.PROJECT: spec.name}
    with tracking.parent_run("stats", tracking.use_experiment(spec.name), tags) as run:
        prepared = prepare(spec, workers=workers, progress=progress)
        tracking.log_batch(run.info.run_id, tags={tracking.DATASET_DIGEST: prepared.dataset.digest})
        log_stats(prepared, run.info.run_id)
    return prepared


def log_stats(prepared: Prepared, run_id: str) -> None:
    """What the stats pass found, on ``run_id``: the dataset as its source input, its size, and under
    ``stats/`` the summary table, the categorical stats, the histograms and the spec."""
    spec, dataset, stats = prepared.spec, prepared.dataset, prepared.stats
    tracking.log_batch(run_id, metrics={"dataset_size": len(dataset), "ops_computed": len(stats.computed),
                                        "rows_skipped": dataset.skipped})
    tracking.log_source_input(dataset, stats, run_id=run_id)
    summary = summarize(stats)
    with scratch_folder("pool") as root:
        summary.to_csv(artifacts.local(root, artifacts.STATS_SUMMARY_TABLE))
        artifacts.local(root, artifacts.STATS_SUMMARY_MARKDOWN).write_text(
            summary_markdown(summary) + "\n", encoding="utf-8")
        artifacts.local(root, artifacts.STATS_CATEGORICAL).write_text(
            yaml.safe_dump(categorical_summary(stats)), encoding="utf-8")
        figures.stat_histograms(stats.frame[stats.numeric_keys()], artifacts.local(root, artifacts.STATS_HISTOGRAMS))
        artifacts.local(root, artifacts.STATS_SPEC).write_text(
            spec.shown_yaml(), encoding="utf-8")
        mlflow.MlflowClient().log_artifacts(run_id, str(root))


def _log_pool(prepared: Prepared, pool: Pool, parent_run_id: str) -> LoggedPool:
    spec, stats = prepared.spec, prepared.stats
    file = materialize(pool, prepared.dataset, prepared.pools_dir)
    with tracking.child_run(pool.name, tracking.pool_tags(pool), parent_run_id) as run:
        means = {f"mean.{k}": float(np.mean(stats.stat(k)[pool.rows])) for k in stats.numeric_keys()}
        if isinstance(pool.origin, SplitOrigin):
            means["stat_mean"] = pool.origin.stat_mean
        tracking.log_batch(
            run.info.run_id,
            params={"pool": pool.name, "size": pool.size, "pool_digest": pool.digest, "seed": spec.pools.seed,
                    **pool.origin.params()},
            metrics={"size": pool.size, **means},
        )
        tracking.log_pool_input(pool, prepared.dataset, stats, file, context="pool", run_id=run.info.run_id)
        return LoggedPool(pool, run.info.run_id, file)
