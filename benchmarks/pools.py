"""Pool building from cached stats, and the MLflow logging cost of one pool run.

    python benchmarks/pools.py [--samples 1000000] [--log-pools 10]

Prints: the time to build every single-OP pool (low/mid/high per OP) plus the random pool over a
stats table of ``--samples`` rows (target: under 1 s for 1M samples), and the mean wall time of
logging one pool child run (params, metrics, tags, dataset input) to a local SQLite store.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from _cli import count, run
from _store import local_store

from mlsandbox.data import load_dataset
from mlsandbox.ops import create_op, list_ops
from mlsandbox.pools import materialize, random_pool, split_pools
from mlsandbox.spec import DatasetSpec, PoolSpec
from mlsandbox.stats import StatsTable, compute_stats
from mlsandbox.tracking import child_run, log_batch, log_pool_input, pool_tags


def synthetic_stats(n: int, seed: int = 0) -> StatsTable:
    """A stats table of n samples with one random numeric column per registered text OP."""
    rng = np.random.default_rng(seed)
    ops = [create_op(c.name) for c in list_ops() if c.modality == "text"]
    columns: dict[str, object] = {"id": np.array([f"doc-{i}" for i in range(n)], dtype=object)}
    for op in ops:
        for key in op.stat_keys:
            columns[key] = rng.choice(["en", "de", "fr"], n) if key == "lang" else rng.gamma(2.0, 1.0, n)
    return StatsTable(pd.DataFrame(columns), "synthetic", ops, [])


def time_pool_building(n: int) -> tuple[float, int]:
    stats = synthetic_stats(n)
    spec = PoolSpec()
    start = time.perf_counter()
    pools = [p for op in stats.ops for p in split_pools(stats, op.name, spec)]
    pools.append(random_pool(stats, pools[0].size, spec.seed))
    digests = {p.digest for p in pools}
    elapsed = time.perf_counter() - start
    assert len(digests) == len(pools)
    return elapsed, len(pools)


def time_pool_logging(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        local_store(Path(tmp), "bench")
        mlflow.set_experiment("bench")
        dataset = load_dataset(DatasetSpec())
        stats = compute_stats(dataset, [create_op("text_length_filter")], Path(tmp), progress=False)
        pools = split_pools(stats, "text_length_filter", PoolSpec(splits=[f"s{i}" for i in range(count)]))
        files = [materialize(p, dataset, Path(tmp) / "pools") for p in pools]
        with mlflow.start_run(run_name="parent"):
            start = time.perf_counter()
            for pool, file in zip(pools, files):
                with child_run(pool.name, pool_tags(pool)) as run:
                    log_batch(run.info.run_id, params={"op": "text_length_filter", "size": pool.size},
                              metrics={"size": pool.size, "stat_mean": pool.origin.stat_mean})
                    log_pool_input(pool, dataset, stats, file, context="pool")
            elapsed = time.perf_counter() - start
        mlflow.set_tracking_uri(None)
    return elapsed / count, pools[0].size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=count(100), default=1_000_000,
                        help="rows of the synthetic stats table (>= 100; default 1000000)")
    parser.add_argument("--log-pools", type=count(2), default=10,
                        help="pool runs logged, the splits of one OP (>= 2, as a pool spec needs; default 10)")
    args = parser.parse_args()
    build_s, n_pools = time_pool_building(args.samples)
    print(f"build {n_pools} single-OP + random pools over {args.samples:,} samples: {build_s:.3f} s "
          f"(target < 1 s) -> {'OK' if build_s < 1 else 'SLOW'}")
    per_run, size = time_pool_logging(args.log_pools)
    print(f"MLflow logging per pool run ({size} samples, SQLite store): {per_run * 1000:.0f} ms")


if __name__ == "__main__":
    run(main)
