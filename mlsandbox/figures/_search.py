"""Figures of a search study: the best-so-far history over trials and the parameter importances."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.delta import ALPHA
from mlsandbox.figures._base import NEUTRAL, POSITIVE, PathLike, defined, new_figure, require, save

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Importances from fewer completed trials than this many per parameter are mostly noise.
TRIALS_PER_PARAM = 2
PRUNED = "PRUNED"
COMPLETE = "COMPLETE"


def history_curve_figure(
    frame: pd.DataFrame,
    title: str = "search history",
    ylabel: str = "delta over random (%)",
    direction: str = "maximize",
) -> Figure:
    """Best-so-far ``value`` against ``trial`` (a step line), trial values as dots.

    An optional ``series`` column draws one curve per value; NaN values (failed trials) are
    shown nowhere and do not move the best-so-far, which carries on through them. With a
    ``state`` column (Optuna's state names), a ``PRUNED`` trial's value is only its running delta
    after the seeds it ran: it is drawn hollow and grey and does not move the best-so-far, which
    then follows the complete trials only (as the study's best does). With a ``warm_start``
    column, trials whose entry is not empty (the recipes a study started from) are ringed. With
    ``ci_low_pct``/``ci_high_pct`` columns a complete trial's 95% interval over seeds is its error
    bar (none where undefined); with ``p_adjusted`` (Holm-adjusted across the complete trials'
    distinct pools) a star marks the complete trials whose adjusted p is below 0.05, as in
    :func:`duplication_curves_figure`: a dot above zero is not read as a finding the test rejects.
    """
    from matplotlib.ticker import MaxNLocator

    require(frame, ("trial", "value"), "history_curve")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if frame.empty:
        raise ValueError("history_curve: no rows to draw")
    groups: Sequence[tuple[object, pd.DataFrame]] = (
        list(frame.groupby("series", sort=False)) if "series" in frame else [("", frame)]
    )
    has_state = "state" in frame
    fig = new_figure(7.8, 4.0)
    ax = fig.add_subplot()
    for i, (name, rows) in enumerate(groups):
        _history_series(ax, rows.sort_values("trial"), str(name), f"C{i}", direction, has_state)
        _mark_claims(ax, rows, f"C{i}", f"{name}: " if name else "")
    if defined(frame, "p_adjusted"):
        ax.scatter([], [], marker="*", s=110, color="gray", label=f"Holm-adjusted p < {ALPHA:g}")
    _mark_pruned(ax, frame)
    _mark_warm_starts(ax, frame)
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole: no tick at 0.5
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(f"{title}: best-so-far {ylabel} by trial{_claims_note(frame)}", fontsize=11)
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


def _history_series(ax: Axes, rows: pd.DataFrame, name: str, color: str, direction: str, has_state: bool) -> None:
    """One series' trials as dots and its best so far as a step line (complete trials only, with states)."""
    values = rows["value"].astype(float)
    complete = rows["state"].astype(str).eq(COMPLETE) if has_state else pd.Series(True, index=rows.index)
    counted = values.where(complete)
    best = (counted.cummax() if direction == "maximize" else counted.cummin()).ffill()
    prefix = f"{name}: " if name else ""
    ax.scatter(rows["trial"][complete], values[complete], s=14, color=color, alpha=0.45,
               label=prefix + ("complete trials" if has_state else "trials"))
    ax.step(rows["trial"], best, where="post", color=color, lw=1.8,
            label=prefix + ("best so far (complete trials)" if has_state else "best so far"))


def _completed(rows: pd.DataFrame) -> pd.DataFrame:
    """The complete trials with a value: the only ones with a claim (all rows, without states)."""
    done = rows["state"].astype(str).eq(COMPLETE) if "state" in rows else pd.Series(True, index=rows.index)
    return rows[done & rows["value"].astype(float).notna()]


def _mark_claims(ax: Axes, rows: pd.DataFrame, color: str, prefix: str) -> None:
    """Each complete trial's 95% interval as an error bar and a star where its Holm-adjusted p is
    below 0.05: a delta shown without them reads as a finding it may not be."""
    done = _completed(rows)
    value = done["value"].to_numpy(dtype=float)
    if defined(done, "ci_low_pct", "ci_high_pct"):
        low, high = done["ci_low_pct"].to_numpy(dtype=float), done["ci_high_pct"].to_numpy(dtype=float)
        has = np.isfinite(low) & np.isfinite(high)
        ax.errorbar(done["trial"].to_numpy(dtype=float)[has], value[has], fmt="none", ecolor=color, elinewidth=0.9,
                    capsize=2, alpha=0.6, yerr=np.vstack([value[has] - low[has], high[has] - value[has]]).clip(min=0),
                    label=f"{prefix}95% interval over seeds")
    found = done["p_adjusted"].to_numpy(dtype=float) < ALPHA if "p_adjusted" in done else np.array([])
    if found.any():  # NaN (untested) is no finding
        ax.scatter(done["trial"][found], value[found], marker="*", s=110, color=color, zorder=3)


def _claims_note(frame: pd.DataFrame) -> str:
    """What the error bars and the stars are, for the title (nothing where the frame has neither)."""
    bars = ["bars: 95% interval over seeds"] if defined(_completed(frame), "ci_low_pct", "ci_high_pct") else []
    stars = ([f"*: Holm-adjusted p < {ALPHA:g} across the complete trials' distinct pools"]
             if defined(frame, "p_adjusted") else [])
    return "".join(f"\n{part}" for part in bars + stars)


def _mark_pruned(ax: Axes, frame: pd.DataFrame) -> None:
    """Pruned trials' running values: hollow grey, as a partial result, never a finding."""
    if "state" not in frame:
        return
    pruned = frame[frame["state"].astype(str).eq(PRUNED)]
    valued = pruned["value"].astype(float).notna()
    if valued.any():
        ax.scatter(pruned["trial"][valued], pruned["value"][valued].astype(float), s=22, facecolors="none",
                   edgecolors=NEUTRAL, linewidths=1.0, label="pruned: running value after some seeds (partial)")
    if not valued.all():  # pruned before its first seed (a pool too small, or one that keeps every sample)
        ax.scatter(pruned["trial"][~valued], np.zeros(int((~valued).sum())), transform=ax.get_xaxis_transform(),
                   marker="x", s=22, color=NEUTRAL, clip_on=False, label="pruned before its first seed (no value)")


def _mark_warm_starts(ax: Axes, frame: pd.DataFrame) -> None:
    """A ring around the trials the study was seeded with (they were not the sampler's choice)."""
    if "warm_start" not in frame:
        return
    warm = frame[frame["warm_start"].fillna("").astype(str).str.len() > 0]
    if warm.empty:
        return
    ax.scatter(warm["trial"], warm["value"].astype(float), s=90, marker="D", facecolors="none",
               edgecolors="black", linewidths=0.9, label="warm start")


def importance_bars_figure(
    importances: dict[str, float], title: str = "parameter importance", completed: int | None = None
) -> Figure:
    """Horizontal bars of each parameter's importance (shares summing to 1), largest at the top.

    ``completed`` is the number of completed trials they were computed from: the title says it,
    and below :data:`TRIALS_PER_PARAM` trials per parameter it warns that they are mostly noise
    and the bars are grey.
    """
    if not importances:
        raise ValueError("importance_bars: no importances to draw")
    items = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)
    names, values = [k for k, _ in items], np.array([v for _, v in items], dtype=float)
    few = completed is not None and completed < TRIALS_PER_PARAM * len(items)
    fig = new_figure(6.5, max(2.0, 1.2 + 0.32 * len(items)))
    ax = fig.add_subplot()
    y = np.arange(len(items))
    ax.barh(y, values, color=NEUTRAL if few else POSITIVE, height=0.7)
    for yi, v in zip(y, values):
        ax.text(v, float(yi), f" {v:.2f}", va="center", ha="left", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.set_xlim(0, max(1e-9, float(values.max())) * 1.2)
    ax.set_xlabel("importance")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(_importance_title(title, completed, len(items)), fontsize=11)
    return fig


def importance_bars(
    importances: dict[str, float], path: PathLike, title: str = "parameter importance", completed: int | None = None
) -> Path:
    """:func:`importance_bars_figure` written as a PNG at ``path``."""
    return save(importance_bars_figure(importances, title, completed), path)


def _importance_title(title: str, completed: int | None, params: int) -> str:
    if completed is None:
        return title
    text = f"{title}, from {completed} completed trial{'s' if completed != 1 else ''}"
    if completed < TRIALS_PER_PARAM * params:
        text += (f"\ncaveat: fewer than {TRIALS_PER_PARAM} trials per parameter ({params} parameters): "
                 "mostly noise")
    return text
