"""The n-gram model, the evaluators and the shared model interface (specs, registry, save/load)."""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from mlsandbox.errors import EvaluationError
from mlsandbox.models import (
    PerplexityEvaluator,
    TrainingJob,
    evaluator_for,
    load_benchmark,
    load_model,
    trainer_class,
    trainer_for,
)
from mlsandbox.models.ngram import _TABLE_ARRAYS, KneserNey, NgramModel, token_budget
from mlsandbox.spec import BenchmarkSpec, EvaluatorSpec, NgramSpec, TinyLMSpec, model_spec_from_dict

WORDS = ("the cat sat on a mat while dogs ran across green fields and birds sang "
         "softly in tall trees near the quiet river under a bright morning sky").split()


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))).capitalize() + "."
        for _ in range(n)
    ]


def noise(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(chr(rng.randrange(33, 127)) for _ in range(200)) for _ in range(n)]


def fit(tmp_path: Path, spec: NgramSpec, texts: list[str], seed: int = 0) -> NgramModel:
    model = trainer_for(spec).train(TrainingJob(texts=texts, output_dir=tmp_path, seed=seed))
    assert isinstance(model, NgramModel)
    return model


def test_model_trained_on_text_prefers_similar_text_over_random_bytes(tmp_path: Path) -> None:
    model = fit(tmp_path, NgramSpec(), sentences(300, 0))
    assert model.bits_per_byte(sentences(50, 1)) < 2.0 < model.bits_per_byte(noise(20, 2))


def test_higher_order_beats_unigram_on_held_out_text(tmp_path: Path) -> None:
    train, held_out = sentences(300, 0), sentences(50, 1)
    unigram = fit(tmp_path, NgramSpec(order=1), train).bits_per_byte(held_out)
    five = fit(tmp_path, NgramSpec(order=5), train).bits_per_byte(held_out)
    assert five < unigram


def test_kneser_ney_distribution_sums_to_one_for_every_context() -> None:
    seqs = [np.frombuffer(t.encode(), dtype=np.uint8) for t in sentences(40, 0)]
    lm = KneserNey.fit(seqs, vocab=256, order=3, discount=None)
    for context in (b"th", b"zz", b"a "):
        candidates = [np.frombuffer(context + bytes([b]), dtype=np.uint8) for b in range(256)]
        # The last symbol's probability given the two before it.
        last = [lm.log2_probs([c])[-1] for c in candidates]
        assert sum(2.0 ** p for p in last) == pytest.approx(1.0, abs=1e-9)


