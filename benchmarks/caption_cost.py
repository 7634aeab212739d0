"""Cost and sensitivity of the tiny-captioner proxy on the bundled captioned-image set.

For each seed, trains ``tiny-captioner`` (the spec's defaults, or ``--set key=value``) on a
clean-only pool and on a random pool of the same size (both drawn with the seed from
``builtin:images/captions.parquet`` by its planted-defect labels) and scores both on the three
clean held-out benchmarks. Prints seconds per cell (train, evaluate), training steps/s, each
pool's summed score and retrieval accuracy, and the clean-over-random delta per seed with its
mean +- std, 95% interval and p-value (each seed draws its own pools: a one-sample t over seeds).

    python benchmarks/caption_cost.py                    # 2 seeds, pools of 1500 pairs
    python benchmarks/caption_cost.py --seeds 4 --set max_steps=300
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _cli import count, run, typed_overrides, validated

from mlsandbox.data import load_dataset
from mlsandbox.delta import summarize_deltas
from mlsandbox.errors import InvalidInputError
from mlsandbox.models import TrainingJob, load_benchmark, trainer_for
from mlsandbox.spec import BenchmarkSpec, DatasetSpec, TinyCaptionerSpec

BENCHMARKS = ("clipart", "emoji", "stamps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=count(1), default=2, help="seeds 0..N-1 (the std needs 2; default 2)")
    parser.add_argument("--pool-size", type=count(1), default=1500, help="pairs per pool (default 1500)")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="spec field, e.g. max_steps=300")
    args = parser.parse_args()
    spec = validated(TinyCaptionerSpec, typed_overrides(args.sets), "--set (a TinyCaptionerSpec field)")
    dataset = load_dataset(DatasetSpec(path="builtin:images/captions.parquet", image_field="image"))
    table = dataset.table
    clean = np.flatnonzero(table["defect"].is_null().to_numpy(zero_copy_only=False))
    if args.pool_size > len(clean):  # the clean pool draws without replacement; the random one from all
        raise InvalidInputError(f"--pool-size {args.pool_size}: the set has only {len(clean)} clean pairs "
                                f"of {len(table)}")
    benches = [load_benchmark(BenchmarkSpec(name=b, path=f"builtin:images/bench_{b}.parquet", image_field="image"))
               for b in BENCHMARKS]
    print(f"tiny-captioner {spec.model_dump(exclude={'type'})}")
    print(f"{'seed':>4} {'pool':6} {'train s':>8} {'eval s':>7} {'steps/s':>8} {'score sum':>10} {'retrieval':>9}")
    clean_scores: list[dict[str, float]] = []
    random_scores: list[dict[str, float]] = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        pools = {"clean": rng.choice(clean, args.pool_size, replace=False),
                 "random": rng.choice(len(table), args.pool_size, replace=False)}
        scores: dict[str, dict[str, float]] = {}
        for name, rows in pools.items():
            with tempfile.TemporaryDirectory() as tmp:
                job = TrainingJob(texts=table["text"].take(rows).to_pylist(), images=table["image"].take(rows).to_pylist(),
                                  output_dir=Path(tmp), seed=seed, tokenizer_texts=dataset.texts,
                                  source_digest=dataset.digest, cache_dir=Path(tmp) / "cache")
                t0 = time.perf_counter()
                model = trainer_for(spec).train(job)
                train_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                metrics = [model.benchmark_metrics(b) for b in benches]
                eval_s = time.perf_counter() - t0
            scores[name] = {b: m["score"] for b, m in zip(BENCHMARKS, metrics)}
            retrieval = statistics.mean(m.get("retrieval_acc", float("nan")) for m in metrics)
            steps = model.info.get("steps", 0)
            print(f"{seed:>4} {name:6} {train_s:8.1f} {eval_s:7.1f} {steps / train_s:8.2f} "
                  f"{sum(scores[name].values()):10.4f} {retrieval:9.3f}", flush=True)
        clean_scores.append(scores["clean"])
        random_scores.append(scores["random"])
    # Eq. 3 per seed; each seed drew its own pools, so the seeds average the pools' luck (one-sample t)
    summary = summarize_deltas(clean_scores, random_scores, pool_per_seed=True)
    claim = ("no interval: one seed" if not math.isfinite(summary.p_value) else
             f"95% interval [{summary.ci_low_pct:+.2f}, {summary.ci_high_pct:+.2f}]%, p = {summary.p_value:.3g}")
    print(f"clean over random: {', '.join(f'{100 * d:+.2f}%' for d in summary.deltas)}; mean "
          f"{summary.mean_pct:+.2f} +- {summary.std_pct:.2f}% ({claim}; one comparison, no correction)")


if __name__ == "__main__":
    run(main)
