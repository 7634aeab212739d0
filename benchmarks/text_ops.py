"""Throughput of the text OPs (one process, and the stats engine with 1 and 2 workers), next to
Data-Juicer 1.6.1's reference figures.

    python benchmarks/text_ops.py [--docs 20000] [--scale 200000] [--batch-size 1000]

Corpus: ``mlsandbox/resources/text/corpus.jsonl.gz`` (JSONL, ``text`` field) when present, else
generated English-like text with some other scripts, emoji and repeated (spammy) documents.
Documents are cut into batches of ``--batch-size``, as the stats engine does; the OPs of a row
share each batch's derived views (code points, words). Data-Juicer's figures were measured on
documents of ~1.2 kB, so when this corpus's documents are shorter, compare MB/s, not docs/s.
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
    """Run ``ops`` together over ``texts`` in batches (sharing each batch's views); throughput.

    Rates are per second of this process's CPU time (``cpu_*``) and of wall-clock time; on a
    shared machine the CPU-time rate is the one that says what one unshared core does.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(texts), batch_size):
        batch = TextBatch(texts[i : i + batch_size])
        for op in ops:
            op.compute(batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    megabytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
    return {
        "seconds": wall,
        "docs_per_s": len(texts) / wall,
        "mb_per_s": megabytes / wall,
        "cpu_seconds": cpu,
        "cpu_docs_per_s": len(texts) / cpu,
        "cpu_mb_per_s": megabytes / cpu,
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
    print("rates per CPU-second of this process (wall-clock docs/s in the last column)")
    print(f"{'OP':<32}{'docs/s':>11}{'MB/s':>9}{'DJ docs/s':>11}{'x DJ':>7}{'wall docs/s':>13}")

    def row(name: str, r: dict[str, float], dj: float | None) -> None:
        dj_text = f"{dj:>11,.0f}{r['cpu_docs_per_s'] / dj:>7.1f}" if dj else f"{'-':>11}{'':>7}"
        print(
            f"{name:<32}{r['cpu_docs_per_s']:>11,.0f}{r['cpu_mb_per_s']:>9.2f}{dj_text}"
            f"{r['docs_per_s']:>13,.0f}"
        )

    alone = {name: time_ops(texts, [create_op(name)], batch_size) for name in OPS}
    for name, r in alone.items():
        row(name, r, DATA_JUICER_DOCS_PER_S.get(name))
    wall_seconds = sum(alone[n]["seconds"] for n in NO_MODEL_OPS)
    cpu_seconds = sum(alone[n]["cpu_seconds"] for n in NO_MODEL_OPS)
    sequential = {
        "cpu_docs_per_s": len(texts) / cpu_seconds,
        "cpu_mb_per_s": megabytes / cpu_seconds,
        "docs_per_s": len(texts) / wall_seconds,
    }
    row("eight one after another", sequential, DATA_JUICER_SEQUENTIAL[0])
    fused = time_ops(texts, [create_op(n) for n in NO_MODEL_OPS], batch_size)
    row("eight together (shared batch)", fused, DATA_JUICER_FUSED[0])
    row("all nine together", time_ops(texts, [create_op(n) for n in OPS], batch_size), None)
    print(
        f"eight together vs Data-Juicer fused: x{fused['cpu_docs_per_s'] / DATA_JUICER_FUSED[0]:.1f}"
        f" by docs/s, x{fused['cpu_mb_per_s'] / DATA_JUICER_FUSED[1]:.1f} by MB/s"
    )
    for workers in (1, 2):
        seconds = time_stats_engine(texts, workers, batch_size)
        print(f"stats engine, all nine, {workers} worker process(es), wall: {len(texts) / seconds:,.0f} docs/s, "
              f"{megabytes / seconds:.2f} MB/s ({seconds:.1f} s)")


def time_stats_engine(texts: list[str], workers: int, batch_size: int) -> float:
    """Wall seconds of ``compute_stats`` (no cache) over the texts with all nine OPs."""
    import tempfile

    import pyarrow as pa

    from mlsandbox.data import Dataset
    from mlsandbox.stats import compute_stats

    table = pa.table({"id": [str(i) for i in range(len(texts))], "text": texts})
    dataset = Dataset(table=table, digest=f"bench-{len(texts)}", source="benchmark", name="benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        compute_stats(dataset, [create_op(n) for n in OPS], Path(tmp), workers=workers,
                      batch_size=batch_size, progress=False)
        return time.perf_counter() - start


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
