"""Where a pool came from: a typed origin per kind of selection, with the params it logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

RANDOM = "random"
RECIPE = "recipe"
FILE = "file"

#: What a pool origin logs as MLflow params (and shows in tables).
OriginParams = dict[str, str | int | float]


class _SelectionOrigin:
    """An origin whose only logged param is its split kind (``recipe`` unless it says otherwise)."""

    split: ClassVar[str] = RECIPE

    def params(self) -> OriginParams:
        return {"split": self.split}


@dataclass(frozen=True)
class SplitOrigin:
    """One split (``low``, ``mid``, ...) of one OP's stat: a single-OP pool of the probe.

    The split is every sample with ``lower <= stat <= upper`` (None: unbounded; the cuts lie
    between distinct values, so these bounds select exactly the split), ``split_size`` samples
    with stats in ``[stat_min, stat_max]``; the pool is a seeded subsample of it (``seed``) of
    the common pool size, whose mean stat is ``stat_mean``.
    """

    op: str
    split: str
    stat: str
    stat_min: float
    stat_max: float
    stat_mean: float
    lower: float | None
    upper: float | None
    split_size: int
    seed: int

    def params(self) -> OriginParams:
        return {"op": self.op, "split": self.split, "stat": self.stat,
                "stat_min": self.stat_min, "stat_max": self.stat_max}


@dataclass(frozen=True)
class RandomOrigin(_SelectionOrigin):
    """The control group: a seeded uniform draw."""

    seed: int
    split: ClassVar[str] = RANDOM


@dataclass(frozen=True)
class BoundsOrigin(_SelectionOrigin):
    """Samples whose stats lie within per-stat bounds."""

    bounds: tuple[tuple[str, float | None, float | None], ...]


@dataclass(frozen=True)
class RecipeOrigin:
    """The samples a recipe selects: its conditions, then its seeded subsample, ``repeat`` times."""

    recipe: str
    recipe_digest: str
    sample_size: int | None
    seed: int
    repeat: int
    split: ClassVar[str] = RECIPE

    def params(self) -> OriginParams:
        return {"split": RECIPE, "recipe": self.recipe, "recipe_digest": self.recipe_digest, "repeat": self.repeat}


@dataclass(frozen=True)
class IntersectionOrigin(_SelectionOrigin):
    """Samples held by every one of several pools (a pyramid level, a cluster recipe), selected by
    the recipe of their splits' conditions (``recipe``, ``recipe_digest``)."""

    pools: tuple[str, ...]
    recipe: str
    recipe_digest: str

    @property
    def level(self) -> int:
        return len(self.pools)

    def params(self) -> OriginParams:
        return {"split": RECIPE, "pools": " & ".join(self.pools), "recipe": self.recipe,
                "recipe_digest": self.recipe_digest}


@dataclass(frozen=True)
class FillOrigin(_SelectionOrigin):
    """A duplication-study budget filled from the highest pyramid levels down, without repeats."""

    multiple: int
    lowest_level: int
    budget: int  # samples asked for (multiple x the top pool's); fewer where the data ran out
    recipe_digest: str  # of the id-list recipe that lists the pool's samples

    def params(self) -> OriginParams:
        return {"split": RECIPE, "multiple": self.multiple, "lowest_level": self.lowest_level, "budget": self.budget,
                "recipe_digest": self.recipe_digest}


@dataclass(frozen=True)
class FileOrigin(_SelectionOrigin):
    """The samples a pool file names by id (``train --pool-file``, ``--pool-run``)."""

    source: str
    split: ClassVar[str] = FILE


@dataclass(frozen=True)
class RepeatOrigin:
    """Another pool's samples, each seen ``times`` times as often (the duplication study)."""

    base: PoolOrigin
    times: int

    @property
    def split(self) -> str:
        return self.base.split

    def params(self) -> OriginParams:
        return {**self.base.params(), "repeat": self.times}


PoolOrigin = (SplitOrigin | RandomOrigin | BoundsOrigin | RecipeOrigin | IntersectionOrigin | FillOrigin | FileOrigin
              | RepeatOrigin)


def recipe_digest(origin: PoolOrigin) -> str:
    """The digest of the recipe that selects a pool of this origin ('' where no recipe does)."""
    if isinstance(origin, RepeatOrigin):
        return recipe_digest(origin.base)
    return origin.recipe_digest if isinstance(origin, (RecipeOrigin, IntersectionOrigin, FillOrigin)) else ""
