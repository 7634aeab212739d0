"""The ``pool`` entry point: stats, then every single-OP pool and the random pool as MLflow runs."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import yaml

from mlsandbox import tracking
from mlsandbox.executors.prepare import Prepared, prepare
from mlsandbox.pools import Pool, SplitOrigin, materialize, random_pool, split_pools
from mlsandbox.spec import ExperimentSpec
from mlsandbox.stats import categorical_summary, plot_histograms, summarize

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
    """Every OP's split pools plus one random pool of the same size (the control group)."""
    spec = prepared.spec
    pools = [p for op in spec.ops for p in split_pools(prepared.stats, op.name, spec.pools)]
    pools.append(random_pool(prepared.stats, pools[0].size, spec.pools.seed))
    return pools


def run_pools(spec: ExperimentSpec, workers: int | None = None, progress: bool = True) -> PoolsResult:
    """Compute stats, build the single-OP pools, log one parent run and one child run per pool."""
    prepared = prepare(spec, workers=workers, progress=progress)
    pools = single_op_pools(prepared)
    experiment_id = tracking.use_experiment(spec.name)
    tags = {tracking.KIND: "workflow", tracking.ENTRY_POINT: "pool", tracking.PROJECT: spec.name,
            tracking.DATASET_DIGEST: prepared.dataset.digest}
    with tracking.parent_run("pool", experiment_id, tags) as parent:
        _log_parent(prepared, pools)
        logged = [_log_pool(prepared, pool) for pool in pools]
        return PoolsResult(parent.info.run_id, prepared, logged, tracking.run_url(parent))


def _log_parent(prepared: Prepared, pools: list[Pool]) -> None:
    spec, dataset, stats = prepared.spec, prepared.dataset, prepared.stats
    tracking.log_batch(
        mlflow.active_run().info.run_id,
        params={"dataset": dataset.source, "dataset_digest": dataset.digest, "ops": ",".join(o.name for o in spec.ops),
                "splits": ",".join(spec.pools.splits), "cut_points": spec.pools.cut_points(),
                "pool_size": pools[0].size, "pool_seed": spec.pools.seed},
        metrics={"dataset_size": len(dataset), "pool_size": pools[0].size, "pools": len(pools),
                 "ops_computed": len(stats.computed), "rows_skipped": dataset.skipped},
    )
    tracking.log_source_input(dataset, stats)
    summary = summarize(stats)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        summary.to_csv(out / "summary.csv")
        (out / "summary.md").write_text(summary.to_markdown(floatfmt=".4g") + "\n", encoding="utf-8")
        (out / "categorical.yaml").write_text(yaml.safe_dump(categorical_summary(stats)), encoding="utf-8")
        plot_histograms(stats, out / "stat_histograms.png")
        (out / "sandbox.yaml").write_text(
            yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
        )
        mlflow.log_artifacts(str(out), artifact_path="stats")


def _log_pool(prepared: Prepared, pool: Pool) -> LoggedPool:
    spec, stats = prepared.spec, prepared.stats
    file = materialize(pool, prepared.dataset, prepared.pools_dir)
    with tracking.child_run(pool.name, tracking.pool_tags(pool)) as run:
        means = {f"mean.{k}": float(np.mean(stats.stat(k)[pool.rows])) for k in stats.numeric_keys()}
        if isinstance(pool.origin, SplitOrigin):
            means["stat_mean"] = pool.origin.stat_mean
        tracking.log_batch(
            run.info.run_id,
            params={"pool": pool.name, "size": pool.size, "pool_digest": pool.digest, "seed": spec.pools.seed,
                    **pool.origin.params()},
            metrics={"size": pool.size, **means},
        )
        tracking.log_pool_input(pool, prepared.dataset, stats, file, context="pool")
        return LoggedPool(pool, run.info.run_id, file)
