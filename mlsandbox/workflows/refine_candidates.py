"""Refine's candidates, each a recipe whose selection is the pool trained: the pyramid of the top-k
splits' intersections, cluster intersections, the duplication study (paper §3.3: repeat the top pool
or fill from lower levels) and k-sigma / percentile threshold recipes."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mlsandbox.errors import PoolError
from mlsandbox.executors.prepare import Prepared
from mlsandbox.pools import FillOrigin, IntersectionOrigin, Pool, PoolOrigin, RepeatOrigin, SplitOrigin, make_pool
from mlsandbox.recipes import Condition, Recipe, ksigma_recipe, percentile_recipe
from mlsandbox.stats import StatsTable
from mlsandbox.workflows.analyze import AnalysisResult

CandidateKind = Literal["pyramid", "cluster", "duplication", "ksigma", "percentile"]


@dataclass
class Candidate:
    """A refined pool with where it came from, and the recipe it is: ``recipe.select(stats)`` is the pool.

    Every candidate's pool is its recipe's selection (rows and repeats), so the exported recipe
    reproduces exactly what was trained. ``exact`` says the recipe is thresholds (conditions,
    seeded subsample, repeat), which Data-Juicer can run at full scale; an id-list recipe (a
    fill pool) reproduces the pool on this dataset only, and is never the best recipe.
    """

    name: str
    kind: CandidateKind
    recipe: Recipe
    pool: Pool | None  # None: the selection is empty
    level: int = 0
    note: str = ""
    exact: bool = True  # the recipe is thresholds (a fill pool is an id list: no threshold equivalent)
    skip_reason: str = ""  # why the candidate is not trained (empty, or below refine.min_pool_size)

    @property
    def unique_size(self) -> int:
        return 0 if self.pool is None else self.pool.unique_size


def split_condition(stats: StatsTable, pool: Pool) -> Condition:
    """The threshold condition of a split pool's whole split (before subsampling).

    The split's cuts lie between distinct values, so ``low`` is ``stat <= its upper cut``,
    ``high`` is ``stat >= its lower cut``, a middle split both: exactly the split's samples.
    """
    split = _split_origin(pool)
    if split.lower is None and split.upper is None:  # a degenerate split: never a pool
        raise ValueError(f"split pool {pool.name!r} keeps every sample: no condition")
    params = stats.op(split.op).params.model_dump(mode="json")
    return Condition(op=split.op, stat=split.stat, min=split.lower, max=split.upper, params=params)


def recipe_of_pools(stats: StatsTable, pools: list[Pool], name: str, repeat: int = 1) -> Recipe:
    """The intersection of single-OP splits as a recipe: the conditions of their whole splits.

    One pool gives its split's condition plus the seeded subsample that made the pool
    (``sample_size``, ``seed``), so the recipe selects exactly that pool.
    """
    conditions = [split_condition(stats, pool) for pool in pools]
    source = "intersection of " + ", ".join(p.name for p in pools)
    if len(pools) == 1:
        origin = _split_origin(pools[0])
        return Recipe(name=name, conditions=conditions, repeat=repeat, sample_size=pools[0].unique_size,
                      seed=origin.seed, source=f"split {pools[0].name} subsampled to {pools[0].unique_size}")
    return Recipe(name=name, conditions=conditions, repeat=repeat, source=source)


def _split_origin(pool: Pool) -> SplitOrigin:
    if not isinstance(pool.origin, SplitOrigin):
        raise ValueError(f"pool {pool.name!r} is not a single-OP split pool")
    return pool.origin


def _selection(stats: StatsTable, recipe: Recipe) -> Pool | None:
    """The recipe's selection; None when it is empty."""
    try:
        return recipe.select(stats)
    except PoolError:
        return None


def _measured(stats: StatsTable, recipe: Recipe, name: str, origin: PoolOrigin) -> Pool | None:
    """The recipe's selection under the candidate's name and origin; None when it is empty."""
    selected = _selection(stats, recipe)
    if selected is None:
        return None
    return Pool(name, selected.dataset_digest, selected.rows, selected.repeats, origin)


def _intersection(prepared: Prepared, pools: list[Pool], name: str, kind: CandidateKind, level: int) -> Candidate:
    """The candidate of several splits' intersection: their conditions' selection (no subsample)."""
    recipe = recipe_of_pools(prepared.stats, pools, name)
    pool = _measured(prepared.stats, recipe, name, _intersection_origin(pools, recipe))
    if pool is None:
        return Candidate(name, kind, recipe, None, level, skip_reason="empty intersection")
    return Candidate(name, kind, recipe, pool, level)


def _intersection_origin(pools: list[Pool], recipe: Recipe) -> IntersectionOrigin:
    return IntersectionOrigin(tuple(p.name for p in pools), recipe.name, recipe.digest())


