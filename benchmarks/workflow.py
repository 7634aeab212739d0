"""Cost of the whole Probe-Analyze-Refine workflow, and of re-running it (reuse only).

    python benchmarks/workflow.py --quick          # the quick profile: n-gram proxy, seeds 0-4: a few minutes
    python benchmarks/workflow.py                   # the default project as specified
    python benchmarks/workflow.py --reference-uri sqlite:///ref/mlflow.db --reference-run RUN_ID
    python benchmarks/workflow.py --project projects/image-caption --until probe   # the probe step only

Prints, for a first run into a fresh MLflow store and a second run of the same spec: wall time,
cells run and reused (per fidelity: the screening and the deciding model), time spent training
and evaluating, and the sandbox overhead (everything else) as a share of wall time (target < 5%),
split into the trained cells' own bookkeeping (their runs, inputs, model files and logging) and the
time between cells (pools, reuse look-ups, figures, reports);
the seeds each probe pool got from the deciding model; and the re-run's time as a share of the
first run's (target < 10%). The stats cache is warmed first so that both runs measure the
workflow, not the one-off stats computation.

With ``--fixed-seeds`` it then probes again with every pool on every seed of ``seeds`` (no screen,
no race; finished cells reused) and, like ``--reference-run`` (a ``transfer`` run whose
``--reference-column`` fidelity trained every probe pool on fixed seeds, e.g. 3 seeds of tiny-lm),
prints how the probe's ranking agrees with that fixed-seed ranking: whether the top-k (distinct OPs) is identical, and the
decision accuracy of the order the ranking table presents (the deciding model's rows first).

When the dataset labels its planted defects (column ``defect``: null for a clean document, else its
kind, as the bundled corpora do), it also prints, per defect kind, the probe pool that concentrates
it most and whether the probe measured that pool as harmful (negative delta, Holm-adjusted p < 0.05).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from _cli import overrides, run
from _store import local_store

from mlsandbox import artifacts, tracking
from mlsandbox.agreement import decision_accuracy
from mlsandbox.credentials import hide_url_passwords
from mlsandbox.errors import InvalidInputError, first_line
from mlsandbox.executors.fidelity import DECIDE, SCREEN
from mlsandbox.executors.prepare import prepare
from mlsandbox.project import load_project
from mlsandbox.workflows.workflow import STEPS, WorkflowResult, run_workflow

ROOT = Path(__file__).resolve().parents[1]


def reference_deltas(uri: str, run_id: str, column: str) -> pd.Series:
    """The fixed-seed deltas (%) of every probe pool, from a transfer run's ``transfer/deltas.json`` in the
    store ``uri``; :class:`InvalidInputError` (one line, the URI's password hidden) when the store, the
    run, its deltas or the column cannot be had. Fetched before any workflow runs."""
    shown = hide_url_passwords(uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        tracking.find_run(run_id, "a `transfer` run")  # one line for an unknown store or run, password hidden
        with tempfile.TemporaryDirectory() as tmp:
            path = tracking.download_artifacts(run_id, artifacts.TRANSFER_DELTAS, Path(tmp))
            payload = json.loads(path.read_text())
        frame = pd.DataFrame(payload["data"], columns=payload["columns"]).set_index("pool")
    except InvalidInputError as err:
        raise InvalidInputError(hide_url_passwords(f"--reference-run: {first_line(err)}")) from None
    except Exception as err:  # no such artifact, a malformed file: whatever MLflow or the parser raises
        raise InvalidInputError(hide_url_passwords(
            f"--reference-run {run_id}: cannot read its {artifacts.TRANSFER_DELTAS} from {shown} "
            f"(a `transfer` run's fixed-seed deltas): {first_line(err)}")) from None
    finally:
        mlflow.set_tracking_uri(previous)
    if column not in frame.columns:
        raise InvalidInputError(f"--reference-column {column}: run {run_id}'s {artifacts.TRANSFER_DELTAS} has no "
                                f"such column; it has {', '.join(map(str, frame.columns))}")
    return frame[column]


def top_ops(order: list[str], k: int) -> list[str]:
    """The first k pools of ``order`` with distinct OPs (as refine picks them)."""
    picked: dict[str, str] = {}
    for pool in order:
        picked.setdefault(pool.split("/", 1)[0], pool)
        if len(picked) == k:
            break
    return list(picked.values())


def agreement(result: WorkflowResult, reference: pd.Series, k: int) -> str:
    ranking = result.probe.ranking.dropna(subset=["rank"]).sort_values("rank")
    shown = [p for p in ranking["pool"] if p in reference.index]
    ref = reference.loc[shown].sort_values(ascending=False)
    mine, theirs = top_ops(shown, k), top_ops(list(ref.index), k)
    position = {p: -i for i, p in enumerate(shown)}  # the table's order as a score
    accuracy = decision_accuracy([position[p] for p in shown], [reference[p] for p in shown])
    return (f"top-{k} (distinct OPs): {mine} vs fixed seeds {theirs}: "
            f"{'identical' if set(mine) == set(theirs) else 'DIFFERENT'}; "
            f"decision accuracy of the ranking's order over {len(shown)} pools: {accuracy:.3f} (target >= 0.9)")


def defect_pools(result: WorkflowResult, defects: list[str | None]) -> str:
    """Per planted defect kind: the probe pool with the highest share of it, and its measured delta."""
    kinds = sorted({d for d in defects if d is not None})
    labels = np.array(defects, dtype=object)
    ranking = result.probe.ranking.set_index("pool")
    pools = {name: pool for name, pool in result.probe.pools_by_name().items()
             if name in ranking.index and pd.notna(ranking.at[name, "delta_pct"])}
    width = max(len("defect kind"), *map(len, kinds))
    lines = [f"{'defect kind':{width}} {'corpus':>7} {'pool concentrating it':38} {'share':>6} {'delta %':>8} "
             f"{'95% CI':>17} {'p (Holm)':>9}  harmful?"]
    for kind in kinds:
        share = {name: float(np.mean(labels[pool.rows] == kind)) for name, pool in pools.items()}
        name = max(share, key=lambda n: share[n])
        row = ranking.loc[name]
        harmful = row["delta_pct"] < 0 and row["p_adjusted"] < 0.05
        lines.append(f"{kind:{width}} {np.mean(labels == kind):7.1%} {name:38} {share[name]:6.1%} {row['delta_pct']:+8.2f} "
                     f"[{row['ci_low_pct']:+6.2f}, {row['ci_high_pct']:+6.2f}] {row['p_adjusted']:9.2g}  "
                     f"{'yes' if harmful else 'NO'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=str(ROOT / "projects" / "text-quality"))
    parser.add_argument("--quick", action="store_true", help="the project's --quick profile")
    parser.add_argument("--until", choices=STEPS, default="refine", help="the last step of the workflow (default: refine)")
    parser.add_argument("--set", action="append", default=[], help="a spec override key=value (repeatable)")
    parser.add_argument("--workdir", help="keep the workspace and MLflow store here (created if new; default: a "
                                           "temporary folder)")
    parser.add_argument("--fixed-seeds", action="store_true",
                        help="compare the ranking with a probe of every pool on every seed (no screen, no race)")
    parser.add_argument("--reference-uri", help="tracking URI of the reference transfer run (default: the "
                                                 "benchmark's own store)")
    parser.add_argument("--reference-run", help="a transfer run with fixed-seed deltas of every probe pool")
    parser.add_argument("--reference-column", default="tiny-lm", help="the transfer fidelity to compare with")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("mlsandbox.progress").setLevel(logging.INFO)  # cells done / total, time left
    settings = overrides(args.set)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(args.workdir).expanduser().resolve() if args.workdir else Path(scratch)
        spec = load_project(args.project, {"workspace": str(tmp / "ws"), **settings}, quick=args.quick)
        reused = (tmp / "mlflow.db").exists()
        # Before the store and any workflow run: a wrong store, run or column must not cost two full runs first.
        reference = None
        if args.reference_run:
            if not args.reference_uri and not reused:
                raise InvalidInputError(f"--reference-run {args.reference_run}: the benchmark's own store is new and "
                                        "holds no runs; pass --reference-uri (the transfer run's tracking store)")
            own = f"sqlite:///{tmp / 'mlflow.db'}"
            reference = reference_deltas(args.reference_uri or own, args.reference_run, args.reference_column)
        store = local_store(tmp, spec.name)
        os.environ["MLFLOW_TRACKING_URI"] = store
        if reused:
            print(f"{tmp / 'mlflow.db'} exists: the \"first run\" reuses that store's finished cells, so its "
                  "figures are not a first run's")
        t0 = time.perf_counter()
        prepared = prepare(spec, progress=False)
        print(f"stats (once, cached afterwards): {time.perf_counter() - t0:.1f} s")
        rows, results = [], []
        for label in ("first run", "re-run"):
            result = run_workflow(spec, until=args.until, progress="lines")
            results.append(result)
            ran = [c for c in result.cells if not c.reused]
            model_s = sum(c.train_s + c.eval_s for c in ran)
            in_cells = sum(c.wall_s for c in ran) - model_s  # the cells' runs, inputs, saving and logging
            per = Counter(c.fidelity for c in ran)
            rows.append((label, result.wall_s, len(ran), per[SCREEN], per[DECIDE], len(result.cells) - len(ran),
                         model_s, in_cells))
        print(f"{'':10} {'wall s':>8} {'cells run':>10} {'screen':>7} {'decide':>7} {'reused':>7} "
              f"{'train+eval s':>13} {'overhead':>9} {'in cells s':>11} {'between s':>10}")
        for label, wall, ran, screen, decide, reused, model_s, in_cells in rows:
            print(f"{label:10} {wall:8.1f} {ran:10d} {screen:7d} {decide:7d} {reused:7d} {model_s:13.1f} "
                  f"{(wall - model_s) / wall:9.1%} {in_cells:11.1f} {wall - model_s - in_cells:10.1f}")
        print(f"re-run / first run: {rows[1][1] / rows[0][1]:.1%} (target < 10%)")
        first = results[0]
        decided = first.probe.comparisons.at(DECIDE)
        seeds = Counter(c.summary.seeds for c in decided if c.summary is not None)
        print(f"probe: {len(first.probe.comparisons.items)} pools, {len(decided)} decided by the deciding model; "
              f"seeds per decided pool: {dict(sorted(seeds.items()))}")
        print(first.answer.text())
        if reference is not None:
            print(agreement(first, reference, spec.refine.top_k))
        if args.fixed_seeds:
            fixed = run_workflow(spec.model_copy(update={"screen": None, "race": None, "confirm": None}), until="probe",
                                 entry_point="probe", progress="lines")
            ranking = fixed.probe.ranking.dropna(subset=["delta_pct"])
            print(f"fixed seeds: {len(spec.seeds)} per pool, {fixed.wall_s:.1f} s; "
                  + agreement(first, ranking.set_index("pool")["delta_pct"], spec.refine.top_k))
        if "defect" in prepared.dataset.table.column_names:
            print(defect_pools(first, prepared.dataset.table["defect"].to_pylist()))


if __name__ == "__main__":
    run(main)
