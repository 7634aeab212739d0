"""Figures of the Analyze and Refine steps, of a search study and of the stats.

Each figure has a builder, ``<name>_figure(...)``, that returns a ``matplotlib.figure.Figure``
(to inspect, or to show in a notebook), and ``<name>(..., path)``, that writes it to a PNG and
returns the path. Every builder draws on its own ``Figure`` (rendered by the Agg canvas), never
through ``pyplot``'s global state, so it is safe in worker threads and leaves a notebook's
backend alone. matplotlib is imported inside the functions to keep ``import mlsandbox.figures``
cheap. Figures take plain data (DataFrames, dicts, a clustering), never a stats table.
"""

from __future__ import annotations

from mlsandbox.figures._base import DPI, NEGATIVE, NEUTRAL, POSITIVE, save
from mlsandbox.figures._clusters import (
    correlation_heatmap,
    correlation_heatmap_figure,
    dendrogram,
    dendrogram_figure,
)
from mlsandbox.figures._pyramid import pyramid, pyramid_figure
from mlsandbox.figures._ranking import ranking_bars, ranking_bars_figure
from mlsandbox.figures._refine import duplication_curves, duplication_curves_figure
from mlsandbox.figures._search import history_curve, history_curve_figure, importance_bars, importance_bars_figure
from mlsandbox.figures._stats import stat_histograms, stat_histograms_figure
from mlsandbox.figures._transfer import p_texts, transfer_scatter, transfer_scatter_figure

__all__ = [
    "DPI", "NEGATIVE", "NEUTRAL", "POSITIVE",
    "correlation_heatmap", "correlation_heatmap_figure", "dendrogram", "dendrogram_figure",
    "duplication_curves", "duplication_curves_figure", "history_curve", "history_curve_figure",
    "importance_bars", "importance_bars_figure", "pyramid", "pyramid_figure",
    "ranking_bars", "ranking_bars_figure", "save", "stat_histograms", "stat_histograms_figure",
    "p_texts", "transfer_scatter", "transfer_scatter_figure",
]
