"""Analyze: correlations between OP stats (across samples) and between benchmark metrics (across
probed models), clustered hierarchically; the best OP of each cluster (paper App. B.2)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
import yaml

from mlsandbox import artifacts, figures
from mlsandbox.correlation import Clustering, best_of_clusters, cluster, pearson_matrix
from mlsandbox.delta import DeltaSummary, adjust_summaries, summarize_deltas
from mlsandbox.executors.comparison import Comparisons
from mlsandbox.executors.fidelity import DECIDE
from mlsandbox.executors.prepare import Prepared
from mlsandbox.files import scratch_folder
from mlsandbox.workflows.probe import ProbeResult

log = logging.getLogger(__name__)


@dataclass
class AnalysisResult:
    stat_corr: pd.DataFrame
    stat_clusters: Clustering
    best_by_stat_cluster: dict[int, str]  # cluster -> pool name (op/split)
    metric_corr: pd.DataFrame | None
    metric_clusters: Clustering | None
    best_by_metric_cluster: dict[int, str]
    #: The delta that chose each metric cluster's pool, on that cluster's benchmarks only: mean over
    #: seeds, its interval, and its p-value Holm-adjusted across the pools compared on them.
    metric_cluster_delta: dict[int, DeltaSummary] = field(default_factory=dict)

    def summary(self) -> dict:
        out = {"stat_clusters": self.stat_clusters.groups(), "best_by_stat_cluster": self.best_by_stat_cluster,
               "best_by_metric_cluster": self.best_by_metric_cluster,
               "best_by_metric_cluster_delta_pct": {c: _rounded(s.mean_pct) for c, s in self.metric_cluster_delta.items()},
               "best_by_metric_cluster_interval_pct": {c: [_rounded(s.ci_low_pct), _rounded(s.ci_high_pct)]
                                                       for c, s in self.metric_cluster_delta.items()},
               "best_by_metric_cluster_p_adjusted": {c: _rounded(s.p_adjusted, 6)
                                                     for c, s in self.metric_cluster_delta.items()}}
        if self.metric_clusters is not None:
            out["metric_clusters"] = self.metric_clusters.groups()
        return out


def analyze(prepared: Prepared, probed: ProbeResult, run_id: str) -> AnalysisResult:
    """Correlate and cluster; log heatmaps, dendrograms and the clusters to ``run_id``."""
    spec = prepared.spec.analyze
    split_stats = {op.split_stat(): op.name for op in prepared.stats.ops}
    values = prepared.stats.frame[list(split_stats)]
    constant = [stat for stat in values if values[stat].nunique() < 2]
    if constant and len(constant) < len(split_stats):  # no correlation to speak of: it would sit apart at r = 0
        log.info("stat clusters: %s left out (one value on the whole dataset)", ", ".join(constant))
        values = values.drop(columns=constant)
    stat_corr = pearson_matrix(values)
    stat_clusters = cluster(stat_corr, min(spec.stat_clusters, len(stat_corr)), method=spec.linkage)
    best_pool_of_op = _best_pool_per_op(probed.ranking)
    op_scores = {stat: best_pool_of_op[op][1] for stat, op in split_stats.items() if op in best_pool_of_op}
    best_stats = best_of_clusters(stat_clusters, op_scores)
    best_by_stat = {c: best_pool_of_op[split_stats[stat]][0] for c, stat in best_stats.items()}

    metric_corr, metric_clusters, best_by_metric = None, None, {}
    scores = _probed_scores(probed.comparisons)
    if scores.shape[1] < 2 or len(scores) < 3:
        log.info("metric clusters: left out (they need at least 2 benchmarks and 3 probed models; this probe has "
                 "%d and %d)", scores.shape[1], len(scores))
    else:
        metric_corr = pearson_matrix(scores)
        metric_clusters = cluster(metric_corr, min(spec.metric_clusters, scores.shape[1]), method=spec.linkage)
        best_by_metric = _best_per_metric_cluster(probed.comparisons, metric_clusters)
    result = AnalysisResult(stat_corr, stat_clusters, best_by_stat, metric_corr, metric_clusters,
                            {c: pool for c, (pool, _) in best_by_metric.items()},
                            {c: summary for c, (_, summary) in best_by_metric.items()})
    _log(result, run_id)
    return result


def _best_pool_per_op(ranking: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """Each OP's pool with the best delta of the deciding model: the pools a screen settled have
    deltas on another model's scale, and were settled as out of the running."""
    best: dict[str, tuple[str, float]] = {}
    decided = ranking[ranking["fidelity"] == DECIDE]
    for row in decided.dropna(subset=["delta_pct"]).itertuples():
        if row.op not in best or row.delta_pct > best[row.op][1]:
            best[row.op] = (row.pool, float(row.delta_pct))
    return best


