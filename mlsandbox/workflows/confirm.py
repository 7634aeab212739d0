"""The ``confirm`` step: the workflow's winning pool measured again on fresh seeds.

The best of many pools is the one its noise favoured most, so the step that picked it overstates
its delta (the winner's curse), and only Holm's correction across every pool keeps its p-value
honest. Measured again on seeds that chose nothing (``confirm.seeds``: new random controls, and new
training runs for a model that depends on the seed), the same pool gives a delta free of that
choice and a plain p-value: one hypothesis fixed in advance, one test.
"""

from __future__ import annotations

import dataclasses

from mlsandbox import artifacts
from mlsandbox.errors import SpecError
from mlsandbox.executors.compare import compare_pools, log_comparisons
from mlsandbox.executors.comparison import Comparisons
from mlsandbox.executors.fidelity import deciding
from mlsandbox.executors.prepare import Prepared
from mlsandbox.models import BenchmarkSet
from mlsandbox.pools import Pool
from mlsandbox.progress import StyleArg
from mlsandbox.workflows.report import Answer


def confirm(
    prepared: Prepared, answer: Answer, pool: Pool, benchmarks: BenchmarkSet, run_id: str, progress: StyleArg = False
) -> tuple[Answer, Comparisons]:
    """Train ``pool`` (the answer's) and fresh random controls on ``confirm.seeds`` under the run
    ``run_id``; the answer with the delta they gave (none if every cell failed), and the cells."""
    spec = prepared.spec
    if spec.confirm is None:
        raise SpecError("confirming an answer needs fresh seeds: add `confirm: {seeds: [...]}` to the spec")
    comparisons = compare_pools(prepared, [pool], benchmarks, parent_run_id=run_id,
                                levels=[deciding(spec, spec.confirm.seeds)], progress=progress, step=artifacts.CONFIRM)
    log_comparisons(comparisons, run_id, artifacts.CONFIRM, per_pool=False)  # the pool's keys hold the choosing step's
    summary = comparisons.items[0].summary
    if summary is None:  # every cell failed: tried, with nothing to show
        return dataclasses.replace(answer, confirmed_seeds=len(spec.confirm.seeds)), comparisons
    return dataclasses.replace(
        answer, confirmed_seeds=summary.seeds, confirmed_pct=summary.mean_pct,
        confirmed_ci_low_pct=summary.ci_low_pct, confirmed_ci_high_pct=summary.ci_high_pct,
        confirmed_p=summary.p_value,
    ), comparisons
