"""Figures of the Refine step: the pyramid of top-k pool intersections and the duplication curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.figures._base import PathLike, new_figure, require, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The colour of a box whose delta is undefined (an empty intersection, for instance).
UNDEFINED = (0.85, 0.85, 0.85, 1.0)


def pyramid_figure(levels: pd.DataFrame, title: str = "pyramid of top-k pool intersections") -> Figure:
    """One row of boxes per level, the intersection of most OPs at the top.

    ``levels`` has ``label`` (e.g. ``"A∩B"``), ``level`` (number of OPs combined), ``size``,
    ``delta_pct`` and optionally ``std_pct``. A box's width grows with sqrt(size); its colour
    is its delta (green up, red down, grey when undefined, e.g. an empty intersection).
    """
    require(levels, ("label", "level", "size", "delta_pct"), "pyramid")
    if levels.empty:
        raise ValueError("pyramid: no rows to draw")
    if (levels["size"] < 0).any():
        raise ValueError("pyramid: sizes must be >= 0")
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import FancyBboxPatch

    frame = levels.assign(level=levels["level"].astype(int))
    by_level = {int(lv): rows.reset_index(drop=True) for lv, rows in frame.groupby("level", sort=True)}
    top_level = max(by_level)
    widest = max(len(rows) for rows in by_level.values())

    # Width units: the largest row of sqrt(size) fills the figure; a floor keeps text readable.
    gap, min_width = 0.25, 1.45
    root = {lv: np.sqrt(rows["size"].to_numpy(dtype=float)) for lv, rows in by_level.items()}
    total_root = max(float(r.sum()) for r in root.values()) or 1.0
    scale = (1.7 * widest) / total_root
    widths = {lv: np.maximum(r * scale, min_width) for lv, r in root.items()}
    span = max(float(w.sum()) + gap * (len(w) - 1) for w in widths.values())

    deltas = frame["delta_pct"].to_numpy(dtype=float)
    bound = float(np.nanmax(np.abs(deltas))) if np.isfinite(deltas).any() else 1.0
    bound = bound or 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)
    cmap = matplotlib.colormaps["RdYlGn"]

    n_levels = len(by_level)
    fig = new_figure(max(6.5, span * 0.95 + 2.2), 1.0 + 1.15 * n_levels)
    ax = fig.add_subplot()
    row_height = 0.82
    for row_index, lv in enumerate(sorted(by_level, reverse=True)):
        rows, w = by_level[lv], widths[lv]
        y = n_levels - 1 - row_index
        x = (span - (float(w.sum()) + gap * (len(w) - 1))) / 2
        for (_, row), width in zip(rows.iterrows(), w):
            d = float(row["delta_pct"])
            color = cmap(norm(d)) if math.isfinite(d) else UNDEFINED
            ax.add_patch(
                FancyBboxPatch(
                    (x, y - row_height / 2), width, row_height, boxstyle="round,pad=0,rounding_size=0.08",
                    facecolor=color, edgecolor="#444444", lw=0.8,
                )
            )
            ax.text(x + width / 2, y, _box_text(row, width), ha="center", va="center", fontsize=8.5,
                    linespacing=1.15)
            x += width + gap
        ax.text(-0.2, y, f"{lv} OP{'s' if lv > 1 else ''}", ha="right", va="center", fontsize=9)
    ax.set_xlim(-1.4, span + 0.1)
    ax.set_ylim(-0.6, n_levels - 0.4)
    ax.set_axis_off()
    fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.025, pad=0.01, label="delta over random (%)"
    )
    ax.set_title(f"{title} (top level: {top_level} OPs combined)", fontsize=11)
    return fig


def pyramid(levels: pd.DataFrame, path: PathLike, title: str = "pyramid of top-k pool intersections") -> Path:
    """:func:`pyramid_figure` written as a PNG at ``path``."""
    return save(pyramid_figure(levels, title), path)


def duplication_curves_figure(frame: pd.DataFrame, title: str = "duplication at a fixed budget") -> Figure:
    """Delta % against the budget multiple ``r`` (log2 axis), one line per ``strategy``.

    ``frame`` has ``strategy``, ``r`` (or ``multiple``, the name in refine's recipe table),
    ``delta_pct`` and optionally the error bars: the 95% interval (``ci_low_pct``, ``ci_high_pct``)
    where given, else ``std_pct``; one row per (strategy, r). With ``p_adjusted``, a star marks
    the points whose Holm-adjusted p is below 0.05, so a bar clear of zero is not read as a finding
    the test rejects.
    """
    if "r" not in frame.columns and "multiple" in frame.columns:
        frame = frame.rename(columns={"multiple": "r"})
    require(frame, ("strategy", "r", "delta_pct"), "duplication_curves")
    if frame.empty:
        raise ValueError("duplication_curves: no rows to draw")
    if not (frame["r"].astype(float) > 0).all():
        raise ValueError("duplication_curves: r must be a positive budget multiple, not NaN")
    if frame.duplicated(["strategy", "r"]).any():
        raise ValueError("duplication_curves: more than one row for a (strategy, r); aggregate seeds first")
    fig = new_figure(6.5, 4.2)
    ax = fig.add_subplot()
    markers = "osD^v<>"
    interval = {"ci_low_pct", "ci_high_pct"} <= set(frame.columns)
    for i, (strategy, rows) in enumerate(frame.groupby("strategy", sort=False)):
        rows = rows.sort_values("r")
        r, delta = rows["r"].to_numpy(dtype=float), rows["delta_pct"].to_numpy(dtype=float)
        line = ax.errorbar(r, delta, yerr=_error_bars(rows, delta, interval), marker=markers[i % len(markers)],
                           capsize=3, lw=1.6, label=str(strategy))
        if "p_adjusted" in rows:
            found = rows["p_adjusted"].to_numpy(dtype=float) < 0.05  # NaN (untested) is no finding
            ax.scatter(r[found], delta[found], marker="*", s=110, color=line.lines[0].get_color(), zorder=3)
    if "p_adjusted" in frame:
        ax.scatter([], [], marker="*", s=110, color="gray", label="Holm-adjusted p < 0.05")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xscale("log", base=2)
    ticks = sorted(frame["r"].astype(float).unique())
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training budget (multiple r of the top pool's size)")
    bars = ", 95% interval" if interval else ", ± std over seeds" if "std_pct" in frame else ""
    ax.set_ylabel(f"delta over random (%){bars}")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=11)
    return fig


def _error_bars(rows: pd.DataFrame, delta: np.ndarray, interval: bool) -> np.ndarray | None:
    """Distances from each delta to its interval's ends (or its std), 0 where undefined."""
    if interval:
        low = delta - rows["ci_low_pct"].to_numpy(dtype=float)
        high = rows["ci_high_pct"].to_numpy(dtype=float) - delta
        return np.nan_to_num(np.vstack([low, high]), nan=0.0)
    if "std_pct" in rows:
        return np.nan_to_num(rows["std_pct"].to_numpy(dtype=float), nan=0.0)
    return None


def duplication_curves(frame: pd.DataFrame, path: PathLike, title: str = "duplication at a fixed budget") -> Path:
    """:func:`duplication_curves_figure` written as a PNG at ``path``."""
    return save(duplication_curves_figure(frame, title), path)


def _box_text(row: pd.Series, width: float) -> str:
    # About 8 characters fit per width unit at this font size; break long labels at "∩".
    label = _wrap_at(str(row["label"]), max(6, int(width * 8)), sep="∩")
    d = float(row["delta_pct"])
    delta = "delta n/a" if not math.isfinite(d) else f"{d:+.2f}%"
    if "std_pct" in row.index and math.isfinite(float(row["std_pct"])) and math.isfinite(d):
        delta += f" ± {float(row['std_pct']):.2f}"
    return f"{label}\nn={int(row['size']):,}\n{delta}"


def _wrap_at(text: str, width: int, sep: str) -> str:
    parts = text.split(sep)
    lines, current = [], parts[0]
    for part in parts[1:]:
        if len(current) + len(sep) + len(part) > width:
            lines.append(current + sep)
            current = part
        else:
            current += sep + part
    lines.append(current)
    return "\n".join(lines)
