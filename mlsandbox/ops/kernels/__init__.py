"""Text kernels (words, special characters, n-grams) that batches and OPs build on.

They take NumPy arrays and plain lists, never a batch, so that :mod:`mlsandbox.ops.batch` can sit
on top of them. Their loops are compiled with numba (:mod:`._jit`), loaded on first use.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType, SimpleNamespace
from typing import Any

from mlsandbox.ops.kernels.special_characters import ALNUM, SEPARATOR, SPECIAL

#: The signals whose Python handlers raise (Ctrl-C, and the commands' SIGTERM handler).
_RAISING = {signal.SIGINT, signal.SIGTERM}


@cache
def compiled() -> SimpleNamespace:
    """The compiled loops, loaded once per process (~1 s: numba itself, then cached machine code),
    each called :func:`uninterrupted`; their constants as they are.

    Importing numba only here keeps it out of processes that never compute a text stat.
    """
    from mlsandbox.ops.kernels import _jit

    with uninterrupted():  # the first call loads numba's cached code: the longest time inside its dispatcher
        bits = tuple(_jit.flag_bits())
    if bits != (ALNUM, SPECIAL, SEPARATOR):
        raise RuntimeError(
            "numba's cached machine code for mlsandbox/ops/kernels/_jit.py predates a change of the "
            "character flag bits: delete the numba cache files (*.nbi, *.nbc) next to it"
        )
    return _wrapped(_jit)


def _wrapped(module: ModuleType) -> SimpleNamespace:
    def shielded(loop: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(loop)
        def call(*args: Any) -> Any:
            with uninterrupted():
                return loop(*args)
        return call

    names = {name: getattr(module, name) for name in dir(module) if not name.startswith("__")}
    return SimpleNamespace(**{name: shielded(value) if hasattr(value, "py_func") else value
                              for name, value in names.items()})


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends, then reach their handlers as ever. Handled while
    numba's dispatcher calls back into Python, they came out as a ``SystemError`` (a traceback instead
    of exit code 130 or 143), once as a crash. Any thread of the process may receive a signal, so
    blocking it in one would not do: the block's own handlers only note it. Handlers can be set in
    the main thread only; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    # A handler set outside Python (None here) cannot be put back once replaced: such a signal is left alone.
    previous = {signum: handler for signum in _RAISING if (handler := signal.getsignal(signum)) is not None}
    for signum in previous:
        signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:  # the first signal, handled as if it came now (the default action included)
            handler = previous[signal.Signals(caught[0])]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])
