"""LoRA fine-tuning of a Hugging Face causal LM loaded by name or local path."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("peft")

from mlsandbox.errors import ModelUnavailableError, TrainingError
from mlsandbox.models import TrainingJob, check_models, load_model, trainer_for
from mlsandbox.models.bpe_tokenizer import EOT, train_tokenizer
from mlsandbox.models.hf_lora import HFLoraModel
from mlsandbox.spec import HFLoraSpec

WORDS = ("the cat sat on a mat while dogs ran across green fields and birds sang "
         "softly in tall trees near the quiet river under a bright morning sky").split()


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))) + "." for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama and its tokenizer, saved like a hub checkpoint."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(sentences(200, 0), vocab_size=300),
        bos_token=EOT, eos_token=EOT,
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def spec_for(path: Path, **overrides) -> HFLoraSpec:
    settings = dict(model=str(path), rank=4, alpha=8, max_steps=8, seq_len=32, batch_size=4,
                    learning_rate=5e-3)
    return HFLoraSpec(**{**settings, **overrides})


def train(tmp_path: Path, spec: HFLoraSpec, seed: int = 0) -> HFLoraModel:
    job = TrainingJob(texts=sentences(60, 1), output_dir=tmp_path, seed=seed, cache_dir=tmp_path / "cache")
    model = trainer_for(spec).train(job)
    assert isinstance(model, HFLoraModel)
    return model


def test_fine_tuning_only_trains_the_adapter_and_lowers_bpb(tmp_path: Path, tiny_llama: Path) -> None:
    held_out = sentences(10, 2)
    before = train(tmp_path, spec_for(tiny_llama, max_steps=1, learning_rate=1e-9)).bits_per_byte(held_out)
    model = train(tmp_path, spec_for(tiny_llama))
    total = sum(p.numel() for p in model.model.parameters())
    assert 0 < model.info["trainable_params"] < total / 2
    assert model.bits_per_byte(held_out) < before


def test_save_writes_the_adapter_only_and_loads_back(tmp_path: Path, tiny_llama: Path) -> None:
    model = train(tmp_path, spec_for(tiny_llama, target_modules=["q_proj", "v_proj"]))
    model.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "adapter" / "adapter_config.json").exists()
    assert not (tmp_path / "saved" / "adapter" / "model.safetensors").exists()
    loaded = load_model(tmp_path / "saved")
    held_out = sentences(5, 3)
    assert loaded.info["base_model"] == str(tiny_llama)
    assert loaded.bits_per_byte(held_out) == pytest.approx(model.bits_per_byte(held_out), rel=1e-5)


def test_a_saved_adapter_loads_on_its_own_base_or_refuses(tmp_path: Path, tiny_llama: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative model path is recorded absolute, with the digest of its bytes: loading from another
    folder finds the same base, and a base changed in place is refused rather than silently used."""
    shutil.copytree(tiny_llama, tmp_path / "base")
    monkeypatch.chdir(tmp_path)
    model = train(tmp_path, spec_for(Path("base")))
    model.save(tmp_path / "saved")
    held_out = sentences(5, 3)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_model(tmp_path / "saved").bits_per_byte(held_out) == pytest.approx(model.bits_per_byte(held_out))
    config = tmp_path / "base" / "config.json"
    config.write_text(config.read_text().replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": 1e-05'))
    with pytest.raises(ModelUnavailableError, match="not the one the adapter was trained on"):
        load_model(tmp_path / "saved")


def test_same_seed_is_reproducible(tmp_path: Path, tiny_llama: Path) -> None:
    held_out = sentences(5, 3)
    spec = spec_for(tiny_llama, max_steps=3)
    assert train(tmp_path, spec, seed=1).bits_per_byte(held_out) == train(
        tmp_path, spec, seed=1
    ).bits_per_byte(held_out)


def test_unknown_model_path_is_a_training_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="could not load .*no-such-model"):
        train(tmp_path, spec_for(tmp_path / "no-such-model"))


