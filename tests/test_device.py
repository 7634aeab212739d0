"""Where torch models run: ``device: auto | cpu | cuda`` for trainers and model-backed OPs.

This machine may have no GPU: CUDA's presence and bfloat16 support are mocked where a test needs them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, get_args

import pytest
import torch
from PIL import Image
from test_model_ops import tiny_lm  # noqa: F401 (a fixture)
from test_models_tiny_lm import SMALL, job, sentences

from mlsandbox.errors import USER_ERRORS, SpecError
from mlsandbox.models import load_model, trainer_for
from mlsandbox.models.tiny_lm import TinyLM
from mlsandbox.models.torch_training import CPU, LoopSettings, Placement, train_loop
from mlsandbox.ops import create_op, vision_models
from mlsandbox.ops.batch import ImageBatch, TextBatch
from mlsandbox.ops.text import perplexity_filter
from mlsandbox.recipes import Condition, Recipe, to_data_juicer
from mlsandbox.runtime import DEVICES, autocast_dtype, inference_dtype, resolve_device
from mlsandbox.spec import (
    CommandSpec,
    Device,
    HFLoraSpec,
    NgramSpec,
    TinyCaptionerSpec,
    TinyLMSpec,
    TinyT2VSpec,
    model_spec_from_dict,
    parse_spec,
)
from mlsandbox.stats import cache_key

TORCH_SPECS = (TinyLMSpec, TinyCaptionerSpec, TinyT2VSpec, HFLoraSpec)


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CUDA GPU with bfloat16 (Ampere or later), as far as the selection logic can tell."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)


# --- selection ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_cuda")
def test_auto_runs_on_the_cpu_where_there_is_no_gpu() -> None:
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"


@pytest.mark.usefixtures("cuda")
def test_auto_takes_the_gpu_where_there_is_one_and_cpu_stays_on_the_cpu() -> None:
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda"
    assert resolve_device("cpu") == "cpu"


@pytest.mark.usefixtures("no_cuda")
def test_asking_for_cuda_without_a_gpu_is_a_one_line_user_error() -> None:
    with pytest.raises(SpecError, match="device: cuda") as err:
        resolve_device("cuda")
    assert isinstance(err.value, USER_ERRORS)  # the command line exits 2 with this line
    assert "\n" not in str(err.value) and "device: auto" in str(err.value)


@pytest.mark.usefixtures("no_cuda")
def test_a_model_pinned_to_cuda_without_a_gpu_is_refused_before_any_run(tmp_path: Path) -> None:
    """Each cell failed with it, after the command's runs had started."""
    from conftest import spec_dict

    from mlsandbox.project import parse_project

    raw = spec_dict(tmp_path / "x.jsonl", model={"type": "tiny-lm", "device": "cuda"},
                    screen={"model": {"type": "ngram"}, "seeds": [0, 1]})
    with pytest.raises(SpecError, match=r"model\.device: cuda, but torch finds no CUDA GPU here"):
        parse_project(raw)
    assert parse_project({**raw, "model": {"type": "tiny-lm", "device": "auto"}})


def test_an_unknown_device_names_the_allowed_ones() -> None:
    with pytest.raises(SpecError, match="auto, cpu, cuda"):
        resolve_device("gpu")


def test_the_spec_and_the_runtime_know_the_same_devices() -> None:
    assert get_args(Device) == DEVICES


def test_cpu_computes_in_float32() -> None:
    assert autocast_dtype("cpu") is None
    assert CPU.precision == "float32" and CPU.info() == {"device": "cpu", "precision": "float32"}


def test_cuda_autocasts_to_bfloat16_where_supported_else_to_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert autocast_dtype("cuda") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert autocast_dtype("cuda") is torch.float16


@pytest.mark.usefixtures("cuda")
def test_a_placement_records_the_device_and_precision_it_resolved_to() -> None:
    assert Placement.resolve("auto") == Placement("cuda", torch.bfloat16)
    assert Placement.resolve("auto").info() == {"device": "cuda", "precision": "bfloat16"}
    assert Placement.resolve("cpu") == CPU


