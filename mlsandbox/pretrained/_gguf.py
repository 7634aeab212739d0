"""GGUF files read directly: header, metadata and tensor table in one pass, tensors dequantised with the
``gguf`` package, and a llama model written as transformers' ``LlamaForCausalLM`` (see the package's
docstring for why not through transformers' own GGUF reader)."""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsandbox.errors import ModelUnavailableError


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
    require_gguf()
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


def write_llama(gguf: GgufFile, directory: Path) -> bool:
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


def require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ModelUnavailableError("reading a GGUF model needs the gguf package: pip install gguf")
