"""What the workflow commands print: the tables, each claim in words with its interval and adjusted p."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import typer

if TYPE_CHECKING:  # loaded only once a command runs
    import pandas as pd

    from mlsandbox.delta import DeltaSummary
    from mlsandbox.executors.cell_result import CellResult
    from mlsandbox.executors.comparison import PoolComparison
    from mlsandbox.workflows.analyze import AnalysisResult
    from mlsandbox.workflows.workflow import WorkflowResult


def print_workflow(result: WorkflowResult) -> None:
    """A workflow command's results: the probe's ranking, the clusters' best pools, refine's recipes, the
    answer, the cells' counts and where the report is."""
    from mlsandbox import artifacts, tracking
    from mlsandbox.credentials import hide_url_passwords
    from mlsandbox.delta import CARRIED_FAMILY
    from mlsandbox.executors.compare import table_markdown, without_constant

    screened = len({c.fidelity for c in result.probe.comparisons.items}) > 1
    typer.echo("\ndelta: relative change of the scores over an equal-size random pool (each seed draws its own), "
               f"{interval_words(result.probe.comparisons.items)}; p_adjusted: Holm-adjusted across the step's pools"
               + (" measured by the same model (the row's fidelity: screen or decide)" if screened else "")
               + (f" ({CARRIED_FAMILY})" if result.refined is not None else ""))
    print_ranking(result.probe.ranking)
    if result.analysis is not None:
        print_cluster_bests(result.analysis, result.probe.ranking.set_index("pool"))
    if result.refined is not None:
        wanted = ["name", "kind", "size", "unique", "fidelity", "delta_pct", "std_pct",
                  "ci_low_pct", "ci_high_pct", "p_value", "p_adjusted", "seeds", "screen_delta_pct", "screen_ci_low_pct",
                  "screen_ci_high_pct", "screen_p_adjusted", "note"]
        table = without_constant(result.refined.table[[c for c in wanted if c in result.refined.table]], "fidelity")
        typer.echo("\nRefine: recipes combining the top pools, against equal-size random pools\n" + table_markdown(table))
    typer.echo(f"\n{result.answer.text()}")
    typer.echo(cell_counts(result.cells, result.wall_s, result.where))
    if result.refined is not None:  # refine logged its report: where (a path to open, for a store here), as nothing else says
        root = tracking.find_run(result.run_id, "the workflow's run").info.artifact_uri
        page = (Path(unquote(urlsplit(root).path), artifacts.REPORT_HTML) if urlsplit(root).scheme in ("", "file")
                else hide_url_passwords(f"{root.rstrip('/')}/{artifacts.REPORT_HTML}"))
        typer.echo(f"report: {page} (to write it to a folder: mlsandbox report {result.run_id} --out DIR)")


def print_ranking(ranking: pd.DataFrame) -> None:
    """The probe's table, its notes (a degenerate split's reason: a long line) below it, not as a column."""
    from mlsandbox.executors.compare import table_markdown, without_constant

    typer.echo("\nProbe: single-OP pools against equal-size random pools, best first\n"
               + table_markdown(without_constant(ranking.drop(columns=["pool", "note"]), "fidelity")))
    for _, row in ranking[ranking["note"].astype(bool)].iterrows():
        typer.echo(f"  {row['pool']}: {row['note']}")


def print_cluster_bests(analysis: AnalysisResult, ranking: pd.DataFrame) -> None:
    """Each cluster's best pool with the delta that chose it; a metric cluster's is on its own benchmarks."""
    def overall(pool: str) -> str:
        return claim_text(ranking.loc[pool]) if pool in ranking.index else ""

    typer.echo("\nhighest delta per stat cluster (the refine step's candidates, not findings by themselves):")
    for cluster, stats in analysis.stat_clusters.groups().items():
        pool = analysis.best_by_stat_cluster.get(cluster)
        typer.echo(f"  {cluster} ({', '.join(stats)}): {pool} {overall(pool)}" if pool is not None
                   else f"  {cluster}: no measured pool (its stats: {', '.join(stats)}; see the ranking's n/a rows)")
    if analysis.metric_clusters is None:
        return
    typer.echo("\nhighest delta per metric cluster, on that cluster's benchmarks (the refine step's candidates, "
               "not findings by themselves; then the pool's delta over all benchmarks):")
    for cluster, members in analysis.metric_clusters.groups().items():
        benches = ", ".join(members)
        pool = analysis.best_by_metric_cluster.get(cluster)
        if pool is None:  # every pool's delta on these benchmarks is 0, or none was measured
            typer.echo(f"  {cluster}: no pool differs from its control on {benches} (or none was measured)")
            continue
        chosen = analysis.metric_cluster_delta[cluster]
        typer.echo(f"  {cluster}: {pool} {summary_claim(chosen)} on {benches}; over all: {overall(pool)}")