def test_missing_peft_says_how_to_install_it(tmp_path: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(TrainingError, match=r"pip install mlsandbox\[lora\]"):
        train(tmp_path, spec_for(tiny_llama))


@pytest.mark.slow
def test_packaged_smollm2_is_converted_once_and_fine_tuned(tmp_path: Path) -> None:
    spec = HFLoraSpec(max_steps=2, seq_len=32, batch_size=2)
    model = train(tmp_path, spec)
    converted = list((tmp_path / "cache" / "hf-models").iterdir())
    assert len(converted) == 1 and (converted[0] / "model.safetensors").exists()
    assert 0 < model.bits_per_byte(["The cat sat on the mat."]) < 8


def test_a_hub_model_is_keyed_and_trained_at_the_commit_the_cache_holds(
        tmp_path: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub name moves when its repository gets a commit: cells are keyed by the commit, not the name."""
    import shutil

    from huggingface_hub import constants

    hub = tmp_path / "hub"
    repo = hub / "models--org--tiny"
    first, second = "a" * 40, "b" * 40
    for commit in (first, second):
        shutil.copytree(tiny_llama, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(first)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    named = spec_for(tiny_llama, model="org/tiny")
    assert trainer_for(named).pins() == {"model": f"org/tiny@{first}"}
    model = train(tmp_path, named)
    assert model.info["base_revision"] == first
    (repo / "refs" / "main").write_text(second)  # the branch moved: another cell
    assert trainer_for(named).pins() == {"model": f"org/tiny@{second}"}
    pinned = spec_for(tiny_llama, model="org/tiny", revision=first)
    assert trainer_for(pinned).pins() == {"model": f"org/tiny@{first}"}
    assert trainer_for(spec_for(tiny_llama, model="org/not-cached")).pins() == {}
    assert trainer_for(spec_for(tiny_llama)).pins() == {}  # a local folder is keyed by its bytes instead
    assert named.digest() == spec_for(tiny_llama, model="org/tiny", revision=None).digest() != pinned.digest()


def test_a_model_that_cannot_be_loaded_here_is_found_before_any_work(
        tmp_path: Path, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``check`` (called by every command before its stats) refuses what each cell would fail on."""
    from huggingface_hub import constants

    from mlsandbox.hub import hub_unreachable

    repo = tmp_path / "hub" / "models--org--tiny"
    shutil.copytree(tiny_llama, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub_unreachable.cache_clear()
    trainer_for(spec_for(tiny_llama, model="org/tiny")).check()  # in the cache
    trainer_for(spec_for(tiny_llama)).check()  # a local folder
    with pytest.raises(ModelUnavailableError, match=r"could not load causal LM 'org/not-cached' \(Hugging Face name; "
                       r"the hub cannot be reached: HF_HUB_OFFLINE is set\): not in the local cache"):
        trainer_for(spec_for(tiny_llama, model="org/not-cached")).check()
    with pytest.raises(ModelUnavailableError, match="could not load causal LM .*: no such folder"):
        trainer_for(spec_for(tiny_llama, model=str(tmp_path / "nowhere"))).check()
    with pytest.raises(ModelUnavailableError, match="GGUF file not found"):
        trainer_for(spec_for(tiny_llama, model=str(tmp_path), gguf_file="none.gguf")).check()
    check_models([spec_for(tiny_llama, model="org/not-cached")], executor="ray")  # the nodes load their own


def test_a_local_model_folder_is_checked_without_asking_the_hub(tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder needs no hub: no connection is tried (it could take seconds where none answers)."""
    def no_network() -> str:
        raise AssertionError("the hub was probed for a local folder")

    monkeypatch.setattr("mlsandbox.pretrained.hub_unreachable", no_network)
    trainer_for(spec_for(tiny_llama)).check()


def test_a_revision_needs_a_model_name() -> None:
    with pytest.raises(ValueError, match="names a commit of a hub model: set `model` to its name too"):
        HFLoraSpec(revision="main")
    for folder in ("/models/tiny", "./tiny", "~/tiny"):  # a revision would change nothing but the cells' key
        with pytest.raises(ValueError, match="names a commit of a hub model, and `model` is the local folder"):
            HFLoraSpec(model=folder, revision="main")
