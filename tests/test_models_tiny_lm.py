"""The default proxy model: a tiny causal LM trained from scratch, deterministic per seed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from test_models_ngram import noise, sentences

from mlsandbox.errors import EvaluationError, TrainingPruned
from mlsandbox.models import TrainingJob, load_model, trainer_for
from mlsandbox.models.causal_lm import pack_blocks, split_windows
from mlsandbox.models.tiny_lm import TinyLM, TinyLMTrainer
from mlsandbox.models.torch_training import lr_factor
from mlsandbox.spec import TinyLMSpec

SMALL = TinyLMSpec(
    vocab_size=320, n_layer=1, n_embd=32, n_head=2, seq_len=32, batch_size=8,
    max_tokens=None, max_steps=40, learning_rate=1e-2, eval_batch_size=16,
)


def job(tmp_path: Path, seed: int = 0, **kwargs) -> TrainingJob:
    defaults = dict(
        texts=sentences(120, 0), output_dir=tmp_path / "out", seed=seed,
        tokenizer_texts=sentences(200, 9), source_digest="toy-v1", cache_dir=tmp_path / "cache",
    )
    return TrainingJob(**{**defaults, **kwargs})


def train(tmp_path: Path, spec: TinyLMSpec = SMALL, **kwargs) -> TinyLM:
    model = trainer_for(spec).train(job(tmp_path, **kwargs))
    assert isinstance(model, TinyLM)
    return model


def test_same_seed_gives_identical_bpb_and_another_seed_does_not(tmp_path: Path) -> None:
    held_out = sentences(20, 1)
    first = train(tmp_path, seed=3).bits_per_byte(held_out)
    again = train(tmp_path, seed=3).bits_per_byte(held_out)
    other = train(tmp_path, seed=4).bits_per_byte(held_out)
    assert first == again
    assert first != other


def test_model_trained_on_text_prefers_similar_text_over_random_bytes(tmp_path: Path) -> None:
    model = train(tmp_path)
    assert model.bits_per_byte(sentences(20, 1)) < model.bits_per_byte(noise(10, 2))


def test_training_lowers_bits_per_byte_below_the_untrained_model(tmp_path: Path) -> None:
    held_out = sentences(20, 1)
    untrained = train(tmp_path, SMALL.model_copy(update={"max_steps": 1, "learning_rate": 1e-6}))
    assert train(tmp_path).bits_per_byte(held_out) < untrained.bits_per_byte(held_out) - 0.5


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = train(tmp_path)
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    held_out = sentences(10, 1)
    assert isinstance(loaded, TinyLM)
    assert loaded.spec == SMALL
    assert loaded.info["steps"] == 40
    assert loaded.bits_per_byte(held_out) == pytest.approx(model.bits_per_byte(held_out), rel=1e-6)


def test_a_saved_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    """A corrupt or cut-short weights, config or tokenizer file is one EvaluationError naming it, as a
    bad manifest is, not the traceback of safetensors, transformers or tokenizers."""
    train(tmp_path).save(tmp_path / "saved")
    weights = tmp_path / "saved" / "model" / "model.safetensors"
    whole = weights.read_bytes()
    cases = [(weights, b"garbage", "Error while deserializing header"),
             (weights, whole[: len(whole) // 2], "Error while deserializing header"),
             (tmp_path / "saved" / "model" / "config.json", b"{", "Expecting property name"),
             (tmp_path / "saved" / "tokenizer.json", b"garbage", "Expecting value")]
    for path, content, says in cases:
        original = path.read_bytes()
        path.write_bytes(content)
        with pytest.raises(EvaluationError) as err:
            load_model(tmp_path / "saved")
        assert str(err.value).startswith(f"{path} is not readable: {says}"), err.value
        path.write_bytes(original)
    shutil.rmtree(tmp_path / "saved" / "model")
    with pytest.raises(EvaluationError, match="model is not readable: the folder of the saved weights is missing"):
        load_model(tmp_path / "saved")


def test_tokenizer_is_trained_once_per_source_dataset_and_reused(tmp_path: Path) -> None:
    first = train(tmp_path, texts=sentences(60, 0))
    cached = sorted((tmp_path / "cache" / "tokenizers").glob("*.json"))
    second = train(tmp_path, texts=sentences(60, 5))
    assert len(cached) == 1
    assert sorted((tmp_path / "cache" / "tokenizers").glob("*.json")) == cached
    assert first.info["tokenizer"] == second.info["tokenizer"] == cached[0].name
    train(tmp_path, source_digest="another-dataset")
    assert len(list((tmp_path / "cache" / "tokenizers").glob("*.json"))) == 2


def test_report_receives_intermediate_scores_and_can_prune(tmp_path: Path) -> None:
    seen: list[tuple[int, float]] = []

    def report(step: int, score: float) -> bool:
        seen.append((step, score))
        return step >= 20

    spec = SMALL.model_copy(update={"eval_every": 10})
    with pytest.raises(TrainingPruned) as pruned:
        train(tmp_path, spec, report=report, eval_texts=sentences(10, 1))
    assert pruned.value.step == 20
    assert [s for s, _ in seen] == [10, 20]
    assert all(score > 0 for _, score in seen)


def test_report_without_eval_texts_uses_the_training_loss(tmp_path: Path) -> None:
    seen: list[float] = []
    spec = SMALL.model_copy(update={"eval_every": 10})
    train(tmp_path, spec, report=lambda step, score: seen.append(score) or False)
    assert len(seen) == 3 and seen[-1] > seen[0] > 0


def test_budget_is_the_smaller_of_max_tokens_and_max_steps() -> None:
    per_step = SMALL.batch_size * SMALL.seq_len
    assert TinyLMTrainer(SMALL.model_copy(update={"max_tokens": 10 * per_step})).total_steps(5) == 10
    assert TinyLMTrainer(SMALL.model_copy(update={"max_tokens": 100 * per_step})).total_steps(5) == 40
    one_epoch = SMALL.model_copy(update={"max_steps": None})
    assert TinyLMTrainer(one_epoch).total_steps(n_blocks=80) == 10


def test_training_restores_the_callers_torch_settings(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    train(tmp_path, SMALL.model_copy(update={"threads": 1, "max_steps": 2}))
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_gpt2_architecture_trains_too(tmp_path: Path) -> None:
    model = train(tmp_path, SMALL.model_copy(update={"arch": "gpt2", "max_steps": 10}))
    assert model.bits_per_byte(sentences(5, 1)) > 0


def test_a_pool_smaller_than_one_block_still_trains(tmp_path: Path) -> None:
    model = train(tmp_path, SMALL.model_copy(update={"max_steps": 3}), texts=["Tiny pool."])
    assert model.bits_per_byte(["Tiny pool."]) > 0


def test_packing_and_windows_cover_every_token_once() -> None:
    docs = [[5, 6, 7], [8, 9]]
    blocks = pack_blocks(docs, seq_len=3, sep=0)
    assert blocks.tolist() == [[0, 5, 6, 7], [7, 0, 8, 9]]
    windows = split_windows([list(range(1, 8))], seq_len=3, sep=0)
    assert windows == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7]]
    assert sum(len(w) - 1 for w in windows) == 7


def test_learning_rate_warms_up_then_decays_to_the_floor() -> None:
    factors = [lr_factor(s, 100, warmup=0.1, floor=0.1) for s in range(100)]
    assert factors[0] == pytest.approx(0.1)
    assert factors[9] == pytest.approx(1.0)
    assert factors[50] < factors[10]
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)
