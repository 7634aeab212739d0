"""Proxy sensitivity: can each proxy model (and budget) see data quality, and at what cost?

    python benchmarks/proxy_sensitivity.py     # ngram, tiny-lm-small, tiny-lm, tiny-lm-large; both corpora
    python benchmarks/proxy_sensitivity.py --corpus demo --proxies ngram tiny-lm --out results.json
    python benchmarks/proxy_sensitivity.py --proxies ngram tiny-lm hf-lora --threads 1 --set max_tokens=200000
    python benchmarks/proxy_sensitivity.py --proxies ngram --seeds 5 --pool-size 1000 --reference costliest
    python benchmarks/proxy_sensitivity.py --proxies ngram ngram-equal-tokens --seeds 5   # equal documents vs text
    python benchmarks/proxy_sensitivity.py --corpus images   # tiny-captioner at 150 steps (± ema) and 600
    python benchmarks/proxy_sensitivity.py --corpus images --proxies captioner captioner-ema98 --seeds 5 --clean-only
    python benchmarks/proxy_sensitivity.py --corpus videos --threads   # tiny-t2v at 150 and 500 steps

Four corpora carry planted-defect labels (column ``defect``: null for a clean document, else its
kind): ``demo`` (``builtin:demo``, benchmarks news/tech/wiki, as ``projects/text-quality``),
``validation`` (``builtin:validation/corpus.jsonl.gz``, benchmarks literature/manuals/pydoc, as
``projects/text-quality-validation``), for the image-text proxies ``images``
(``builtin:images/captions.parquet``, benchmarks clipart/emoji/stamps, as ``projects/image-caption``;
pools of 1,500 captioned pictures) and for the text-to-video proxies ``videos``
(``builtin:videos/clips.parquet``, benchmarks emoji/stamps, as ``projects/text-to-video``; pools of
1,100 captioned clips). Pools of ``--pool-size`` documents each:

    clean       clean documents only
    no-<kind>   every document except those of one defect kind (one pool per kind)
    random      the control: a uniform sample of the whole corpus

Every seed draws its own random control and its own sample of every pool (the same ones for all
proxies), and trains each proxy on them with that seed. A pool's delta over the control of its
seed is the package's Eq. 3 (``mlsandbox.delta.relative_delta``)::

    delta = sum_b(s_b - s'_b) / sum_b(s'_b),   s_b = 1 / bits-per-byte on benchmark b

with ``s'`` the scores of the same seed's random-control model. Over seeds: the mean, the std
(ddof=1), a 95% t-interval, the p-value of a two-sided one-sample t-test against 0 (also
Holm-adjusted over a proxy's pools) and effect/noise = |mean| / std. A no-<kind> delta above 0
means removing that kind helps, i.e. the proxy measures the kind as harmful; note that no-<kind>
holds the other defects at a share 1 / (1 - share of <kind>) higher than random does.

``ngram`` fits every document of a pool once (pools of equal document counts, as the paper
compares them); on ``images`` and ``videos`` it reads the captions alone, which measures what the
pools' caption text does without any picture (and how much a pool's draw moves a deterministic model); ``ngram-equal-tokens`` fits exactly ``--ngram-tokens`` bytes of each pool in its
seeded order (a larger pool is cut, a smaller one read again), so that a pool of long documents
does not win by holding more text.

Cost: CPU seconds (``time.process_time``, all threads of the process) and wall seconds of
training plus scoring the benchmarks, per cell, and tokens per pool (the model's own units: BPE
tokens for tiny-lm, bytes for a byte n-gram). The tokenizer (once per corpus) and the imports
are paid before the first timed cell. Agreement: each proxy's ranking of the pools (mean deltas)
against the reference proxy's (the last of ``--proxies``, or ``--reference``), as Spearman's rho
and decision accuracy (``mlsandbox.agreement.decision_accuracy``).

Every metric a proxy reports besides its score (retrieval accuracy; for ``tiny-t2v`` the
VBench-style dimensions of its generated clips) is kept per cell, and the clean pool's relative
change of each, summed over the benchmarks, is printed with its std over seeds and effect/noise:
whether another metric would see clean data where the score does not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from _cli import count, one_line, run, typed_overrides
from pydantic import ValidationError
from scipy.stats import spearmanr

from mlsandbox.agreement import decision_accuracy
from mlsandbox.data import IMAGE, TEXT, VIDEO, load_dataset
from mlsandbox.delta import ALPHA, DeltaSummary, adjust_summaries, summarize_deltas
from mlsandbox.errors import DataError, InvalidInputError, SpecError
from mlsandbox.models import Benchmark, TrainingJob, bundled_benchmarks, load_benchmarks, trainer_for, utf8_bytes
from mlsandbox.spec import BenchmarkSpec, DatasetSpec, HFLoraSpec, NgramSpec, TinyCaptionerSpec, TinyLMSpec, TinyT2VSpec

ProxySpec = NgramSpec | TinyLMSpec | HFLoraSpec | TinyCaptionerSpec | TinyT2VSpec
RANDOM = "random"
CLEAN = "clean"
#: The tiny-lm budgets, as multiples of the (possibly --set) tiny-lm training budget.
TINY_BUDGETS = {"tiny-lm-small": 0.5, "tiny-lm": 1.0, "tiny-lm-large": 2.0}
#: The 4-gram at an equal text budget per pool (``--ngram-tokens`` bytes) instead of every document once.
NGRAM_EQUAL_TOKENS = "ngram-equal-tokens"
#: The image-text proxies: tiny-captioner at 150 steps (plain, and with the weight averages the
#: image-caption project decides with) and at its default budget (600 steps).
CAPTIONERS: dict[str, dict[str, Any]] = {"captioner-150": {"max_steps": 150},
                                         "captioner-150-ema98": {"max_steps": 150, "ema": 0.98},
                                         "captioner-150-ema99": {"max_steps": 150, "ema": 0.99},
                                         "captioner-150-ema99-d0": {"max_steps": 150, "ema": 0.99, "dropout": 0.0},
                                         "captioner-150-d0": {"max_steps": 150, "dropout": 0.0},
                                         "captioner-150-ema99-d35": {"max_steps": 150, "ema": 0.99, "dropout": 0.35},
                                         "captioner": {}, "captioner-ema98": {"ema": 0.98}}
#: The text-to-video proxies: tiny-t2v at the text-to-video project's quick budget (150 steps) and its default.
T2V: dict[str, dict[str, Any]] = {"t2v-150": {"max_steps": 150}, "t2v-150-ema99": {"max_steps": 150, "ema": 0.99},
                                  "t2v": {}}
PROXIES = ("ngram", NGRAM_EQUAL_TOKENS, *TINY_BUDGETS, "hf-lora", *CAPTIONERS, *T2V)
#: Each corpus's default proxies, cheapest first; the media proxies train on their corpus only.
DEFAULT_PROXIES = {"text": ["ngram", "tiny-lm-small", "tiny-lm", "tiny-lm-large"],
                   "images": ["captioner-150", "captioner-150-ema99", "captioner"],
                   "videos": ["t2v-150", "t2v"]}


@dataclass(frozen=True)
class Corpus:
    """A corpus with defect labels and the benchmarks its project scores on."""

    name: str
    path: str
    benchmarks: tuple[str, ...] | None  # names filled into bench_path; None = the bundled text sets
    bench_path: str = "builtin:validation/bench_{}.jsonl.gz"
    image_field: str | None = None  # an image-text corpus: its pictures train the captioner
    video_field: str | None = None  # a video-text corpus: its clips train the text-to-video model
    pool_size: int = 3000  # default documents per pool


CORPORA = {
    "demo": Corpus("demo", "builtin:demo", None),
    "validation": Corpus("validation", "builtin:validation/corpus.jsonl.gz", ("literature", "manuals", "pydoc")),
    "images": Corpus("images", "builtin:images/captions.parquet", ("clipart", "emoji", "stamps"),
                     "builtin:images/bench_{}.parquet", image_field=IMAGE, pool_size=1500),
    "videos": Corpus("videos", "builtin:videos/clips.parquet", ("emoji", "stamps"), "builtin:videos/bench_{}.parquet",
                     video_field=VIDEO, pool_size=1100),
}


@dataclass
class Cell:
    """One trained and scored (corpus, proxy, pool, seed)."""

    corpus: str
    proxy: str
    pool: str
    seed: int
    scores: dict[str, float]
    metrics: dict[str, dict[str, float]]  # every metric per benchmark (the score and bpb among them)
    cpu_s: float
    wall_s: float
    train_cpu_s: float
    eval_cpu_s: float
    pool_docs: int
    pool_bytes: int
    pool_tokens: int | None
    train_tokens: int | None


@dataclass
class PoolRow:
    """A pool's deltas over seeds for one proxy, with its cost."""

    corpus: str
    proxy: str
    pool: str
    deltas_pct: list[float]
    mean_pct: float
    std_pct: float
    ci_low_pct: float
    ci_high_pct: float
    p_value: float
    p_holm: float
    effect_noise: float
    cpu_s: float
    wall_s: float
    pool_tokens: float | None
    pool_bytes: float