def test_only_float16_scales_the_loss() -> None:
    assert CPU.grad_scaler() is None
    assert Placement("cpu", torch.bfloat16).grad_scaler() is None
    assert isinstance(Placement("cpu", torch.float16).grad_scaler(), torch.amp.GradScaler)


def test_the_cpu_placement_does_not_autocast() -> None:
    with CPU.autocast():
        assert not torch.is_autocast_enabled("cpu")
    with Placement("cpu", torch.bfloat16).autocast():
        assert torch.is_autocast_enabled("cpu")


# --- the spec key ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec_class", TORCH_SPECS)
def test_torch_models_take_a_device_that_defaults_to_auto(spec_class: type) -> None:
    assert spec_class().device == "auto"
    assert spec_class(device="cuda").device == "cuda"


@pytest.mark.parametrize("model_type", ["tiny-lm", "tiny-captioner", "tiny-t2v", "hf-lora"])
def test_a_bad_device_is_rejected_with_the_allowed_values(model_type: str, small_corpus: Path) -> None:
    raw = {"name": "p", "dataset": {"path": str(small_corpus)}, "ops": [{"name": "text_length_filter"}],
           "model": {"type": model_type, "device": "gpu"}}
    expected = r"model\.device: not allowed; expected 'auto', 'cpu' or 'cuda' \(got 'gpu'\)$"
    with pytest.raises(SpecError, match=expected):
        parse_spec(raw)


@pytest.mark.parametrize("raw", [{"type": "ngram"}, {"type": "command", "command": ["train"]}])
def test_models_that_do_not_run_torch_here_have_no_device(raw: dict[str, Any]) -> None:
    assert "device" not in type(model_spec_from_dict(raw)).model_fields
    with pytest.raises(ValueError, match="device"):
        model_spec_from_dict({**raw, "device": "cpu"})
    assert NgramSpec.placement_keys == CommandSpec.placement_keys == frozenset()


@pytest.mark.parametrize("spec_class", TORCH_SPECS)
def test_auto_keeps_a_models_digest_and_a_pinned_device_is_part_of_it(spec_class: type) -> None:
    auto, cpu, cuda = (spec_class(device=d).digest() for d in DEVICES)
    assert auto == spec_class().digest()
    assert len({auto, cpu, cuda}) == 3  # cells pinned to a device never mix with other cells
    assert spec_class(device="cpu").model_dump()["device"] == "cpu"  # logged with the model's params


def test_a_tiny_lm_spec_keeps_the_digest_it_had_before_devices() -> None:
    assert TinyLMSpec().digest() == "a4eeb4ad98ca8468f9c4ea84986d7e38fb66aa8d95a7681c41d36c177967dbcf"


# --- trainers ------------------------------------------------------------------------------------


def test_a_tiny_lm_trains_on_the_cpu_when_asked_and_records_where(tmp_path: Path) -> None:
    model = trainer_for(SMALL.model_copy(update={"device": "cpu", "max_steps": 10})).train(job(tmp_path))
    assert isinstance(model, TinyLM)
    assert model.info["device"] == "cpu" and model.info["precision"] == "float32"
    assert next(model.model.parameters()).device.type == "cpu"
    model.save(tmp_path / "saved")
    loaded = load_model(tmp_path / "saved")
    assert loaded.info["device"] == "cpu" and loaded.spec.device == "cpu"  # type: ignore[attr-defined]


@pytest.mark.usefixtures("no_cuda")
def test_auto_without_a_gpu_trains_exactly_as_cpu(tmp_path: Path) -> None:
    spec = SMALL.model_copy(update={"max_steps": 10})
    held_out = sentences(10, 1)
    auto = trainer_for(spec).train(job(tmp_path, seed=2))
    cpu = trainer_for(spec.model_copy(update={"device": "cpu"})).train(job(tmp_path, seed=2))
    assert auto.info["device"] == "cpu"
    assert auto.info["final_loss"] == cpu.info["final_loss"]
    assert auto.bits_per_byte(held_out) == cpu.bits_per_byte(held_out)


