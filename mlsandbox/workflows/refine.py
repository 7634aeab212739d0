"""Refine: multi-OP recipes from the probe's best pools — the pyramid of intersections, cluster
recipes, the duplication study (paper §3.3) and k-sigma / percentile threshold recipes.

Every candidate is a recipe, and the pool trained is that recipe's selection (``recipe.select``),
so the exported recipe reproduces exactly the rows and repeats measured. Each is compared with
the random pool of its own size over the same seeds.
A candidate smaller than ``refine.min_pool_size`` is skipped with the reason recorded, or used
as it is (``refine.on_small_pool: use``); nothing stops the workflow half-way.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import mlflow
import numpy as np
import pandas as pd

from mlsandbox import artifacts, figures, tracking
from mlsandbox.errors import PoolError
from mlsandbox.executors.compare import compare_pools, log_comparisons, table_markdown, without_constant
from mlsandbox.executors.comparison import Comparisons, PoolComparison, summary_columns
from mlsandbox.executors.fidelity import DECIDE
from mlsandbox.executors.prepare import Prepared
from mlsandbox.models import BenchmarkSet
from mlsandbox.pools import FillOrigin, IntersectionOrigin, Pool, PoolOrigin, RepeatOrigin, SplitOrigin, make_pool
from mlsandbox.progress import StyleArg
from mlsandbox.recipes import (
    Condition,
    Recipe,
    data_juicer_keys,
    export_recipe,
    ksigma_recipe,
    percentile_recipe,
    save_recipe,
)
from mlsandbox.spec import RefineSpec
from mlsandbox.stats import StatsTable
from mlsandbox.workflows.analyze import AnalysisResult
from mlsandbox.workflows.candidate_runs import log_candidate_runs
from mlsandbox.workflows.pool import too_small_to_refine
from mlsandbox.workflows.probe import ProbeResult

log = logging.getLogger(__name__)

REPEAT, FILL = "repeat top pool", "fill from lower levels"


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


@dataclass
class RefineResult:
    table: pd.DataFrame  # one row per candidate (skipped ones included, with the reason)
    comparisons: Comparisons
    best: Candidate | None
    best_delta_pct: float = float("nan")
    skipped: list[str] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)  # every candidate, in table order


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
        out.append(Candidate(recipe.name, kind, recipe, pool, skip_reason="" if pool else "empty selection"))
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


def refine(
    prepared: Prepared, probed: ProbeResult, analysis: AnalysisResult, benchmarks: BenchmarkSet, run_id: str,
    progress: StyleArg = False,
) -> RefineResult:
    """Build every candidate, train the usable ones against random as children of ``run_id`` (the
    active run), and log tables, figures and the best recipe to it."""
    spec = prepared.spec.refine
    by_name = probed.pools_by_name()
    top = top_pools(probed, by_name, spec)
    candidates = (pyramid_candidates(prepared, top) + cluster_candidates(prepared, analysis, by_name)
                  + duplication_candidates(prepared, top) + threshold_candidates(prepared, top))
    usable: list[Pool] = []
    for cand in candidates:
        if not cand.skip_reason and cand.unique_size < spec.min_pool_size:
            small = f"{cand.unique_size} samples < refine.min_pool_size={spec.min_pool_size}"
            if spec.on_small_pool == "use":
                cand.note = small + " (used as is)"
            else:
                cand.skip_reason = small
        if cand.skip_reason:
            log.warning("skipping %s: %s", cand.name, cand.skip_reason)
        elif cand.pool is not None:
            usable.append(cand.pool)
    skipped = [f"{c.name}: {c.skip_reason}" for c in candidates if c.skip_reason]
    # A pool the probe's deciding model measured (level 1: the top-k splits) keeps the probe's
    # numbers and correction: re-testing the probe's best in refine's smaller family would overstate it.
    decided = {c.pool.digest: c for c in probed.comparisons.at(DECIDE)}
    pools = _unique_pools(usable)
    comparisons = compare_pools(prepared, [p for p in pools if p.digest not in decided], benchmarks,
                                parent_run_id=run_id, top_k=1, progress=progress, step=artifacts.REFINE)
    comparisons.carried = [decided[p.digest] for p in pools if p.digest in decided]
    log_comparisons(comparisons, run_id, step=artifacts.REFINE)
    table = _table(candidates, comparisons, probed.comparisons.screened + comparisons.screened)
    best, best_delta = _best(candidates, table)
    result = RefineResult(table, comparisons, best, best_delta, skipped, candidates)
    _log(result, run_id, data_juicer_keys(prepared.spec.dataset))
    log_candidate_runs(prepared, table, [c.recipe for c in candidates],
                       [None if c.skip_reason else c.pool for c in candidates], run_id)
    return result


def top_pools(probed: ProbeResult, by_name: dict[str, Pool], spec: RefineSpec) -> list[Pool]:
    """The ``top_k`` best probe pools of distinct OPs. With ``on_small_pool: skip``, a pool below ``min_pool_size``
    is passed over for the next: refine would skip it and every candidate on it, spending the top-k on nothing."""
    ranked = [by_name[name] for name in probed.best(len(by_name))["pool"]]
    if not ranked:  # not a size problem: nothing was measured to combine
        raise PoolError("no probe pool has a delta to refine: every pool's cells (or its controls') failed; "
                        f"the reasons are in {artifacts.under(artifacts.PROBE, artifacts.CELLS_TABLE)} of this run")
    if spec.on_small_pool == "skip":
        if not (kept := [p for p in ranked if p.unique_size >= spec.min_pool_size]):
            raise too_small_to_refine(spec, max((p.unique_size for p in ranked), default=0))
        if small := [p.name for p in ranked[:spec.top_k] if p.unique_size < spec.min_pool_size]:
            log.warning("top-k: passing over %s (fewer samples than refine.min_pool_size=%d) for the next best pools",
                        ", ".join(small), spec.min_pool_size)
        ranked = kept
    if len(ranked) < spec.top_k:
        log.warning("refine.top_k=%d, but only %d OPs have a pool to combine", spec.top_k, len(ranked))
    return ranked[:spec.top_k]


def _unique_pools(pools: list[Pool]) -> list[Pool]:
    seen: dict[str, Pool] = {}
    for pool in pools:
        seen.setdefault(pool.digest, pool)
    return list(seen.values())


def _table(candidates: list[Candidate], comparisons: Comparisons, screened: list[PoolComparison]) -> pd.DataFrame:
    """One row per candidate; with a screen, its delta of the pool (``screened``: the probe's and refine's)."""
    by_digest = {c.pool.digest: c for c in comparisons.decisions()}
    screen = {c.pool.digest: c.summary for c in screened}
    first: dict[str, str] = {}  # pool digest -> the first candidate selecting it: one pool, one row of the family
    rows = []
    for cand in candidates:
        comp = by_digest.get(cand.pool.digest) if cand.pool is not None and not cand.skip_reason else None
        note = f"skipped: {cand.skip_reason}" if cand.skip_reason else cand.note
        if comp is not None:
            same = first.setdefault(comp.pool.digest, cand.name)
            note = "; ".join(n for n in (note, "" if same == cand.name else f"same pool as {same}") if n)
        strategy, multiple = duplication_strategy(cand.pool)
        rows.append({"name": cand.name, "kind": cand.kind, "level": cand.level,
                     "size": 0 if cand.pool is None else cand.pool.size, "unique": cand.unique_size,
                     "strategy": strategy, "multiple": multiple, **summary_columns(comp.summary if comp else None),
                     "seeds": comp.summary.seeds if comp and comp.summary else 0, "fidelity": comp.fidelity if comp else "",
                     **({"screen_delta_pct": summary_columns(screen.get(comp.pool.digest) if comp else None)["delta_pct"]}
                        if screen else {}),
                     "recipe": "thresholds" if cand.exact else "id list",
                     "recipe_file": f"{artifacts.CANDIDATE_RECIPES}/{cand.recipe.digest()}.yaml",
                     "pool_digest": "" if cand.pool is None else cand.pool.digest,
                     "note": note})
    return pd.DataFrame(rows)


def duplication_points(table: pd.DataFrame) -> pd.DataFrame:
    """The duplication rows of refine's table that have a delta, one per (strategy, multiple): fill
    budgets that all ran out of data are one pool at the budget it reached, drawn once."""
    dup = table[table["kind"] == "duplication"].dropna(subset=["delta_pct"])
    return dup.drop_duplicates(["strategy", "multiple"])


def duplication_strategy(pool: Pool | None) -> tuple[str, float]:
    """How a duplication-study pool spends its budget, and the budget as a multiple of the top pool."""
    origin = None if pool is None else pool.origin
    if isinstance(origin, RepeatOrigin):
        return REPEAT, origin.times
    if pool is not None and isinstance(origin, FillOrigin):  # the budget reached: less where the data ran out
        return FILL, round(origin.multiple * pool.size / origin.budget, 2)
    return "", np.nan


def _best(candidates: list[Candidate], table: pd.DataFrame) -> tuple[Candidate | None, float]:
    """The candidate with the highest delta among those a recipe reproduces exactly, measured by the
    deciding model (a screen's delta is on another model's scale)."""
    exact = np.array([c.exact for c in candidates]) & (table["fidelity"] == DECIDE).to_numpy()
    measured = np.where(exact, table["delta_pct"].to_numpy(dtype=float), np.nan)
    if np.all(np.isnan(measured)):
        return None, float("nan")
    i = int(np.nanargmax(measured))
    return candidates[i], float(measured[i])


def _log(result: RefineResult, run_id: str, dataset_keys: dict[str, str]) -> None:
    client = mlflow.MlflowClient()
    table = result.table
    tracking.log_table(run_id, table, artifacts.RECIPES_TABLE)
    client.log_text(run_id, table_markdown(without_constant(table, "fidelity")) + "\n", artifacts.RECIPES_MARKDOWN)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for cand in result.candidates:
            recipe = cand.recipe if cand.pool is None else cand.recipe.measured_as(cand.pool, run_id)
            save_recipe(recipe, artifacts.local(out, f"{artifacts.CANDIDATE_RECIPES}/{cand.recipe.digest()}.yaml"))
        levels = table[table["kind"] == "pyramid"].rename(columns={"name": "label"})
        if not levels.empty:
            figures.pyramid(levels, artifacts.local(out, artifacts.PYRAMID_FIGURE),
                            title="Pyramid of the top-k pools' intersections")
        dup = duplication_points(table)
        if not dup.empty:
            figures.duplication_curves(dup.rename(columns={"multiple": "r"}),
                                       artifacts.local(out, artifacts.DUPLICATION_FIGURE),
                                       title="Duplication: repeat the top pool vs fill from lower levels")
        if result.best is not None:
            # Writes BEST_RECIPE and BEST_RECIPE_DATA_JUICER (or its _NOTE) side by side.
            best = artifacts.local(out, artifacts.BEST_RECIPE)
            assert result.best.pool is not None  # the best was trained
            export_recipe(result.best.recipe.measured_as(result.best.pool, run_id), best.parent, stem=best.stem,
                          **dataset_keys)
            tracking.log_batch(run_id, metrics={"best_recipe_delta_pct": result.best_delta_pct},
                               params={"best_recipe": result.best.name})
        client.log_artifacts(run_id, tmp)