def reference_log2_probs(lm: KneserNey, seq: np.ndarray) -> list[float]:
    """Interpolated Kneser-Ney, one position and one dictionary look-up at a time."""
    tables = [({int(k): c for k, c in zip(t.keys, t.counts)},
               {int(k): (n, m) for k, n, m in zip(t.ctx_keys, t.ctx_totals, t.ctx_types)}, t.discount)
              for t in lm.tables]
    padded = [lm.vocab] * (lm.order - 1) + [int(s) for s in seq]
    out = []
    for i in range(lm.order - 1, len(padded)):
        prob = 1.0 / lm.vocab
        for k, (grams, contexts, discount) in enumerate(tables, 1):
            key = 0
            for symbol in padded[i - k + 1 : i + 1]:
                key = key * lm.base + symbol
            total, types = contexts.get(key // lm.base, (0.0, 0.0))
            if total > 0:
                prob = (max(grams.get(key, 0.0) - discount, 0.0) + discount * types * prob) / total
        out.append(float(np.log2(prob)))
    return out


def test_vectorised_scoring_equals_the_one_position_at_a_time_definition() -> None:
    seqs = [np.frombuffer(t.encode(), dtype=np.uint8) for t in sentences(60, 0)]
    lm = KneserNey.fit(seqs, vocab=256, order=3, discount=None)
    held_out = [np.frombuffer(t.encode(), dtype=np.uint8) for t in [*sentences(5, 1), *noise(2, 2)]]
    expected = [p for seq in held_out for p in reference_log2_probs(lm, seq)]
    for _ in range(2):  # the second pass reads the remembered distinct n-grams of the same texts
        assert lm.log2_probs(held_out) == pytest.approx(expected, abs=1e-12)
    other = [seq[::-1].copy() for seq in held_out]  # the same sizes and symbols, another text
    assert lm.log2_probs(other) == pytest.approx([p for seq in other for p in reference_log2_probs(lm, seq)],
                                                 abs=1e-12)


def test_bits_per_byte_of_texts_scored_before_equals_a_fresh_scoring(tmp_path: Path) -> None:
    """Benchmarks are encoded once per process: texts seen before give the same bits, and a text
    edited to another of the same length is encoded again, not served from what was remembered."""
    model, held_out = fit(tmp_path, NgramSpec(order=3), sentences(200, 0)), ["", *sentences(20, 1)]
    seqs = [np.frombuffer(t.encode(), dtype=np.uint8) for t in held_out if t]
    expected = -model.lm.log2_probs(seqs).sum() / sum(len(t.encode()) for t in held_out)
    assert model.bits_per_byte(held_out) == pytest.approx(expected, rel=1e-12)
    assert model.bits_per_byte(list(held_out)) == pytest.approx(expected, rel=1e-12)
    edited = [*held_out[:-1], held_out[-1].swapcase()]
    fresh = [np.frombuffer(t.encode(), dtype=np.uint8) for t in edited if t]
    assert model.bits_per_byte(edited) == pytest.approx(-model.lm.log2_probs(fresh).sum() / sum(map(len, fresh)), rel=1e-12)
    assert model.bits_per_byte(edited) != pytest.approx(expected, rel=1e-6)


def test_counting_in_chunks_fits_the_same_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsandbox.models import ngram

    seqs = [np.frombuffer(t.encode(), dtype=np.uint8) for t in [*sentences(60, 0), *noise(5, 1)]]
    whole = KneserNey.fit(seqs, vocab=256, order=3, discount=None).to_arrays()
    monkeypatch.setattr(ngram, "COUNT_CHUNK", 50)  # a chunk every sentence or two
    chunked = KneserNey.fit(seqs, vocab=256, order=3, discount=None).to_arrays()
    assert whole.keys() == chunked.keys()
    for name, array in whole.items():
        assert np.array_equal(array, chunked[name]) and array.dtype == chunked[name].dtype, name


def test_seed_does_not_change_the_fit(tmp_path: Path) -> None:
    texts, held_out = sentences(100, 0), sentences(20, 1)
    assert fit(tmp_path, NgramSpec(), texts, seed=0).bits_per_byte(held_out) == fit(
        tmp_path, NgramSpec(), texts, seed=7
    ).bits_per_byte(held_out)


def test_a_token_budget_fits_exactly_that_many_tokens_in_the_seeded_order(tmp_path: Path) -> None:
    texts = sentences(100, 0)
    total = sum(len(t.encode()) for t in texts)
    for budget in (total // 3, total * 2 + 17):  # a pool cut to the budget, and one read again
        model = fit(tmp_path, NgramSpec(order=3, max_tokens=budget), texts)
        assert model.info["train_tokens"] == budget
    assert fit(tmp_path, NgramSpec(order=3), texts).info["train_tokens"] == total
    assert [len(s) for s in token_budget([np.arange(3), np.arange(2)], 8)] == [3, 2, 3]
    assert token_budget([np.arange(0)], 5)[0].size == 0  # nothing to read: no endless loop


def test_only_a_budgeted_fit_depends_on_the_seed() -> None:
    trainer = trainer_class(NgramSpec())
    assert not trainer.seeded(NgramSpec()) and trainer.seeded(NgramSpec(max_tokens=1000))


@pytest.mark.parametrize("spec", [NgramSpec(order=4), NgramSpec(level="word", order=3, max_vocab=20)])
def test_save_and_load_round_trip(tmp_path: Path, spec: NgramSpec) -> None:
    model = fit(tmp_path, spec, sentences(200, 0))
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    held_out = sentences(30, 1) + ["Unseen words: zebra quokka."]
    assert isinstance(loaded, NgramModel)
    assert loaded.spec == spec
    assert loaded.bits_per_byte(held_out) == model.bits_per_byte(held_out)  # the same tables, bit for bit
    for saved, fitted in zip(loaded.lm.tables, model.lm.tables):
        for name in _TABLE_ARRAYS:
            np.testing.assert_array_equal(getattr(saved, name), getattr(fitted, name))


def test_a_model_saved_with_its_context_arrays_still_loads(tmp_path: Path) -> None:
    """The first saved format also stored the derived context arrays of each order."""
    model = fit(tmp_path, NgramSpec(order=3), sentences(200, 0))
    model.save(tmp_path / "saved")
    (tmp_path / "saved" / "ngram.arrow").unlink()
    first = {f"o{k}_{name}": getattr(t, name) for k, t in enumerate(model.lm.tables, 1) for name in _TABLE_ARRAYS}
    np.savez(tmp_path / "saved" / "ngram.npz", **first, **{f"o{k}_discount": np.array(t.discount)
                                                           for k, t in enumerate(model.lm.tables, 1)})
    held_out = sentences(30, 1)
    assert load_model(tmp_path / "saved").bits_per_byte(held_out) == model.bits_per_byte(held_out)


def test_a_model_saved_as_npz_still_loads(tmp_path: Path) -> None:
    """Earlier versions saved the key steps and counts of each order in a deflated ``.npz``."""
    model = fit(tmp_path, NgramSpec(order=3), sentences(200, 0))
    model.save(tmp_path / "saved")
    (tmp_path / "saved" / "ngram.arrow").unlink()
    np.savez_compressed(tmp_path / "saved" / "ngram.npz", **model.lm.to_arrays())
    held_out = sentences(30, 1)
    assert load_model(tmp_path / "saved").bits_per_byte(held_out) == model.bits_per_byte(held_out)


def test_word_level_scores_unknown_words_with_finite_bits(tmp_path: Path) -> None:
    model = fit(tmp_path, NgramSpec(level="word", order=2), sentences(200, 0))
    bpb = model.bits_per_byte(["Completely novel vocabulary appears here!"])
    assert np.isfinite(bpb) and bpb > model.bits_per_byte(sentences(20, 1))


def test_repeats_in_the_pool_count_as_more_training(tmp_path: Path) -> None:
    texts = sentences(100, 0)
    once = fit(tmp_path, NgramSpec(), texts).bits_per_byte(texts[:10])
    twice = fit(tmp_path, NgramSpec(), texts + texts[:10]).bits_per_byte(texts[:10])
    assert twice < once


def test_specs_reject_typos_and_out_of_range_values() -> None:
    with pytest.raises(ValidationError, match="extra"):
        NgramSpec(ordr=3)
    with pytest.raises(ValidationError, match="less than or equal to 7"):
        NgramSpec(order=9)
    with pytest.raises(ValidationError, match="must be <= 4 at level: word"):
        NgramSpec(level="word", order=5)
    with pytest.raises(ValidationError, match="divisible"):
        TinyLMSpec(n_embd=100, n_head=3)


def test_model_spec_union_picks_the_class_by_type_and_defaults_to_tiny_lm() -> None:
    assert isinstance(model_spec_from_dict({"type": "ngram", "order": 3}), NgramSpec)
    assert isinstance(model_spec_from_dict({"max_steps": 5}), TinyLMSpec)
    with pytest.raises(ValidationError):
        model_spec_from_dict({"type": "transformer-xl"})


def test_digest_is_stable_and_changes_with_any_field() -> None:
    assert NgramSpec(order=3).digest() == NgramSpec(order=3).digest()
    assert NgramSpec(order=3).digest() != NgramSpec(order=4).digest()
    assert len(TinyLMSpec().digest()) == 64


def test_perplexity_evaluator_scores_are_inverse_bpb(tmp_path: Path) -> None:
    model = fit(tmp_path, NgramSpec(), sentences(200, 0))
    model.save(tmp_path / "m")
    bench_file = tmp_path / "bench.jsonl"
    bench_file.write_text("".join(json.dumps({"body": t}) + "\n" for t in sentences(40, 1)))
    bench = load_benchmark(BenchmarkSpec(name="toy", path=str(bench_file), text_field="body", max_docs=25))
    assert len(bench.texts) == 25
    result = evaluator_for(EvaluatorSpec())
    assert isinstance(result, PerplexityEvaluator)
    metrics = result.evaluate(tmp_path / "m", [bench])
    assert metrics["toy"]["score"] == pytest.approx(1 / metrics["toy"]["bpb"])
    assert metrics["toy"]["bpb"] == pytest.approx(model.bits_per_byte(bench.texts))


def test_benchmark_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no file"):
        load_benchmark(BenchmarkSpec(name="missing", path=str(tmp_path / "nope.jsonl")))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"content": "x"}) + "\n")
    with pytest.raises(EvaluationError, match="no field 'text'"):
        load_benchmark(BenchmarkSpec(name="bad", path=str(bad)))
    bad.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["fine", 7]))
    with pytest.raises(EvaluationError, match=f"record 2 of {bad}: 'text' is int, not text"):
        load_benchmark(BenchmarkSpec(name="bad", path=str(bad)))


