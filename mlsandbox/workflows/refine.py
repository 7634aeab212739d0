"""Refine: multi-OP recipes from the probe's best pools — the pyramid of intersections, cluster
recipes, the duplication study (paper §3.3) and k-sigma / percentile threshold recipes.

Every candidate is a pool compared with the random pool of its own size over the same seeds.
A candidate smaller than ``refine.min_pool_size`` is skipped with the reason recorded, or used
as it is (``refine.on_small_pool: use``); nothing stops the workflow half-way.
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from mlsandbox import figures, tracking
from mlsandbox.executors.compare import Comparisons, compare_pools, log_comparisons
from mlsandbox.executors.prepare import Prepared
from mlsandbox.models import BenchmarkSet
from mlsandbox.pools import Pool, make_pool
from mlsandbox.recipes import Condition, Recipe, export_recipe, ksigma_recipe, percentile_recipe
from mlsandbox.workflows.analyze import AnalysisResult
from mlsandbox.workflows.pool import single_op_pools
from mlsandbox.workflows.probe import ProbeResult

log = logging.getLogger(__name__)

REPEAT, FILL = "repeat top pool", "fill from lower levels"


@dataclass
class Candidate:
    """A refined pool with where it came from, and the recipe that reproduces it at full scale."""

    pool: Pool
    kind: str  # pyramid | cluster | duplication | ksigma | percentile
    recipe: Recipe
    level: int = 0
    note: str = ""
    exact: bool = True  # the recipe reproduces the pool (a fill pool has no threshold equivalent)


@dataclass
class RefineResult:
    table: pd.DataFrame  # one row per candidate (skipped ones included, with the reason)
    comparisons: Comparisons
    best: Candidate | None
    best_delta_pct: float = float("nan")
    skipped: list[str] = field(default_factory=list)


def recipe_of_pools(pools: list[Pool], name: str, repeat: int = 1) -> Recipe:
    """Threshold conditions equivalent to intersecting single-OP split pools (low: max, high: min)."""
    conditions = []
    for pool in pools:
        meta = pool.meta
        lo = None if meta["split"] == "low" else meta["stat_min"]
        hi = None if meta["split"] == "high" else meta["stat_max"]
        if lo is None and hi is None:
            continue
        conditions.append(Condition(op=meta["op"], stat=meta["stat"], min=lo, max=hi))
    return Recipe(name=name, conditions=conditions, repeat=repeat, source="intersection of " + ", ".join(p.name for p in pools))


def pyramid_candidates(prepared: Prepared, top: list[Pool]) -> list[Candidate]:
    """All 2^k - 1 intersections of the top-k pools; level = how many OPs a pool combines."""
    out = []
    for level in range(1, len(top) + 1):
        for combo in itertools.combinations(top, level):
            rows = combo[0].rows
            for other in combo[1:]:
                rows = np.intersect1d(rows, other.rows, assume_unique=True)
            name = " & ".join(p.name for p in combo)
            if level == 1:
                pool = combo[0]
            elif len(rows) == 0:
                out.append(Candidate(Pool(name, prepared.stats.dataset_digest, rows, rows, {}), "pyramid",
                                     recipe_of_pools(list(combo), name), level, "empty intersection"))
                continue
            else:
                pool = make_pool(name, prepared.stats, rows, {"split": "recipe", "level": level})
            out.append(Candidate(pool, "pyramid", recipe_of_pools(list(combo), name), level))
    return out


def duplication_candidates(prepared: Prepared, top: list[Pool]) -> list[Candidate]:
    """For budgets r x |top pool|: repeat the top pool r times, or fill from lower levels without repeats.

    The top pool is the intersection of all k pools. Filling takes samples by how many of the k
    pools hold them (k, then k-1, ...), in a seeded order within a level; when the data run out
    the pool uses what exists and the shortfall is noted.
    """
    stats, spec = prepared.stats, prepared.spec
    membership = np.zeros(len(stats), dtype=np.int64)
    for pool in top:
        membership[pool.rows] += 1
    k = len(top)
    top_rows = np.flatnonzero(membership == k)
    if len(top_rows) == 0:
        return []
    rng = np.random.default_rng(spec.pools.seed)
    tiebreak = rng.permutation(len(stats))
    eligible = np.flatnonzero(membership > 0)
    fill_order = eligible[np.lexsort((tiebreak[eligible], -membership[eligible]))]
    top_pool = make_pool("top", stats, top_rows, {"split": "recipe", "level": k})
    base_recipe = recipe_of_pools(top, "top")
    out = []
    for r in spec.refine.duplication:
        budget = r * len(top_rows)
        repeated = top_pool.repeated(r, name=f"duplication/repeat-x{r}")
        repeated.meta.update({"strategy": REPEAT, "multiple": r})
        out.append(Candidate(repeated, "duplication",
                             base_recipe.model_copy(update={"name": repeated.name, "repeat": r}), k))
        chosen = fill_order[:budget]
        lowest = int(membership[chosen].min())
        filled = make_pool(f"duplication/fill-x{r}", stats, chosen,
                           {"split": "recipe", "strategy": FILL, "multiple": r, "lowest_level": lowest})
        note = "" if len(chosen) == budget else f"only {len(chosen)} of {budget} samples in any top-{k} pool"
        recipe = base_recipe.model_copy(update={
            "name": filled.name, "source": f"samples passing at least {lowest} of the {k} top conditions"})
        out.append(Candidate(filled, "duplication", recipe, lowest, note, exact=False))
    return out


def threshold_candidates(prepared: Prepared, top: list[Pool]) -> list[Candidate]:
    """k-sigma and percentile bounds on the stats of the top-k OPs, as recipes."""
    stats, refine_spec = prepared.stats, prepared.spec.refine
    keys = [p.meta["stat"] for p in top]
    lower, upper = refine_spec.percentiles
    recipes = [
        ("ksigma", ksigma_recipe(stats, refine_spec.ksigma, keys=keys, name=f"ksigma-{refine_spec.ksigma:g}")),
        ("percentile", percentile_recipe(stats, lower, upper, keys=keys, name=f"percentile-{lower:g}-{upper:g}")),
    ]
    return [Candidate(recipe.select(stats), kind, recipe) for kind, recipe in recipes]


def cluster_candidates(prepared: Prepared, analysis: AnalysisResult) -> list[Candidate]:
    """The intersection of the best pool of each stat cluster, and of each metric cluster."""
    by_name = {p.name: p for p in single_op_pools(prepared)}
    out = []
    for label, best in (("stat-clusters", analysis.best_by_stat_cluster), ("metric-clusters", analysis.best_by_metric_cluster)):
        pools = [by_name[n] for n in dict.fromkeys(best.values())]
        if len(pools) < 2:
            continue
        rows = pools[0].rows
        for other in pools[1:]:
            rows = np.intersect1d(rows, other.rows, assume_unique=True)
        name = f"{label}: " + " & ".join(p.name for p in pools)
        if len(rows):
            out.append(Candidate(make_pool(name, prepared.stats, rows, {"split": "recipe"}), "cluster",
                                 recipe_of_pools(pools, name), len(pools)))
    return out


def refine(
    prepared: Prepared, probed: ProbeResult, analysis: AnalysisResult, benchmarks: BenchmarkSet, run_id: str
) -> RefineResult:
    """Build every candidate, train the usable ones against random, log tables, figures and the best recipe."""
    spec = prepared.spec.refine
    by_name = {p.name: p for p in single_op_pools(prepared)}
    top = [by_name[name] for name in probed.best(spec.top_k)["pool"]]
    candidates = (pyramid_candidates(prepared, top) + cluster_candidates(prepared, analysis)
                  + duplication_candidates(prepared, top) + threshold_candidates(prepared, top))
    usable, skipped = [], []
    for cand in candidates:
        reason = cand.note if cand.pool.unique_size == 0 else ""
        if not reason and cand.pool.unique_size < spec.min_pool_size:
            reason = f"{cand.pool.unique_size} samples < refine.min_pool_size={spec.min_pool_size}"
            if spec.on_small_pool == "use":
                cand.note, reason = reason + " (used as is)", ""
        if reason:
            log.warning("skipping %s: %s", cand.pool.name, reason)
            skipped.append(f"{cand.pool.name}: {reason}")
            cand.note = "skipped: " + reason
        else:
            usable.append(cand)
    comparisons = compare_pools(prepared, _unique_pools(usable), benchmarks)
    log_comparisons(comparisons, run_id, prefix="refine/")
    table = _table(candidates, comparisons)
    best, best_delta = _best(candidates, table)
    result = RefineResult(table, comparisons, best, best_delta, skipped)
    _log(result, run_id)
    return result


def _unique_pools(candidates: list[Candidate]) -> list[Pool]:
    seen: dict[str, Pool] = {}
    for cand in candidates:
        seen.setdefault(cand.pool.digest, cand.pool)
    return list(seen.values())


def _table(candidates: list[Candidate], comparisons: Comparisons) -> pd.DataFrame:
    by_digest = {c.pool.digest: c for c in comparisons.items}
    rows = []
    for cand in candidates:
        comp = by_digest.get(cand.pool.digest) if not cand.note.startswith("skipped") else None
        s = comp.summary if comp else None
        rows.append({"name": cand.pool.name, "kind": cand.kind, "level": cand.level, "size": cand.pool.size,
                     "unique": cand.pool.unique_size, "strategy": cand.pool.meta.get("strategy", ""),
                     "multiple": cand.pool.meta.get("multiple", np.nan),
                     "delta_pct": s.mean_pct if s else np.nan, "std_pct": s.std_pct if s else np.nan,
                     "p_value": s.p_value if s else np.nan, "note": cand.note})
    return pd.DataFrame(rows)


def _best(candidates: list[Candidate], table: pd.DataFrame) -> tuple[Candidate | None, float]:
    """The measured candidate with the highest delta among those a recipe reproduces exactly."""
    exact = np.array([c.exact for c in candidates])
    measured = np.where(exact, table["delta_pct"].to_numpy(dtype=float), np.nan)
    if np.all(np.isnan(measured)):
        return None, float("nan")
    i = int(np.nanargmax(measured))
    return candidates[i], float(measured[i])


def _log(result: RefineResult, run_id: str) -> None:
    client = mlflow.MlflowClient()
    table = result.table
    client.log_table(run_id, table, "refine/recipes.json")
    client.log_text(run_id, table.to_markdown(index=False, floatfmt=".4g") + "\n", "refine/recipes.md")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        levels = table[table["kind"] == "pyramid"].rename(columns={"name": "label"})
        if not levels.empty:
            figures.pyramid(levels, out / "pyramid.png", title="Pyramid of the top-k pools' intersections")
        dup = table[table["kind"] == "duplication"].dropna(subset=["delta_pct"])
        if not dup.empty:
            figures.duplication_curves(dup.rename(columns={"multiple": "r"}), out / "duplication.png",
                                       title="Duplication: repeat the top pool vs fill from lower levels")
        if result.best is not None:
            export_recipe(result.best.recipe, out)
            tracking.log_batch(run_id, metrics={"best_recipe_delta_pct": result.best_delta_pct},
                               params={"best_recipe": result.best.pool.name})
        client.log_artifacts(run_id, str(out), "refine")
