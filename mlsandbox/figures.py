"""Figures of the Analyze and Refine steps, each written to a PNG and its path returned.

Every function draws on its own ``matplotlib.figure.Figure`` (rendered by the Agg canvas),
never through ``pyplot``'s global state, so it is safe in worker threads and leaves a
notebook's backend alone. matplotlib is imported inside the functions to keep
``import mlsandbox.figures`` cheap.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.correlation import Clustering

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110
POSITIVE = "#55A868"
NEGATIVE = "#C44E52"
NEUTRAL = "#8C8C8C"


def ranking_bars(
    table: pd.DataFrame, path: str | os.PathLike[str], title: str = "delta over the random pool"
) -> Path:
    """Horizontal bars of ``delta_pct`` ± ``std_pct`` per ``label``, best at the top.

    Bars are green above the random pool and red below it; with a ``p_value`` column, rows with
    p < 0.05 are marked ``*``. A NaN std draws no error bar.
    """
    _require(table, ("label", "delta_pct", "std_pct"), "ranking_bars")
    rows = table.sort_values("delta_pct", ascending=False, na_position="last").reset_index(drop=True)
    n = len(rows)
    delta = rows["delta_pct"].to_numpy(dtype=float)
    std = np.nan_to_num(rows["std_pct"].to_numpy(dtype=float), nan=0.0)
    significant = (
        rows["p_value"].to_numpy(dtype=float) < 0.05 if "p_value" in rows else np.zeros(n, dtype=bool)
    )
    labels = [str(v) for v in rows["label"]]

    fig = _figure(7.5, max(2.2, 1.3 + 0.32 * n))
    ax = fig.add_subplot()
    y = np.arange(n)
    colors = [POSITIVE if d > 0 else NEGATIVE if d < 0 else NEUTRAL for d in np.nan_to_num(delta)]
    ax.barh(y, np.nan_to_num(delta), color=colors, height=0.7)
    spread = std > 0
    if spread.any():
        ax.errorbar(
            np.nan_to_num(delta)[spread],
            y[spread],
            xerr=std[spread],
            fmt="none",
            ecolor="#333333",
            elinewidth=1,
            capsize=3,
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
            end + (pad if right else -pad), yi, text, va="center", ha="left" if right else "right", fontsize=8
        )
    ax.set_xlim(lo - 0.18 * span * (lo < 0) - 0.05 * span, hi + 0.18 * span * (hi > 0) + 0.05 * span)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    note = "  (* p < 0.05)" if significant.any() else ""
    ax.set_title(f"{title}{note}", fontsize=11)
    return _save(fig, path)


def correlation_heatmap(
    corr: pd.DataFrame,
    path: str | os.PathLike[str],
    title: str = "Pearson correlation",
    clustering: Clustering | None = None,
) -> Path:
    """Heatmap of a correlation matrix (blue -1 … red +1), values written when <= 15 items.

    With a ``clustering`` of the same items, rows and columns follow its dendrogram leaves and
    each cluster's block is outlined.
    """
    names = [str(c) for c in corr.columns]
    if corr.shape[0] != corr.shape[1] or [str(i) for i in corr.index] != names:
        raise ValueError("corr must be square with the same labels on rows and columns")
    if not names:
        raise ValueError("corr is empty: nothing to draw")
    order = names
    if clustering is not None:
        if set(clustering.names) != set(names):
            raise ValueError(
                f"clustering items {sorted(clustering.names)} differ from the matrix's {sorted(names)}"
            )
        order = clustering.leaves
    frame = corr.copy()
    frame.index, frame.columns = names, names
    values = frame.loc[order, order].to_numpy(dtype=float)
    n = len(order)

    side = min(4.0 + 0.45 * n, 18.0)
    fig = _figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, aspect="equal")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="r")
    ticks = np.arange(n)
    font = 9 if n <= 20 else max(5.0, 9 - (n - 20) * 0.1)
    ax.set_xticks(ticks, order, rotation=45, ha="right", rotation_mode="anchor", fontsize=font)
    ax.set_yticks(ticks, order, fontsize=font)
    ax.tick_params(length=0)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8 if n <= 10 else 6.5,
                    color="white" if abs(v) > 0.6 else "black",
                )
    if clustering is not None and clustering.n_clusters > 1:
        from matplotlib.patches import Rectangle

        start = 0
        for members in _contiguous_runs([clustering.labels[name] for name in order]):
            ax.add_patch(
                Rectangle((start - 0.5, start - 0.5), members, members, fill=False, edgecolor="black", lw=1.6)
            )
            start += members
    suffix = f" ({clustering.n_clusters} clusters)" if clustering is not None else ""
    ax.set_title(f"{title}{suffix}", fontsize=11)
    return _save(fig, path)


def dendrogram(
    clustering: Clustering, path: str | os.PathLike[str], title: str = "hierarchical clustering"
) -> Path:
    """The clustering's dendrogram, leaves labelled, links coloured by cluster at the cut."""
    n = len(clustering.names)
    fig = _figure(7.0, 1.4 + 0.3 * max(n, 3))
    ax = fig.add_subplot()
    if n == 1:
        ax.text(0.5, 0.5, f"a single item: {clustering.names[0]}", ha="center", va="center", fontsize=11)
        ax.set_axis_off()
    else:
        from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

        cut = clustering.cut_height()
        scipy_dendrogram(
            clustering.linkage,
            labels=list(clustering.names),
            orientation="right",
            color_threshold=cut,
            above_threshold_color=NEUTRAL,
            ax=ax,
            leaf_font_size=9,
        )
        # First leaf at the top, as in a heatmap ordered by the same clustering.
        ax.invert_yaxis()
        # scipy sizes the axis by the tallest merge; distances 1 - |r| never exceed 1.
        top = float(clustering.linkage[:, 2].max())
        ax.set_xlim(0, max(top * 1.05, 1e-3))
        if clustering.n_clusters > 1:
            ax.axvline(cut, color="black", ls="--", lw=0.8)
            ax.text(
                cut,
                1.0,
                f" cut: {clustering.n_clusters} clusters",
                transform=ax.get_xaxis_transform(),
                va="bottom",
                ha="left",
                fontsize=8,
            )
        ax.set_xlabel("distance 1 − |r|")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    ax.set_title(title, fontsize=11, pad=14)
    return _save(fig, path)


