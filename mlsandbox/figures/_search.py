"""Figures of a search study: the best-so-far history over trials and the parameter importances."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.figures._base import POSITIVE, PathLike, new_figure, require, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def history_curve_figure(
    frame: pd.DataFrame,
    title: str = "search history",
    ylabel: str = "delta over random (%)",
    direction: str = "maximize",
) -> Figure:
    """Best-so-far ``value`` against ``trial`` (a step line), trial values as dots.

    An optional ``series`` column draws one curve per value; NaN values (failed trials) are
    shown nowhere and do not move the best-so-far, which carries on through them.
    """
    require(frame, ("trial", "value"), "history_curve")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if frame.empty:
        raise ValueError("history_curve: no rows to draw")
    groups: Sequence[tuple[object, pd.DataFrame]] = (
        list(frame.groupby("series", sort=False)) if "series" in frame else [("", frame)]
    )
    fig = new_figure(6.5, 4.0)
    ax = fig.add_subplot()
    for i, (name, rows) in enumerate(groups):
        rows = rows.sort_values("trial")
        values = rows["value"].astype(float)
        best = (values.cummax() if direction == "maximize" else values.cummin()).ffill()
        color = f"C{i}"
        ax.scatter(
            rows["trial"], values, s=14, color=color, alpha=0.45,
            label=f"{name}: trials" if name != "" else "trials",
        )
        ax.step(
            rows["trial"], best, where="post", color=color, lw=1.8,
            label=f"{name}: best so far" if name != "" else "best so far",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=11)
    return fig


def history_curve(
    frame: pd.DataFrame,
    path: PathLike,
    title: str = "search history",
    ylabel: str = "delta over random (%)",
    direction: str = "maximize",
) -> Path:
    """:func:`history_curve_figure` written as a PNG at ``path``."""
    return save(history_curve_figure(frame, title, ylabel, direction), path)


def importance_bars_figure(importances: dict[str, float], title: str = "parameter importance") -> Figure:
    """Horizontal bars of each parameter's importance (shares summing to 1), largest at the top."""
    if not importances:
        raise ValueError("importance_bars: no importances to draw")
    items = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)
    names, values = [k for k, _ in items], np.array([v for _, v in items], dtype=float)
    fig = new_figure(6.5, max(2.0, 1.2 + 0.32 * len(items)))
    ax = fig.add_subplot()
    y = np.arange(len(items))
    ax.barh(y, values, color=POSITIVE, height=0.7)
    for yi, v in zip(y, values):
        ax.text(v, float(yi), f" {v:.2f}", va="center", ha="left", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.set_xlim(0, max(1e-9, float(values.max())) * 1.2)
    ax.set_xlabel("importance")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=11)
    return fig


def importance_bars(importances: dict[str, float], path: PathLike, title: str = "parameter importance") -> Path:
    """:func:`importance_bars_figure` written as a PNG at ``path``."""
    return save(importance_bars_figure(importances, title), path)