@pytest.mark.parametrize(("name", "content", "says"), [
    ("bad.parquet", b"not a parquet file at all", ": not a readable Parquet file (Could not open Parquet input"),
    ("corrupt.jsonl.gz", b"\x1f\x8b\x08\x00garbagegarbage", ": not a readable gzip file (Error -3 while decompressing"),
    ("cut.jsonl.gz", gzip.compress(b'{"text": "a sentence"}\n' * 500)[:40], ": not a readable gzip file (Compressed file"),
    ("ragged.csv", b'id,text\n1,"unterminated\n2,ok\n', ": not a readable CSV file (Error tokenizing data"),
    ("latin1.jsonl", b'{"text": "caf\xe9"}\n', ":1: not UTF-8 (invalid continuation byte at byte 13)"),
    ("list.jsonl", b'{"text": "fine"}\n[1, 2]\n', ":2: malformed JSON line: expected a JSON object, got list"),
    ("twice.jsonl", b'{"text": "a", "text": "b"}\n', ":1: malformed JSON line: duplicate key 'text' in one object"),
    ("lone.jsonl", b'{"text": "fine"}\n{"text": "a\\ud800b"}\n', ":2: not valid Unicode text: lone surrogate escape \\ud800"),
], ids=["not-parquet", "corrupt-gzip", "cut-gzip", "ragged-csv", "not-utf8", "not-an-object", "key-twice", "surrogate"])
def test_a_benchmark_file_its_reader_cannot_read_is_named(tmp_path: Path, name: str, content: bytes, says: str) -> None:
    """As the dataset loader names a data file it cannot read: an error the command line prints as one
    line (exit code 2), not the reader's own traceback."""
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(EvaluationError) as err:
        load_benchmark(BenchmarkSpec(name="x", path=str(path)))
    assert str(err.value).startswith(f"benchmark 'x': {path}{says}"), err.value


