"""First-run cost of the model-backed text OPs, pass by pass, next to their previous definitions.

    python benchmarks/model_ops.py [--docs N] [--workers 2] [--passes tokens perplexity spacy]
                                   [--max-tokens 32] [--batch-size 32] [--dtype bfloat16]
                                   [--skip-previous]

Texts: the bundled corpus (``builtin:demo``, 12,782 documents), or a seeded random sample of
``--docs`` of them. A first run: a fresh workspace and a fresh model cache (``MLSANDBOX_CACHE``
in a temporary directory), the passes of ``compute_stats`` timed one by one with ``--workers``
worker processes, model loading and the packaged GGUF's one-off conversion included:

- ``token_num_filter`` (with the statistical OPs in a real run; alone here),
- ``perplexity_filter`` (``--max-tokens``, ``--batch-size``, ``--dtype``: the defaults unless given),
- ``text_action_filter`` + ``text_entity_dependency_filter``: one pass over one spaCy parse.

The previous definitions run in the same process on the same texts, each timed the same way:
the GGUF conversion through ``transformers``' generic reader (model, then tokenizer, as before),
next to the conversion now (both with ``transformers`` imported);
``perplexity_filter`` with max_tokens 32, batch 32, bfloat16 (skipped when those are the params);
the spaCy OPs each in a pass of its own, ``text_action_filter`` version 1 without the parser.
Every stat whose values changed gets its Spearman correlation with the previous values.
Timings on a shared machine vary with the other load: compare the columns of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from _cli import count, run
from scipy.stats import spearmanr

from mlsandbox import pretrained
from mlsandbox.data import Dataset, load_dataset
from mlsandbox.ops import Op, create_op
from mlsandbox.ops.spacy_pipeline import DEFAULT_PIPELINE
from mlsandbox.ops.text.text_action_filter import ACTION_POS, ACTION_TAGS
from mlsandbox.ops.text.text_entity_dependency_filter import NO_ENTITY, entity_edges
from mlsandbox.spec import DatasetSpec
from mlsandbox.stats import compute_stats

#: The previous perplexity params, and the pipeline parts each spaCy OP excluded before.
PREVIOUS_PERPLEXITY: dict[str, Any] = {"max_tokens": 32, "batch_size": 32, "dtype": "bfloat16"}
PREVIOUS_EXCLUDE = {
    "num_action": ("parser", "senter", "ner", "lemmatizer", "entity_ruler"),
    "num_dependency_edges": ("ner", "lemmatizer", "entity_ruler"),
}
BATCH = 256  # the model passes' batch on the bundled corpus
PASSES = ("tokens", "perplexity", "spacy")


def dataset_of(docs: int | None, seed: int, directory: Path) -> Dataset:
    """The bundled corpus, or a seeded sample of ``docs`` of its documents."""
    corpus = load_dataset(DatasetSpec(path="builtin:demo"))
    if docs is None or docs >= len(corpus):
        return corpus
    texts = corpus.table["text"].to_pylist()
    sample = directory / "sample.jsonl"
    with sample.open("w", encoding="utf-8") as f:
        for text in random.Random(seed).sample(texts, docs):
            f.write(json.dumps({"text": text}) + "\n")
    return load_dataset(DatasetSpec(path=str(sample)))


def timed_pass(dataset: Dataset, ops: Sequence[Op], workspace: Path, workers: int) -> tuple[float, dict[str, Any]]:
    """(seconds, stat values) of one stats pass into a fresh workspace."""
    start = time.perf_counter()
    table = compute_stats(dataset, ops, workspace, workers=workers, progress="off")
    return time.perf_counter() - start, {k: table.stat(k) for op in ops for k in op.stat_keys}


def conversion(cache: Path) -> float:
    """Seconds to convert the packaged GGUF (model and tokenizer) into an empty cache directory."""
    start = time.perf_counter()
    pretrained.resolve_causal_lm(None, cache)
    return time.perf_counter() - start


def previous_conversion(cache: Path) -> float:
    """Seconds to convert the packaged GGUF the previous way: ``transformers``' generic reader."""
    from transformers import AutoTokenizer

    gguf = pretrained.packaged_model_dir() / pretrained.PACKAGED_GGUF
    start = time.perf_counter()
    pretrained._write_with_transformers(gguf, cache / "model")
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(cache / "model")
    return time.perf_counter() - start


