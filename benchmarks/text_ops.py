"""Throughput of the text OPs, single process, next to Data-Juicer 1.6.1's reference figures.

    python benchmarks/text_ops.py [--docs 20000] [--scale 200000] [--batch-size 1000]

Corpus: ``mlsandbox/resources/text/corpus.jsonl.gz`` (JSONL, ``text`` field) when present, else
generated English-like text with some other scripts, emoji and repeated (spammy) documents.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import string
import time
from collections.abc import Sequence
from pathlib import Path

from mlsandbox.ops import Op, TextBatch, create_op

CORPUS = Path(__file__).resolve().parents[1] / "mlsandbox" / "resources" / "text" / "corpus.jsonl.gz"

OPS = [
    "alphanumeric_filter",
    "character_repetition_filter",
    "special_characters_filter",
    "text_length_filter",
    "words_num_filter",
    "word_repetition_filter",
    "stopwords_filter",
    "flagged_words_filter",
    "language_id_score_filter",
]
NO_MODEL_OPS = OPS[:-1]

# Data-Juicer 1.6.1, one process, 20k mixed documents (24 MB), docs/s.
DATA_JUICER_DOCS_PER_S = {
    "alphanumeric_filter": 9.0e3,
    "character_repetition_filter": 2.9e3,
    "special_characters_filter": 23.7e3,
    "text_length_filter": 279e3,
    "words_num_filter": 4.8e3,
    "word_repetition_filter": 2.8e3,
    "stopwords_filter": 4.1e3,
    "flagged_words_filter": 4.2e3,
}
DATA_JUICER_SEQUENTIAL = (530.0, 0.64)  # the eight one after another: docs/s, MB/s
DATA_JUICER_FUSED = (950.0, 1.15)  # the eight fused (one pass, shared words): docs/s, MB/s


def time_ops(texts: Sequence[str], ops: Sequence[Op], batch_size: int = 1000) -> dict[str, float]:
    """Run ``ops`` together over ``texts`` in batches (sharing each batch's views); throughput."""
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        batch = TextBatch(texts[i : i + batch_size])
        for op in ops:
            op.compute(batch)
    seconds = time.perf_counter() - start
    megabytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
    return {
        "seconds": seconds,
        "docs_per_s": len(texts) / seconds,
        "mb_per_s": megabytes / seconds,
    }


def load_corpus(n_docs: int) -> tuple[list[str], str]:
    """``n_docs`` texts of the shipped corpus (repeated if it is smaller), or generated ones."""
    if CORPUS.exists():
        with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f if line.strip()]
        source = f"{CORPUS.name} ({len(texts)} documents)"
    else:
        texts, source = generated_corpus(n_docs), "generated English-like text"
    return repeat_to(texts, n_docs), source


def repeat_to(texts: Sequence[str], n: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(n)]


def generated_corpus(n_docs: int, seed: int = 0) -> list[str]:
    """Documents of ~1.2 kB: Zipf-distributed words in sentences and paragraphs, some noise."""
    from stop_words import get_stop_words

    rng = random.Random(seed)
    letters = string.ascii_lowercase
    vocabulary = get_stop_words("en") + [
        "".join(rng.choices(letters, k=rng.randint(3, 11))) for _ in range(20_000)
    ]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    foreign = ["Привет мир, как дела?", "你好，世界。今天天气很好。", "مرحبا بالعالم", "Grüße aus München!"]
    docs = []
    for _ in range(n_docs):
        paragraphs = []
        for _ in range(rng.randint(1, 6)):
            sentences = []
            for _ in range(rng.randint(1, 5)):
                words = rng.choices(vocabulary, weights, k=rng.randint(4, 30))
                if rng.random() < 0.1:
                    words.insert(rng.randrange(len(words)), str(rng.randint(0, 10_000)))
                sentence = " ".join(words).capitalize() + rng.choice([".", ".", ".", "?", "!", " 😀"])
                sentences.append(sentence)
            paragraphs.append(" ".join(sentences))
        if rng.random() < 0.05:
            paragraphs.append(rng.choice(foreign))
        if rng.random() < 0.05:  # spam: one line many times
            paragraphs = paragraphs[:1] * rng.randint(5, 30)
        docs.append("\n\n".join(paragraphs))
    return docs


def report(texts: list[str], label: str, batch_size: int) -> None:
    megabytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
    print(f"\n{label}: {len(texts)} documents, {megabytes:.1f} MB, batches of {batch_size}")
    print(f"{'OP':<32}{'docs/s':>12}{'MB/s':>10}{'DJ docs/s':>12}{'x DJ':>8}")
    sequential = 0.0
    for name in OPS:
        r = time_ops(texts, [create_op(name)], batch_size)
        dj = DATA_JUICER_DOCS_PER_S.get(name)
        if name in NO_MODEL_OPS:
            sequential += r["seconds"]
        ratio = f"{r['docs_per_s'] / dj:>8.1f}" if dj else f"{'':>8}"
        dj_text = f"{dj:>12,.0f}" if dj else f"{'-':>12}"
        print(f"{name:<32}{r['docs_per_s']:>12,.0f}{r['mb_per_s']:>10.2f}{dj_text}{ratio}")
    seq_docs = len(texts) / sequential
    print(
        f"{'eight one after another':<32}{seq_docs:>12,.0f}{megabytes / sequential:>10.2f}"
        f"{DATA_JUICER_SEQUENTIAL[0]:>12,.0f}{seq_docs / DATA_JUICER_SEQUENTIAL[0]:>8.1f}"
    )
    fused = time_ops(texts, [create_op(n) for n in NO_MODEL_OPS], batch_size)
    print(
        f"{'eight together (shared batch)':<32}{fused['docs_per_s']:>12,.0f}{fused['mb_per_s']:>10.2f}"
        f"{DATA_JUICER_FUSED[0]:>12,.0f}{fused['docs_per_s'] / DATA_JUICER_FUSED[0]:>8.1f}"
    )
    nine = time_ops(texts, [create_op(n) for n in OPS], batch_size)
    print(f"{'all nine together':<32}{nine['docs_per_s']:>12,.0f}{nine['mb_per_s']:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000, help="documents of the mixed corpus")
    parser.add_argument("--scale", type=int, default=200_000, help="documents of the scale-up (0: skip)")
    parser.add_argument("--batch-size", type=int, default=1000, help="documents per TextBatch")
    args = parser.parse_args()

    texts, source = load_corpus(args.docs)
    time_ops(texts[:100], [create_op(n) for n in OPS])  # load tables and the fastText model
    print(f"corpus: {source}")
    print(
        "Data-Juicer 1.6.1 reference (20k mixed docs, 24 MB, one process): the eight without "
        f"language id one after another {DATA_JUICER_SEQUENTIAL[0]:.0f} docs/s "
        f"({DATA_JUICER_SEQUENTIAL[1]} MB/s), fused {DATA_JUICER_FUSED[0]:.0f} docs/s "
        f"({DATA_JUICER_FUSED[1]} MB/s)"
    )
    report(texts, "mixed corpus", args.batch_size)
    if args.scale:
        report(repeat_to(texts, args.scale), "scale-up (corpus repeated)", args.batch_size)


if __name__ == "__main__":
    main()