# -- proxies -------------------------------------------------------------------------------------


def scaled(spec: TinyLMSpec, factor: float) -> TinyLMSpec:
    """The spec with its training budget (max_tokens, else max_steps) times ``factor``."""
    if factor == 1.0:
        return spec
    for key in ("max_tokens", "max_steps"):
        budget = getattr(spec, key)
        if budget is not None:
            return spec.model_copy(update={key: max(1, round(budget * factor))})
    raise SpecError("tiny-lm-small/-large scale max_tokens or max_steps; the tiny-lm spec sets neither")


def proxy_specs(names: Sequence[str], overrides: dict[str, Any], threads: int | None,
                ngram_tokens: int) -> dict[str, ProxySpec]:
    """The named proxy configurations; ``overrides`` apply to the tiny-lm base before its budget scales."""
    torch_keys: dict[str, Any] = {"threads": threads} if threads is not None else {}
    try:
        tiny = TinyLMSpec(**{**overrides, **torch_keys})  # validated even when no tiny-lm proxy runs
        fixed: dict[str, ProxySpec] = {"ngram": NgramSpec(order=4), "hf-lora": HFLoraSpec(**torch_keys),
                                       NGRAM_EQUAL_TOKENS: NgramSpec(order=4, max_tokens=ngram_tokens),
                                       **{n: TinyCaptionerSpec(**k, **torch_keys) for n, k in CAPTIONERS.items()},
                                       **{n: TinyT2VSpec(**k, **torch_keys) for n, k in T2V.items()}}
        return {name: fixed[name] if name in fixed else scaled(tiny, TINY_BUDGETS[name]) for name in names}
    except ValidationError as err:
        raise one_line(err, "proxy setting") from None


