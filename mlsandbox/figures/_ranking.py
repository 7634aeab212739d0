"""The probe's ranking: each pool's delta over the random pool as a bar, with its spread and significance."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.figures._base import NEGATIVE, NEUTRAL, POSITIVE, PathLike, new_figure, require, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def ranking_bars_figure(table: pd.DataFrame, title: str = "delta over the random pool") -> Figure:
    """Horizontal bars of ``delta_pct`` ± ``std_pct`` per ``label``, best at the top.

    Bars are green above the random pool and red below it; with a ``p_value`` column, rows with
    p < 0.05 are marked ``*``. A NaN std draws no error bar; a NaN delta draws no bar and reads
    ``n/a``.
    """
    require(table, ("label", "delta_pct", "std_pct"), "ranking_bars")
    rows = table.sort_values("delta_pct", ascending=False, na_position="last").reset_index(drop=True)
    n = len(rows)
    delta = rows["delta_pct"].to_numpy(dtype=float)
    std = np.nan_to_num(rows["std_pct"].to_numpy(dtype=float), nan=0.0)
    significant = (
        rows["p_value"].to_numpy(dtype=float) < 0.05 if "p_value" in rows else np.zeros(n, dtype=bool)
    )
    labels = [str(v) for v in rows["label"]]

    fig = new_figure(7.5, max(2.2, 1.3 + 0.32 * n))
    ax = fig.add_subplot()
    y = np.arange(n)
    colors = [POSITIVE if d > 0 else NEGATIVE if d < 0 else NEUTRAL for d in np.nan_to_num(delta)]
    ax.barh(y, np.nan_to_num(delta), color=colors, height=0.7)
    spread = std > 0
    if spread.any():
        ax.errorbar(
            np.nan_to_num(delta)[spread], y[spread], xerr=std[spread],
            fmt="none", ecolor="#333333", elinewidth=1, capsize=3,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel("delta over random (%), mean ± std over seeds")

    ends = np.nan_to_num(delta) + np.sign(np.nan_to_num(delta)) * std
    lo, hi = min(0.0, float(np.min(ends))), max(0.0, float(np.max(ends)))
    span = (hi - lo) or 1.0
    pad = 0.02 * span
    for yi, d, end, star in zip(y, delta, ends, significant):
        text = "n/a" if math.isnan(d) else f"{d:+.2f}{'*' if star else ''}"
        right = end >= 0 and not (d < 0)
        ax.text(
            end + (pad if right else -pad), float(yi), text,
            va="center", ha="left" if right else "right", fontsize=8,
        )
    ax.set_xlim(lo - 0.18 * span * (lo < 0) - 0.05 * span, hi + 0.18 * span * (hi > 0) + 0.05 * span)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    note = "  (* p < 0.05)" if significant.any() else ""
    ax.set_title(f"{title}{note}", fontsize=11)
    return fig


def ranking_bars(table: pd.DataFrame, path: PathLike, title: str = "delta over the random pool") -> Path:
    """:func:`ranking_bars_figure` written as a PNG at ``path``."""
    return save(ranking_bars_figure(table, title), path)
