"""The ``train`` and ``evaluate`` entry points: pools against the equal-size random pool, per seed."""

from __future__ import annotations

import json
import logging
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from mlsandbox import tracking
from mlsandbox.config import ExperimentSpec
from mlsandbox.data import ID, DataError
from mlsandbox.delta import DeltaSummary, summarize_deltas
from mlsandbox.models import load_model
from mlsandbox.models.evaluators import evaluator_for
from mlsandbox.pools import RANDOM, Pool, PoolError, random_pool
from mlsandbox.workflows.cells import (
    MODEL_ARTIFACT,
    BenchmarkSet,
    CellResult,
    load_benchmarks,
    log_cell_deltas,
    results_frame,
    run_cell,
)
from mlsandbox.workflows.pool import single_op_pools
from mlsandbox.workflows.prepare import Prepared, prepare

log = logging.getLogger(__name__)


@dataclass
class PoolComparison:
    pool: Pool
    summary: DeltaSummary | None  # None when a seed's cell failed
    cells: list[CellResult]


@dataclass
class TrainingResult:
    parent_run_id: str
    comparisons: list[PoolComparison]
    cells: list[CellResult]
    where: str

    def table(self) -> pd.DataFrame:
        rows = []
        for c in self.comparisons:
            s = c.summary
            rows.append({"pool": c.pool.name, "size": c.pool.size,
                         "delta_pct": s.mean_pct if s else np.nan, "std_pct": s.std_pct if s else np.nan,
                         "p_value": s.p_value if s else np.nan, "seeds": len(s.deltas) if s else 0,
                         "failed": sum(not r.ok for r in c.cells)})
        return pd.DataFrame(rows)


def find_pools(prepared: Prepared, names: list[str], files: list[Path], run_ids: list[str]) -> list[Pool]:
    """Pools by single-OP name (``<op>/<split>``), by pool file, or by the run that logged them."""
    available = {p.name: p for p in single_op_pools(prepared)}
    pools = []
    for name in names:
        if name not in available:
            raise PoolError(f"no pool {name!r}; pools of this project: {', '.join(available)}")
        pools.append(available[name])
    for run_id in run_ids:
        files.append(_pool_file_of_run(run_id))
    pools.extend(pool_from_file(prepared, f) for f in files)
    if not pools:
        raise PoolError("name at least one pool (--pool op/split, --pool-file or --pool-run)")
    return pools


def pool_from_file(prepared: Prepared, path: Path, name: str | None = None) -> Pool:
    """A pool given as a dataset file whose ``id`` column names samples of the project's dataset."""
    index = pd.Index(prepared.stats.ids)
    counts = Counter(_read_ids(path))
    ids = list(counts)
    rows = index.get_indexer(ids)
    if (rows < 0).any():
        unknown = [i for i, r in zip(ids, rows) if r < 0][:5]
        raise PoolError(f"{path}: ids not in the project's dataset, e.g. {unknown}")
    order = np.argsort(rows)
    repeats = np.array([counts[i] for i in ids], dtype=np.int64)[order]
    return Pool(name or Path(path).name.split(".")[0], prepared.stats.dataset_digest, rows[order].astype(np.int64),
                repeats, {"split": "file", "source": str(path)})


def _read_ids(path: Path) -> list[str]:
    ids = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    ids.append(str(json.loads(line)[ID]))
                except (ValueError, KeyError, TypeError):
                    raise DataError(f"{path}:{lineno}: expected a JSON object with an {ID!r} field") from None
    if not ids:
        raise DataError(f"{path}: the pool file is empty")
    return ids


def _pool_file_of_run(run_id: str) -> Path:
    run = mlflow.get_run(run_id)
    inputs = [i for i in run.inputs.dataset_inputs if any(t.value in ("pool", "training") for t in i.tags)]
    if not inputs:
        raise PoolError(f"run {run_id} logged no pool dataset input")
    return Path(json.loads(inputs[0].dataset.source)["uri"])


def baseline_for(prepared: Prepared, pool: Pool) -> Pool:
    """The random pool of the same size (seeded by ``pools.seed``)."""
    name = RANDOM if pool.size == single_op_pools(prepared)[-1].size else f"{RANDOM}-{pool.size}"
    return random_pool(prepared.stats, pool.size, prepared.spec.pools.seed, name=name)