def test_a_benchmark_reads_as_the_dataset_loader_does(tmp_path: Path) -> None:
    """A byte-order mark and an upper-case .GZ, as a data file; in CSV and Parquet an empty cell or a
    null is skipped as in JSONL, and a text "NA" is a text."""
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + b'{"text": "one"}\n')
    (tmp_path / "UP.JSONL.GZ").write_bytes(gzip.compress(b'{"text": "two"}\n'))
    (tmp_path / "cells.csv").write_text('id,text\n1,NA\n2,\n3,"three"\n')
    pq.write_table(pa.table({"text": ["four", None]}), tmp_path / "nulls.parquet")
    read = {name: load_benchmark(BenchmarkSpec(name="b", path=str(tmp_path / name))).texts
            for name in ("bom.jsonl", "UP.JSONL.GZ", "cells.csv", "nulls.parquet")}
    assert read == {"bom.jsonl": ["one"], "UP.JSONL.GZ": ["two"], "cells.csv": ["NA", "three"], "nulls.parquet": ["four"]}


def test_empty_benchmark_texts_are_skipped_with_a_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["one", None, "", "two"]))
    with caplog.at_level("WARNING"):
        assert load_benchmark(BenchmarkSpec(name="b", path=str(path))).texts == ["one", "two"]
    assert "skipped 2 empty or null texts" in caplog.text


def test_loading_a_directory_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="manifest.json is missing"):
        load_model(tmp_path)