def _probed_scores(comparisons: Comparisons) -> pd.DataFrame:
    """One row per finished cell (pools and baselines), one column per benchmark score."""
    decided = comparisons.at(DECIDE)  # one model's scores: a screen's are on another scale
    cells = {c.run_id: c for item in decided for c in [*item.cells, *item.baselines.values()] if c.ok}
    rows = [c.scores for c in cells.values()]
    return pd.DataFrame(rows).dropna(axis=1)


def _best_per_metric_cluster(comparisons: Comparisons, clusters: Clustering) -> dict[int, tuple[str, DeltaSummary]]:
    """For each cluster of benchmarks, the probed pool with the best Eq. 3 delta on those benchmarks,
    and that delta's summary over seeds, its p-value Holm-adjusted across the distinct pools compared
    on them (the best of many is chosen); none where every delta is 0 (a benchmark every model
    scores alike tells no pool from its control)."""
    best: dict[int, tuple[str, DeltaSummary]] = {}
    for cid, benches in clusters.groups().items():
        measured: dict[str, tuple[str, DeltaSummary]] = {}  # pool digest -> its first name, its summary
        for item in comparisons.at(DECIDE):
            if (pairs := item.paired()) and item.pool.digest not in measured:
                measured[item.pool.digest] = (item.pool.name, summarize_deltas(
                    [{k: c.scores[k] for k in benches} for c, _ in pairs],
                    [{k: b.scores[k] for k in benches} for _, b in pairs], item.looks))
        adjusted = adjust_summaries([summary for _, summary in measured.values()])
        summaries = {name: s for (name, _), s in zip(measured.values(), adjusted) if s is not None}
        if any(s.mean != 0.0 for s in summaries.values()):  # all 0: a benchmark every model scores alike
            pool = max(summaries, key=lambda name: summaries[name].mean)
            best[cid] = (pool, summaries[pool])
    return best


def _rounded(value: float, digits: int = 4) -> float | None:
    """``value`` for ``clusters.yaml``: rounded, and None where it is undefined (one seed)."""
    return round(value, digits) if math.isfinite(value) else None


def _log(result: AnalysisResult, run_id: str) -> None:
    client = mlflow.MlflowClient()
    with scratch_folder("analyze") as out:
        _log_clusters(out, result.stat_corr, result.stat_clusters, "Pearson correlation of OP stats across samples",
                      "OP stats: hierarchical clusters",
                      (artifacts.STAT_CORRELATION_FIGURE, artifacts.STAT_DENDROGRAM, artifacts.STAT_CORRELATION_TABLE))
        if result.metric_corr is not None and result.metric_clusters is not None:
            _log_clusters(out, result.metric_corr, result.metric_clusters,
                          "Pearson correlation of benchmark scores across models", "Benchmarks: hierarchical clusters",
                          (artifacts.METRIC_CORRELATION_FIGURE, artifacts.METRIC_DENDROGRAM,
                           artifacts.METRIC_CORRELATION_TABLE))
        artifacts.local(out, artifacts.CLUSTERS).write_text(yaml.safe_dump(result.summary(), sort_keys=False),
                                                            encoding="utf-8")
        client.log_artifacts(run_id, str(out))


def _log_clusters(out: Path, corr: pd.DataFrame, clusters: Clustering, heatmap_title: str, dendrogram_title: str,
                  paths: tuple[str, str, str]) -> None:
    """Stage a correlation heatmap, its dendrogram and the correlation table at ``paths``."""
    heatmap, dendrogram, table = paths
    figures.correlation_heatmap(corr, artifacts.local(out, heatmap), title=heatmap_title, clustering=clusters)
    figures.dendrogram(clusters, artifacts.local(out, dendrogram), title=dendrogram_title)
    corr.to_csv(artifacts.local(out, table))
