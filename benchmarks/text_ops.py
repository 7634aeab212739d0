"""The eight statistical text OPs, timed next to Data-Juicer 1.6.1 on the same documents in one run.

    python benchmarks/text_ops.py [--docs 20000] [--batch-size 1000] [--repeats 3] [--check 2000]
                                  [--dj-python /path/to/data-juicer-venv/bin/python]

Corpus: ``mlsandbox/resources/text/corpus.jsonl.gz`` (``text`` field, repeated up to ``--docs``)
when present, else generated English-like text with other scripts, emoji and spam. Both sides get
the same documents in batches of ``--batch-size``, one process each, the same OPs and params
(Data-Juicer's arguments from each OP's Data-Juicer mapping), and the same stopword and
flagged-word lists (written here from mlsandbox's lists, passed as ``stopwords_dir`` and
``flagged_words_dir``, so Data-Juicer downloads nothing). Data-Juicer runs in its own interpreter
(``--dj-python``, a venv with ``py-data-juicer==1.6.1``): this file, started with ``--dj-worker``.

Times are CPU seconds of the measuring process, the best of ``--repeats`` runs: on a shared
machine they say what one core does. Data-Juicer's OPs are called the way its executor's map
calls them (``op.compute_stats`` per batch of plain lists), without the dataset layer around it,
so its figures are a lower bound. "Fused" is Data-Juicer's ``fuse_operators`` (the word-based
OPs share each sample's words); mlsandbox's counterpart is one shared ``TextBatch``. mlsandbox's
one-off costs are timed in fresh processes: compiling its kernels (once per installation: numba
caches the machine code) and loading them (once per process). Finally both sides' values on the
first ``--check`` documents must be identical (without Data-Juicer: identical to the plain port
in ``tests/_dj_reference.py``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _cli import count, run

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "mlsandbox" / "resources" / "text" / "corpus.jsonl.gz"

#: The eight statistical OPs and their stat keys (language id, model-backed, is timed apart).
OPS = {
    "alphanumeric_filter": "alnum_ratio",
    "character_repetition_filter": "char_rep_ratio",
    "special_characters_filter": "special_char_ratio",
    "text_length_filter": "text_len",
    "words_num_filter": "num_words",
    "word_repetition_filter": "word_rep_ratio",
    "stopwords_filter": "stopwords_ratio",
    "flagged_words_filter": "flagged_words_ratio",
}
LANGUAGE_ID = "language_id_score_filter"


def load_corpus(n_docs: int) -> tuple[list[str], str]:
    """``n_docs`` texts of the shipped corpus (repeated if it is smaller), or generated ones."""
    if CORPUS.exists():
        with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f if line.strip()]
        source = f"{CORPUS.name} ({len(texts)} documents, repeated)"
    else:
        texts, source = generated_corpus(n_docs), "generated English-like text"
    return [texts[i % len(texts)] for i in range(n_docs)], source


def generated_corpus(n_docs: int, seed: int = 0) -> list[str]:
    """Documents of ~1.2 kB: Zipf-distributed words in sentences and paragraphs, some noise."""
    from stop_words import get_stop_words

    rng = random.Random(seed)
    vocabulary = get_stop_words("en") + [
        "".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 11))) for _ in range(20_000)
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
                sentences.append(" ".join(words).capitalize() + rng.choice([".", ".", "?", "!", " 😀"]))
            paragraphs.append(" ".join(sentences))
        if rng.random() < 0.05:
            paragraphs.append(rng.choice(foreign))
        if rng.random() < 0.05:  # spam: one line many times
            paragraphs = paragraphs[:1] * rng.randint(5, 30)
        docs.append("\n\n".join(paragraphs))
    return docs


def best_of(repeats: int, run: Callable[[], None]) -> float:
    """The least CPU time of ``repeats`` runs (the others were slowed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- mlsandbox --------------------------------------------------------------------------------


def measure_mlsandbox(texts: list[str], batch_size: int, repeats: int) -> dict[str, float]:
    """CPU seconds: each OP alone (its own batch views), then the eight on one shared batch."""
    from mlsandbox.ops import TextBatch, create_op

    def run(names: Sequence[str]) -> Callable[[], None]:
        ops = [create_op(n) for n in names]

        def go() -> None:
            for chunk in batches(texts, batch_size):
                batch = TextBatch(chunk)
                for op in ops:
                    op.compute(batch)

        return go

    warm_up = TextBatch(texts[:batch_size])  # one-off work (kernels, tables, fastText) is timed apart
    for name in [*OPS, LANGUAGE_ID]:
        create_op(name).compute(warm_up)
    seconds = {name: best_of(repeats, run([name])) for name in OPS}
    seconds["together"] = best_of(repeats, run(list(OPS)))
    seconds[LANGUAGE_ID] = best_of(1, run([LANGUAGE_ID]))
    return seconds


def mlsandbox_stats(texts: list[str], batch_size: int) -> dict[str, list[float]]:
    from mlsandbox.ops import TextBatch, create_op

    ops = [create_op(n) for n in OPS]
    out: dict[str, list[float]] = {key: [] for key in OPS.values()}
    for chunk in batches(texts, batch_size):
        batch = TextBatch(chunk)
        for op in ops:
            for key, values in op.compute(batch).items():
                out[key] += values.tolist()
    return out


def setup_probe() -> None:
    """In a fresh process: CPU seconds of the first batch's one-off work (kernels, tables)."""
    from mlsandbox.ops import TextBatch, create_op

    ops = [create_op(n) for n in OPS]
    start = time.process_time()
    batch = TextBatch(["A first text, to load everything. " * 3, ""])
    for op in ops:
        op.compute(batch)
    print(json.dumps({"seconds": time.process_time() - start}))


def one_off_costs() -> dict[str, float]:
    """Kernel compilation (empty numba cache) and per-process loading (filled cache), fresh processes."""
    costs = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for name in ("compile", "load"):
            done = subprocess.run(
                [sys.executable, __file__, "--setup-probe"], env=env, capture_output=True, text=True, check=True
            )
            costs[name] = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return costs


# --- Data-Juicer ------------------------------------------------------------------------------


def data_juicer_process(words_dir: Path) -> list[dict[str, dict[str, Any]]]:
    """The eight OPs as a Data-Juicer ``process:`` list with mlsandbox's params and word lists."""
    from mlsandbox.ops import create_op

    process = []
    for name in OPS:
        op = create_op(name)
        mapping = op.data_juicer
        args: dict[str, Any] = {**mapping.inert, **mapping.fixed} if mapping else {}
        args.update(op.params.model_dump())
        if mapping is not None and mapping.words is not None:
            args[mapping.words.folder_arg] = str(words_dir)
        process.append({name: args})
    return process


def write_word_lists(words_dir: Path, process: list[dict[str, dict[str, Any]]]) -> None:
    """mlsandbox's lists in Data-Juicer's asset format: ``{lang: [words]}`` in a JSON file."""
    from mlsandbox.ops.text.flagged_words_filter import flagged_words
    from mlsandbox.ops.text.stopwords_filter import stopwords

    args = {name: a for step in process for name, a in step.items()}
    lists = {
        "stopwords": {args["stopwords_filter"]["lang"]: sorted(stopwords(args["stopwords_filter"]["lang"]))},
        "flagged_words": {args["flagged_words_filter"]["lang"]: sorted(flagged_words())},
    }
    for kind, words in lists.items():
        (words_dir / f"{kind}.json").write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")


def measure_data_juicer(
    dj_python: str, texts: list[str], batch_size: int, repeats: int, check: int
) -> dict[str, Any]:
    """Run this file with ``--dj-worker`` in Data-Juicer's interpreter; its timings and values."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        process = data_juicer_process(work)
        write_word_lists(work, process)
        with open(work / "docs.jsonl", "w", encoding="utf-8") as f:
            for text in texts:
                f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
        job = {"process": process, "batch_size": batch_size, "repeats": repeats, "check": check}
        (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
        done = subprocess.run(
            [dj_python, str(Path(__file__).resolve()), "--dj-worker", str(work)],
            cwd=work, capture_output=True, text=True,
        )
        if done.returncode != 0:  # as a crashed trainer: one line (its last), the tail logged
            from mlsandbox.errors import EvaluationError

            said = [line for line in done.stderr.splitlines() if line.strip()]
            raise EvaluationError(f"the Data-Juicer run failed ({dj_python}, exit code {done.returncode})"
                                  + (f": {said[-1][:300]}" if said else ""), done.stderr[-4000:])
        return json.loads((work / "result.json").read_text(encoding="utf-8"))


def dj_worker(work: Path) -> None:
    """Inside Data-Juicer's interpreter: time its OPs alone, unfused and fused; keep some values."""
    start = time.process_time()
    import data_juicer
    from data_juicer.ops.load import load_ops
    from data_juicer.ops.op_fusion import fuse_operators
    from data_juicer.utils.constant import Fields

    job = json.loads((work / "job.json").read_text(encoding="utf-8"))
    with open(work / "docs.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    ops = load_ops(job["process"])
    setup = time.process_time() - start
    chunks = batches(texts, job["batch_size"])
    last: list[dict[str, Any]] = []

    def timed(op_list: list[Any]) -> float:
        # Fresh stats dicts, built before the clock starts: OPs skip stats already present.
        samples = [{"text": list(c), Fields.stats: [{} for _ in c]} for c in chunks]
        last.clear()
        start = time.process_time()
        for batch in samples:
            for op in op_list:
                batch = op.compute_stats(batch)
            last.extend(batch[Fields.stats])
        return time.process_time() - start

    def best(op_list: list[Any]) -> float:
        return min(timed(op_list) for _ in range(job["repeats"]))

    result: dict[str, Any] = {"version": data_juicer.__version__, "setup": setup}
    result["per_op"] = {op._name: best([op]) for op in ops}
    result["unfused"] = best(ops)
    fused = fuse_operators(ops)
    result["fused_ops"] = [op._name for op in fused]
    result["fused"] = best(fused)
    keys = sorted(last[0]) if last else []
    result["stats"] = {key: [s[key] for s in last[: job["check"]]] for key in keys}
    (work / "result.json").write_text(json.dumps(result), encoding="utf-8")


# --- values -----------------------------------------------------------------------------------


def reference_stats(texts: list[str]) -> dict[str, list[float]]:
    """The plain per-text port of Data-Juicer's code that the tests use."""
    sys.path.insert(0, str(ROOT / "tests"))
    import _dj_reference as dj

    from mlsandbox.ops.text.flagged_words_filter import flagged_words
    from mlsandbox.ops.text.stopwords_filter import stopwords

    port = {
        "alnum_ratio": dj.alnum_ratio, "char_rep_ratio": dj.char_rep_ratio,
        "special_char_ratio": dj.special_char_ratio, "text_len": dj.text_len, "num_words": dj.num_words,
        "word_rep_ratio": dj.word_rep_ratio,
        "stopwords_ratio": lambda t: dj.word_list_ratio(t, stopwords("en")),
        "flagged_words_ratio": lambda t: dj.word_list_ratio(t, flagged_words()),
    }
    return {key: [f(t) for t in texts] for key, f in port.items()}


def compare(ours: dict[str, list[float]], theirs: dict[str, list[float]], n: int, label: str) -> bool:
    """Print whether every stat is identical on the first ``n`` documents."""
    differing = []
    for key in OPS.values():
        mine, other = ours[key][:n], theirs.get(key, [])[:n]
        bad = [i for i, (a, b) in enumerate(zip(mine, other)) if a != b]
        if bad or len(mine) != len(other):
            i = bad[0] if bad else min(len(mine), len(other))
            differing.append(f"{key}: {len(bad)} differ, first doc {i}: {mine[i:i + 1]} vs {other[i:i + 1]}")
    if differing:
        print(f"values: DIFFERENT from {label} on the first {n} documents:\n  " + "\n  ".join(differing))
    else:
        print(f"values: all {len(OPS)} stats identical to {label} on the first {n} documents")
    return not differing


# --- report -----------------------------------------------------------------------------------


def report(args: argparse.Namespace) -> int:
    texts, source = load_corpus(args.docs)
    megabytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
    print(f"corpus: {source}; {len(texts)} documents, {megabytes:.1f} MB; batches of {args.batch_size}")
    print(f"CPU seconds of one process, best of {args.repeats} (language id: one run)\n")
    costs = one_off_costs()
    ours = measure_mlsandbox(texts, args.batch_size, args.repeats)
    dj = measure_data_juicer(args.dj_python, texts, args.batch_size, args.repeats, args.check) if args.dj_python else None

    def row(label: str, mine: float, theirs: float | None) -> None:
        other = f"{theirs:>20.2f}{theirs / mine:>8.1f}x" if theirs is not None else f"{'-':>20}{'':>9}"
        print(f"{label:<44}{mine:>12.3f}{other}")

    dj_label = f"Data-Juicer {dj['version']}" if dj else "Data-Juicer"
    print(f"{'OP':<44}{'mlsandbox':>12}{dj_label:>20}{'ratio':>9}")
    for name in OPS:
        row(name, ours[name], dj["per_op"][name] if dj else None)
    row("sum of the eight, each alone", sum(ours[n] for n in OPS), sum(dj["per_op"].values()) if dj else None)
    if dj:
        row("eight together (DJ: one after another)", ours["together"], dj["unfused"])
        row("eight together (DJ: fused)", ours["together"], dj["fused"])
    else:
        row("eight together (one shared batch)", ours["together"], None)
    print(f"{LANGUAGE_ID + ' (not in the eight)':<44}{ours[LANGUAGE_ID]:>12.3f}{'not run':>20}")
    print(
        f"\nmlsandbox one-off: kernel compilation {costs['compile']:.2f} s (once per installation), "
        f"loading {costs['load']:.2f} s (once per process)"
    )
    if dj is None:
        print("Data-Juicer was not measured (pass --dj-python PATH, a venv with py-data-juicer==1.6.1)")
        sample = texts[: args.check]
        same = compare(mlsandbox_stats(sample, args.batch_size), reference_stats(sample), len(sample),
                       "the Data-Juicer port in tests/_dj_reference.py")
        return 0 if same else 1
    print(f"Data-Juicer one-off: import and OP construction {dj['setup']:.2f} s (once per process)")
    print(f"Data-Juicer fused OPs: {', '.join(dj['fused_ops'])}")
    print(
        f"\neight together: x{dj['fused'] / ours['together']:.1f} Data-Juicer fused, "
        f"x{dj['unfused'] / ours['together']:.1f} unfused; "
        f"with mlsandbox's per-process loading x{dj['fused'] / (ours['together'] + costs['load']):.1f} fused; "
        f"with compilation too x{dj['fused'] / (ours['together'] + costs['load'] + costs['compile']):.1f} fused"
    )
    sample = texts[: args.check]
    return 0 if compare(mlsandbox_stats(sample, args.batch_size), dj["stats"], len(sample), dj_label) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=count(1), default=20_000, help="documents to process")
    parser.add_argument("--batch-size", type=count(1), default=1000, help="documents per batch (both sides)")
    parser.add_argument("--repeats", type=count(1), default=3, help="runs per measurement; the fastest counts")
    parser.add_argument("--check", type=count(0), default=2000, help="documents whose values are compared")
    parser.add_argument("--dj-python", help="Python of a venv with py-data-juicer==1.6.1")
    parser.add_argument("--dj-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--setup-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dj_worker:
        dj_worker(args.dj_worker)
        return 0
    if args.setup_probe:
        setup_probe()
        return 0
    if args.dj_python:
        found = shutil.which(args.dj_python)
        if found is None:
            from mlsandbox.errors import InvalidInputError

            raise InvalidInputError(f"--dj-python {args.dj_python}: no such executable (a venv's bin/python with "
                                    "py-data-juicer==1.6.1)")
        args.dj_python = os.path.abspath(found)  # it runs in a temporary folder; a venv's python stays unresolved
    return report(args)


if __name__ == "__main__":
    if "--dj-worker" in sys.argv:  # in Data-Juicer's interpreter, where mlsandbox may not be installed
        sys.exit(main())
    sys.exit(run(main))
