"""Cost and sensitivity of the proxy models on the bundled corpus.

1. Throughput: tiny-lm training and evaluation tokens/s (wall and CPU) and seconds per cell
   (train + evaluate the bundled benchmarks) at the spec's defaults.
2. Sensitivity: equal-size pools built directly from the corpus's planted-defect labels
   (clean-only, random, defect-only, and "all but one defect type"), each trained with tiny-lm
   and ngram for several seeds; the table gives every pool's relative change over the random
   pool, ``delta = sum_b(s_b - s'_b) / sum_b(s'_b)`` with ``s = 1 / bpb`` over the benchmarks,
   as mean +- std over seeds, the single-seed noise, and the Spearman correlation between the
   two models' pool rankings.

    python benchmarks/train_cost.py                     # defaults: 2 seeds, pools of 2000 docs
    python benchmarks/train_cost.py --seeds 3 --pool-size 1000 --set max_tokens=400000
    python benchmarks/train_cost.py --throughput-only
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from mlsandbox.models import (
    Benchmark,
    TrainedModel,
    TrainingJob,
    bundled_benchmarks,
    load_benchmark,
    trainer_for,
)
from mlsandbox.models.benchmarks import bundled_text_dir, texts_digest
from mlsandbox.models.bpe_tokenizer import encode_docs
from mlsandbox.spec import NgramSpec, TinyLMSpec

DEFECTS = ("repetition_spam", "gibberish", "non_english", "markup_boilerplate", "fragment")


def build_pools(corpus: pd.DataFrame, size: int, seed: int, names: list[str] | None) -> dict[str, list[str]]:
    """Equal-size pools of texts selected by the planted-defect labels."""
    rng = np.random.default_rng(seed)

    def sample(frame: pd.DataFrame) -> list[str]:
        if len(frame) < size:
            raise SystemExit(f"only {len(frame)} documents for a pool of {size}; lower --pool-size")
        return frame.text.iloc[rng.choice(len(frame), size, replace=False)].tolist()

    clean = corpus.defect.isna()
    candidates = {
        "random": lambda: sample(corpus),
        "clean-only": lambda: sample(corpus[clean]),
        "defect-only": lambda: sample(corpus[~clean]),
        **{f"no-{d}": (lambda d=d: sample(corpus[corpus.defect.ne(d) | clean])) for d in DEFECTS},
    }
    chosen = names or list(candidates)
    return {name: candidates[name]() for name in chosen}


def train_cell(spec, texts: list[str], seed: int, corpus_texts: list[str], digest: str, work: Path) -> tuple[TrainedModel, float, float]:
    job = TrainingJob(
        texts=texts, output_dir=work / "out", seed=seed, tokenizer_texts=corpus_texts,
        source_digest=digest, cache_dir=work / "cache",
    )
    wall, cpu = time.perf_counter(), time.process_time()
    model = trainer_for(spec).train(job)
    return model, time.perf_counter() - wall, time.process_time() - cpu


def score(model: TrainedModel, benchmarks: list[Benchmark]) -> tuple[dict[str, float], float]:
    wall = time.perf_counter()
    scores = {b.name: 1.0 / model.bits_per_byte(b.texts) for b in benchmarks}
    return scores, time.perf_counter() - wall


def delta(scores: dict[str, float], baseline: dict[str, float]) -> float:
    return sum(scores[b] - baseline[b] for b in baseline) / sum(baseline.values())


def throughput(spec: TinyLMSpec, pool: list[str], corpus_texts: list[str], digest: str,
               benchmarks: list[Benchmark], work: Path) -> None:
    # The first call trains and caches the dataset tokenizer; time it apart from the cell.
    wall = time.perf_counter()
    trainer_for(spec.model_copy(update={"max_steps": 1, "max_tokens": None})).train(
        TrainingJob(texts=pool[:10], output_dir=work / "out", tokenizer_texts=corpus_texts,
                    source_digest=digest, cache_dir=work / "cache")
    )
    tok_s = time.perf_counter() - wall
    model, train_wall, train_cpu = train_cell(spec, pool, 0, corpus_texts, digest, work)
    tokens = model.info["train_tokens"]
    eval_wall, eval_cpu = time.perf_counter(), time.process_time()
    scores = {b.name: 1.0 / model.bits_per_byte(b.texts) for b in benchmarks}
    eval_wall, eval_cpu = time.perf_counter() - eval_wall, time.process_time() - eval_cpu
    eval_tokens = sum(len(ids) for b in benchmarks for ids in encode_docs(model.tokenizer, b.texts))
    print("\n## tiny-lm throughput (defaults unless --set)")
    print(f"spec: {spec.model_dump(exclude={'type'})}")
    print(f"params {model.info['n_params'] / 1e6:.2f}M, vocab {model.info['vocab_size']}, "
          f"{model.info['steps']} steps, {model.info['epochs']:.2f} epochs of the pool")
    print(f"tokenizer (once per dataset, {len(corpus_texts)} docs): {tok_s:.1f} s")
    print(f"train: {tokens} tokens in {train_wall:.1f} s wall = {tokens / train_wall:,.0f} tok/s "
          f"({tokens / train_cpu:,.0f} tok per CPU-second)")
    print(f"eval:  {eval_tokens} tokens in {eval_wall:.1f} s wall = {eval_tokens / eval_wall:,.0f} tok/s "
          f"({eval_tokens / eval_cpu:,.0f} tok per CPU-second)")
    print(f"cell (train + {len(benchmarks)} benchmarks): {train_wall + eval_wall:.1f} s; "
          f"scores {', '.join(f'{k} {v:.4f}' for k, v in scores.items())}")


def sensitivity(models: dict[str, object], pools: dict[str, list[str]], seeds: list[int],
                corpus_texts: list[str], digest: str, benchmarks: list[Benchmark], work: Path) -> dict:
    results: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for label, spec in models.items():
        results[label] = {}
        for name, texts in pools.items():
            results[label][name] = {}
            for seed in seeds:
                model, train_wall, _ = train_cell(spec, texts, seed, corpus_texts, digest, work)
                scores, eval_wall = score(model, benchmarks)
                results[label][name][seed] = scores
                print(f"  {label:8s} {name:24s} seed {seed}: train {train_wall:5.1f} s, "
                      f"eval {eval_wall:5.1f} s, mean 1/bpb {statistics.fmean(scores.values()):.4f}",
                      flush=True)
    print("\n## relative change over the random pool, % (mean +- std over seeds)")
    header = f"{'pool':24s}" + "".join(f"{label:>20s}" for label in models)
    print(header)
    means: dict[str, dict[str, float]] = {label: {} for label in models}
    for name in pools:
        row = f"{name:24s}"
        for label in models:
            per_seed = [100 * delta(results[label][name][s], results[label]["random"][s]) for s in seeds]
            mean = statistics.fmean(per_seed)
            std = statistics.stdev(per_seed) if len(per_seed) > 1 else float("nan")
            means[label][name] = mean
            row += f"{mean:>+12.2f} +- {std:4.2f}"
        print(row)
    print("\nsingle-seed noise (std over seeds of the random pool's summed score, % of its mean):")
    for label in models:
        totals = [sum(results[label]["random"][s].values()) for s in seeds]
        noise = 100 * statistics.stdev(totals) / statistics.fmean(totals) if len(totals) > 1 else float("nan")
        clean = means[label].get("clean-only", float("nan"))
        ratio = f"{abs(clean) / noise:.1f}x" if noise > 0 else "n/a: no seed noise"
        print(f"  {label}: {noise:.3f}%  (clean-only effect / noise: {ratio})")
    labels = list(models)
    if len(labels) >= 2 and len(pools) > 2:
        a = [means[labels[0]][p] for p in pools]
        b = [means[labels[1]][p] for p in pools]
        rho = spearmanr(a, b).statistic
        print(f"\nSpearman correlation of pool rankings, {labels[0]} vs {labels[1]}: {rho:.3f}")
    return {"results": {l: {p: {str(s): v for s, v in r.items()} for p, r in d.items()} for l, d in results.items()},
            "delta_pct_mean": means}


def parse_overrides(items: list[str]) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value) if value not in ("",) else None
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per pool")
    parser.add_argument("--pool-size", type=int, default=2000, help="documents per pool")
    parser.add_argument("--pools", default="", help="comma-separated subset of pool names")
    parser.add_argument("--bench-docs", type=int, default=500, help="documents per benchmark")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a TinyLMSpec field, e.g. --set max_tokens=400000")
    parser.add_argument("--ngram-order", type=int, default=5)
    parser.add_argument("--skip-tiny", action="store_true", help="ngram only")
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--json", type=Path, help="write raw scores here")
    args = parser.parse_args()

    corpus_path = bundled_text_dir() / "corpus.jsonl.gz"
    if not corpus_path.exists():
        raise SystemExit(f"the bundled corpus is missing: {corpus_path}")
    corpus = pd.read_json(corpus_path, lines=True)
    corpus_texts = corpus.text.tolist()
    digest = texts_digest(corpus_texts)
    benchmarks = [load_benchmark(s) for s in bundled_benchmarks(max_docs=args.bench_docs)]
    spec = TinyLMSpec(**parse_overrides(args.set))
    print(f"corpus {len(corpus)} docs, benchmarks {[(b.name, len(b.texts)) for b in benchmarks]}")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pools = build_pools(corpus, args.pool_size, seed=0, names=args.pools.split(",") if args.pools else None)
        throughput(spec, pools.get("random") or next(iter(pools.values())), corpus_texts, digest, benchmarks, work)
        if args.throughput_only:
            return
        if "random" not in pools:
            raise SystemExit("the sensitivity table needs the `random` pool")
        models: dict[str, object] = {} if args.skip_tiny else {"tiny-lm": spec}
        models["ngram"] = NgramSpec(order=args.ngram_order)
        print(f"\n## training {len(pools)} pools x {args.seeds} seeds x {len(models)} models")
        started = time.perf_counter()
        out = sensitivity(models, pools, list(range(args.seeds)), corpus_texts, digest, benchmarks, work)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
