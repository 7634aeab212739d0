"""Recipe search: per-trial overhead, and TPE against random search at the same budget.

1. Overhead: the share of a trial's wall time spent outside training and evaluation (sampling,
   selecting the pool from the stats table, materialising and logging it, MLflow runs and the
   read-back of the objective), from the ``trial_s`` / ``train_eval_s`` metrics every trial run
   logs. Target: < 2 % of a trial at default settings (the tiny-lm proxy, ``--model tiny-lm``).
2. Efficiency: best delta after N trials, TPE vs random sampling, same budget and sampler seeds,
   on the bundled demo corpus; a curve (PNG) and a table at checkpoints.

    python benchmarks/search.py                          # ngram proxy, 16 trials, 1 repeat (minutes)
    python benchmarks/search.py --trials 30 --repeats 3  # a steadier comparison
    python benchmarks/search.py --model tiny-lm --trials 6 --skip-efficiency  # overhead at defaults
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import optuna
import pandas as pd
from _cli import count, run
from _store import local_store

from mlsandbox import figures
from mlsandbox.errors import InvalidInputError
from mlsandbox.search import STUDY, run_search
from mlsandbox.spec import ExperimentSpec, SearchSpec, parse_spec

OPS = ["text_length_filter", "alphanumeric_filter", "special_characters_filter", "word_repetition_filter"]


def make_spec(workspace: Path, model: str, seeds: int) -> ExperimentSpec:
    model_spec = {"type": "ngram", "order": 3} if model == "ngram" else {"type": model}
    return parse_spec({"name": "search-benchmark", "ops": [{"name": o} for o in OPS], "seeds": list(range(seeds)),
                       "model": model_spec, "workspace": str(workspace), "stats": {"workers": 1}})


def search_settings(sampler: str, trials: int, seed: int, min_pool_size: int) -> SearchSpec:
    return SearchSpec.model_validate({"sampler": sampler, "n_trials": trials, "seed": seed, "min_pool_size": min_pool_size,
                                      "pruner": "none", "warm_start": {"workflow": False, "ksigma": False}})


def overhead(spec: ExperimentSpec, trials: int, min_pool_size: int, store: Path) -> pd.DataFrame:
    result = run_search(spec, "overhead", str(store / "overhead.journal"), trials,
                        search=search_settings("tpe", trials, 0, min_pool_size), progress=False)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="pandas",
                              filter_string=f"tags.`{STUDY}` = 'overhead' and tags.`mlsandbox.kind` = 'trial'")
    runs = runs.dropna(subset=["metrics.train_eval_s"])
    table = pd.DataFrame({"trial_s": runs["metrics.trial_s"], "train_eval_s": runs["metrics.train_eval_s"],
                          "select_log_s": runs["metrics.select_s"]})
    table["overhead_s"] = table["trial_s"] - table["train_eval_s"]
    table["overhead_pct"] = 100 * table["overhead_s"] / table["trial_s"]
    print(f"\n## Per-trial overhead ({len(table)} trials that trained; {result.ran} trials run)")
    print(table.describe().loc[["mean", "50%", "max"]].to_markdown(floatfmt=".3f"))
    share = 100 * table["overhead_s"].sum() / table["trial_s"].sum()
    print(f"\noverhead share of trial time: {share:.2f}% (target < 2% at default settings)")
    return table


def efficiency(spec: ExperimentSpec, trials: int, repeats: int, min_pool_size: int, store: Path, out: Path) -> pd.DataFrame:
    rows = []
    for sampler in ("tpe", "random"):
        for r in range(repeats):
            name = f"{sampler}-{r}"
            result = run_search(spec, name, str(store / f"{name}.journal"), trials,
                                search=search_settings(sampler, trials, r, min_pool_size), progress=False)
            values = result.trials.sort_values("trial")["delta_pct"].to_numpy(dtype=float)
            best = np.fmax.accumulate(np.where(np.isnan(values), -np.inf, values))
            rows += [{"sampler": sampler, "repeat": r, "trial": i, "value": v, "best": b}
                     for i, (v, b) in enumerate(zip(values, best))]
    frame = pd.DataFrame(rows).replace(-np.inf, np.nan)
    mean = frame.groupby(["sampler", "trial"], as_index=False)["value"].mean()
    figures.history_curve(mean.rename(columns={"sampler": "series"}), out,
                          title=f"TPE vs random search, mean of {repeats} repeat(s)")
    checkpoints = sorted({max(1, trials // 4), max(1, trials // 2), trials})
    table = (frame[frame["trial"].isin([c - 1 for c in checkpoints])]
             .groupby(["trial", "sampler"])["best"].agg(["mean", "std"]).unstack("sampler"))
    table.index = [f"after {i + 1} trials" for i in table.index]
    print(f"\n## Best delta (%) so far, mean (std) over {repeats} repeat(s)")
    print(table.to_markdown(floatfmt=".3f"))
    print(f"\ncurve: {out}")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=count(1), default=16, help="TPE samples its first 10 trials at random")
    parser.add_argument("--repeats", type=count(1), default=1, help="sampler seeds per sampler (efficiency)")
    parser.add_argument("--seeds", type=count(1), default=1, help="training seeds per trial")
    parser.add_argument("--model", default="ngram", choices=["ngram", "tiny-lm"])
    parser.add_argument("--min-pool-size", type=count(1), default=200)
    parser.add_argument("--out", type=Path, default=Path("search_efficiency.png"),
                        help="the efficiency curve's PNG (default: search_efficiency.png in the current folder)")
    parser.add_argument("--skip-efficiency", action="store_true")
    args = parser.parse_args()
    if not args.skip_efficiency and not args.out.expanduser().absolute().parent.is_dir():  # not after the search
        raise InvalidInputError(f"--out {args.out}: no such folder {args.out.expanduser().absolute().parent}")
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="mlsandbox-bench-") as tmp:
        store = Path(tmp)
        spec = make_spec(store / "ws", args.model, args.seeds)
        local_store(store, spec.name)
        started = time.perf_counter()
        overhead(spec, args.trials, args.min_pool_size, store)
        if not args.skip_efficiency:
            efficiency(spec, args.trials, args.repeats, args.min_pool_size, store, args.out.expanduser())
        print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    run(main)
