"""A byte-bigram language model: the smallest real trainer that speaks mlsandbox's protocol.

Reads the pool (JSONL, one ``{"text": ...}`` per line, repeats included), fits add-k smoothed
byte-bigram probabilities, saves them to ``<output_dir>/bigram.npy`` and writes the metrics
file mlsandbox reads back::

    {"benchmarks": {"<name>": {"bpb": <bits per byte>, "score": <1 / bpb>}},
     "metrics": {"train_bpb": ..., "train_bytes": ...}}

Benchmarks come from ``--benchmarks-file``, a JSON object ``{name: path to JSONL}``. Replace
``fit`` and ``bits_per_byte`` with calls into a real training codebase and keep the rest.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

BOS = 256  # the row used to predict a document's first byte


def read_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def byte_pairs(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    prev, nxt = [], []
    for text in texts:
        data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
        if data.size:
            prev.append(np.concatenate([[BOS], data[:-1]]))
            nxt.append(data)
    if not prev:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(prev), np.concatenate(nxt)


def fit(texts: list[str], smoothing: float) -> np.ndarray:
    """log2 P(next byte | previous byte), rows 0..255 for bytes and 256 for document start."""
    prev, nxt = byte_pairs(texts)
    counts = np.full((257, 256), smoothing, dtype=np.float64)
    np.add.at(counts, (prev, nxt), 1.0)
    return np.log2(counts / counts.sum(axis=1, keepdims=True))


def bits_per_byte(log2p: np.ndarray, texts: list[str]) -> float:
    prev, nxt = byte_pairs(texts)
    if nxt.size == 0:
        raise ValueError("no bytes to score")
    return float(-log2p[prev, nxt].sum() / nxt.size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool-file", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--seed", type=float, default=0, help="unused: bigram fitting is exact")
    parser.add_argument("--metrics-file", default="metrics.json")
    parser.add_argument("--benchmarks-file", default="")
    parser.add_argument("--smoothing", type=float, default=0.1)
    args = parser.parse_args(argv)
    if args.smoothing <= 0:
        parser.error("--smoothing must be positive")

    texts = read_texts(args.pool_file)
    if not texts:
        print(f"pool {args.pool_file} is empty", file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    log2p = fit(texts, args.smoothing)
    np.save(args.output_dir / "bigram.npy", log2p)
    train_bpb = bits_per_byte(log2p, texts)
    print(f"fitted byte bigram on {len(texts)} docs, train bpb {train_bpb:.4f}")

    benchmarks: dict[str, dict[str, float]] = {}
    if args.benchmarks_file:
        for name, path in json.loads(Path(args.benchmarks_file).read_text()).items():
            bpb = bits_per_byte(log2p, read_texts(Path(path)))
            benchmarks[name] = {"bpb": bpb, "score": 1.0 / bpb}
            print(f"benchmark {name}: bpb {bpb:.4f}")
    metrics = {
        "benchmarks": benchmarks,
        "metrics": {"train_bpb": train_bpb, "train_bytes": float(sum(len(t.encode()) for t in texts))},
    }
    metrics_path = Path(args.metrics_file)
    if not metrics_path.is_absolute():
        metrics_path = args.output_dir / metrics_path
    metrics_path.write_text(json.dumps(metrics, indent=2))
    assert math.isfinite(train_bpb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