def pyramid_candidates(prepared: Prepared, top: list[Pool]) -> list[Candidate]:
    """All 2^k - 1 intersections of the top-k splits; level = how many OPs a pool combines.

    Level 1 is the probe's pool (its split, subsampled: reused cells); higher levels are the
    samples passing every one of their splits' conditions, whole splits intersected.
    """
    out = []
    for level in range(1, len(top) + 1):
        for combo in itertools.combinations(top, level):
            name = " & ".join(p.name for p in combo)
            if level == 1:
                recipe = recipe_of_pools(prepared.stats, list(combo), name)
                _check_reproduces(prepared.stats, recipe, combo[0])
                out.append(Candidate(name, "pyramid", recipe, combo[0], level))
            else:
                out.append(_intersection(prepared, list(combo), name, "pyramid", level))
    return out


def _check_reproduces(stats: StatsTable, recipe: Recipe, pool: Pool) -> None:
    if recipe.select(stats).digest != pool.digest:
        raise AssertionError(f"recipe {recipe.name!r} does not select the pool {pool.name!r} it stands for")


def duplication_candidates(prepared: Prepared, top: list[Pool]) -> list[Candidate]:
    """For budgets r x |top pool|: repeat the top pool r times, or fill from lower levels without repeats.

    The top pool is the samples passing all k splits' conditions. Filling takes samples by how
    many of the k conditions they pass (k, then k-1, ...), in a seeded order within a level;
    when the data run out the pool uses what exists and the shortfall is noted. A fill pool is
    exported as the id list it is (no threshold selects "k - 1 of k conditions, then some").
    """
    stats, spec = prepared.stats, prepared.spec
    k = len(top)
    membership = np.zeros(len(stats), dtype=np.int64)
    for pool in top:
        membership[Recipe(name=pool.name, conditions=[split_condition(stats, pool)]).select(stats).rows] += 1
    top_recipe = recipe_of_pools(stats, top, "top") if k > 1 else Recipe(
        name="top", conditions=[split_condition(stats, top[0])], source=f"split {top[0].name}")
    top_pool = _measured(stats, top_recipe, "top", _intersection_origin(top, top_recipe))
    if top_pool is None:
        return []
    rng = np.random.default_rng(spec.pools.seed)
    tiebreak = rng.permutation(len(stats))
    eligible = np.flatnonzero(membership > 0)
    fill_order = eligible[np.lexsort((tiebreak[eligible], -membership[eligible]))]
    out = []
    for r in spec.refine.duplication:
        budget = r * top_pool.unique_size
        name = f"duplication/repeat-x{r}"
        recipe = top_recipe.model_copy(update={"name": name, "repeat": r})
        repeated = _measured(stats, recipe, name, RepeatOrigin(_intersection_origin(top, recipe), r))
        out.append(Candidate(name, "duplication", recipe, repeated, k))
        chosen = np.sort(fill_order[:budget])
        lowest = int(membership[chosen].min())
        name = f"duplication/fill-x{r}"
        note = "" if len(chosen) == budget else f"only {len(chosen)} of {budget} samples in any top-{k} pool"
        recipe = Recipe.of_rows(stats, chosen, name,
                                source=f"samples passing at least {lowest} of the {k} top conditions (id list)")
        filled = make_pool(name, stats, chosen, FillOrigin(r, lowest, budget, recipe.digest()))
        _check_reproduces(stats, recipe, filled)
        out.append(Candidate(name, "duplication", recipe, filled, lowest, note, exact=False))
    return out


def threshold_candidates(prepared: Prepared, top: list[Pool]) -> list[Candidate]:
    """k-sigma and percentile bounds on the stats of the top-k OPs, as recipes."""
    stats, refine_spec = prepared.stats, prepared.spec.refine
    keys = [_split_origin(p).stat for p in top]
    lower, upper = refine_spec.percentiles
    recipes: list[tuple[CandidateKind, Recipe]] = [
        ("ksigma", ksigma_recipe(stats, refine_spec.ksigma, keys=keys, name=f"ksigma-{refine_spec.ksigma:g}")),
        ("percentile", percentile_recipe(stats, lower, upper, keys=keys, name=f"percentile-{lower:g}-{upper:g}")),
    ]
    out = []
    for kind, recipe in recipes:
        pool = _selection(stats, recipe)  # named after the recipe, with its RecipeOrigin
        skip = ("empty selection" if pool is None else "keeps every sample: the data of its own random control"
                if pool.size == pool.unique_size == len(stats) else "")
        out.append(Candidate(recipe.name, kind, recipe, pool, skip_reason=skip))
    return out


def cluster_candidates(prepared: Prepared, analysis: AnalysisResult, by_name: Mapping[str, Pool]) -> list[Candidate]:
    """The intersection of the best pool of each stat cluster, and of each metric cluster (``by_name``:
    the probe's pools)."""
    out = []
    for label, best in (("stat-clusters", analysis.best_by_stat_cluster), ("metric-clusters", analysis.best_by_metric_cluster)):
        pools = [by_name[n] for n in dict.fromkeys(best.values()) if n in by_name]
        if len(pools) < 2:
            continue
        name = f"{label}: " + " & ".join(p.name for p in pools)
        cand = _intersection(prepared, pools, name, "cluster", len(pools))
        if cand.pool is not None:
            out.append(cand)
    return out
