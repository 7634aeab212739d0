"""Pools against equal-size random pools: one cell per (pool, seed), deltas summarised per pool.

Every comparison in the sandbox — a single-OP pool, a recipe, a pyramid level, a duplication
budget — goes through :func:`compare_pools`, so each is measured the same way: for every seed a
random control of the same size drawn for that seed, Eq. 3 over the same benchmarks, and the
statistics of :mod:`mlsandbox.delta` over seeds (a t-interval, a t-test, and Holm's correction
across the pools of the call that one model decided). A step may measure at two fidelities (a
screen, then the deciding model on the pools still open) and race its seeds
(:mod:`mlsandbox.executors.race`); where the cells run is the runner's business
(:mod:`mlsandbox.executors.runners`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Sequence
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from mlsandbox import artifacts, tracking
from mlsandbox.errors import SpecError
from mlsandbox.executors.cell_deltas import log_cell_deltas
from mlsandbox.executors.cell_result import CellResult
from mlsandbox.executors.comparison import Comparisons, PoolComparison
from mlsandbox.executors.fidelity import Fidelity, deciding, fidelities
from mlsandbox.executors.prepare import Prepared
from mlsandbox.executors.race import open_after_screen, still_open
from mlsandbox.executors.runners import CellRequest, Placement, make_runner
from mlsandbox.models import BenchmarkSet, trainer_for
from mlsandbox.pools import RANDOM, Pool, random_pool
from mlsandbox.progress import Progress, StyleArg

log = logging.getLogger(__name__)


def control_seed(pools_seed: int, seed: int) -> int:
    """The seed that draws training seed ``seed``'s random control: derived from both, in [0, 2**32)."""
    return int(np.random.SeedSequence([pools_seed, seed]).generate_state(1)[0])


def baseline_for(prepared: Prepared, pool: Pool, seed: int) -> Pool:
    """The control group of ``pool`` for training seed ``seed``: a random pool of the same size.

    Each seed draws its own (:func:`control_seed` of ``pools.seed`` and the seed), so the spread
    of the deltas over seeds includes which documents the control happened to get. All pools of
    one size share the control of a seed (its cells are reused by their digest).
    """
    return random_pool(prepared.stats, pool.size, control_seed(prepared.spec.pools.seed, seed),
                       name=f"{RANDOM}-{pool.size}")


class _Bench:
    """The cells of one call of :func:`compare_pools`, run a round at a time, each control once per seed."""

    def __init__(self, prepared: Prepared, benchmarks: BenchmarkSet, experiment_id: str | None,
                 parent_run_id: str | None, progress: Progress) -> None:
        self.prepared, self.progress = prepared, progress
        where = Placement(prepared, benchmarks, experiment_id or tracking.experiment_of(parent_run_id), parent_run_id)
        spec = prepared.spec.executor
        self.runner = make_runner(spec.type, where, spec.address, spec.cpus_per_cell, spec.gpus_per_cell)
        self.cells: list[CellResult] = []
        self._done: dict[tuple[str, str, str, int], CellResult] = {}  # (fidelity, name, digest, seed) -> cell

    def measure(self, pools: Sequence[Pool], seeds: Sequence[int], fidelity: Fidelity) -> list[PoolComparison]:
        """Every pool and each seed's random control on ``seeds``: the missing cells run as one round."""
        controls = {(id(p), s): baseline_for(self.prepared, p, s) for p in pools for s in seeds}
        wanted = [*(CellRequest(c, s, fidelity) for (_, s), c in controls.items()),
                  *(CellRequest(p, s, fidelity) for p in pools for s in seeds)]
        todo = list({_key(r): r for r in wanted if _key(r) not in self._done}.values())
        seeded = trainer_for(fidelity.model).seeded(fidelity.model)
        self.progress.add(len(todo), reusing=0 if seeded else self._repeats(todo))
        self.runner.run(todo, self._finished, self._started)
        out = []
        for pool in pools:
            base = {s: self._done[_key(CellRequest(controls[id(pool), s], s, fidelity))] for s in seeds}
            cells = [base[s] if pool.digest == base[s].pool.digest else self._done[_key(CellRequest(pool, s, fidelity))]
                     for s in seeds]
            log_cell_deltas(cells, base)
            out.append(PoolComparison(pool, None, cells, base, fidelity.name, fidelity.looks).summarize())
        return out

    def _repeats(self, todo: Sequence[CellRequest]) -> int:
        """The requests whose cell another one trains, for a model that does not depend on the seed
        (the n-gram): it trains a pool once, and its other seeds reuse that cell."""
        seen = {(fidelity, digest) for fidelity, _, digest, _ in self._done}
        cells = [(request.fidelity.name, request.pool.digest) for request in todo]
        return len(cells) - len(set(cells) - seen)

    def _started(self, request: CellRequest) -> None:
        self.progress.working(f"{request.fidelity.name} {request.pool.name} seed {request.seed} (running)")

    def _finished(self, request: CellRequest, result: CellResult) -> None:
        self._done[_key(request)] = result
        self.cells.append(result)
        self.progress.advance(1, f"{request.fidelity.name} {request.pool.name} seed {request.seed}",
                              reused=result.reused, failed=not result.ok)


