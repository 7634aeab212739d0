"""The probe's ranking: each pool's delta over the random pool as a bar, with its spread and significance."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.figures._base import (
    NEGATIVE,
    NEUTRAL,
    NO_SPREAD,
    POSITIVE,
    PathLike,
    defined,
    new_figure,
    require,
    save,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: How much of a colour a bar keeps when its test does not reject (the rest is white).
PALE = 0.35


def ranking_bars_figure(table: pd.DataFrame, title: str = "delta over the random pool", looks: int | None = None) -> Figure:
    """Horizontal bars of ``delta_pct`` per ``label``, best at the top, with their spread.

    The error bar is the 95% interval over seeds (``ci_low_pct``/``ci_high_pct``) where the
    table has those columns, else ± ``std_pct``; an undefined (NaN) interval or a NaN or zero std
    draws no error bar. Bars are green above the random pool and red below it. With a
    ``p_adjusted`` column (Holm-adjusted across the step's pools), rows with an adjusted p < 0.05
    are marked ``*``; a table with only ``p_value`` is marked from it. Where a p-value is given,
    a bar whose test does not reject (p ≥ 0.05, or untested: NaN) is pale, so that it does not read
    as strong as a finding. ``looks`` (else a ``looks`` column, else 1) is the number of tests a
    seed race took: above 1 the interval is the race-corrected one, wider, and the axis says so.
    A NaN delta draws no bar and reads ``n/a``.
    """
    require(table, ("label", "delta_pct", "std_pct"), "ranking_bars")
    rows = table.sort_values("delta_pct", ascending=False, na_position="last").reset_index(drop=True)
    n = len(rows)
    delta = np.nan_to_num(rows["delta_pct"].to_numpy(dtype=float))
    interval = defined(rows, "ci_low_pct", "ci_high_pct")
    if interval:
        below = np.nan_to_num(delta - rows["ci_low_pct"].to_numpy(dtype=float), nan=0.0).clip(min=0)
        above = np.nan_to_num(rows["ci_high_pct"].to_numpy(dtype=float) - delta, nan=0.0).clip(min=0)
    else:
        below = above = np.nan_to_num(rows["std_pct"].to_numpy(dtype=float), nan=0.0)
    adjusted = "p_adjusted" in rows
    p_column = "p_adjusted" if adjusted else "p_value"
    tested = defined(rows, p_column)
    significant = rows[p_column].to_numpy(dtype=float) < 0.05 if tested else np.zeros(n, dtype=bool)
    labels = [str(v) for v in rows["label"]]

    fig = new_figure(7.5, max(2.2, 1.3 + 0.32 * n))
    ax = fig.add_subplot()
    y = np.arange(n)
    ax.barh(y, delta, color=_colours(delta, significant if tested else None), height=0.7)
    spread = (below > 0) | (above > 0)
    if spread.any():
        ax.errorbar(
            delta[spread], y[spread], xerr=np.vstack([below[spread], above[spread]]),
            fmt="none", ecolor="#333333", elinewidth=1, capsize=3,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, labels)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel(_axis_label(interval, _race_looks(rows, looks)) if interval or spread.any() or tested
                  else f"delta over random (%), mean over seeds ({NO_SPREAD})")

    ends = np.where(delta < 0, delta - below, delta + above)
    lo, hi = min(0.0, float(np.min(ends))), max(0.0, float(np.max(ends)))
    span = (hi - lo) or 1.0
    pad = 0.02 * span
    for yi, d, end, star in zip(y, rows["delta_pct"].to_numpy(dtype=float), ends, significant):
        text = "n/a" if math.isnan(d) else f"{d:+.2f}{'*' if star else ''}"
        right = end >= 0 and not (d < 0)
        ax.text(
            end + (pad if right else -pad), float(yi), text,
            va="center", ha="left" if right else "right", fontsize=8,
        )
    ax.set_xlim(lo - 0.18 * span * (lo < 0) - 0.05 * span, hi + 0.18 * span * (hi > 0) + 0.05 * span)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    test = "Holm-adjusted p" if adjusted else "p"
    note = f"  (* {test} < 0.05; pale: {test} ≥ 0.05 or untested)" if tested else ""
    ax.set_title(f"{title}{note}", fontsize=11)
    return fig


def ranking_bars(
    table: pd.DataFrame, path: PathLike, title: str = "delta over the random pool", looks: int | None = None
) -> Path:
    """:func:`ranking_bars_figure` written as a PNG at ``path``."""
    return save(ranking_bars_figure(table, title, looks), path)


def pale(colour: str | tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """``colour`` mixed with white: the same direction, drawn as no finding."""
    from matplotlib.colors import to_rgba

    r, g, b, a = to_rgba(colour)
    return (1 - PALE * (1 - r), 1 - PALE * (1 - g), 1 - PALE * (1 - b), a)


def _colours(delta: np.ndarray, significant: np.ndarray | None) -> list[str | tuple[float, float, float, float]]:
    """The sign's colour; pale where a test was given and did not reject (``significant`` False)."""
    signs = [POSITIVE if d > 0 else NEGATIVE if d < 0 else NEUTRAL for d in delta]
    if significant is None:
        return list(signs)
    return [c if found else pale(c) for c, found in zip(signs, significant)]


def _race_looks(rows: pd.DataFrame, looks: int | None) -> tuple[int, int]:
    """(fewest, most) tests a seed race took at a pool: ``looks`` for all, else the column, else 1."""
    if looks is not None:
        return looks, looks
    if "looks" in rows and rows["looks"].notna().any():
        column = rows["looks"].dropna().astype(int)
        return int(column.min()), int(column.max())
    return 1, 1


def _axis_label(interval: bool, looks: tuple[int, int]) -> str:
    if not interval:
        return "delta over random (%), mean ± std over seeds"
    fewest, most = looks
    if most <= 1:
        return "delta over random (%), mean and 95% interval over seeds"
    if fewest > 1:
        count = f" ({most} looks)" if fewest == most else ""
        return f"delta over random (%), mean and race-corrected 95% interval over seeds{count}"
    return "delta over random (%), mean and 95% interval over seeds (race-corrected for raced pools)"
