"""Specs of cheap answers: a screening model, adaptive seeds (the race), and rank-transfer studies.

A step compares pools at up to two fidelities. The **screen** (a cheap model, several seeds)
measures every pool; the **deciding** model (the project's ``model``) then trains only the
pools whose decision is still open. With a **race**, the deciding model gives each pool seeds
one at a time, from ``min_seeds`` up to ``max_seeds``, until its decision is made.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from mlsandbox.errors import KeyValueError
from mlsandbox.spec._base import MAX_NAME, Seeds, StrictModel
from mlsandbox.spec.models import ModelSpec


def _not_only_dots(name: str) -> str:
    if not name.strip("."):
        raise ValueError("a label of dots alone names no folder of its own")
    return name


#: A model's label: part of MLflow metric names and of an artifact folder (``transfer/<label>``), so
#: only the characters both take, as a benchmark's name.
Label = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9_.-]+$"),
                  AfterValidator(_not_only_dots)]


class ScreenSpec(StrictModel):
    """A cheap model that ranks every pool of a step before the deciding model trains any.

    The deciding model then trains the screen's best ``margin`` x k pools (k: the pools the
    step picks, ``refine.top_k`` for the probe and 1 for refine), and every pool whose screen
    interval cannot be told apart from them or from the random control.
    """

    model: ModelSpec
    seeds: Seeds = Field(default_factory=lambda: [0, 1, 2], min_length=2,
                         description="screen seeds: at least 2, so that every pool has an interval")
    margin: int = Field(default=2, ge=1, le=10,
                        description="the deciding model trains at least the screen's best margin x k pools")


class RaceSpec(StrictModel):
    """Adaptive seeds: the deciding model gives a pool seeds, in the order of ``seeds``, until
    its interval excludes zero and its top-k membership is settled, it can no longer enter the
    top-k, or it has ``max_seeds``."""

    min_seeds: int = Field(default=2, ge=2, le=64, description="seeds every decided pool gets (>= 2: an interval)")
    max_seeds: int = Field(default=4, ge=2, le=64, description="at most this many seeds per pool")

    @model_validator(mode="after")
    def _ordered(self) -> RaceSpec:
        if self.max_seeds < self.min_seeds:
            raise KeyValueError("max_seeds", self.max_seeds, f"is below min_seeds={self.min_seeds}")
        return self


class TransferSpec(StrictModel):
    """Models of increasing cost that all train the same pools, to measure how well the cheaper
    ones' ranking of pools predicts the more expensive ones' (``mlsandbox transfer``)."""

    models: list[ModelSpec] = Field(default_factory=list, description="the fidelities, cheapest first (>= 2)")
    names: list[Label] | None = Field(default=None, description="a label per model; default: type and index")
    seeds: Seeds = Field(default_factory=lambda: [0, 1], min_length=1)

    @model_validator(mode="after")
    def _labels(self) -> TransferSpec:
        if self.names is not None and len(self.names) != len(self.models) and self.models:  # none: said by `transfer`
            raise KeyValueError("names", self.names, f"needs one label for each of the {len(self.models)} models")
        if self.names is not None and len(set(self.names)) != len(self.names):
            raise KeyValueError("names", self.names, "must be distinct")
        return self

    def labels(self) -> list[str]:
        """One label per model: ``names``, else ``<type>-<index>``."""
        return list(self.names) if self.names else [f"{m.type}-{i}" for i, m in enumerate(self.models)]