def run_training(
    spec: ExperimentSpec,
    pool_names: list[str] | None = None,
    pool_files: list[Path] | None = None,
    pool_runs: list[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> TrainingResult:
    """Train each pool and its equal-size random baseline for every seed; log deltas, mean ± std, p."""
    prepared = prepare(spec, workers=workers, progress=progress)
    experiment_id = tracking.use_experiment(spec.name)
    pools = find_pools(prepared, list(pool_names or []), list(pool_files or []), list(pool_runs or []))
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)
    tags = {tracking.KIND: "workflow", tracking.ENTRY_POINT: "train", tracking.PROJECT: spec.name,
            tracking.DATASET_DIGEST: prepared.dataset.digest}
    with tracking.parent_run("train", experiment_id, tags) as parent:
        comparisons, cells = _compare(prepared, pools, benchmarks, experiment_id)
        result = TrainingResult(parent.info.run_id, comparisons, cells, tracking.run_url(parent))
        _log_summary(result)
    return result


def _compare(
    prepared: Prepared, pools: list[Pool], benchmarks: BenchmarkSet, experiment_id: str | None
) -> tuple[list[PoolComparison], list[CellResult]]:
    seeds = prepared.spec.seeds
    all_cells: list[CellResult] = []
    comparisons = []
    baselines: dict[str, dict[int, CellResult]] = {}
    for pool in pools:
        base_pool = baseline_for(prepared, pool)
        if base_pool.digest not in baselines:
            baselines[base_pool.digest] = {s: run_cell(prepared, base_pool, s, benchmarks, experiment_id) for s in seeds}
            all_cells.extend(baselines[base_pool.digest].values())
        base = baselines[base_pool.digest]
        cells = [run_cell(prepared, pool, s, benchmarks, experiment_id) for s in seeds]
        all_cells.extend(cells)
        log_cell_deltas(cells, base)
        ok = [c for c in cells if c.ok and base[c.seed].ok]
        summary = summarize_deltas([c.scores for c in ok], [base[c.seed].scores for c in ok]) if ok else None
        comparisons.append(PoolComparison(pool, summary, cells))
    return comparisons, all_cells


def _log_summary(result: TrainingResult) -> None:
    metrics = {}
    for c in result.comparisons:
        if c.summary is not None:
            key = c.pool.name.replace("/", ".")
            metrics.update({f"delta_pct.{key}": c.summary.mean_pct, f"delta_std_pct.{key}": c.summary.std_pct})
            if np.isfinite(c.summary.p_value):
                metrics[f"p_value.{key}"] = c.summary.p_value
    metrics["cells_run"] = sum(not c.reused for c in result.cells)
    metrics["cells_reused"] = sum(c.reused for c in result.cells)
    metrics["cells_failed"] = sum(not c.ok for c in result.cells)
    tracking.log_batch(result.parent_run_id, metrics=metrics)
    table = result.table()
    mlflow.log_table(table, "deltas.json")
    mlflow.log_text(table.to_markdown(index=False, floatfmt=".4g") + "\n", "deltas.md")
    mlflow.log_table(results_frame(result.cells), "cells.json")


def run_evaluation(spec: ExperimentSpec, model_run_id: str) -> dict[str, dict[str, float]]:
    """Load the model a cell logged and score it on the project's benchmarks, as a new run."""
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)
    experiment_id = tracking.use_experiment(spec.name)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(mlflow.artifacts.download_artifacts(run_id=model_run_id, artifact_path=MODEL_ARTIFACT, dst_path=tmp))
        model = load_model(model_dir)
        tags = {tracking.KIND: "evaluation", tracking.ENTRY_POINT: "evaluate", tracking.PROJECT: spec.name,
                tracking.TAG + "model_run": model_run_id}
        with tracking.parent_run("evaluate", experiment_id, tags) as run:
            for bench in benchmarks.benchmarks:
                tracking.log_benchmark_input(bench.name, bench.texts, str(bench.path or bench.name))
            metrics = evaluator_for(spec.evaluator).evaluate(model_dir, benchmarks.benchmarks, model)
            flat = {f"{k}.{b}": v for b, m in metrics.items() for k, v in m.items()}
            tracking.log_batch(run.info.run_id, params={"model_run": model_run_id, "model_type": model.type},
                               metrics={**flat, "score_sum": sum(m["score"] for m in metrics.values())})
    return metrics
