"""Throughput of the tiny-lm proxy on the bundled corpus.

tiny-lm training and evaluation tokens/s (wall and CPU) and seconds per cell (train + evaluate
the bundled benchmarks) at the spec's defaults, on a random pool of ``--pool-size`` documents.
Whether each proxy (and budget) sees data quality, and at what cost per cell, is measured by
``benchmarks/proxy_sensitivity.py``.

    python benchmarks/train_cost.py                     # defaults: a pool of 2000 docs
    python benchmarks/train_cost.py --pool-size 1000 --set max_tokens=200000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _cli import count, run, typed_overrides, validated

from mlsandbox.errors import DataError, InvalidInputError
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
from mlsandbox.spec import TinyLMSpec


def random_pool(corpus: pd.DataFrame, size: int, seed: int) -> list[str]:
    """A uniform sample of ``size`` texts: the pool the throughput is measured on."""
    if len(corpus) < size:
        raise InvalidInputError(f"only {len(corpus)} documents for a pool of {size}; lower --pool-size")
    return corpus.text.iloc[np.random.default_rng(seed).choice(len(corpus), size, replace=False)].tolist()


def train_cell(spec, texts: list[str], seed: int, corpus_texts: list[str], digest: str, work: Path) -> tuple[TrainedModel, float, float]:
    job = TrainingJob(
        texts=texts, output_dir=work / "out", seed=seed, tokenizer_texts=corpus_texts,
        source_digest=digest, cache_dir=work / "cache",
    )
    wall, cpu = time.perf_counter(), time.process_time()
    model = trainer_for(spec).train(job)
    return model, time.perf_counter() - wall, time.process_time() - cpu


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
    tokenizer = model.tokenizer  # type: ignore[attr-defined]  # a TinyLM
    eval_tokens = sum(len(ids) for b in benchmarks for ids in encode_docs(tokenizer, b.texts))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool-size", type=count(1), default=2000, help="documents of the random pool")
    parser.add_argument("--bench-docs", type=count(1), default=500, help="documents per benchmark")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a TinyLMSpec field, e.g. --set max_tokens=400000")
    args = parser.parse_args()

    corpus_path = bundled_text_dir() / "corpus.jsonl.gz"
    if not corpus_path.exists():
        raise DataError(f"the bundled corpus is missing: {corpus_path}")
    spec = validated(TinyLMSpec, typed_overrides(args.set), "--set (a TinyLMSpec field)")  # before the reading
    corpus = pd.read_json(corpus_path, lines=True)
    corpus_texts = corpus.text.tolist()
    digest = texts_digest(corpus_texts)
    benchmarks = [load_benchmark(s) for s in bundled_benchmarks(max_docs=args.bench_docs)]
    print(f"corpus {len(corpus)} docs, benchmarks {[(b.name, len(b.texts)) for b in benchmarks]}")

    with tempfile.TemporaryDirectory() as tmp:
        pool = random_pool(corpus, args.pool_size, seed=0)
        throughput(spec, pool, corpus_texts, digest, benchmarks, Path(tmp))


if __name__ == "__main__":
    run(main)