def claim_text(row: pd.Series) -> str:
    """A ranked pool's delta with its interval and Holm-adjusted p, in words."""
    return _claim(row["delta_pct"], row["ci_low_pct"], row["ci_high_pct"], row["p_adjusted"], row.get("seeds", 2))


def summary_claim(summary: DeltaSummary) -> str:
    """A delta summary with its interval and Holm-adjusted p, in words."""
    return _claim(summary.mean_pct, summary.ci_low_pct, summary.ci_high_pct, summary.p_adjusted, summary.seeds)


def _claim(delta_pct: float, ci_low_pct: float, ci_high_pct: float, p_adjusted: float, seeds: int) -> str:
    from mlsandbox.delta import claim_words

    if not math.isfinite(p_adjusted):
        return f"{delta_pct:+.2f}% (no interval: {'one seed' if seeds < 2 else 'no spread over seeds'})"
    return f"{delta_pct:+.2f}% ({claim_words(ci_low_pct, ci_high_pct, p_adjusted)})"


def interval_words(comparisons: list[PoolComparison]) -> str:
    """"mean over seeds with its 95% interval", and where a seed race tested pools at several looks,
    that it is corrected for them; where no pool had 2 seeds, that there is no interval."""
    if not any(c.summary is not None and c.summary.seeds >= 2 for c in comparisons):
        return "mean over seeds (no interval or p-value: fewer than 2 seeds)"
    looks = max((c.looks for c in comparisons), default=1)
    if looks == 1:
        return "mean over seeds with its 95% interval"
    return (f"mean over seeds with its 95% interval (raced pools: corrected for the race's {looks} looks, each held "
            f"to 5%/{looks}, so wider than a fixed-seed interval; docs/workflow.md)")


def cell_counts(cells: Sequence[CellResult], wall_s: float, where: str) -> str:
    """The line after a command's tables: cells run, reused and failed (the first failure's reason, which
    ``--quiet`` keeps from the log), the time and where the runs are."""
    run = sum(not c.reused for c in cells)
    failed = [c for c in cells if not c.ok]
    first = (f" (the first, {failed[0].pool.name} seed {failed[0].seed}: {failed[0].reason}; each reason is in "
             "cells.json of the run)") if failed else ""
    return (f"\n{len(cells)} cells: {run} run, {len(cells) - run} reused, {len(failed)} failed{first}; "
            f"{wall_s:.0f} s; {where}")


def every_cell_failed(steps: Mapping[str, Sequence[CellResult]]) -> str | None:
    """A line when a step trained cells with a model and every one of them failed (that step measured
    nothing with it: the command then exits 2, as ``train`` does for a failed cell); None otherwise.
    ``steps``: each step's cells, reused ones included (they did not fail)."""
    for step, cells in steps.items():
        for fidelity in dict.fromkeys(c.fidelity for c in cells):
            ran = [c for c in cells if c.fidelity == fidelity and not c.reused]
            if ran and not any(c.ok for c in ran):
                first = ran[0]
                model = {"screen": "screening", "decide": "deciding"}.get(fidelity, fidelity)
                return (f"FAILED: every one of the {len(ran)} cells {step} trained with the {model} model failed; "
                        f"the first, {first.pool.name} seed {first.seed}: {first.reason} (each reason is in "
                        "cells.json of the run)")
    return None
