"""The distribution of every statistic: one histogram per numeric column, its median marked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from mlsandbox.figures._base import BLUE, NEGATIVE, PathLike, new_figure, require, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: A share of exact zeros from which the zero bar would flatten the rest: counts go on a log axis.
ZERO_SPIKE = 0.2
#: A positive stat is long-tailed when its 99th percentile is this many times its median ...
TAIL_RATIO = 5.0
#: ... and its 1st to 99th percentiles span this many times: then its values go on a log axis.
TAIL_SPAN = 100.0
#: At most this share of zeros may be left off a log value axis (the panel says how many).
LOG_X_ZEROS = 0.05

#: How a panel is scaled: as it is, counts on a log axis (a zero spike), values on a log axis (a long tail).
Scale = Literal["linear", "log count", "log x"]


def stat_histograms_figure(frame: pd.DataFrame, bins: int = 50) -> Figure:
    """One histogram per numeric column of ``frame`` (other columns are left out), three a row.

    Each panel is titled by its column and marks the median with a red line; its axes always read
    in the stat's own units. A non-negative stat with a spike of zeros (at least
    :data:`ZERO_SPIKE` of its values) keeps a linear value axis and counts on a log axis, so the
    rest of it stays visible; a positive, long-tailed one (a count such as a text length) puts its
    values on a log axis, the few zeros that cannot appear there named in its title. Missing (NaN)
    values are left out of their column's panel.
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


def scale_of(values: np.ndarray) -> Scale:
    """The scale that shows ``values`` (no NaN) without one bar or a long tail hiding the rest."""
    if len(values) == 0 or values.min() < 0:
        return "linear"
    zeros = float(np.mean(values == 0))
    if zeros >= ZERO_SPIKE:
        return "log count"
    positive = values[values > 0]
    if zeros > LOG_X_ZEROS or len(positive) < 2:
        return "linear"
    p1, p50, p99 = np.percentile(positive, [1, 50, 99])
    return "log x" if p99 >= TAIL_RATIO * p50 and p99 >= TAIL_SPAN * p1 else "linear"


def _histogram(ax: Axes, key: str, values: np.ndarray, bins: int) -> None:
    ax.set_ylabel("samples")
    if len(values) == 0:
        ax.set_title(key, fontsize=10)
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        return
    median = float(np.median(values))
    scale = scale_of(values)
    if scale == "log x":
        _log_x(ax, key, values, bins)
    else:
        ax.hist(values, bins=bins, color=BLUE, log=scale == "log count")
        ax.set_title(key, fontsize=10)
        if scale == "log count":
            ax.set_ylabel("samples (log scale)")
    ax.axvline(median, color=NEGATIVE, lw=1)


def _log_x(ax: Axes, key: str, values: np.ndarray, bins: int) -> None:
    """Log-spaced bins on a log value axis, its ticks in the stat's own numbers."""
    from matplotlib.ticker import FuncFormatter

    positive = values[values > 0]
    edges = np.geomspace(positive.min(), positive.max(), bins + 1).tolist()
    ax.hist(positive, bins=edges, color=BLUE)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    zeros = len(values) - len(positive)
    ax.set_title(f"{key} (log x{f'; {zeros} zeros not shown' if zeros else ''})", fontsize=10)
