"""The Probe-Analyze-Refine workflow, end to end or up to a step, as one parent MLflow run.

Each entry point (``probe``, ``analyze``, ``refine``, ``workflow``) runs the steps it needs
under one parent run whose children are the cells. Cells that already finished in the
experiment are reused, so re-running after a kill only trains what is missing, and ``refine``
after ``probe`` retrains nothing the probe ran.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from mlsandbox import artifacts, tracking
from mlsandbox.executors.cell_result import CellResult
from mlsandbox.executors.compare import confirm_pool
from mlsandbox.executors.comparison import Comparisons, PoolComparison, family_size
from mlsandbox.executors.fidelity import DECIDE, SCREEN
from mlsandbox.executors.prepare import log_prepared, prepare
from mlsandbox.models import check_models, load_benchmarks
from mlsandbox.pools import Pool
from mlsandbox.progress import StyleArg
from mlsandbox.spec import ExperimentSpec
from mlsandbox.workflows.analyze import AnalysisResult, analyze
from mlsandbox.workflows.pool import check_refinable
from mlsandbox.workflows.probe import ProbeResult, probe
from mlsandbox.workflows.refine import RefineResult, refine
from mlsandbox.workflows.report import Answer, log_answer, log_report

log = logging.getLogger(__name__)

STEPS = ("probe", "analyze", "refine")


@dataclass
class WorkflowResult:
    run_id: str
    probe: ProbeResult
    analysis: AnalysisResult | None
    refined: RefineResult | None
    cells: list[CellResult]
    wall_s: float
    where: str
    answer: Answer  # the best candidate of the last step, and whether it beat the control

    def steps_cells(self) -> dict[str, list[CellResult]]:
        """Each step's cells, in the order they ran: the probe's, refine's and the confirmation's."""
        probe = self.probe.comparisons.cells
        refine = self.refined.comparisons.cells if self.refined is not None else []
        return {"the probe": probe, "refine": refine, "the confirmation": self.cells[len(probe) + len(refine):]}


def run_workflow(
    spec: ExperimentSpec, until: str = "refine", entry_point: str = "workflow",
    workers: int | None = None, progress: StyleArg = True,
) -> WorkflowResult:
    """Probe, then (up to ``until``) analyze and refine, in one parent run."""
    if until not in STEPS:
        raise ValueError(f"until must be one of {STEPS}, got {until!r}")
    started = time.perf_counter()
    experiment_id = tracking.use_experiment(spec.name)  # first: a store that cannot be used stops it before any work
    benchmarks = load_benchmarks(spec.benchmarks, spec.base_dir)  # small: a bad one stops it before the stats
    check_models([spec.model, *([spec.screen.model] if spec.screen else [])], spec.executor.type)  # and its models
    prepared = prepare(spec, workers=workers, progress=progress)
    stats_s = time.perf_counter() - started  # the data, its stats (computed once, then read), the benchmarks
    if until == "refine":
        check_refinable(prepared)
    tags = {tracking.KIND: "workflow", tracking.ENTRY_POINT: entry_point, tracking.PROJECT: spec.name,
            tracking.DATASET_DIGEST: prepared.dataset.digest}
    with tracking.parent_run(entry_point, experiment_id, tags) as parent:
        run_id = parent.info.run_id
        log_prepared(prepared, benchmarks, run_id, until=until)
        probed = probe(prepared, benchmarks, run_id, progress)
        analysis = analyze(prepared, probed, run_id) if until in ("analyze", "refine") else None
        refined = (refine(prepared, probed, analysis, benchmarks, run_id, progress)
                   if analysis and until == "refine" else None)
        cells = probed.comparisons.cells + (refined.comparisons.cells if refined else [])
        answer, pool = answer_of(probed, refined, len(prepared.stats))
        log_answer(run_id, answer)  # kept if the confirmation is interrupted
        if spec.confirm is not None and answer.won and pool is not None:
            confirmed = confirm_pool(prepared, pool, benchmarks, run_id, progress)
            answer = answer.confirmed_by(confirmed.items[0].summary, len(spec.confirm.seeds))
            cells += confirmed.cells
            log_answer(run_id, answer)
        wall_s = time.perf_counter() - started
        _log_cost(run_id, cells, wall_s, stats_s)
        if refined is not None:
            log_report(run_id)
        return WorkflowResult(run_id, probed, analysis, refined, cells, wall_s, tracking.run_url(parent), answer)


def answer_of(probed: ProbeResult, refined: RefineResult | None, documents: int) -> tuple[Answer, Pool | None]:
    """The answer of the last step run (refine's best recipe, else the probe's best single-OP
    pool) and its pool.

    Its delta, interval and Holm-adjusted p-value are those of the step that measured it (the family
    of the correction is every pool the same model compared in that step: the probe's for a single-OP recipe).
    """
    if refined is not None:
        pool = refined.best.pool if refined.best is not None else None
        step = refined.comparisons
        best = next((c for c in step.decisions() if pool is not None and c.pool.digest == pool.digest), None)
        carried = best is not None and step.carries(best)
        family_step, family = (artifacts.PROBE, probed.comparisons) if carried else (artifacts.REFINE, step)
        return _answer("recipe", refined.best.name if refined.best is not None else "", best, family_step, family,
                       step, documents)
    top = probed.best(1, distinct_ops=False)["pool"].tolist()  # the ranking's first row
    best = next((c for c in probed.comparisons.items if c.pool.name in top), None)
    step = probed.comparisons
    return _answer("single-OP pool", best.pool.name if best else "", best, artifacts.PROBE, step, step, documents)


def _answer(
    kind: str, name: str, best: PoolComparison | None, family_step: str, family: Comparisons, step: Comparisons,
    documents: int,
) -> tuple[Answer, Pool | None]:
    """``best``'s answer, its p-value Holm-adjusted in ``family`` (the comparisons of the step that
    measured it, named ``family_step``), with every other pool of ``step`` (the one answered for) that
    beat the control."""
    s = best.summary if best is not None else None
    if best is None or s is None:
        return Answer(kind, "", documents=documents), None
    tests = family_size(family.family(best.fidelity))  # the distinct pools of the correction
    others = tuple(c.pool.name for c in step.decisions() if c.fidelity == best.fidelity
                   and c.pool.digest != best.pool.digest and c.summary is not None and c.summary.significant)
    return Answer(kind, name, s.mean_pct, s.ci_low_pct, s.ci_high_pct, s.p_adjusted, tests,
                  best.pool.unique_size, documents, others, fidelity=best.fidelity,
                  family_step=family_step), best.pool


def _log_cost(run_id: str, cells: list[CellResult], wall_s: float, stats_s: float) -> None:
    """Wall time (``stats_s`` of it before the steps: the OPs' one-off work), cells run and reused, and
    the sandbox's own share of the steps' time (neither stats nor training)."""
    run = [c for c in cells if not c.reused]
    model_s = sum(c.train_s + c.eval_s for c in run)
    steps_s = wall_s - stats_s
    by_fidelity = {f"cells_run.{name}": sum(c.fidelity == name for c in run) for name in (SCREEN, DECIDE)}
    tracking.log_batch(run_id, metrics={**by_fidelity,
        "wall_s": wall_s, "stats_s": stats_s, "cells_run": len(run), "cells_reused": len(cells) - len(run),
        "cells_failed": sum(not c.ok for c in cells), "train_eval_s": model_s,
        "overhead_share": max(0.0, (steps_s - model_s) / steps_s) if steps_s > 0 else 0.0,
    })

