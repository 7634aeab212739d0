"""How an OP's stats are spelled as a Data-Juicer 1.6.1 filter.

An OP class that Data-Juicer can run sets ``data_juicer`` to a :class:`DataJuicerFilter`: for
each stat, the filter's bound arguments, their defaults and the stat's natural range; the
arguments that choose a categorical stat's values; and the arguments that must be fixed for
Data-Juicer to compute the same stat. Recipes (:mod:`mlsandbox.recipes`) read it to export
conditions to Data-Juicer configs and to import them back.

Every mapping was checked against ``data_juicer/ops/filter/<op>.py``. Data-Juicer's
``Filter.get_keep_boolean`` keeps the closed interval ``min <= stat <= max`` by default, as
:func:`mlsandbox.pools.filter_pool` does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

#: sys.maxsize is Data-Juicer's own "no upper limit" default (alphanumeric/text_length/words_num).
UNBOUNDED = sys.maxsize


@dataclass(frozen=True)
class StatArgs:
    """How one stat's bounds are spelled in a Data-Juicer filter, and which bounds are open.

    ``floor``/``ceiling`` are the stat's natural range: a bound there cuts nothing. Data-Juicer
    applies its default when an argument is left out, so an open bound is written explicitly
    (``floor``, or ``ceiling``/``UNBOUNDED``) wherever that default would cut. An argument of
    None means the filter has no such bound.
    """

    min_arg: str | None
    max_arg: str | None
    min_default: float | Fraction | None
    max_default: float | Fraction | None
    floor: float = 0.0
    ceiling: float = UNBOUNDED
    integer: bool = False  # the stat is a count and Data-Juicer's arguments are int
    #: Data-Juicer reads the bounds as exact fractions of their text (``Fraction(str(arg))``, "9/21"
    #: or "9:21") and compares them exactly with the float stat.
    fraction: bool = False

    @classmethod
    def ratio(
        cls, min_arg: str | None, max_arg: str | None, min_default: float | None, max_default: float | None
    ) -> StatArgs:
        """A share, in [0, 1]."""
        return cls(min_arg, max_arg, min_default, max_default, floor=0.0, ceiling=1.0)

    @classmethod
    def count(
        cls, min_arg: str, max_arg: str, min_default: int, max_default: int, floor: int = 0
    ) -> StatArgs:
        """A count from ``floor`` up, with int arguments."""
        return cls(min_arg, max_arg, min_default, max_default, floor=floor, ceiling=UNBOUNDED, integer=True)

    def default_is_open(self, side: Literal["min", "max"]) -> bool:
        """Whether Data-Juicer's default for this bound cuts nothing."""
        if side == "min":
            return self.min_default is None or self.min_default <= self.floor
        return self.max_default is None or self.max_default >= self.ceiling


@dataclass(frozen=True)
class DataJuicerArg:
    """A Data-Juicer argument that holds one of our params under another name, and its default
    there (what Data-Juicer runs when a config leaves it out; ``""`` in a config means it too)."""

    name: str
    default: Any


@dataclass(frozen=True)
class DataJuicerWords:
    """A word list that Data-Juicer's filter reads from a folder (its argument ``folder_arg``): every
    JSON file there whose name holds ``asset``, each ``{language: [words]}``; without one it downloads
    its own list, which counts other words. An export writes the OP's list there, so that Data-Juicer
    counts the words mlsandbox counted."""

    folder_arg: str
    asset: str
    words: Callable[[str], Iterable[str]]  # the OP's list for its ``lang`` param


@dataclass(frozen=True)
class DataJuicerFilter:
    """One Data-Juicer 1.6.1 filter: bound arguments per stat, categorical args, fixed args.

    The OP's params are written as arguments of the same name, except those in ``renamed`` (the
    same setting under Data-Juicer's name: an export writes the param's value there, left out
    when None, and an import reads it back, with Data-Juicer's default where the config has
    none) and those in ``local`` (settings of ours that Data-Juicer has no argument for, such as
    a batch size or which class of a classifier to read: never written, at our defaults on import).
    """

    stats: Mapping[str, StatArgs]
    categorical: Mapping[str, str] = field(default_factory=dict)  # stat key -> DJ argument
    fixed: Mapping[str, Any] = field(default_factory=dict)  # args that make DJ compute our stat
    inert: Mapping[str, Any] = field(default_factory=dict)  # written for clarity; unused without tokenization
    renamed: Mapping[str, DataJuicerArg] = field(default_factory=dict)  # our param -> DJ's argument
    local: frozenset[str] = frozenset()  # our params without a DJ argument
    #: The word list the filter counts, which an export writes beside the config for Data-Juicer to read.
    words: DataJuicerWords | None = None
    #: Why Data-Juicer, with these arguments, may still keep other samples: a resource it reads in
    #: place of ours (a model file). Said in every export that uses the filter.
    caveat: str | None = None

    def stat_keys(self) -> set[str]:
        """The stats this filter can bound."""
        return set(self.stats) | set(self.categorical)
