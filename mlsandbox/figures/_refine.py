"""The duplication curves of the Refine step: repeating the top pool against filling from lower levels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.figures._base import NO_SPREAD, PathLike, defined, new_figure, require, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
    interval = defined(frame, "ci_low_pct", "ci_high_pct")
    for i, (strategy, rows) in enumerate(frame.groupby("strategy", sort=False)):
        rows = rows.sort_values("r")
        r, delta = rows["r"].to_numpy(dtype=float), rows["delta_pct"].to_numpy(dtype=float)
        line = ax.errorbar(r, delta, yerr=_error_bars(rows, delta, interval), marker=markers[i % len(markers)],
                           capsize=3, lw=1.6, label=str(strategy))
        if "p_adjusted" in rows:
            found = rows["p_adjusted"].to_numpy(dtype=float) < 0.05  # NaN (untested) is no finding
            ax.scatter(r[found], delta[found], marker="*", s=110, color=line.lines[0].get_color(), zorder=3)
    if defined(frame, "p_adjusted"):
        ax.scatter([], [], marker="*", s=110, color="gray", label="Holm-adjusted p < 0.05")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xscale("log", base=2)
    ticks = sorted(frame["r"].astype(float).unique())
    shown = _tick_labels(ticks)
    ax.set_xticks(ticks, [f"{t:g}×" if keep else "" for t, keep in zip(ticks, shown)])
    ax.minorticks_off()
    # A budget too near a labelled one (a fill that ran short of samples) is named at its points instead.
    unlabelled = [t for t, keep in zip(ticks, shown) if not keep]
    for t, y in frame[["r", "delta_pct"]].astype(float).itertuples(index=False):
        if t in unlabelled:
            ax.annotate(f"{t:.3g}×", (t, y), xytext=(6, -10), textcoords="offset points", fontsize=7)
    ax.set_xlabel("training budget (multiple r of the top pool's size)")
    bars = (", 95% interval" if interval else ", ± std over seeds" if defined(frame, "std_pct")
            else f" ({NO_SPREAD})")
    ax.set_ylabel(f"delta over random (%){bars}")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=11)
    return fig


def _tick_labels(ticks: list[float], gap: float = 0.4) -> list[bool]:
    """Which budget ticks get a label: the whole multiples first, then any other at least ``gap``
    (in log2 units) from every labelled one, so that no two labels print over each other."""
    kept: list[float] = []
    for t in sorted(ticks, key=lambda t: (not float(t).is_integer(), t)):
        if all(abs(np.log2(t / k)) >= gap for k in kept):
            kept.append(t)
    return [t in kept for t in ticks]


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