def pyramid(
    levels: pd.DataFrame, path: str | os.PathLike[str], title: str = "pyramid of top-k pool intersections"
) -> Path:
    """One row of boxes per level, the intersection of most OPs at the top.

    ``levels`` has ``label`` (e.g. ``"A∩B"``), ``level`` (number of OPs combined), ``size``,
    ``delta_pct`` and optionally ``std_pct``. A box's width grows with sqrt(size); its colour
    is its delta (green up, red down, grey when undefined, e.g. an empty intersection).
    """
    _require(levels, ("label", "level", "size", "delta_pct"), "pyramid")
    if levels.empty:
        raise ValueError("pyramid: no rows to draw")
    if (levels["size"] < 0).any():
        raise ValueError("pyramid: sizes must be >= 0")
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import FancyBboxPatch

    frame = levels.assign(level=levels["level"].astype(int))
    by_level = {lv: rows.reset_index(drop=True) for lv, rows in frame.groupby("level", sort=True)}
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
    import matplotlib

    cmap = matplotlib.colormaps["RdYlGn"]

    n_levels = len(by_level)
    fig = _figure(max(6.5, span * 0.95 + 2.2), 1.0 + 1.15 * n_levels)
    ax = fig.add_subplot()
    row_height = 0.82
    for row_index, lv in enumerate(sorted(by_level, reverse=True)):
        rows, w = by_level[lv], widths[lv]
        y = n_levels - 1 - row_index
        x = (span - (float(w.sum()) + gap * (len(w) - 1))) / 2
        for (_, row), width in zip(rows.iterrows(), w):
            d = float(row["delta_pct"])
            color = cmap(norm(d)) if math.isfinite(d) else (0.85, 0.85, 0.85, 1.0)
            ax.add_patch(
                FancyBboxPatch(
                    (x, y - row_height / 2),
                    width,
                    row_height,
                    boxstyle="round,pad=0,rounding_size=0.08",
                    facecolor=color,
                    edgecolor="#444444",
                    lw=0.8,
                )
            )
            ax.text(
                x + width / 2,
                y,
                _box_text(row, width),
                ha="center",
                va="center",
                fontsize=8.5,
                linespacing=1.15,
            )
            x += width + gap
        ax.text(-0.2, y, f"{lv} OP{'s' if lv > 1 else ''}", ha="right", va="center", fontsize=9)
    ax.set_xlim(-1.4, span + 0.1)
    ax.set_ylim(-0.6, n_levels - 0.4)
    ax.set_axis_off()
    from matplotlib.cm import ScalarMappable

    fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.025, pad=0.01, label="delta over random (%)"
    )
    ax.set_title(f"{title} (top level: {top_level} OPs combined)", fontsize=11)
    return _save(fig, path)