def warm_up(spec: ProxySpec, job: TrainingJob) -> None:
    """Pay the once-per-corpus costs (imports, the BPE tokenizer, a base model, the n-gram index)
    outside the timed cells."""
    trainer = trainer_for(spec)
    if isinstance(spec, NgramSpec):
        trainer.train(replace(job, rows=[0]))
    if isinstance(spec, (TinyLMSpec, TinyCaptionerSpec, TinyT2VSpec)):
        from mlsandbox.models.bpe_tokenizer import dataset_tokenizer

        dataset_tokenizer(job, spec)
    elif isinstance(spec, HFLoraSpec):
        from mlsandbox.models.hf_lora import resolve_base

        resolve_base(spec, job.cache_dir)


# -- pools and cells -----------------------------------------------------------------------------


def pool_masks(defects: np.ndarray, clean_only: bool = False) -> dict[str, np.ndarray]:
    """Which documents each pool draws from: random (all), clean, and (unless ``clean_only``)
    no-<kind> per defect kind."""
    clean = np.array([d is None for d in defects])
    kinds = [] if clean_only else sorted({d for d in defects if d is not None})
    return {
        RANDOM: np.ones(len(defects), dtype=bool),
        CLEAN: clean,
        **{f"no-{kind}": defects != kind for kind in kinds},
    }


def draw_pools(masks: dict[str, np.ndarray], size: int, seed: int) -> dict[str, np.ndarray]:
    """One seed's sample (row numbers) of every pool; each pool has its own stream, so adding a pool
    changes no other."""
    pools = {}
    for name, mask in masks.items():
        candidates = np.flatnonzero(mask)
        if len(candidates) < size:
            raise InvalidInputError(f"pool {name} has only {len(candidates)} documents for --pool-size {size}")
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        pools[name] = rng.choice(candidates, size, replace=False)
    return pools


