"""Rank transfer: each pool's delta at a cheaper fidelity against its delta at a costlier one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.figures._base import BLUE, NEUTRAL, PathLike, new_figure, require, save

_STATISTICS = {"spearman": "Spearman", "decision_accuracy": "decision acc."}

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def transfer_scatter_figure(deltas: pd.DataFrame, pairs: pd.DataFrame, title: str = "rank transfer") -> Figure:
    """One panel per pair of fidelities: a dot per pool at (cheaper delta, costlier delta).

    ``deltas`` has one column of ``delta_pct`` per fidelity (index: pool); ``pairs`` has columns
    ``cheap``, ``costly`` and, for ``spearman`` and ``decision_accuracy``, the value with its
    ``_low``/``_high`` interval and ``_p_adjusted`` (one row per panel, shown in its title).
    Dashed lines mark zero, the random control, on both axes.
    """
    require(pairs, ("cheap", "costly", *(f"{name}{suffix}" for name in _STATISTICS
                                          for suffix in ("", "_low", "_high", "_p_adjusted"))), "transfer_scatter")
    if pairs.empty:
        raise ValueError("transfer_scatter: no pair of fidelities to draw")
    n = len(pairs)
    fig = new_figure(4.2 * n, 4.0)
    for ax, pair in zip(fig.subplots(1, n, squeeze=False)[0], pairs.itertuples()):
        x, y = deltas[pair.cheap].to_numpy(dtype=float), deltas[pair.costly].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        ax.scatter(x[ok], y[ok], s=18, color=BLUE)
        ax.axhline(0, color=NEUTRAL, lw=0.8, ls="--")
        ax.axvline(0, color=NEUTRAL, lw=0.8, ls="--")
        ax.set_xlabel(f"{pair.cheap}: delta (%)")
        ax.set_ylabel(f"{pair.costly}: delta (%)")
        ax.set_title("\n".join(_claim(label, pair._asdict(), name) for name, label in _STATISTICS.items()), fontsize=9)
    fig.suptitle(title)
    return fig


def _claim(label: str, pair: dict, name: str) -> str:
    return (f"{label} {pair[name]:.2f} [{pair[name + '_low']:.2f}, {pair[name + '_high']:.2f}], "
            f"p_adj {pair[name + '_p_adjusted']:.2g}")


def transfer_scatter(deltas: pd.DataFrame, pairs: pd.DataFrame, path: PathLike, title: str = "rank transfer") -> Path:
    return save(transfer_scatter_figure(deltas, pairs, title), path)