@pytest.mark.usefixtures("no_cuda")
def test_training_on_cuda_without_a_gpu_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="device: cuda"):
        trainer_for(SMALL.model_copy(update={"device": "cuda"})).train(job(tmp_path))
    assert not (tmp_path / "cache").exists()  # not even the tokenizer was trained


# The scaler skips a step whose float16 gradients overflowed; the schedule still advances, so
# that it spans the step budget, and torch says so once.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_the_loop_trains_under_reduced_precision_with_a_scaler_for_float16(dtype: torch.dtype) -> None:
    # CPU autocast stands in for CUDA's: the same loop code, without a GPU.
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    x = torch.randn(64, 4)
    target = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
    items = torch.cat([x, target[:, None]], dim=1)
    seen: list[torch.dtype] = []

    def loss(batch: torch.Tensor) -> torch.Tensor:
        pred = model(batch[:, :4])
        seen.append(pred.dtype)
        return (pred.float().squeeze(1) - batch[:, 4]).pow(2).mean()

    def mse() -> float:
        with torch.no_grad():
            return float((model(x).squeeze(1) - target).pow(2).mean())

    settings = LoopSettings(steps=200, batch_size=16, learning_rate=0.1, warmup=0.0, min_lr_ratio=0.0,
                            weight_decay=0.0, grad_clip=10.0)
    before = mse()
    train_loop(model, items, loss, settings, seed=0, placement=Placement("cpu", dtype))
    assert set(seen) == {dtype}  # every training step ran in the reduced precision
    assert mse() < before / 100
    assert model.weight.dtype == torch.float32  # the weights themselves stay float32


# --- model-backed OPs --------------------------------------------------------------------------

DEVICE_OPS = {
    "perplexity_filter": {"dtype": "float32"}, "image_text_similarity_filter": {}, "image_text_matching_filter": {},
    "image_watermark_filter": {}, "image_nsfw_filter": {"model": "m"}, "image_aesthetics_filter": {"model": "m"},
    "phrase_grounding_recall_filter": {}, "video_frames_text_similarity_filter": {},
    "video_watermark_filter": {}, "video_nsfw_filter": {"model": "m"}, "video_aesthetics_filter": {"model": "m"},
}


@pytest.mark.parametrize(("name", "params"), DEVICE_OPS.items())
def test_the_device_leaves_an_ops_identity_and_cache_key_alone(name: str, params: dict[str, Any]) -> None:
    default = create_op(name, params)
    assert default.params.device == "auto"  # type: ignore[attr-defined]
    for device in DEVICES:
        op = create_op(name, {**params, "device": device})
        assert op.identity() == default.identity() and cache_key(op) == cache_key(default)
        assert "device" not in op.identity()["params"]
        assert op.params.model_dump()["device"] == device  # what a stats worker rebuilds the OP from


def native_bfloat16_cpu(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)


def test_the_perplexity_cache_key_is_the_one_it_had_before_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    native_bfloat16_cpu(monkeypatch, True)  # where bfloat16 was the default before ``auto``: caches stay valid
    assert create_op("perplexity_filter", {"device": "cpu"}).identity() == {"op": "perplexity_filter", "params": {
        "model": None, "gguf_file": None, "max_tokens": 32, "batch_size": 32, "dtype": "bfloat16",
        "kenlm_model": None, "sentencepiece_model": None,
    }}


@pytest.mark.parametrize("native", [True, False])
def test_auto_dtype_is_the_cpus_fast_one_and_named_in_the_identity(monkeypatch: pytest.MonkeyPatch,
                                                                   native: bool) -> None:
    native_bfloat16_cpu(monkeypatch, native)
    dtype = "bfloat16" if native else "float32"  # emulated bfloat16 is many times slower than float32
    assert inference_dtype("cpu") == dtype
    auto = create_op("perplexity_filter", {"device": "cpu"})
    assert auto.params.dtype == dtype  # type: ignore[attr-defined]
    assert cache_key(auto) == cache_key(create_op("perplexity_filter", {"dtype": dtype}))
    other = "float32" if native else "bfloat16"
    assert cache_key(auto) != cache_key(create_op("perplexity_filter", {"dtype": other}))


