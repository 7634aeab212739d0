"""Refine: multi-OP recipes from the probe's best pools — the pyramid of intersections, cluster
recipes, the duplication study (paper §3.3) and k-sigma / percentile threshold recipes.

Every candidate (built in :mod:`~mlsandbox.workflows.refine_candidates`) is a recipe, and the pool trained is that recipe's selection (``recipe.select``),
so the exported recipe reproduces exactly the rows and repeats measured. Each is compared with
the random pool of its own size over the same seeds.
A candidate that is empty or keeps every sample (its own control) is skipped with the reason
recorded; one smaller than ``refine.min_pool_size`` is skipped too, or used as it is
(``refine.on_small_pool: use``); nothing stops the workflow half-way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from mlsandbox import artifacts, figures, tracking
from mlsandbox.errors import PoolError
from mlsandbox.executors.compare import compare_pools, log_comparisons, table_markdown, without_constant
from mlsandbox.executors.comparison import Comparisons, PoolComparison, screen_columns, summary_columns
from mlsandbox.executors.fidelity import DECIDE
from mlsandbox.executors.prepare import Prepared
from mlsandbox.files import scratch_folder
from mlsandbox.models import BenchmarkSet
from mlsandbox.pools import FillOrigin, Pool, RepeatOrigin
from mlsandbox.progress import StyleArg
from mlsandbox.recipes import (
    data_juicer_keys,
    export_recipe,
    save_recipe,
)
from mlsandbox.spec import RefineSpec
from mlsandbox.stats import StatsTable
from mlsandbox.workflows.analyze import AnalysisResult
from mlsandbox.workflows.candidate_runs import log_candidate_runs
from mlsandbox.workflows.pool import too_small_to_refine
from mlsandbox.workflows.probe import ProbeResult, headline_metrics, screen_settled_note
from mlsandbox.workflows.refine_candidates import (
    Candidate,
    cluster_candidates,
    duplication_candidates,
    pyramid_candidates,
    threshold_candidates,
)

log = logging.getLogger(__name__)

REPEAT, FILL = "repeat top pool", "fill from lower levels"


@dataclass
class RefineResult:
    table: pd.DataFrame  # one row per candidate (skipped ones included, with the reason)
    comparisons: Comparisons
    best: Candidate | None
    best_delta_pct: float = float("nan")
    skipped: list[str] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)  # every candidate, in table order


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
    skipped = [f"{c.name}: {c.skip_reason}" for c in candidates if _skipped(c, spec)]
    # A pool the probe's deciding model measured (level 1: the top-k splits) keeps the probe's
    # numbers and correction: re-testing the probe's best in refine's smaller family would overstate it.
    decided = {c.pool.digest: c for c in probed.comparisons.at(DECIDE)}
    pools = _unique_pools([c.pool for c in candidates if c.pool is not None and not c.skip_reason])
    comparisons = compare_pools(prepared, [p for p in pools if p.digest not in decided], benchmarks,
                                parent_run_id=run_id, top_k=1, progress=progress, step=artifacts.REFINE)
    comparisons.carried = [decided[p.digest] for p in pools if p.digest in decided]
    log_comparisons(comparisons, run_id, step=artifacts.REFINE)
    table = _table(candidates, comparisons, probed.comparisons.screened + comparisons.screened)
    best, best_delta = _best(candidates, table)
    result = RefineResult(table, comparisons, best, best_delta, skipped, candidates)
    _log(result, prepared.stats, run_id, data_juicer_keys(prepared.spec.dataset))
    log_candidate_runs(prepared, table, [c.recipe for c in candidates],
                       [None if c.skip_reason else c.pool for c in candidates], run_id,
                       carried={c.pool.digest for c in comparisons.carried})
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


def _skipped(cand: Candidate, spec: RefineSpec) -> bool:
    """Whether the candidate is not trained: a reason it came with (empty), or fewer unique samples than
    ``refine.min_pool_size`` under ``on_small_pool: skip`` (``use`` trains it, noted ``used as is``)."""
    if not cand.skip_reason and cand.unique_size < spec.min_pool_size:
        small = f"{cand.unique_size} samples < refine.min_pool_size={spec.min_pool_size}"
        if spec.on_small_pool == "use":
            cand.note = small + " (used as is)"
        else:
            cand.skip_reason = small
    if cand.skip_reason:
        log.warning("skipping %s: %s", cand.name, cand.skip_reason)
    return bool(cand.skip_reason)


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
                     **(screen_columns(screen.get(comp.pool.digest) if comp else None) if screen else {}),
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


def _log(result: RefineResult, stats: StatsTable, run_id: str, dataset_keys: dict[str, str]) -> None:
    client = mlflow.MlflowClient()
    table = result.table
    tracking.log_table(run_id, table, artifacts.RECIPES_TABLE)
    client.log_text(run_id, table_markdown(without_constant(table, "fidelity")) + "\n", artifacts.RECIPES_MARKDOWN)
    with scratch_folder("refine") as out:
        for cand in result.candidates:
            recipe = cand.recipe if cand.pool is None else cand.recipe.measured_as(cand.pool, stats, run_id)
            save_recipe(recipe, artifacts.local(out, f"{artifacts.CANDIDATE_RECIPES}/{cand.recipe.digest()}.yaml"))
        # One model's deltas on one axis, as in the probe's ranking: a screen's are on another scale.
        note = Path(artifacts.RECIPES_MARKDOWN).name
        levels = table[table["kind"] == "pyramid"].rename(columns={"name": "label"})
        decided = levels[levels["fidelity"] == DECIDE]
        if not decided.empty:
            figures.pyramid(decided, artifacts.local(out, artifacts.PYRAMID_FIGURE),
                            title="Pyramid of the top-k pools' intersections"
                            + screen_settled_note(len(decided), len(levels), note))
        dup = duplication_points(table)
        decided = duplication_points(table[table["fidelity"] == DECIDE])
        if not decided.empty:
            figures.duplication_curves(decided.rename(columns={"multiple": "r"}),
                                       artifacts.local(out, artifacts.DUPLICATION_FIGURE),
                                       title="Duplication: repeat the top pool vs fill from lower levels"
                                       + screen_settled_note(len(decided), len(dup), note))
        if result.best is not None:
            # Writes BEST_RECIPE and BEST_RECIPE_DATA_JUICER (or its _NOTE) side by side.
            best = artifacts.local(out, artifacts.BEST_RECIPE)
            assert result.best.pool is not None  # the best was trained
            export_recipe(result.best.recipe.measured_as(result.best.pool, stats, run_id), best.parent, stem=best.stem,
                          **dataset_keys)
            row = table.iloc[next(i for i, c in enumerate(result.candidates) if c is result.best)]
            tracking.log_batch(run_id, metrics=headline_metrics("best_recipe", row),
                               params={"best_recipe": result.best.name})
        client.log_artifacts(run_id, str(out))