def check_pool_size(corpus: Corpus, size: int, clean_only: bool) -> None:
    """Refuse a ``--pool-size`` that a pool of the corpus cannot be drawn at, before anything is trained
    (on any corpus: with ``--corpus both``, not after the first corpus's cells)."""
    dataset = load_dataset(DatasetSpec(path=corpus.path, text_field="text"))
    if "defect" not in dataset.table.column_names:
        raise DataError(f"{corpus.path} has no `defect` column")
    masks = pool_masks(np.array(dataset.table["defect"].to_pylist(), dtype=object), clean_only)
    name, mask = min(masks.items(), key=lambda item: int(item[1].sum()))
    if mask.sum() < size:
        raise InvalidInputError(f"--pool-size {size}: pool {name} of {corpus.name} has only {int(mask.sum())} "
                                "documents to draw from")


def run_cell(spec: ProxySpec, texts: list[str], media: dict[str, list[bytes]], seed: int, base: TrainingJob,
             benchmarks: Sequence[Benchmark], rows: Sequence[int] | None = None) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """Train on the pool (captions with their pictures or clips, for an image- or video-text corpus:
    ``media`` as ``{"images": ...}`` or ``{"videos": ...}``; ``rows``: its rows of the corpus, as a
    cell passes them) and score every benchmark; every metric per benchmark and what the cell cost."""
    job = TrainingJob(texts=texts, output_dir=base.output_dir, seed=seed, tokenizer_texts=base.tokenizer_texts,
                      source_digest=base.source_digest, cache_dir=base.cache_dir,
                      images=media.get("images"), videos=media.get("videos"), rows=rows)
    wall, cpu = time.perf_counter(), time.process_time()
    model = trainer_for(spec).train(job)
    train_cpu = time.process_time() - cpu
    metrics = {b.name: model.benchmark_metrics(b) for b in benchmarks}
    info = model.info
    cost: dict[str, Any] = {
        "cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall, "train_cpu_s": train_cpu,
        # A byte n-gram reads every byte of its pool once, unless a budget cuts or repeats it.
        "pool_tokens": info.get("pool_tokens", None if getattr(spec, "max_tokens", None) else info.get("train_tokens")),
        "train_tokens": info.get("train_tokens"),
    }
    cost["eval_cpu_s"] = cost["cpu_s"] - train_cpu
    return metrics, cost


