"""Near-duplicates: does a proxy see redundant documents as harmful, and would a probe show it?

    python benchmarks/near_duplicates.py                         # the 4-gram, 5 seeds, validation corpus
    python benchmarks/near_duplicates.py --proxies ngram tiny-lm --seeds 3

The bundled validation corpus plants near-duplicates as pairs: a clean document ``<id>`` and its
close copy ``<id>-dup`` (defect ``near_duplicate``). Per seed, three pools of ``--pool-size``
documents share one random fill of documents outside any pair:

    pairs       every document of every pair (both copies), plus the fill
    unique      as many clean documents outside any pair, plus the same fill
    random      the control: a uniform sample of the whole corpus

``pairs`` against ``random`` is what a probe would report for a pool that concentrates
near-duplicates (the pairs' originals are clean, so such a pool is also cleaner than random);
``pairs`` against ``unique`` holds the clean share fixed and isolates the cost of the redundancy.
Deltas are the package's Eq. 3 over the same seed's other pool, summarised over seeds as in
``benchmarks/proxy_sensitivity.py`` (mean, std, 95% t-interval, Holm-adjusted p, effect/noise).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from mlsandbox.data import ID, TEXT, load_dataset
from mlsandbox.delta import adjust_summaries, summarize_deltas
from mlsandbox.errors import InvalidInputError
from mlsandbox.models import TrainingJob, load_benchmarks
from mlsandbox.spec import BenchmarkSpec, DatasetSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import count, run  # noqa: E402
from proxy_sensitivity import CORPORA, PROXIES, benchmark_scores, proxy_specs, run_cell, warm_up  # noqa: E402

DUP = "-dup"


def pair_rows(ids: np.ndarray, defects: np.ndarray) -> np.ndarray:
    """Row numbers of every near-duplicate and of the document it copies."""
    copies = {str(i) for i, d in zip(ids, defects) if d == "near_duplicate"}
    originals = {i.removesuffix(DUP) for i in copies}
    return np.flatnonzero([str(i) in copies or str(i) in originals for i in ids])


def check_pool_size(pairs: np.ndarray, n: int, size: int) -> None:
    """Refuse a ``--pool-size`` the three pools cannot be drawn at, before anything is trained."""
    if size <= len(pairs):
        raise InvalidInputError(f"--pool-size {size} must exceed the {len(pairs)} documents of the pairs")
    if size > n:
        raise InvalidInputError(f"--pool-size {size} exceeds the corpus's {n} documents")


def draw(pairs: np.ndarray, clean: np.ndarray, n: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """One seed's three pools (row numbers)."""
    check_pool_size(pairs, n, size)
    rng = np.random.default_rng(seed)
    outside = np.setdiff1d(np.arange(n), pairs)
    fill = rng.choice(outside, size - len(pairs), replace=False)
    left = np.setdiff1d(clean, np.concatenate([pairs, fill]))
    if len(left) < len(pairs):
        raise InvalidInputError(f"--pool-size {size} is too large: seed {seed}'s fill leaves {len(left)} clean documents "
                                f"for the unique pool's {len(pairs)} substitutes")
    substitutes = rng.choice(left, len(pairs), replace=False)
    return {"pairs": np.concatenate([pairs, fill]), "unique": np.concatenate([substitutes, fill]),
            "random": rng.choice(n, size, replace=False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--proxies", nargs="+", choices=PROXIES, default=["ngram"], metavar="PROXY")
    parser.add_argument("--seeds", type=count(3), default=5, help="seeds 0..N-1 (>= 3: a t-interval; default 5)")
    parser.add_argument("--pool-size", type=count(1), default=3000)
    parser.add_argument("--bench-docs", type=count(1), default=500, help="documents per benchmark")
    parser.add_argument("--threads", type=count(1), nargs="?", const=1, help="torch threads of the neural proxies")
    args = parser.parse_args()
    corpus = CORPORA["validation"]
    dataset = load_dataset(DatasetSpec(path=corpus.path, text_field=TEXT))
    ids = np.array(dataset.table[ID].to_pylist(), dtype=object)
    defects = np.array(dataset.table["defect"].to_pylist(), dtype=object)
    texts = np.array(dataset.table[TEXT].to_pylist(), dtype=object)
    pairs = pair_rows(ids, defects)
    clean = np.flatnonzero([d is None for d in defects])
    check_pool_size(pairs, len(ids), args.pool_size)
    print(f"{corpus.path}: {len(ids):,} documents, {len(pairs):,} in near-duplicate pairs; "
          f"pools of {args.pool_size}, seeds 0-{args.seeds - 1}")
    benchmarks = load_benchmarks([BenchmarkSpec(name=b, path=corpus.bench_path.format(b), max_docs=args.bench_docs)
                                  for b in corpus.benchmarks or ()], Path.cwd()).benchmarks
    specs = proxy_specs(args.proxies, {}, args.threads, 2_000_000)
    with tempfile.TemporaryDirectory(prefix="near-duplicates-") as tmp:
        base = TrainingJob(texts=texts[:1].tolist(), output_dir=Path(tmp) / "out", tokenizer_texts=texts.tolist(),
                           source_digest=dataset.digest, cache_dir=Path(tmp) / "cache")
        print(f"{'proxy':8s} {'comparison':16s} {'delta %':>8s} {'std':>6s} {'95% CI':>17s} {'p Holm':>8s} "
              f"{'eff/noise':>9s}  per seed")
        for proxy, spec in specs.items():
            warm_up(spec, base)
            scores: dict[str, list[dict[str, float]]] = {"pairs": [], "unique": [], "random": []}
            for seed in range(args.seeds):
                for name, rows in draw(pairs, clean, len(ids), args.pool_size, seed).items():
                    scores[name].append(benchmark_scores(run_cell(spec, texts[rows].tolist(), {}, seed, base, benchmarks)[0]))
            comparisons = {"pairs vs random": ("pairs", "random"), "pairs vs unique": ("pairs", "unique")}
            summaries = adjust_summaries([summarize_deltas(scores[a], scores[b], pool_per_seed=True) for a, b in comparisons.values()])
            for label, s in zip(comparisons, summaries):
                assert s is not None
                noise = abs(s.mean) / s.std if s.std > 0 else math.inf
                print(f"{proxy:8s} {label:16s} {s.mean_pct:+8.2f} {s.std_pct:6.2f} "
                      f"[{s.ci_low_pct:+6.2f}, {s.ci_high_pct:+6.2f}] {s.p_adjusted:8.2g} {noise:9.1f}  "
                      + " ".join(f"{100 * d:+.2f}" for d in s.deltas), flush=True)


if __name__ == "__main__":
    run(main)
