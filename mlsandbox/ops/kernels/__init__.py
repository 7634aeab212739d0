"""Text kernels (words, special characters, n-grams) that batches and OPs build on.

They take NumPy arrays and plain lists, never a batch, so that :mod:`mlsandbox.ops.batch` can sit
on top of them. Their loops are compiled with numba (:mod:`._jit`), loaded on first use.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType

from mlsandbox.ops.kernels.special_characters import ALNUM, SEPARATOR, SPECIAL


@cache
def compiled() -> ModuleType:
    """The compiled loops, loaded once per process (~1 s: numba itself, then cached machine code).

    Importing numba only here keeps it out of processes that never compute a text stat.
    """
    from mlsandbox.ops.kernels import _jit

    if tuple(_jit.flag_bits()) != (ALNUM, SPECIAL, SEPARATOR):
        raise RuntimeError(
            "numba's cached machine code for mlsandbox/ops/kernels/_jit.py predates a change of the "
            "character flag bits: delete the numba cache files (*.nbi, *.nbc) next to it"
        )
    return _jit
