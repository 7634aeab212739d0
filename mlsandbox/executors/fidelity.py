"""Fidelities: which model measures a step's pools, and how many seeds each pool gets.

A step has one or two: the optional **screen** (``spec.screen``: a cheap model, a fixed list of
seeds) measures every pool; the **deciding** model (``spec.model``) measures the pools the
screen leaves open, with a fixed list of seeds or a race between ``race.min_seeds`` and
``race.max_seeds`` of ``spec.seeds``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlsandbox.spec import ExperimentSpec, ModelSpec

SCREEN, DECIDE = "screen", "decide"


@dataclass(frozen=True)
class Fidelity:
    """A model and the seeds (in order) it may give each pool: at least ``min_seeds`` of them."""

    name: str
    model: ModelSpec
    seeds: tuple[int, ...]
    min_seeds: int

    @property
    def max_seeds(self) -> int:
        return len(self.seeds)

    @property
    def looks(self) -> int:
        """How many times a raced pool may be tested: after each seed from the minimum to the maximum."""
        return self.max_seeds - self.min_seeds + 1


def deciding(spec: ExperimentSpec, seeds: list[int] | None = None) -> Fidelity:
    """The project's model with its seeds: raced per the spec, or exactly ``seeds`` when given."""
    if seeds is not None:
        return Fidelity(DECIDE, spec.model, tuple(seeds), len(seeds))
    low, high = spec.decision_seeds()
    return Fidelity(DECIDE, spec.model, tuple(spec.seeds[:high]), low)


def fidelities(spec: ExperimentSpec) -> list[Fidelity]:
    """The fidelities of a step, cheapest first: the screen (if any), then the deciding model."""
    if spec.screen is None:
        return [deciding(spec)]
    screen = Fidelity(SCREEN, spec.screen.model, tuple(spec.screen.seeds), len(spec.screen.seeds))
    return [screen, deciding(spec)]
