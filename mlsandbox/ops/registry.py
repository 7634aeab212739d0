"""The OP registry: OP classes by their Data-Juicer names.

Built-in OPs register when :mod:`mlsandbox.ops` is imported (the package imports ``text``,
``image`` and ``video``); an OP of your own registers with the :func:`register` class decorator
when its module is imported. A package makes its OPs known to every command and worker process
by naming that module in the ``mlsandbox.ops`` entry-point group (:data:`PLUGINS`), imported the
first time an OP is looked up.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlsandbox.errors import first_line
from mlsandbox.ops.base import Op

log = logging.getLogger(__name__)

#: The entry-point group of modules that register OPs.
PLUGINS = "mlsandbox.ops"

_REGISTRY: dict[str, type[Op]] = {}
_plugin_errors: dict[str, str] | None = None  # None until the plugins are imported


def _load_plugins() -> dict[str, str]:
    """Import every module of the :data:`PLUGINS` group once; the ones that fail, with why."""
    global _plugin_errors
    if _plugin_errors is None:
        _plugin_errors = {}
        for entry in importlib.metadata.entry_points(group=PLUGINS):
            try:
                entry.load()
            except Exception as err:  # a broken plugin must not hide the other OPs
                _plugin_errors[entry.value] = first_line(err)
                log.warning("OP plugin %s (%s) failed to load: %s", entry.name, entry.value, first_line(err))
    return _plugin_errors


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
    failed = _load_plugins() if name not in _REGISTRY else {}
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        broken = "".join(f"; plugin {module} failed to load: {why}" for module, why in failed.items())
        raise ValueError(f"unknown OP {name!r}; known OPs: {known}{broken}") from None


def create_op(name: str, params: dict[str, Any] | None = None) -> Op:
    """An OP by name, with its params validated."""
    return op_class(name)(**(params or {}))


def list_ops() -> list[type[Op]]:
    """Every registered OP class (the plugins' included), by name."""
    _load_plugins()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]
