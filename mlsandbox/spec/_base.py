"""The one strict base of every spec model (unknown keys are errors, values are frozen), and the
value types several sections share."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mlsandbox.content import unknown_home
from mlsandbox.errors import KeyValueError


class Checked(BaseModel):
    """Settings a person writes: a typo'd key is an error, not a silently ignored setting, and
    ``size: true`` is a mistake, not the number 1, as ``shuffle: 0`` is not false (pydantic alone
    would read them as 1 and false)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_true_as_a_number(cls, data: Any) -> Any:
        for key, value in data.items() if isinstance(data, dict) else ():
            field = cls.model_fields.get(key)
            items = value if isinstance(value, list | tuple) else [value]
            if (field and any(isinstance(item, bool) for item in items) and _admits(field.annotation, (int, float))
                    and not _admits(field.annotation, (bool,))):
                raise KeyValueError(key, value, "true/false where a number is expected")
            if field and field.annotation is bool and not isinstance(value, bool):
                raise KeyValueError(key, value, "must be true or false")
        return data


class StrictModel(Checked):
    """A spec section."""

    #: Keys that say where the work runs (``device``): left out of :meth:`digest` while at their
    #: default, so that adding such a key keeps every earlier digest, and with it every finished
    #: cell; a value set otherwise is part of the digest, so that work pinned there stays apart.
    placement_keys: ClassVar[frozenset[str]] = frozenset()
    #: Keys added after cells existed whose default is what was done before (a hub ``revision``):
    #: left out of :meth:`digest` while at their default, like :attr:`placement_keys`.
    later_keys: ClassVar[frozenset[str]] = frozenset()
    #: Keys that cannot change a finished result (time limits, torch thread counts): digested at their
    #: default value whatever they are set to, so that raising a limit keeps every finished cell.
    limit_keys: ClassVar[frozenset[str]] = frozenset()

    def digest(self) -> str:
        """sha256 of the canonical JSON of ``model_dump`` (sorted keys, no whitespace), without the
        :attr:`placement_keys` and :attr:`later_keys` at their default, and with the :attr:`limit_keys` at theirs."""
        fields = type(self).model_fields
        default = {key for key in self.placement_keys | self.later_keys if getattr(self, key) == fields[key].default}
        values = self.model_dump(mode="json", exclude=default)
        values.update({key: fields[key].default for key in self.limit_keys})
        payload = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _admits(annotation: Any, kinds: tuple[type, ...]) -> bool:
    """Whether a field's type takes values of ``kinds`` (directly, in a union, list or literal, or as ``Any``)."""
    if annotation is Any or annotation in kinds:
        return True
    if get_origin(annotation) is Literal:
        return any(type(value) in kinds for value in get_args(annotation))
    return any(_admits(arg, kinds) for arg in get_args(annotation))


#: Where a torch model runs: ``auto`` (a CUDA GPU where torch sees one, else the CPU), ``cpu`` or ``cuda``.
Device = Literal["auto", "cpu", "cuda"]


#: The largest seed every consumer takes: numpy's legacy ``RandomState`` (which Optuna's samplers
#: use) needs 0 <= seed < 2**32; ``default_rng`` and torch need seed >= 0.
MAX_SEED = 2**32 - 1


#: The most times one sample may be seen in a pool (a recipe's ``repeat``, an ``id_repeats`` count, a
#: duplication multiple). Repetition studies stop far below it; above it a value is a typo that would
#: materialise a pool too large for memory.
MAX_REPEAT = 1_000


def _check_seed(value: int) -> int:
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"a seed must be an integer from 0 to {MAX_SEED} (numpy's seed range)")
    return value


#: A random seed, bounded at the spec so that a bad one is named by its key, not by numpy later.
Seed = Annotated[int, AfterValidator(_check_seed)]


def _distinct(seeds: list[int]) -> list[int]:
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct (a repeated seed repeats its cell and fakes certainty)")
    return seeds


#: A list of seeds, each used once: a repeat would count one cell as several measurements.
Seeds = Annotated[list[Seed], AfterValidator(_distinct)]


def _not_a_url(instead: str) -> AfterValidator:
    def check(path: str) -> str:
        if "://" in path:
            raise ValueError(f"a URL: {instead}")
        return path

    return AfterValidator(check)


#: The longest name of a benchmark, a model label or a trainer's metric: each becomes part of MLflow
#: metric names (``<metric>.<benchmark>``, ``train.<metric>``), which MLflow limits to 250 characters.
MAX_NAME = 100


def _known_home(path: str) -> str:
    """Refuse a ``~user`` path of no user of this machine, at load rather than where it is read."""
    if why := unknown_home(path):
        raise ValueError(why)
    return path


#: A path that may start with ``~`` or ``~user``: refused at load where that names no home folder.
KnownHome = AfterValidator(_known_home)
HomePath = Annotated[str, KnownHome]
#: Where data is read from. A URL is refused at once: made a path, its "//" would fold to "/", and a
#: password in it would no longer read as one in the messages that name the path.
DataPath = Annotated[HomePath, _not_a_url("data is read from a local file, folder or glob, a Hugging Face dataset "
                                          "name or builtin:...; download it first")]
def _named(path: str) -> str:
    if not path.strip():
        raise ValueError('empty: name a folder ("." for the working directory)')
    return path


#: A folder of this machine (or one it mounts); a URL would be made a folder of that name, and its
#: password written into every path the MLflow store records. An empty value is refused, not read
#: as the working directory, which a blank template value would otherwise fill with the cache.
LocalFolder = Annotated[HomePath, AfterValidator(_named),
                        _not_a_url("the workspace is a folder on this machine or a file system it mounts")]


def _inside_output(path: str) -> str:
    if Path(path).is_absolute() or ".." in Path(path).parts:
        raise ValueError("must be a relative path inside the output directory")
    if path.replace(os.sep, "/").rsplit("/", 1)[-1] in ("", "."):  # Path drops a trailing / or /.
        raise ValueError("must name a file, not a folder: the command writes its metrics to it")
    return path


#: A file a command writes, named relative to the folder it runs in: one outside it would be
#: removed (a stale result must not pass for a new one) wherever it is.
OutputFile = Annotated[str, Field(min_length=1), AfterValidator(_inside_output)]
