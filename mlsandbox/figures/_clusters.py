"""Figures of the Analyze step: a correlation heatmap (ordered and outlined by a clustering) and the
clustering's dendrogram."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.correlation import Clustering
from mlsandbox.figures._base import NEUTRAL, PathLike, new_figure, save

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def correlation_heatmap_figure(
    corr: pd.DataFrame, title: str = "Pearson correlation", clustering: Clustering | None = None
) -> Figure:
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
    fig = new_figure(side + 1.2, side)
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
                    j, i, f"{v:.2f}", ha="center", va="center",
                    fontsize=8 if n <= 10 else 6.5, color="white" if abs(v) > 0.6 else "black",
                )
    if clustering is not None and clustering.n_clusters > 1:
        from matplotlib.patches import Rectangle

        start = 0
        for members in _contiguous_runs([clustering.labels[name] for name in order]):
            ax.add_patch(
                Rectangle((start - 0.5, start - 0.5), members, members, fill=False, edgecolor="black", lw=1.6)
            )
            start += members
    suffix = ""
    if clustering is not None:
        suffix = f" ({clustering.n_clusters} cluster{'s' if clustering.n_clusters > 1 else ''})"
    ax.set_title(f"{title}{suffix}", fontsize=11)
    return fig


def correlation_heatmap(
    corr: pd.DataFrame,
    path: PathLike,
    title: str = "Pearson correlation",
    clustering: Clustering | None = None,
) -> Path:
    """:func:`correlation_heatmap_figure` written as a PNG at ``path``."""
    return save(correlation_heatmap_figure(corr, title, clustering), path)


def dendrogram_figure(clustering: Clustering, title: str = "hierarchical clustering") -> Figure:
    """The clustering's dendrogram, leaves labelled, links coloured by cluster at the cut."""
    n = len(clustering.names)
    fig = new_figure(7.0, 1.4 + 0.3 * max(n, 3))
    ax = fig.add_subplot()
    if n == 1:
        ax.text(0.5, 0.5, f"a single item: {clustering.names[0]}", ha="center", va="center", fontsize=11)
        ax.set_axis_off()
    else:
        from scipy.cluster.hierarchy import dendrogram as scipy_dendrogram

        cut = clustering.cut_height()
        scipy_dendrogram(
            clustering.linkage, labels=list(clustering.names), orientation="right",
            color_threshold=cut, above_threshold_color=NEUTRAL, ax=ax, leaf_font_size=9,
        )
        # First leaf at the top, as in a heatmap ordered by the same clustering.
        ax.invert_yaxis()
        # scipy sizes the axis by the tallest merge; distances 1 - |r| never exceed 1.
        top = float(clustering.linkage[:, 2].max())
        ax.set_xlim(0, max(top * 1.05, 1e-3))
        if clustering.n_clusters > 1:
            ax.axvline(cut, color="black", ls="--", lw=0.8)
            ax.text(
                cut, 1.0, f" cut: {clustering.n_clusters} clusters", transform=ax.get_xaxis_transform(),
                va="bottom", ha="left", fontsize=8,
            )
        ax.set_xlabel("distance 1 − |r|")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    ax.set_title(title, fontsize=11, pad=14)
    return fig


def dendrogram(clustering: Clustering, path: PathLike, title: str = "hierarchical clustering") -> Path:
    """:func:`dendrogram_figure` written as a PNG at ``path``."""
    return save(dendrogram_figure(clustering, title), path)


def _contiguous_runs(labels: Sequence[int]) -> list[int]:
    runs: list[int] = []
    for i, label in enumerate(labels):
        if i and label == labels[i - 1]:
            runs[-1] += 1
        else:
            runs.append(1)
    return runs
