"""Cost of the whole Probe-Analyze-Refine workflow, and of re-running it (reuse only).

    python benchmarks/workflow.py --quick          # n-gram proxy, one seed: a few minutes
    python benchmarks/workflow.py                   # the default project as specified (tiny-lm)

Prints, for a first run into a fresh MLflow store and a second run of the same spec: wall time,
cells run and reused, time spent training and evaluating, and the sandbox overhead (everything
else) as a share of wall time (target < 5% at the default settings); and the re-run's time as a
share of the first run's (target < 10%). The stats cache is warmed first so that both runs
measure the workflow, not the one-off stats computation.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import mlflow

from mlsandbox.executors.prepare import prepare
from mlsandbox.project import load_project
from mlsandbox.workflows.workflow import run_workflow

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=str(ROOT / "projects" / "text-quality"))
    parser.add_argument("--quick", action="store_true", help="the project's --quick profile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = load_project(args.project, {"workspace": str(Path(tmp) / "ws")}, quick=args.quick)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        t0 = time.perf_counter()
        prepare(spec, progress=False)
        print(f"stats (once, cached afterwards): {time.perf_counter() - t0:.1f} s")
        rows = []
        for label in ("first run", "re-run"):
            result = run_workflow(spec, progress=False)
            ran = [c for c in result.cells if not c.reused]
            model_s = sum(c.train_s + c.eval_s for c in ran)
            rows.append((label, result.wall_s, len(ran), len(result.cells) - len(ran), model_s))
        print(f"{'':10} {'wall s':>8} {'cells run':>10} {'reused':>7} {'train+eval s':>13} {'overhead':>9}")
        for label, wall, ran, reused, model_s in rows:
            print(f"{label:10} {wall:8.1f} {ran:10d} {reused:7d} {model_s:13.1f} {(wall - model_s) / wall:9.1%}")
        print(f"re-run / first run: {rows[1][1] / rows[0][1]:.1%} (target < 10%)")


if __name__ == "__main__":
    main()