def benchmark_scores(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each benchmark's ``score`` among the metrics of :func:`run_cell`."""
    return {name: m["score"] for name, m in metrics.items()}


def measure_corpus(corpus: Corpus, specs: dict[str, ProxySpec], seeds: Sequence[int], size: int,
                   bench_docs: int, work: Path, clean_only: bool = False) -> tuple[list[Cell], dict[str, Any]]:
    """Every (proxy, seed, pool) cell of one corpus, and a description of the corpus."""
    dataset = load_dataset(DatasetSpec(path=corpus.path, text_field="text", image_field=corpus.image_field,
                                       video_field=corpus.video_field))
    if "defect" not in dataset.table.column_names:
        raise DataError(f"{corpus.path} has no `defect` column")
    texts = np.array(dataset.table[TEXT].to_pylist(), dtype=object)
    media_columns = {"images": IMAGE} if corpus.image_field else {"videos": VIDEO} if corpus.video_field else {}
    media = {key: np.array(dataset.table[column].to_pylist(), dtype=object) for key, column in media_columns.items()}
    masks = pool_masks(np.array(dataset.table["defect"].to_pylist(), dtype=object), clean_only)
    bench_specs = bundled_benchmarks(max_docs=bench_docs) if corpus.benchmarks is None else [
        BenchmarkSpec(name=n, path=corpus.bench_path.format(n), max_docs=bench_docs, image_field=corpus.image_field,
                      video_field=corpus.video_field)
        for n in corpus.benchmarks]
    benchmarks = load_benchmarks(bench_specs, Path.cwd()).benchmarks
    base = TrainingJob(texts=texts[:1].tolist(), output_dir=work / "out", tokenizer_texts=texts.tolist(),
                       source_digest=dataset.digest, cache_dir=work / "cache")
    about = {"path": corpus.path, "docs": len(dataset), "digest": dataset.digest,
             "pool_candidates": {name: int(mask.sum()) for name, mask in masks.items()},
             "benchmarks": {b.name: len(b.texts) for b in benchmarks}}
    pools_by_seed = {seed: draw_pools(masks, size, seed) for seed in seeds}
    print(f"\n# {corpus.name}: {len(dataset):,} docs ({corpus.path}), pools of {size} docs, seeds {list(seeds)}, "
          f"benchmarks {about['benchmarks']}", flush=True)
    started = time.perf_counter()
    for spec in specs.values():
        warm_up(spec, base)
    about["warm_up_s"] = time.perf_counter() - started
    cells: list[Cell] = []
    total = len(specs) * len(seeds) * len(masks)
    for proxy, spec in specs.items():
        for seed in seeds:
            for pool, rows in pools_by_seed[seed].items():
                pool_texts = texts[rows].tolist()
                metrics, cost = run_cell(spec, pool_texts, {k: v[rows].tolist() for k, v in media.items()}, seed, base,
                                         benchmarks, rows)
                scores = benchmark_scores(metrics)
                cells.append(Cell(corpus.name, proxy, pool, seed, scores, metrics, pool_docs=len(pool_texts),
                                  pool_bytes=utf8_bytes(pool_texts), **cost))
                print(f"  [{len(cells)}/{total}] {proxy} seed {seed} {pool}: {cost['cpu_s']:.1f} CPU s, "
                      f"{cost['wall_s']:.1f} s wall, score sum {sum(scores.values()):.4f}", file=sys.stderr, flush=True)
    return cells, about


# -- statistics ----------------------------------------------------------------------------------


def pool_rows(cells: Sequence[Cell], proxy: str) -> list[PoolRow]:
    """Deltas over the same seed's random control for each of a proxy's pools (random itself: cost only)."""
    mine = [c for c in cells if c.proxy == proxy]
    control = {c.seed: c for c in mine if c.pool == RANDOM}
    names = list(dict.fromkeys(c.pool for c in mine))
    tested = [n for n in names if n != RANDOM]
    summaries: list[DeltaSummary | None] = [
        summarize_deltas([c.scores for c in mine if c.pool == n], [control[c.seed].scores for c in mine if c.pool == n],
                         pool_per_seed=True)  # every seed drew its own pools
        for n in tested]
    by_name = dict(zip(tested, adjust_summaries(summaries)))
    rows = []
    for name in names:
        group = [c for c in mine if c.pool == name]
        s = by_name.get(name)
        tokens = [c.pool_tokens for c in group if c.pool_tokens is not None]
        rows.append(PoolRow(
            corpus=group[0].corpus, proxy=proxy, pool=name,
            deltas_pct=[100 * d for d in s.deltas] if s else [],
            mean_pct=s.mean_pct if s else math.nan, std_pct=s.std_pct if s else math.nan,
            ci_low_pct=s.ci_low_pct if s else math.nan, ci_high_pct=s.ci_high_pct if s else math.nan,
            p_value=s.p_value if s else math.nan, p_holm=s.p_adjusted if s else math.nan,
            effect_noise=abs(s.mean) / s.std if s and s.std > 0 else math.nan,
            cpu_s=statistics.fmean(c.cpu_s for c in group), wall_s=statistics.fmean(c.wall_s for c in group),
            pool_tokens=statistics.fmean(tokens) if tokens else None,
            pool_bytes=statistics.fmean(c.pool_bytes for c in group),
        ))
    return rows


def metric_rows(cells: Sequence[Cell], proxy: str) -> list[dict[str, Any]]:
    """The clean pool's relative change (%) of every metric besides the score and bpb, summed over
    the benchmarks that report it in both cells of a seed, against the same seed's random control."""
    mine = [c for c in cells if c.proxy == proxy]
    control = {c.seed: c for c in mine if c.pool == RANDOM}
    clean = [c for c in mine if c.pool == CLEAN and c.seed in control]
    names = sorted({k for c in clean for m in c.metrics.values() for k in m} - {"score", "bpb"})
    rows = []
    for name in names:
        changes = []
        for cell in clean:
            ours, theirs = cell.metrics, control[cell.seed].metrics
            both = [b for b in ours if ours[b].get(name) is not None and theirs.get(b, {}).get(name) is not None]
            base = sum(theirs[b][name] for b in both)
            if both and base:
                changes.append(100 * (sum(ours[b][name] for b in both) - base) / abs(base))
        mean = statistics.fmean(changes) if changes else math.nan
        std = statistics.stdev(changes) if len(changes) > 1 else math.nan
        rows.append({"proxy": proxy, "metric": name, "seeds": len(changes), "mean_pct": mean, "std_pct": std,
                     "effect_noise": abs(mean) / std if std > 0 else math.nan})
    return rows


def reference_proxy(cells: Sequence[Cell], proxies: Sequence[str], choice: str | None) -> str:
    """The proxy the others are ranked against: a named one, the costliest measured, or the last."""
    if choice == "costliest":
        return max(proxies, key=lambda p: statistics.fmean(c.cpu_s for c in cells if c.proxy == p))
    if choice:
        if choice not in proxies:
            raise InvalidInputError(f"--reference {choice} is not among --proxies {list(proxies)}")
        return choice
    return proxies[-1]


def agreement(rows: Sequence[PoolRow], proxy: str, reference: str) -> tuple[float, float]:
    """Spearman's rho and decision accuracy of the proxy's pool ranking against the reference's."""
    mean = {(r.proxy, r.pool): r.mean_pct for r in rows if r.pool != RANDOM}
    pools = [pool for (p, pool) in mean if p == reference]
    a, b = [mean[proxy, pool] for pool in pools], [mean[reference, pool] for pool in pools]
    rho = float(spearmanr(a, b).statistic) if len(pools) > 2 else math.nan
    return rho, decision_accuracy(a, b)


def proxy_summary(rows: Sequence[PoolRow], cells: Sequence[Cell], proxy: str, reference: str) -> dict[str, Any]:
    """One proxy on one corpus: clean effect, cost, which kinds it measures as harmful, agreement."""
    mine = {r.pool: r for r in rows if r.proxy == proxy}
    kinds = [r for name, r in mine.items() if name.startswith("no-")]
    rho, accuracy = agreement(rows, proxy, reference)
    group = [c for c in cells if c.proxy == proxy]
    return {
        "corpus": group[0].corpus, "proxy": proxy, "reference": reference, "cells": len(group),
        "cpu_s_per_cell": statistics.fmean(c.cpu_s for c in group),
        "wall_s_per_cell": statistics.fmean(c.wall_s for c in group),
        "clean_delta_pct": mine[CLEAN].mean_pct, "clean_effect_noise": mine[CLEAN].effect_noise,
        "clean_p_holm": mine[CLEAN].p_holm,
        "harmful_kinds": [r.pool.removeprefix("no-") for r in kinds if r.mean_pct > 0],
        "significant_harmful_kinds": [r.pool.removeprefix("no-") for r in kinds if r.mean_pct > 0 and r.p_holm < ALPHA],
        "kinds": len(kinds), "spearman": rho, "decision_accuracy": accuracy,
    }


# -- printing ------------------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, fmt)


def print_pools(rows: Sequence[PoolRow]) -> None:
    """Every proxy x pool: delta statistics over seeds and cost per cell."""
    print("\n## pools: delta over the same seed's random control, % (mean, std and 95% t-interval over seeds)")
    print(f"{'proxy':14s} {'pool':22s} {'delta':>7s} {'std':>6s} {'95% CI':>17s} {'p':>8s} {'p Holm':>8s} "
          f"{'eff/noise':>9s} {'CPU s':>7s} {'wall s':>7s} {'tokens':>9s} {'kB':>7s}")
    for r in rows:
        ci = f"[{_num(r.ci_low_pct, '+.2f')}, {_num(r.ci_high_pct, '+.2f')}]" if r.pool != RANDOM else ""
        print(f"{r.proxy:14s} {r.pool:22s} {_num(r.mean_pct, '+7.2f'):>7s} {_num(r.std_pct, '6.2f'):>6s} "
              f"{ci:>17s} {_num(r.p_value, '8.2g'):>8s} {_num(r.p_holm, '8.2g'):>8s} "
              f"{_num(r.effect_noise, '9.1f'):>9s} {r.cpu_s:7.1f} {r.wall_s:7.1f} "
              f"{_num(r.pool_tokens, ',.0f'):>9s} {r.pool_bytes / 1e3:7.0f}")


def print_kinds(rows: Sequence[PoolRow], proxies: Sequence[str]) -> None:
    """Per defect kind, the delta of the pool without it: > 0 = removing it helps (measured harmful)."""
    kinds = list(dict.fromkeys(r.pool for r in rows if r.pool.startswith("no-")))
    if not kinds:  # --clean-only
        return
    mean = {(r.proxy, r.pool): r for r in rows}
    print("\n## remove one defect kind: delta of no-<kind>, % (> 0: the kind is measured harmful; "
          f"* Holm-adjusted p < {ALPHA})")
    print(f"{'kind':22s}" + "".join(f"{p:>16s}" for p in proxies))
    for pool in kinds:
        cells = [mean[p, pool] for p in proxies]
        print(f"{pool.removeprefix('no-'):22s}" + "".join(
            f"{_num(r.mean_pct, '+.2f') + ('*' if r.p_holm < ALPHA else ' '):>16s}" for r in cells))


def print_metrics(rows: Sequence[dict[str, Any]]) -> None:
    """Per proxy, the clean pool's change of each of its other metrics (nothing for a proxy without any)."""
    if not rows:
        return
    print("\n## other metrics: clean pool vs random, % change of the metric summed over benchmarks "
          "(+: higher in the clean pool)")
    print(f"{'proxy':14s} {'metric':22s} {'seeds':>5s} {'change':>8s} {'std':>7s} {'eff/noise':>9s}")
    for r in rows:
        print(f"{r['proxy']:14s} {r['metric']:22s} {r['seeds']:5d} {_num(r['mean_pct'], '+8.2f'):>8s} "
              f"{_num(r['std_pct'], '7.2f'):>7s} {_num(r['effect_noise'], '9.1f'):>9s}")


def print_summary(summaries: Sequence[dict[str, Any]]) -> None:
    """Per proxy: how clearly it sees the clean pool, what a cell costs, and how its ranking agrees."""
    reference = summaries[0]["reference"]
    print(f"\n## proxies (ranking of the non-random pools vs {reference})")
    print(f"{'proxy':14s} {'CPU s/cell':>10s} {'wall s/cell':>11s} {'clean %':>8s} {'eff/noise':>9s} "
          f"{'harmful (sig.)':>14s} {'Spearman':>8s} {'dec. acc.':>9s}")
    for s in summaries:
        harmful = f"{len(s['harmful_kinds'])} ({len(s['significant_harmful_kinds'])}) / {s['kinds']}"
        print(f"{s['proxy']:14s} {s['cpu_s_per_cell']:10.1f} {s['wall_s_per_cell']:11.1f} "
              f"{_num(s['clean_delta_pct'], '+8.2f'):>8s} {_num(s['clean_effect_noise'], '9.1f'):>9s} "
              f"{harmful:>14s} {_num(s['spearman'], '8.2f'):>8s} {_num(s['decision_accuracy'], '9.2f'):>9s}")


# -- main ----------------------------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """NaN (an undefined statistic) as null, so that the file is standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--proxies", nargs="+", choices=PROXIES, metavar="PROXY",
                        help=f"proxy configurations, cheapest first (of {', '.join(PROXIES)}; default "
                             + "; ".join(f"{' '.join(p)} for {c}" for c, p in DEFAULT_PROXIES.items()) + ")")
    parser.add_argument("--corpus", choices=["demo", "validation", "both", "images", "videos"], default="both",
                        help="both: the two text corpora; images: the bundled captioned-image set; videos: the "
                             "bundled captioned-video set")
    parser.add_argument("--seeds", type=count(3), default=3,
                        help="seeds per pool (>= 3: a t-interval and a std over seeds), each with its own random control")
    parser.add_argument("--pool-size", type=count(1), help="documents per pool (default 3000; 1500 for images, 1100 "
                                                            "for videos)")
    parser.add_argument("--bench-docs", type=count(1), default=500, help="documents per benchmark")
    parser.add_argument("--clean-only", action="store_true",
                        help="train only the clean and random pools (effect/noise; no remove-one-kind pools)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a TinyLMSpec field of the tiny-lm proxies, e.g. --set max_tokens=200000 "
                             "(small and large scale the result)")
    parser.add_argument("--ngram-tokens", type=count(1), default=2_000_000,
                        help=f"bytes each pool's model fits for {NGRAM_EQUAL_TOKENS} (pools cut or read again)")
    parser.add_argument("--threads", type=count(1), nargs="?", const=1, metavar="N",
                        help="torch threads of the neural proxies (bare --threads: 1, for shared cores; "
                             "default: the spec's, one per core)")
    parser.add_argument("--reference", metavar="PROXY",
                        help="proxy to rank against: a name of --proxies or `costliest` (default: the last)")
    parser.add_argument("--out", type=Path, help="write every cell, pool row and proxy summary here as JSON")
    args = parser.parse_args(argv)
    kind = args.corpus if args.corpus in ("images", "videos") else "text"
    args.proxies = args.proxies or DEFAULT_PROXIES[kind]
    if len(set(args.proxies)) != len(args.proxies):
        parser.error("--proxies names a proxy twice")
    for media, proxies in (("images", CAPTIONERS), ("videos", T2V)):
        if any((p in proxies) != (kind == media) and p != "ngram" for p in args.proxies):
            parser.error(f"{', '.join(proxies)} train on --corpus {media}, and only they do (and ngram, on the captions)")
    if args.reference not in (None, "costliest", *args.proxies):  # before any training, not after it
        parser.error(f"--reference {args.reference} is not among --proxies {list(args.proxies)} (nor `costliest`)")
    if args.out is not None:
        check_writable(args.out)
    return args


