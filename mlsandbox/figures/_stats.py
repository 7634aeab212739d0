"""The distribution of every statistic: one histogram per numeric column, its median marked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.figures._base import BLUE, NEGATIVE, PathLike, new_figure, require, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def stat_histograms_figure(frame: pd.DataFrame, bins: int = 50) -> Figure:
    """One histogram per numeric column of ``frame`` (other columns are left out), three a row.

    Each panel is titled by its column and marks the median with a red line. A heavy-tailed,
    non-negative column (99th percentile over 50 times the median) is drawn as ``log10(1 + x)``
    and titled so. Missing (NaN) values are left out of their column's panel.
    """
    require(frame, (), "stat_histograms")
    keys = [str(c) for c in frame.select_dtypes(include="number").columns]
    if not keys:
        raise ValueError(f"stat_histograms: no numeric columns to draw; got {list(frame.columns)}")
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig = new_figure(4.2 * cols, 3.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, key in zip(axes.flat, keys):
        values = frame[key].to_numpy(dtype=float)
        _histogram(ax, key, values[~np.isnan(values)], bins)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_axis_off()
    fig.suptitle(f"stat distributions ({len(frame)} samples; red: median)")
    return fig


def stat_histograms(frame: pd.DataFrame, path: PathLike, bins: int = 50) -> Path:
    """:func:`stat_histograms_figure` written as a PNG at ``path``."""
    return save(stat_histograms_figure(frame, bins), path)


def _histogram(ax: Axes, key: str, values: np.ndarray, bins: int) -> None:
    ax.set_ylabel("samples")
    if len(values) == 0:
        ax.set_title(key, fontsize=10)
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        return
    median = float(np.median(values))
    log_scale = bool(values.min() >= 0 and np.percentile(values, 99) > 50 * max(median, 1e-9))
    ax.hist(np.log10(values + 1) if log_scale else values, bins=bins, color=BLUE)
    ax.axvline(np.log10(median + 1) if log_scale else median, color=NEGATIVE, lw=1)
    ax.set_title(f"log10(1 + {key})" if log_scale else key, fontsize=10)
