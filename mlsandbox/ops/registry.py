"""The OP registry: OP classes by their Data-Juicer names.

Built-in OPs register when :mod:`mlsandbox.ops` is imported (the package imports ``text``,
``image`` and ``video``); an OP of your own registers with the :func:`register` class decorator.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlsandbox.ops.base import Op

_REGISTRY: dict[str, type[Op]] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: make an OP available by its name."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"OP {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


@contextmanager
def registered(*classes: type[Op]) -> Iterator[None]:
    """OPs available by name only inside the ``with`` block (OPs of a test, a plugin trial)."""
    added = [cls for cls in classes if cls.name not in _REGISTRY]
    for cls in classes:
        register(cls)
    try:
        yield
    finally:
        for cls in added:  # an OP registered before the block stays registered after it
            _REGISTRY.pop(cls.name, None)


def op_class(name: str) -> type[Op]:
    """The OP class registered as ``name``; a clear error lists the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown OP {name!r}; known OPs: {known}") from None


def create_op(name: str, params: dict[str, Any] | None = None) -> Op:
    """An OP by name, with its params validated."""
    return op_class(name)(**(params or {}))


def list_ops() -> list[type[Op]]:
    """Every registered OP class, by name."""
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]