def check_writable(out: Path) -> None:
    """Refuse an ``--out`` that could not be written, before any training: a missing or read-only folder."""
    out = out.expanduser()
    folder = out.absolute().parent
    if out.is_dir():
        raise InvalidInputError(f"--out {out}: a folder, not a file")
    if not folder.is_dir():
        raise InvalidInputError(f"--out {out}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise InvalidInputError(f"--out {out}: cannot write there (permission denied)")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    specs = proxy_specs(args.proxies, typed_overrides(args.set), args.threads, args.ngram_tokens)
    for name, spec in specs.items():
        print(f"{name}: {spec.model_dump(exclude={'type'}, exclude_defaults=True) or 'spec defaults'}")
    corpora = ["demo", "validation"] if args.corpus == "both" else [args.corpus]  # both: the two text corpora
    sizes = {name: CORPORA[name].pool_size if args.pool_size is None else args.pool_size for name in corpora}
    for name in corpora:
        check_pool_size(CORPORA[name], sizes[name], args.clean_only)
    seeds = list(range(args.seeds))
    out: dict[str, Any] = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                           "specs": {n: s.model_dump(mode="json") for n, s in specs.items()},
                           "corpora": {}, "cells": [], "pools": [], "metrics": [], "proxies": []}
    started, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="proxy-sensitivity-") as tmp:
        for name in corpora:
            corpus = CORPORA[name]
            cells, about = measure_corpus(corpus, specs, seeds, sizes[name], args.bench_docs, Path(tmp),
                                          args.clean_only)
            rows = [row for proxy in args.proxies for row in pool_rows(cells, proxy)]
            reference = reference_proxy(cells, args.proxies, args.reference)
            summaries = [proxy_summary(rows, cells, proxy, reference) for proxy in args.proxies]
            metrics = [row for proxy in args.proxies for row in metric_rows(cells, proxy)]
            print_pools(rows)
            print_kinds(rows, args.proxies)
            print_metrics(metrics)
            print_summary(summaries)
            out["corpora"][name] = about
            out["cells"] += [asdict(c) for c in cells]
            out["pools"] += [asdict(r) for r in rows]
            out["metrics"] += [{"corpus": name, **row} for row in metrics]
            out["proxies"] += summaries
    print(f"\ntotal {time.perf_counter() - started:.0f} s wall, {time.process_time() - cpu:.0f} CPU s")
    if args.out:
        args.out.expanduser().write_text(json.dumps(json_safe(out), indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    run(main)