def previous_spacy_batch(key: str, texts: list[str]) -> np.ndarray:
    """One batch of a spaCy stat under its previous pipeline (a worker function)."""
    from mlsandbox.ops.spacy_pipeline import load_pipeline, parse

    docs = parse(load_pipeline(DEFAULT_PIPELINE, PREVIOUS_EXCLUDE[key]), texts, 64)
    if key == "num_action":
        values = (sum(1 for t in d if t.pos_ in ACTION_POS and t.tag_ in ACTION_TAGS) for d in docs)
    else:
        values = (min(entity_edges(d), default=NO_ENTITY) for d in docs)
    return np.fromiter(values, dtype=np.int64, count=len(texts))


def previous_spacy_pass(key: str, texts: list[str], workers: int) -> tuple[float, np.ndarray]:
    """(seconds, values) of a previous spaCy OP's own pass, batched and spread as stats does."""
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        values = np.concatenate(list(pool.map(previous_spacy_batch, [key] * len(batches), batches)))
    return time.perf_counter() - start, values


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=count(1), default=None, help="a sample of the corpus (default: all of it)")
    parser.add_argument("--workers", type=count(1), default=2)
    parser.add_argument("--max-tokens", type=count(1), default=None,
                        help="perplexity_filter's max_tokens (default: its default)")
    parser.add_argument("--batch-size", type=count(1), default=None,
                        help="perplexity_filter's batch_size (default: its default)")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default=None, help="perplexity_filter's dtype")
    parser.add_argument("--passes", nargs="+", choices=PASSES, default=list(PASSES))
    parser.add_argument("--skip-previous", action="store_true", help="time the new definitions only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    given = {"max_tokens": args.max_tokens, "batch_size": args.batch_size, "dtype": args.dtype}
    perplexity = {k: v for k, v in given.items() if v is not None}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ[pretrained.CACHE_ENV] = str(root / "cache")  # workers inherit it: an empty model cache
        dataset = dataset_of(args.docs, args.seed, root)
        texts = dataset.table["text"].to_pylist()
        print(f"{len(dataset)} documents, {args.workers} workers; first run (fresh workspace and model cache)")
        new: dict[str, Any] = {}
        passes = {
            "tokens": ("token_num_filter", [create_op("token_num_filter")]),
            "perplexity": ("perplexity_filter", [create_op("perplexity_filter", perplexity)]),
            "spacy": ("text_action + text_entity_dependency",
                      [create_op("text_action_filter"), create_op("text_entity_dependency_filter")]),
        }
        for label, ops in (passes[name] for name in args.passes):
            seconds, values = timed_pass(dataset, ops, root / "ws", args.workers)
            new.update(values)
            print(f"  {label:40} {seconds:7.1f} s", flush=True)
        if args.skip_previous:
            return
        if {"perplexity", "spacy"} & set(args.passes):  # the tokens pass has no previous definition
            print("previous definitions, same texts:")
        previous: dict[str, Any] = {}
        if "perplexity" in args.passes:
            print(f"  {'GGUF conversion (now, on its own)':40} {conversion(root / 'again'):7.1f} s", flush=True)
            print(f"  {'GGUF conversion (transformers reader)':40} {previous_conversion(root / 'before'):7.1f} s",
                  flush=True)
        current = create_op("perplexity_filter", perplexity).params
        if "perplexity" in args.passes and {k: getattr(current, k) for k in PREVIOUS_PERPLEXITY} != PREVIOUS_PERPLEXITY:
            seconds, values = timed_pass(dataset, [create_op("perplexity_filter", PREVIOUS_PERPLEXITY)],
                                         root / "previous-ws", args.workers)
            previous.update(values)
            print(f"  {'perplexity_filter ' + json.dumps(PREVIOUS_PERPLEXITY):40} {seconds:7.1f} s", flush=True)
        spacy_seconds = 0.0
        for key in PREVIOUS_EXCLUDE if "spacy" in args.passes else ():
            seconds, previous[key] = previous_spacy_pass(key, texts, args.workers)
            spacy_seconds += seconds
            print(f"  {key + ' (own pass)':40} {seconds:7.1f} s", flush=True)
        if spacy_seconds:
            print(f"  {'both spaCy passes':40} {spacy_seconds:7.1f} s")
        if previous:
            print("Spearman with the previous definition (identical values: unchanged):")
        for key, before in previous.items():
            after = new[key]
            same = np.array_equal(before, after)
            rho = 1.0 if same else spearmanr(before, after).statistic
            print(f"  {key:24} {'unchanged' if same else f'{rho:.4f}'}   "
                  f"({np.mean(before == after):.1%} of documents keep their value)")


if __name__ == "__main__":
    run(main)
