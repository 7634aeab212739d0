"""Rank transfer: each pool's delta at a cheaper fidelity against its delta at a costlier one."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlsandbox.delta import holm
from mlsandbox.figures._base import BLUE, NEUTRAL, PathLike, new_figure, require, save

_STATISTICS = {"spearman": "Spearman", "decision_accuracy": "decision acc."}

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def p_floor() -> float:
    """The smallest two-sided p-value the sampled permutation test gives, 2 / (shuffles + 1): a
    p-value there says only that no shuffle came close, so it is shown as a bound (``≤``)."""
    from mlsandbox.agreement import PERMUTATIONS  # imported here: it loads scipy.stats

    return 2 / (PERMUTATIONS + 1)


def transfer_scatter_figure(deltas: pd.DataFrame, pairs: pd.DataFrame, title: str = "rank transfer") -> Figure:
    """One panel per pair of fidelities: a dot per pool at (cheaper delta, costlier delta).

    ``deltas`` has one column of ``delta_pct`` per fidelity (index: pool); ``pairs`` has columns
    ``cheap``, ``costly`` and, for ``spearman`` and ``decision_accuracy``, the value with its
    ``_low``/``_high`` interval, ``_p_value`` and ``_p_adjusted`` (one row per panel, shown in its
    title with the number of pools, ``pools`` where given, else those both fidelities measured).
    The rows of ``pairs`` are one Holm family: an adjusted p-value that is a bound, since the
    permutation test cannot resolve below its floor, reads ``≤`` (:func:`p_texts`).
    Dashed lines mark zero, the random control, on both axes. A fidelity that gives every pool of
    a panel the same delta is named there, since it ranks nothing.
    """
    require(pairs, ("cheap", "costly", *(f"{name}{suffix}" for name in _STATISTICS
                                          for suffix in ("", "_low", "_high", "_p_value", "_p_adjusted"))),
            "transfer_scatter")
    if pairs.empty:
        raise ValueError("transfer_scatter: no pair of fidelities to draw")
    n = len(pairs)
    shown_p = {name: p_texts(pairs[f"{name}_p_value"], pairs[f"{name}_p_adjusted"]) for name in _STATISTICS}
    fig = new_figure(4.2 * n, 4.3)
    for i, (ax, pair) in enumerate(zip(fig.subplots(1, n, squeeze=False)[0], pairs.to_dict("records"))):
        x, y = deltas[pair["cheap"]].to_numpy(dtype=float), deltas[pair["costly"]].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        ax.scatter(x[ok], y[ok], s=18, color=BLUE)
        ax.axhline(0, color=NEUTRAL, lw=0.8, ls="--")
        ax.axvline(0, color=NEUTRAL, lw=0.8, ls="--")
        ax.set_xlabel(f"{pair['cheap']}: delta (%)")
        ax.set_ylabel(f"{pair['costly']}: delta (%)")
        pools = int(pair["pools"]) if "pools" in pair and pd.notna(pair["pools"]) else int(ok.sum())
        claims = [_claim(label, pair, name, shown_p[name][i]) for name, label in _STATISTICS.items()]
        flat = [pair[side] for side, v in (("cheap", x[ok]), ("costly", y[ok])) if len(v) > 1 and np.ptp(v) == 0]
        if flat:  # why both say n/a: a model that gives every pool the same delta ranks nothing
            claims.append(f"{flat[0]}: every pool the same delta, no ranking")
        ax.set_title("\n".join([f"n = {pools} pool{'' if pools == 1 else 's'}", *claims]), fontsize=9)
    fig.suptitle(title)
    return fig


def transfer_scatter(deltas: pd.DataFrame, pairs: pd.DataFrame, path: PathLike, title: str = "rank transfer") -> Path:
    """:func:`transfer_scatter_figure` written as a PNG at ``path``."""
    return save(transfer_scatter_figure(deltas, pairs, title), path)


def p_texts(p_values: Sequence[float], adjusted: Sequence[float] | None = None) -> list[str]:
    """A Holm family's permutation p-values as shown or, where given, their ``adjusted`` values:
    ``≤`` where the value is a bound, ``n/a`` where undefined. A raw p-value at the test's floor
    (:func:`p_floor`) is a bound; so is an adjusted one that would be lower were those raw
    p-values lower (Holm can lift a pair's value to a floored pair's: then it is a bound too)."""
    raw = np.asarray(p_values, dtype=float)
    floored = raw <= p_floor() * (1 + 1e-9)
    if adjusted is None:
        shown, bound = raw, floored
    else:
        shown = np.asarray(adjusted, dtype=float)
        bound = shown > np.array(holm(np.where(floored, 0.0, raw).tolist()), dtype=float) * (1 + 1e-9)
    return ["n/a" if not math.isfinite(p) else f"≤ {p:.2g}" if b else f"{p:.2g}" for p, b in zip(shown, bound)]


def _claim(label: str, pair: dict[str, Any], name: str, p_adjusted: str) -> str:
    value, low, high = (float(pair[name + suffix]) for suffix in ("", "_low", "_high"))
    if not math.isfinite(value):
        return f"{label} n/a"
    interval = f" [{low:.2f}, {high:.2f}]" if math.isfinite(low) and math.isfinite(high) else ""
    return f"{label} {value:.2f}{interval}, p_adj {p_adjusted}"