def _object_array_npz() -> bytes:
    """An .npz archive whose one array holds Python objects, which only unpickling reads back."""
    array = io.BytesIO()
    np.save(array, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("o1_discount.npy", array.getvalue())
    return archive.getvalue()


def _arrow_of_order(tmp_path: Path, order: int) -> bytes:
    fit(tmp_path, NgramSpec(order=order), sentences(50, 0)).save(tmp_path / f"order{order}")
    return (tmp_path / f"order{order}" / "ngram.arrow").read_bytes()


@pytest.mark.parametrize(("level", "name", "content", "says"), [
    ("byte", "ngram.arrow", b"garbage", "File is too small"),
    ("byte", "ngram.arrow", b"garbage" * 100, "Not an Arrow file"),
    ("byte", "ngram.arrow", None, "No such file or directory"),
    ("byte", "ngram.arrow", _arrow_of_order, "expected 3 orders, each with its discount"),
    ("byte", "ngram.npz", b"garbage", "not an .npz archive"),  # not numpy's "contains pickled data"
    ("byte", "ngram.npz", _object_array_npz(), "Object arrays cannot be loaded when allow_pickle=False"),
    ("word", "ngram.npz", b"PK\x05\x06" + bytes(18), "o1_discount is not an array in the archive"),  # an empty zip
    ("word", "vocab.json.gz", b"garbage", "Not a gzipped file"),
    ("word", "vocab.json.gz", gzip.compress(b"[]"), "expected a JSON object with 'vocab' and 'byte_log2'"),
], ids=["garbage", "not-arrow", "missing", "other-order", "npz-garbage", "npz-object-array", "npz-array-missing",
        "vocab-garbage", "vocab-not-an-object"])
def test_a_saved_model_file_that_cannot_be_read_is_named(
        tmp_path: Path, level: str, name: str, content: bytes | Callable[[Path, int], bytes] | None, says: str) -> None:
    """Each is one EvaluationError naming the file, as a bad manifest is; numpy never unpickles. An
    ``.npz`` is read (as an earlier version saved it) only where the Arrow file is absent."""
    fit(tmp_path, NgramSpec(level=level, order=3), sentences(100, 0)).save(tmp_path / "m")
    path = tmp_path / "m" / name
    if name == "ngram.npz":
        (tmp_path / "m" / "ngram.arrow").unlink()
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content(tmp_path, 2) if callable(content) else content)
    with pytest.raises(EvaluationError) as err:
        load_model(tmp_path / "m")
    assert str(err.value).startswith(f"{path} is not readable: {says}"), err.value


def test_unknown_model_type_lists_the_registered_ones(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"type": "mystery"}))
    with pytest.raises(ValueError, match="registered types: command, hf-lora, ngram, tiny-captioner, tiny-lm"):
        load_model(tmp_path)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_counting_a_pool_through_the_dataset_index_fits_the_same_model(tmp_path: Path, order: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = [*sentences(200, 0), "", *noise(20, 1), "héllo wörld — ünïcode"]
    rows = [3, 3, 7, 200, 221, 221, 221, *range(40, 90)]  # repeats and the empty text included
    texts = [dataset[i] for i in rows]
    spec = NgramSpec(order=order)
    direct = fit(tmp_path, spec, texts)
    job = TrainingJob(texts=texts, output_dir=tmp_path, tokenizer_texts=dataset, source_digest=f"set{order}", rows=rows)
    direct_counts = KneserNey._counts
    monkeypatch.setattr(KneserNey, "_counts", None)  # the indexed fit must not count the pool's n-grams itself
    indexed = trainer_for(spec).train(job)
    assert isinstance(indexed, NgramModel)
    for name, value in direct.lm.to_arrays().items():
        np.testing.assert_array_equal(indexed.lm.to_arrays()[name], value, err_msg=name)
    held_out = sentences(30, 5)
    assert indexed.bits_per_byte(held_out) == direct.bits_per_byte(held_out)
    other = [dataset[i] for i in range(100, 150)]  # another pool of the same dataset: the index is reused
    again = trainer_for(spec).train(TrainingJob(texts=other, output_dir=tmp_path, tokenizer_texts=dataset,
                                                source_digest=f"set{order}", rows=list(range(100, 150))))
    monkeypatch.setattr(KneserNey, "_counts", direct_counts)
    assert again.bits_per_byte(held_out) == fit(tmp_path, spec, other).bits_per_byte(held_out)


def test_a_training_job_needs_one_row_per_text(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one row per text"):
        TrainingJob(texts=["a", "b"], output_dir=tmp_path, rows=[0])


def test_a_dataset_too_large_to_index_is_counted_pool_by_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlsandbox.models._ngram_index.INDEX_LIMIT", 100)
    dataset = sentences(50, 0)
    counted: list[int] = []
    direct_counts = KneserNey._counts

    def counting(*args: object) -> tuple[np.ndarray, np.ndarray]:
        counted.append(1)
        return direct_counts(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(KneserNey, "_counts", counting)
    for rows in ([1, 2, 3], [4, 5]):
        texts = [dataset[i] for i in rows]
        model = trainer_for(NgramSpec()).train(TrainingJob(texts=texts, output_dir=tmp_path, tokenizer_texts=dataset,
                                                           source_digest="large", rows=rows))
        assert model.bits_per_byte(sentences(5, 1)) == fit(tmp_path, NgramSpec(), texts).bits_per_byte(sentences(5, 1))
    assert len(counted) == 4  # each pool counted itself, both ways
