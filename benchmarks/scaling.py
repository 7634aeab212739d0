"""Beyond one process: stats throughput and cells per hour, locally and on Ray, side by side.

    python benchmarks/scaling.py                          # stats of the 9 statistical OPs + n-gram cells
                                                          # (the cells part first computes all 13 OPs' stats)
    python benchmarks/scaling.py --stats-only --project-ops --workers-list 2 --repeats 1
                                                          # all 13 OPs of projects/text-quality (minutes)
    python benchmarks/scaling.py --cells-only --workspace .mlsandbox

Stats: every pass of ``compute_stats`` over the bundled corpus (``builtin:demo``) into a fresh
cache, for the nine statistical OPs (or, with ``--project-ops``, every OP of the default project,
model-backed ones included), with the local engine (1 and 2 worker processes) and with Ray (``stats.engine: ray``, 1
and 2 workers) on a Ray cluster started once beforehand (``RAY_ADDRESS``, else a local one of
``--workers`` CPUs; its start-up is printed, not counted). Ray's overhead is its time over the
local engine's at the same number of workers (target <= 30% on one machine), each run twice:
cold (the first run: Ray's workers import the package, the local engine's worker processes are
started, as they are on every call) and warm (the second: Ray's workers are ready); the cached
values of both engines are compared.

Cells: the quick probe of ``projects/text-quality`` (n-gram cells) into a fresh MLflow store with
the local executor and with ``--executor ray``; cells per hour from the cells run and the wall
time of the probe (stats computed once before, or taken from ``--workspace``, so only cells and
their bookkeeping are timed). Unless ``--workspace`` holds them, that first computes the stats of
all 13 OPs of the project, ``perplexity_filter`` included: minutes on a first run (see
docs/ops-model-backed.md#first-run-time); ``--stats-only`` skips the cells.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from functools import cache
from pathlib import Path

import pyarrow.parquet as pq
from _cli import count, run
from _store import local_store

from mlsandbox.cluster import connect
from mlsandbox.data import Dataset, load_dataset
from mlsandbox.executors.prepare import prepare
from mlsandbox.ops import Op, create_op
from mlsandbox.project import load_project, project_ops
from mlsandbox.spec import DatasetSpec
from mlsandbox.stats import cache_path, compute_stats
from mlsandbox.workflows.workflow import run_workflow

ROOT = Path(__file__).resolve().parents[1]
STATISTICAL = ["alphanumeric_filter", "character_repetition_filter", "flagged_words_filter", "language_id_score_filter",
               "special_characters_filter", "stopwords_filter", "text_length_filter", "words_num_filter",
               "word_repetition_filter"]
PROJECT = ROOT / "projects" / "text-quality"
CORPUS = DatasetSpec(path="builtin:demo")
PARSED = ["text_action_filter", "text_entity_dependency_filter"]


@cache
def corpus() -> Dataset:
    return load_dataset(CORPUS)


def time_stats(engine: str, workers: int, ops: list[Op], tmp: Path) -> tuple[float, Path]:
    dataset = corpus()
    cache = tmp / f"{engine}-{workers}"
    t0 = time.perf_counter()
    compute_stats(dataset, ops, cache, workers=workers, progress=False, engine=engine)  # type: ignore[arg-type]
    return time.perf_counter() - t0, cache


def same_values(a: Path, b: Path, ops: list[Op]) -> bool:
    dataset = corpus()
    return all(pq.read_table(cache_path(a, dataset.digest, op)).equals(pq.read_table(cache_path(b, dataset.digest, op)))
               for op in ops)


def stats_rows(args: argparse.Namespace, tmp: Path) -> None:
    ops = (project_ops(load_project(PROJECT)) if args.project_ops
           else [create_op(name) for name in STATISTICAL + (PARSED if args.model_ops else [])])
    samples = len(corpus())
    runs = ["cold", "warm"][:args.repeats]
    print(f"stats: {len(ops)} OPs over {samples} documents; each configuration {len(runs)}x into fresh caches "
          "(cold: the first run, workers importing the package; warm: the next, Ray's workers ready)")
    print(f"{'engine':8} {'workers':>7} " + " ".join(f"{r + ' s':>8}" for r in runs) + f" {'docs/s':>8} {'vs local':>9}")
    local: dict[int, tuple[float, Path]] = {}
    for engine in ("local", "ray"):
        for workers in args.workers_list:
            walls, cache = [], tmp
            for label in runs:
                wall, cache = time_stats(engine, workers, ops, tmp / label)
                walls.append(wall)
            row = f"{engine:8} {workers:7d} " + " ".join(f"{w:8.1f}" for w in walls) + f" {samples / walls[-1]:8.0f}"
            if engine == "local":
                local[workers] = (walls[-1], cache)
                print(row)
                continue
            same = same_values(local[workers][1], cache, ops)
            print(f"{row} {walls[-1] / local[workers][0] - 1:+9.0%}  ({runs[-1]}; target <= +30%; "
                  f"values {'identical' if same else 'DIFFERENT'})")


def cells_rows(tmp: Path, workspace: Path) -> None:
    print(f"\n{'executor':8} {'cells':>6} {'wall s':>8} {'cells/h':>8}")
    for executor in ("local", "ray"):
        where = tmp / f"cells-{executor}"
        where.mkdir(parents=True)
        overrides = {"workspace": str(workspace), "executor": {"type": executor}}
        spec = load_project(PROJECT, overrides, quick=True)
        local_store(where, spec.name)
        prepare(spec, progress=False)  # stats first: only the probe's cells and bookkeeping are timed
        result = run_workflow(spec, until="probe", progress=False)
        ran = sum(not c.reused for c in result.cells)
        print(f"{executor:8} {ran:6d} {result.wall_s:8.1f} {ran / result.wall_s * 3600:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=count(1), default=2, help="CPUs of the local Ray cluster started here")
    parser.add_argument("--model-ops", action="store_true", help="also the spaCy pass of the two parse OPs")
    parser.add_argument("--project-ops", action="store_true", help="every OP of projects/text-quality")
    parser.add_argument("--workers-list", type=count(1), nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, choices=(1, 2), default=2, help="1: cold only; 2: cold and warm")
    parser.add_argument("--cells-only", action="store_true")
    parser.add_argument("--workspace", type=Path,
                        help="a workspace whose stats cache to use for the cells (default: computed once, minutes)")
    parser.add_argument("--stats-only", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if not os.environ.get("RAY_ADDRESS"):
        import ray

        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    connect()
    print(f"Ray cluster ready in {time.perf_counter() - t0:.1f} s (not counted)")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        if not args.cells_only:
            stats_rows(args, tmp)
        if not args.stats_only:
            cells_rows(tmp, args.workspace or tmp / "ws")


if __name__ == "__main__":
    run(main)