def duplication_curves(
    frame: pd.DataFrame, path: str | os.PathLike[str], title: str = "duplication at a fixed budget"
) -> Path:
    """Delta % against the budget multiple ``r`` (log2 axis), one line per ``strategy``.

    ``frame`` has ``strategy``, ``r`` (or ``multiple``, the name in refine's recipe table),
    ``delta_pct`` and optionally ``std_pct`` (error bars); one row per (strategy, r).
    """
    if "r" not in frame.columns and "multiple" in frame.columns:
        frame = frame.rename(columns={"multiple": "r"})
    _require(frame, ("strategy", "r", "delta_pct"), "duplication_curves")
    if frame.empty:
        raise ValueError("duplication_curves: no rows to draw")
    if not (frame["r"].astype(float) > 0).all():
        raise ValueError("duplication_curves: r must be a positive budget multiple, not NaN")
    if frame.duplicated(["strategy", "r"]).any():
        raise ValueError("duplication_curves: more than one row for a (strategy, r); aggregate seeds first")
    fig = _figure(6.5, 4.2)
    ax = fig.add_subplot()
    markers = "osD^v<>"
    for i, (strategy, rows) in enumerate(frame.groupby("strategy", sort=False)):
        rows = rows.sort_values("r")
        err = rows["std_pct"].to_numpy(dtype=float) if "std_pct" in rows else None
        if err is not None:
            err = np.nan_to_num(err, nan=0.0)
        ax.errorbar(
            rows["r"].to_numpy(dtype=float),
            rows["delta_pct"].to_numpy(dtype=float),
            yerr=err,
            marker=markers[i % len(markers)],
            capsize=3,
            lw=1.6,
            label=str(strategy),
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xscale("log", base=2)
    ticks = sorted(frame["r"].astype(float).unique())
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training budget (multiple r of the top pool's size)")
    ax.set_ylabel("delta over random (%)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=11)
    return _save(fig, path)


def history_curve(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    title: str = "search history",
    ylabel: str = "delta over random (%)",
    direction: str = "maximize",
) -> Path:
    """Best-so-far ``value`` against ``trial`` (a step line), trial values as dots.

    An optional ``series`` column draws one curve per value; NaN values (failed trials) are
    shown nowhere and do not move the best-so-far.
    """
    _require(frame, ("trial", "value"), "history_curve")
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if frame.empty:
        raise ValueError("history_curve: no rows to draw")
    groups: Sequence[tuple[object, pd.DataFrame]] = (
        list(frame.groupby("series", sort=False)) if "series" in frame else [("", frame)]
    )
    fig = _figure(6.5, 4.0)
    ax = fig.add_subplot()
    for i, (name, rows) in enumerate(groups):
        rows = rows.sort_values("trial")
        values = rows["value"].astype(float)
        best = values.cummax() if direction == "maximize" else values.cummin()
        color = f"C{i}"
        ax.scatter(
            rows["trial"],
            values,
            s=14,
            color=color,
            alpha=0.45,
            label=f"{name}: trials" if name != "" else "trials",
        )
        ax.step(
            rows["trial"],
            best,
            where="post",
            color=color,
            lw=1.8,
            label=f"{name}: best so far" if name != "" else "best so far",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    ax.set_title(title, fontsize=11)
    return _save(fig, path)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A tight bounding box is a safety net for long tick labels the layout engine leaves clipped.
    fig.savefig(out, dpi=DPI, format="png", bbox_inches="tight", pad_inches=0.12)
    return out


def _require(frame: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; got {list(frame.columns)}")


def _contiguous_runs(labels: Sequence[int]) -> list[int]:
    runs: list[int] = []
    for i, label in enumerate(labels):
        if i and label == labels[i - 1]:
            runs[-1] += 1
        else:
            runs.append(1)
    return runs


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


def importance_bars(
    importances: dict[str, float], path: str | os.PathLike[str], title: str = "parameter importance"
) -> Path:
    """Horizontal bars of each parameter's importance (shares summing to 1), largest at the top."""
    if not importances:
        raise ValueError("importance_bars: no importances to draw")
    items = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)
    names, values = [k for k, _ in items], np.array([v for _, v in items], dtype=float)
    fig = _figure(6.5, max(2.0, 1.2 + 0.32 * len(items)))
    ax = fig.add_subplot()
    y = np.arange(len(items))
    ax.barh(y, values, color=POSITIVE, height=0.7)
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {v:.2f}", va="center", ha="left", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.set_xlim(0, max(1e-9, float(values.max())) * 1.2)
    ax.set_xlabel("importance")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=11)
    return _save(fig, path)