def _key(request: CellRequest) -> tuple[str, str, str, int]:
    return request.fidelity.name, request.pool.name, request.pool.digest, request.seed


def compare_pools(
    prepared: Prepared, pools: Sequence[Pool], benchmarks: BenchmarkSet, experiment_id: str | None = None,
    parent_run_id: str | None = None, top_k: int | None = None, levels: Sequence[Fidelity] | None = None,
    progress: StyleArg = False, step: str = "",
) -> Comparisons:
    """Measure every pool against its per-seed random controls, at each fidelity of the step.

    ``levels`` defaults to the spec's (:func:`~mlsandbox.executors.fidelity.fidelities`): a screen
    measures every pool, the deciding model then only the pools the screen leaves open, racing
    its seeds where the spec asks (:mod:`mlsandbox.executors.race`); ``top_k`` is how many pools
    the step picks (default: all of them, so that only the control matters). The summaries carry
    Holm-adjusted p-values within each fidelity's family. The cells are children of
    ``parent_run_id`` (the active run; None: whichever run is active), reused from finished runs of
    ``experiment_id`` (default: the parent's experiment).
    """
    levels = list(levels or fidelities(prepared.spec))
    k = top_k or len(pools)
    with Progress(0, f"{step or 'compare'} cells", "cell", progress) as bar:
        bench = _Bench(prepared, benchmarks, experiment_id, parent_run_id, bar)
        out = Comparisons()
        remaining = list(pools)
        for level in levels:
            later = 0 if level is levels[-1] else _most_cells(remaining, levels[-1].max_seeds)
            items = _race(bench, remaining, level, k, later)
            if level is levels[-1]:
                out.items += items
                break
            out.screened += items
            keep = open_after_screen(items, k, prepared.spec.screen.margin if prepared.spec.screen else 1)
            out.items += [item for item, kept in zip(items, keep) if not kept]
            remaining = [pool for pool, kept in zip(remaining, keep) if kept]
            log.info("%s: the %s decided %d of %d pools; the %s model measures the other %d",
                     step or "compare", level.name, len(pools) - len(remaining), len(pools), levels[-1].name,
                     len(remaining))
        out.cells = bench.cells
    order = {id(p): i for i, p in enumerate(pools)}
    out.items.sort(key=lambda c: order[id(c.pool)])
    out.adjust()
    return out


def _race(bench: _Bench, pools: Sequence[Pool], level: Fidelity, k: int, later: int = 0) -> list[PoolComparison]:
    """Every pool on ``level.min_seeds`` seeds, then one more seed at a time for the pools still open;
    ``later``: the most cells a deciding model may train after this screen."""
    n = level.min_seeds
    _announce_race(bench.progress, pools, level.max_seeds - n, later)
    items = bench.measure(pools, level.seeds[:n], level)
    active = list(range(len(pools)))
    while n < level.max_seeds:
        active = [i for i in active if still_open(items[i], items, k)]
        if not active:
            break
        n += 1
        _announce_race(bench.progress, [pools[i] for i in active], level.max_seeds - n, later)
        for i, item in zip(active, bench.measure([pools[i] for i in active], level.seeds[:n], level)):
            items[i] = item
    bench.progress.may_add(0, "")
    return items


def _announce_race(progress: Progress, racing: Sequence[Pool], rounds: int, later: int) -> None:
    """The most cells the race may add after the round about to run, and a deciding model after it."""
    race = _most_cells(racing, rounds)
    why = "for the deciding model" if not race else "while pools race" if not later else "for the race and the deciding model"
    progress.may_add(race + later, why)


def _most_cells(pools: Sequence[Pool], seeds: int) -> int:
    """The most cells ``seeds`` more seeds of ``pools`` take: each pool and one control per pool size, per seed."""
    return seeds * (len(pools) + len({pool.size for pool in pools}))


