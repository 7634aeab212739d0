"""Where each step writes its artifacts in an MLflow run: one set of names for writers and readers.

The pool, probe, analyze and refine steps write under these paths; the report and the search's
warm start read them back. A path changes here, or nowhere. Paths are relative to the run's
artifact root and always use ``/``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

# The folders of a workflow run, one per step.
PROBE = "probe"
ANALYZE = "analyze"
REFINE = "refine"
CONFIRM = "confirm"
REPORT = "report"
TRANSFER = "transfer"

#: The spec as used, at the root of a workflow run.
SPEC = "sandbox.yaml"

# A comparison of pools with their random baselines, in the folder of its step (the root for ``train``).
DELTAS_TABLE = "deltas.json"
DELTAS_MARKDOWN = "deltas.md"
CELLS_TABLE = "cells.json"

# Probe: the single-OP ranking.
RANKING_TABLE = f"{PROBE}/ranking.json"
RANKING_MARKDOWN = f"{PROBE}/ranking.md"
RANKING_FIGURE = f"{PROBE}/ranking.png"

# Analyze: correlations and clusters of OP stats and of benchmark scores.
STAT_CORRELATION_FIGURE = f"{ANALYZE}/stat_correlation.png"
STAT_CORRELATION_TABLE = f"{ANALYZE}/stat_correlation.csv"
STAT_DENDROGRAM = f"{ANALYZE}/stat_dendrogram.png"
METRIC_CORRELATION_FIGURE = f"{ANALYZE}/metric_correlation.png"
METRIC_CORRELATION_TABLE = f"{ANALYZE}/metric_correlation.csv"
METRIC_DENDROGRAM = f"{ANALYZE}/metric_dendrogram.png"
CLUSTERS = f"{ANALYZE}/clusters.yaml"

# Refine: the candidates, the pyramid, the duplication study and the best recipe.
RECIPES_TABLE = f"{REFINE}/recipes.json"
RECIPES_MARKDOWN = f"{REFINE}/recipes.md"
#: Every candidate's recipe, ``<recipe digest>.yaml``: the selection its cells trained on.
CANDIDATE_RECIPES = f"{REFINE}/recipes"
PYRAMID_FIGURE = f"{REFINE}/pyramid.png"
DUPLICATION_FIGURE = f"{REFINE}/duplication.png"
#: The exported best recipe of a workflow run (our YAML; the search warm-starts from it).
BEST_RECIPE = f"{REFINE}/best_recipe.yaml"
#: The best recipe as a Data-Juicer ``process:`` config ...
BEST_RECIPE_DATA_JUICER = f"{REFINE}/best_recipe.data_juicer.yaml"
#: ... or, where Data-Juicer cannot express it, a note saying why.
BEST_RECIPE_DATA_JUICER_NOTE = f"{REFINE}/best_recipe.data_juicer.txt"

# Transfer: every probe pool's delta at each fidelity, and the agreement of each pair of fidelities.
TRANSFER_DELTAS = f"{TRANSFER}/deltas.json"
TRANSFER_PAIRS = f"{TRANSFER}/agreement.json"
TRANSFER_MARKDOWN = f"{TRANSFER}/agreement.md"
TRANSFER_FIGURE = f"{TRANSFER}/scatter.png"

# The report of a workflow run.
REPORT_HTML = f"{REPORT}/report.html"
REPORT_MARKDOWN = f"{REPORT}/report.md"

# The ``pool`` run: the stats of the dataset.
STATS = "stats"
STATS_SUMMARY_TABLE = f"{STATS}/summary.csv"
STATS_SUMMARY_MARKDOWN = f"{STATS}/summary.md"
STATS_CATEGORICAL = f"{STATS}/categorical.yaml"
STATS_HISTOGRAMS = f"{STATS}/stat_histograms.png"
STATS_SPEC = f"{STATS}/sandbox.yaml"

# A cell run.
MODEL = "model"
FAILURE_LOG_TAIL = "failure_log_tail.txt"


def under(folder: str, name: str) -> str:
    """``name`` inside ``folder`` (the artifact root when ``folder`` is empty)."""
    return f"{folder}/{name}" if folder else name


def filename(path: str) -> str:
    """The last part of an artifact path: ``refine/best_recipe.yaml`` -> ``best_recipe.yaml``."""
    return PurePosixPath(path).name


def local(root: Path, path: str) -> Path:
    """Where a writer stages the artifact ``path`` in a local folder laid out like the run's
    artifacts (parent folders created); logging ``root`` at the artifact root puts it at ``path``."""
    target = root.joinpath(*PurePosixPath(path).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target
