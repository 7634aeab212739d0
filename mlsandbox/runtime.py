"""The process's compute budget: how many cores it may use, and which device its torch models run on.

torch is imported inside the functions that need it, so that reading a budget costs no torch import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from mlsandbox.errors import SpecError

if TYPE_CHECKING:
    import torch

#: The device settings a model or OP accepts (the spec spells the same values as ``Device``).
DEVICES = ("auto", "cpu", "cuda")


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS has one, else all cores, and no
    more than ``OMP_NUM_THREADS`` where that is set (as Ray sets it to a task's ``num_cpus``)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores


def resolve_workers(workers: int) -> int:
    """A worker or thread count where 0 means one per available core."""
    return workers if workers > 0 else available_cores()


def resolve_device(device: str) -> Literal["cpu", "cuda"]:
    """The torch device a ``device`` setting (``auto``, ``cpu`` or ``cuda``) means in this process.

    ``auto`` takes a CUDA GPU where torch sees one and the CPU elsewhere, so one spec runs on a
    laptop and on a GPU machine alike. ``cuda`` where torch sees none is a :class:`SpecError`
    rather than a silent fall-back to a CPU run that may be a hundred times slower.
    """
    if device not in DEVICES:
        raise SpecError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise SpecError(
            "device: cuda, but torch finds no CUDA GPU here (torch.cuda.is_available() is False); "
            "set device: auto to use a GPU where there is one, or device: cpu"
        )
    return "cpu"


def inference_dtype(device: str) -> Literal["bfloat16", "float32"]:
    """The faster of bfloat16 and float32 for a model's forward pass on a resolved ``device``.

    bfloat16 where the hardware computes in it: a CUDA GPU that supports it, a CPU with AVX-512
    BF16 or AMX instructions (there it halves a causal LM's cost). Elsewhere torch emulates
    bfloat16, and a CPU with AVX2 only multiplies bfloat16 matrices ~35x slower than float32
    (0.6 against 21 GFLOP/s per core, measured on an AMD EPYC without AVX-512), so float32.
    ``cuda`` where this process sees no GPU (a Ray driver placing work on GPU nodes) means one
    that supports bfloat16, as every GPU since 2020 does.
    """
    import torch

    if device == "cuda":
        old_gpu = torch.cuda.is_available() and not torch.cuda.is_bf16_supported()
        return "float32" if old_gpu else "bfloat16"
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    native = any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return "bfloat16" if native else "float32"


def autocast_dtype(device: str) -> torch.dtype | None:
    """The reduced precision to autocast to on a resolved ``device``; None means float32.

    On CUDA, bfloat16 where the GPU supports it: it keeps float32's exponent range, so training
    needs no loss scaling. Older GPUs get float16, whose small range needs a gradient scaler. The
    CPU stays in float32, so CPU results are exactly what they were before GPUs were supported.
    """
    if device != "cuda":
        return None
    import torch

    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