def without_constant(table: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``table`` without those of ``columns`` that hold one value throughout: a shown table's
    ``fidelity`` says nothing per row where one model decided every pool, and stays where a screen
    decided some rows (the JSON tables keep every column). An empty value (a row nothing trained,
    such as a skipped candidate) is no value."""
    return table.drop(columns=[c for c in columns if c in table and table[c].replace("", None).nunique() <= 1])


def table_markdown(table: pd.DataFrame) -> str:
    """A table as Markdown, 4 significant digits, an undefined (NaN) value shown as ``n/a``; a
    numeric column stays aligned as numbers where every value is ``n/a`` (one seed's p-values)."""
    align = ["decimal" if pd.api.types.is_numeric_dtype(table[c]) and table[c].isna().all() else "global"
             for c in table]
    cells = table.map(_escaped).astype(object).where(table.notna(), None)  # escaped first: map makes None NaN again
    return cells.rename(columns=_escaped).to_markdown(index=False, floatfmt=".4g", missingval="n/a", colalign=align)


def _escaped(value: Any) -> Any:
    """A text with its ``|`` escaped, which would otherwise end its table cell (a split named ``a|b``)."""
    return value.replace("|", "\\|") if isinstance(value, str) else value


def log_comparisons(comparisons: Comparisons, run_id: str, step: str = "", per_pool: bool = True,
                    model: str = "") -> pd.DataFrame:
    """Per-pool delta metrics (unless not ``per_pool``), the cost counters, and the tables, on the
    given (parent) run.

    ``step`` (``probe``, ``refine``; empty for a lone comparison) prefixes the cost counters
    (``probe.cells_run``) and is the folder of the tables (``probe/deltas.json``). ``model`` names
    the model in the per-pool metrics (``delta_pct.<model>.<pool>``) where one run measures the
    same pools with several (``transfer``).
    """
    metrics: dict[str, float] = {}
    for c in comparisons.items if per_pool else ():
        if c.summary is not None:
            pool = (model, c.pool.name) if model else (c.pool.name,)
            metrics[tracking.metric_key("delta_pct", *pool)] = c.summary.mean_pct
            for name, value in (("delta_std_pct", c.summary.std_pct), ("delta_ci_low_pct", c.summary.ci_low_pct),
                                ("delta_ci_high_pct", c.summary.ci_high_pct),
                                ("p_value", c.summary.p_value), ("p_adjusted", c.summary.p_adjusted)):
                if np.isfinite(value):  # undefined with one seed
                    metrics[tracking.metric_key(name, *pool)] = value
    counter = f"{step}." if step else ""
    metrics[f"{counter}cells_run"] = sum(not c.reused for c in comparisons.cells)
    metrics[f"{counter}cells_reused"] = sum(c.reused for c in comparisons.cells)
    metrics[f"{counter}cells_failed"] = sum(not c.ok for c in comparisons.cells)
    tracking.log_batch(run_id, metrics=metrics)
    table = comparisons.table()
    client = mlflow.MlflowClient()
    tracking.log_table(run_id, table, artifacts.under(step, artifacts.DELTAS_TABLE))
    client.log_text(run_id, table_markdown(without_constant(table, "fidelity")) + "\n",
                    artifacts.under(step, artifacts.DELTAS_MARKDOWN))
    tracking.log_table(run_id, results_frame(comparisons.cells), artifacts.under(step, artifacts.CELLS_TABLE))
    return table


def confirm_pool(
    prepared: Prepared, pool: Pool, benchmarks: BenchmarkSet, run_id: str, progress: StyleArg = False,
    log: bool = True, trained: Collection[str] = (),
) -> Comparisons:
    """A chosen pool measured again on the spec's ``confirm.seeds`` (new random controls, and new
    training runs for a seed-dependent model) under the run ``run_id``: its delta free of the
    choice that picked it, one plain test (``items[0].summary``; None if every cell failed).

    The best of many pools is the one its noise favoured most, so the step that picked it
    overstates its delta (the winner's curse); seeds that took no part in the choice do not.
    Cost counters and tables go under ``confirm``; the pool's own metric keys keep the choosing
    step's values. ``log=False`` only trains (or finds) the cells, for a caller that logs later;
    that call names the cells the first one ``trained``, which its counters count as run, not reused.
    """
    confirm = prepared.spec.confirm
    if confirm is None:
        raise SpecError("confirming a pool needs fresh seeds: add `confirm: {seeds: [...]}` to the spec")
    comparisons = compare_pools(prepared, [pool], benchmarks, parent_run_id=run_id,
                                levels=[deciding(prepared.spec, confirm.seeds)], progress=progress,
                                step=artifacts.CONFIRM)
    if log:
        cells = [dataclasses.replace(c, reused=False) if c.run_id in trained else c for c in comparisons.cells]
        log_comparisons(dataclasses.replace(comparisons, cells=cells), run_id, artifacts.CONFIRM, per_pool=False)
    return comparisons


def results_frame(results: Sequence[CellResult]) -> pd.DataFrame:
    """One row per cell: pool, seed, the role of its model (a screened step has two cells per pool and
    seed), status, reuse, times and per-benchmark scores."""
    rows = []
    for r in results:
        row = {"pool": r.pool.name, "seed": r.seed, "fidelity": r.fidelity, "status": r.status.value, "reused": r.reused,
               "run_id": r.run_id, "train_s": r.train_s, "eval_s": r.eval_s, "reason": r.reason}
        row.update({f"score.{k}": v for k, v in r.scores.items()})
        rows.append(row)
    return pd.DataFrame(rows)