@pytest.mark.usefixtures("no_cuda")
def test_a_gpu_this_process_cannot_see_is_taken_to_compute_in_bfloat16() -> None:
    assert inference_dtype("cuda") == "bfloat16"  # a Ray driver's view of its GPU workers
    assert create_op("perplexity_filter", {"device": "cuda"}).params.dtype == "bfloat16"  # type: ignore[attr-defined]


def test_a_gpu_without_bfloat16_computes_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert inference_dtype("cuda") == "float32"


def test_an_op_rejects_an_unknown_device() -> None:
    with pytest.raises(ValueError, match=r"device: not allowed; expected 'auto', 'cpu' or 'cuda' \(got 'gpu'\)"):
        create_op("image_watermark_filter", {"device": "gpu"})


@pytest.mark.parametrize(("name", "params", "wants"), [
    ("perplexity_filter", {}, True),
    ("perplexity_filter", {"device": "cuda"}, True),
    ("perplexity_filter", {"device": "cpu"}, False),
    ("perplexity_filter", {"kenlm_model": "lm.arpa"}, False),  # KenLM runs on the CPU
    ("image_nsfw_filter", {}, False),  # the packaged open-NSFW network runs on ONNX Runtime
    ("image_nsfw_filter", {"model": "m"}, True),
    ("video_nsfw_filter", {}, False),
    ("video_watermark_filter", {}, True),
    ("image_text_similarity_filter", {"device": "cpu"}, False),
    ("text_length_filter", {}, False),
    ("token_num_filter", {}, False),
])
def test_ops_that_run_a_torch_model_off_the_cpu_want_a_gpu(name: str, params: dict[str, Any], wants: bool) -> None:
    assert create_op(name, params).wants_gpu() is wants


def test_recipes_and_data_juicer_exports_do_not_carry_the_device() -> None:
    condition = Condition(op="video_watermark_filter", max=0.5, params={"device": "cuda", "frame_num": 5})
    assert condition.params == {"frame_num": 5}
    config = to_data_juicer(Recipe(name="r", conditions=[condition]))
    assert "device" not in config["process"][0]["video_watermark_filter"]


@pytest.mark.usefixtures("no_cuda")
def test_perplexity_on_the_cpu_is_what_auto_computes_without_a_gpu(tiny_lm: Path) -> None:  # noqa: F811
    texts = ["the cat sat on the mat .", "a fish", "the mat ate a cat"]
    auto = create_op("perplexity_filter", {"model": str(tiny_lm)}).compute(TextBatch(texts))["perplexity"]
    cpu = create_op("perplexity_filter", {"model": str(tiny_lm), "device": "cpu"}).compute(TextBatch(texts))
    assert auto.tolist() == cpu["perplexity"].tolist()


class _Loaded(Exception):
    """Stops an OP at its model load, with the device it asked for."""


def _record_device(*args: Any, **kwargs: Any) -> Any:
    raise _Loaded(kwargs.get("device", args[-1]))


@pytest.mark.usefixtures("cuda")
def test_the_perplexity_model_loads_on_the_gpu_where_there_is_one(
    tiny_lm: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setattr(perplexity_filter, "load_causal_lm", _record_device)
    with pytest.raises(_Loaded, match="^cuda$"):
        create_op("perplexity_filter", {"model": str(tiny_lm)}).compute(TextBatch(["the cat"]))
    with pytest.raises(_Loaded, match="^cpu$"):
        create_op("perplexity_filter", {"model": str(tiny_lm), "device": "cpu"}).compute(TextBatch(["the cat"]))


@pytest.mark.usefixtures("cuda")
def test_vision_models_load_on_the_gpu_where_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vision_models, "_load", _record_device)
    png = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(png, format="PNG")
    batch = ImageBatch(["a cat"], [png.getvalue()])
    with pytest.raises(_Loaded, match="^cuda$"):
        create_op("image_text_similarity_filter", {"model": "clip"}).compute(batch)
    with pytest.raises(_Loaded, match="^cpu$"):
        create_op("image_text_similarity_filter", {"model": "clip", "device": "cpu"}).compute(batch)
