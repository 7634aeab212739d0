"""The operator interface: one small class per OP, named as in Data-Juicer.

An OP turns a batch of samples into one or more per-sample statistics ("stats"). It never
filters: thresholds belong to recipes (:mod:`mlsandbox.recipes`), so the same cached stat serves
every pool, recipe and search trial. OPs are found by name in :mod:`mlsandbox.ops.registry`.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from abc import ABC, abstractmethod
from functools import cache
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
from pydantic import ValidationError

from mlsandbox.errors import OpParamsError, describe_validation_error
from mlsandbox.ops.batch import TextBatch
from mlsandbox.ops.data_juicer import DataJuicerFilter
from mlsandbox.spec import Checked, Device

#: The batch an OP reads: :class:`TextBatch`, :class:`~mlsandbox.ops.batch.ImageBatch` for
#: image and image-text OPs, or :class:`~mlsandbox.ops.video.VideoBatch` for video OPs.
BatchT = TypeVar("BatchT", bound=TextBatch)


class OpParams(Checked):
    """Parameters that change an OP's statistic (and so its cache key), except the
    :attr:`runtime_params`, which say only where it is computed. Unknown keys are errors."""

    #: Params that choose where the statistic is computed, not what it is: left out of the OP's
    #: identity (its stats-cache key), of recipe conditions and of Data-Juicer exports.
    runtime_params: ClassVar[frozenset[str]] = frozenset({"device"})

    def stat_params(self, exclude_defaults: bool = False) -> dict[str, Any]:
        """The params that define the statistic, as JSON values (the :attr:`runtime_params` left out)."""
        return self.model_dump(mode="json", exclude=set(self.runtime_params), exclude_defaults=exclude_defaults)


class DeviceParams(OpParams):
    """Params of an OP that runs a torch model: ``device`` says where (``auto``: a CUDA GPU where
    torch sees one, else the CPU). The model runs in its own precision on either, so a statistic
    computed on a GPU is the same statistic (up to float rounding) and shares its cache."""

    device: Device = "auto"


@cache  # read for every stats-cache key; what is installed does not change while a process runs
def installed_version(distribution: str) -> str:
    """A distribution's installed version, or "absent"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


class Op(ABC, Generic[BatchT]):
    """A per-sample statistic with Data-Juicer's OP name and stat key(s).

    Subclasses name the batch they read (``Op[TextBatch]`` or ``Op[ImageBatch]``), set
    ``name``, ``stat_keys`` (the first numeric one is the ``primary_stat`` that pools split on,
    unless ``primary_stat`` is set), optionally a nested ``Params`` model (then annotate
    ``params: Params``) and ``data_juicer``, and implement :meth:`compute`. The class
    docstring's first line is the OP's description; the rest states the statistic's exact
    definition.
    """

    name: ClassVar[str]
    #: What the OP reads: ``text``; ``image`` or ``image-text`` (an :class:`ImageBatch`); ``video`` or
    #: ``video-text`` (a ``VideoBatch``).
    modality: ClassVar[Literal["text", "image", "image-text", "video", "video-text"]] = "text"
    stat_keys: ClassVar[tuple[str, ...]]
    primary_stat: ClassVar[str] = ""
    #: Model-backed OPs set a smaller batch: they run in a separate pass, whose finished
    #: batches are checkpointed, so progress shows and a killed run resumes where it stopped.
    max_batch: ClassVar[int | None] = None
    Params: ClassVar[type[OpParams]] = OpParams
    #: How Data-Juicer's filter of the same name computes and bounds these stats; None where
    #: recipes cannot export conditions on this OP to Data-Juicer.
    data_juicer: ClassVar[DataJuicerFilter | None] = None
    #: The version of the statistic's definition, part of the stats-cache key: bump it (an int)
    #: whenever a change alters the values the OP computes, or the old cached stats are served.
    version: ClassVar[int] = 1
    #: Installed distributions whose data the statistic reads (a word list, a language model):
    #: their versions are part of the stats-cache key, so an upgrade recomputes.
    packages: ClassVar[tuple[str, ...]] = ()
    #: (param, distribution): the packaged model the OP loads while that param is unset, keyed then
    #: as :attr:`packages` are (a named model is keyed by its files or its hub commit instead).
    default_model: ClassVar[tuple[str, str] | None] = None

    params: OpParams

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if isinstance(cls.version, bool) or not isinstance(cls.version, int) or cls.version < 1:
            raise TypeError(f"OP class {cls.__name__}: version must be an int >= 1, got {cls.version!r}")

    def package_versions(self) -> dict[str, str]:
        """The installed version of each of :attr:`packages` and of an unset param's :attr:`default_model`
        ("absent" when not installed)."""
        names = list(self.packages)
        if self.default_model is not None and getattr(self.params, self.default_model[0]) is None:
            names.append(self.default_model[1])
        return {name: installed_version(name) for name in names}

    def __init__(self, **params: Any) -> None:
        try:
            self.params = self.Params(**params)
        except ValidationError as err:
            problems = describe_validation_error(err, allowed_keys=lambda loc: sorted(self.Params.model_fields))
            raise OpParamsError(f"invalid params for OP {self.name!r}: {'; '.join(problems)}", problems) from None

    @classmethod
    def description(cls) -> str:
        return (inspect.getdoc(cls) or "").splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def needs_images(cls) -> bool:
        return cls.modality in ("image", "image-text")

    @classmethod
    def needs_videos(cls) -> bool:
        return cls.modality in ("video", "video-text")

    @classmethod
    def split_stat(cls) -> str:
        """The numeric stat that single-OP pools are split on."""
        return cls.primary_stat or cls.stat_keys[0]

    def identity(self) -> dict[str, Any]:
        """What determines this OP's stats: its name and params but the runtime ones (the stats-cache key)."""
        return {"op": self.name, "params": self.params.stat_params()}

    def wants_gpu(self) -> bool:
        """Whether the OP would run a torch model on a GPU if its worker had one: its ``device`` is
        not ``cpu``. An executor gives such OPs' workers a GPU where the cluster has one."""
        return isinstance(self.params, DeviceParams) and self.params.device != "cpu"

    @abstractmethod
    def compute(self, batch: BatchT) -> dict[str, np.ndarray]:
        """Return one array per stat key, each of ``len(batch)`` values (no NaN).

        Image OPs receive an :class:`~mlsandbox.ops.batch.ImageBatch`, video OPs a ``VideoBatch``.
        """

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({args})"
