"""Threshold recipes: bounds refined from the data, by k-sigma or by percentiles of each stat."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mlsandbox.errors import RecipeError
from mlsandbox.ops import Op
from mlsandbox.recipes._recipe import Condition, Recipe
from mlsandbox.stats import StatsTable


def ksigma_recipe(
    stats: StatsTable,
    k: float | Mapping[str, float],
    keys: list[str] | None = None,
    name: str = "ksigma",
) -> Recipe:
    """Keep ``mean ± k·std`` of each stat (population std; ``k`` per stat via a mapping).

    A bound outside the stat's observed range would cut nothing, so it is dropped; a stat with
    both bounds dropped gets no condition. This is decided per stat from the data, not from
    the names of Data-Juicer arguments.
    """
    if keys is None and isinstance(k, Mapping):
        keys = list(k)
    keys = _resolve_keys(stats, keys)
    if isinstance(k, Mapping):
        missing = [key for key in keys if key not in k]
        if missing:
            raise RecipeError(f"k-sigma: no k for stats {missing}; give k for every stat in keys")
        ks = {key: k[key] for key in keys}
    else:
        ks = {key: k for key in keys}
    for key, kk in ks.items():
        if isinstance(kk, bool) or not isinstance(kk, (int, float)) or not math.isfinite(kk) or kk <= 0:
            raise RecipeError(f"k-sigma: k for {key} must be a positive number, got {kk!r}")
    bounds = {}
    for key in keys:
        values = stats.stat(key).astype(float)
        mean, std = float(values.mean()), float(values.std())
        bounds[key] = (mean - ks[key] * std, mean + ks[key] * std)
    if isinstance(k, Mapping):
        source = "k-sigma k={" + ", ".join(f"{key}: {ks[key]:g}" for key in keys) + "}"
    else:
        source = f"k-sigma k={k:g}"
    return _bounded_recipe(stats, bounds, name, source)


def percentile_recipe(
    stats: StatsTable,
    lower: float | None,
    upper: float | None,
    keys: list[str] | None = None,
    name: str = "percentile",
) -> Recipe:
    """Keep each stat between its ``lower`` and ``upper`` percentiles (0-100; None = unbounded)."""
    if lower is None and upper is None:
        raise RecipeError("percentile: give lower, upper or both")
    for label, q in (("lower", lower), ("upper", upper)):
        if q is not None and not 0 <= q <= 100:
            raise RecipeError(f"percentile: {label} must be in [0, 100], got {q}")
    if lower is not None and upper is not None and lower >= upper:
        raise RecipeError(f"percentile: lower {lower} must be below upper {upper}")
    keys = _resolve_keys(stats, keys)
    bounds = {}
    for key in keys:
        values = stats.stat(key).astype(float)
        bounds[key] = (
            None if lower is None else float(np.percentile(values, lower)),
            None if upper is None else float(np.percentile(values, upper)),
        )
    return _bounded_recipe(stats, bounds, name, f"percentile lower={lower} upper={upper}")


def _resolve_keys(stats: StatsTable, keys: list[str] | None) -> list[str]:
    """Default: every OP's split stat; each key must be a numeric stat of the table."""
    numeric = set(stats.numeric_keys())
    if keys is None:
        keys = [op.split_stat() for op in stats.ops if op.split_stat() in numeric]
    for key in keys:
        if key not in numeric:
            raise RecipeError(f"{key!r} is not a numeric stat of the stats table (numeric: {sorted(numeric)})")
    if not keys:
        raise RecipeError("no stats to refine: the stats table has no numeric stat")
    return list(keys)


def _bounded_recipe(
    stats: StatsTable, bounds: Mapping[str, tuple[float | None, float | None]], name: str, source: str
) -> Recipe:
    conditions = []
    for key, (lo, hi) in bounds.items():
        values = stats.stat(key)
        # A bound at or beyond the observed extreme keeps every sample: no need to write it.
        lo = None if lo is None or lo <= values.min() else lo
        hi = None if hi is None or hi >= values.max() else hi
        if lo is None and hi is None:
            continue
        op = _owner(stats, key)
        conditions.append(Condition(op=op.name, stat=key, min=lo, max=hi,
                                    params=op.params.model_dump(mode="json")))
    return Recipe(name=name, conditions=conditions, source=source)


def _owner(stats: StatsTable, key: str) -> Op:
    for op in stats.ops:
        if key in op.stat_keys:
            return op
    raise RecipeError(f"stat {key!r} belongs to no OP of the stats table")
