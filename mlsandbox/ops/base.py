"""The operator interface: one small class per OP, a registry keyed by Data-Juicer's names.

An OP turns a batch of samples into one or more per-sample statistics ("stats"). It never
filters: thresholds belong to recipes (:mod:`mlsandbox.recipes`), so the same cached stat serves
every pool, recipe and search trial.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from mlsandbox.ops.batch import TextBatch


class OpParams(BaseModel):
    """Parameters that change an OP's statistic (and so its cache key). Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Op(ABC):
    """A per-sample statistic with Data-Juicer's OP name and stat key(s).

    Subclasses set ``name``, ``stat_keys`` (the first numeric one is the ``primary_stat`` that
    pools split on, unless ``primary_stat`` is set), optionally a nested ``Params`` model, and
    implement :meth:`compute`. The class docstring's first line is the OP's description; the rest
    states the statistic's exact definition.
    """

    name: ClassVar[str]
    #: What the OP reads: ``text``, ``image`` or ``image-text`` (the last two need an :class:`ImageBatch`).
    modality: ClassVar[Literal["text", "image", "image-text"]] = "text"
    stat_keys: ClassVar[tuple[str, ...]]
    primary_stat: ClassVar[str] = ""
    #: Model-backed OPs set a smaller batch: they run in a separate pass, whose finished
    #: batches are checkpointed, so progress shows and a killed run resumes where it stopped.
    max_batch: ClassVar[int | None] = None
    Params: ClassVar[type[OpParams]] = OpParams

    def __init__(self, **params: Any) -> None:
        try:
            self.params = self.Params(**params)
        except ValidationError as err:
            raise ValueError(f"invalid params for OP {self.name!r}: {_describe(err)}") from None

    @classmethod
    def description(cls) -> str:
        return (inspect.getdoc(cls) or "").splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def needs_images(cls) -> bool:
        return cls.modality != "text"

    @classmethod
    def split_stat(cls) -> str:
        """The numeric stat that single-OP pools are split on."""
        return cls.primary_stat or cls.stat_keys[0]

    def identity(self) -> dict[str, Any]:
        """What determines this OP's stats: its name and params (the stats-cache key)."""
        return {"op": self.name, "params": self.params.model_dump(mode="json")}

    @abstractmethod
    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        """Return one array per stat key, each of ``len(batch)`` values (no NaN).

        OPs whose ``modality`` is not ``text`` receive an :class:`ImageBatch`.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({args})"


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<params>"
        parts.append(f"{loc}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(parts)


_REGISTRY: dict[str, type[Op]] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: make an OP available by its name."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"OP {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def op_class(name: str) -> type[Op]:
    """The OP class registered as ``name``; a clear error lists the known names otherwise."""
    _load_builtin_ops()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown OP {name!r}; known OPs: {known}") from None


def create_op(name: str, params: dict[str, Any] | None = None) -> Op:
    return op_class(name)(**(params or {}))


def list_ops() -> list[type[Op]]:
    _load_builtin_ops()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def _load_builtin_ops() -> None:
    # Importing the package registers every built-in OP (each module calls ``register``).
    import mlsandbox.ops.image  # noqa: F401
    import mlsandbox.ops.text  # noqa: F401
