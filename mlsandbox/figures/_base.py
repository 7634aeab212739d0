"""What every figure shares: its colours, a fresh ``Figure`` on the Agg canvas, saving it as a PNG,
and the check of the columns a figure reads."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110
POSITIVE = "#55A868"
NEGATIVE = "#C44E52"
NEUTRAL = "#8C8C8C"
BLUE = "#4C72B0"

#: Where a figure is written: a path as a string or any ``os.PathLike``.
PathLike = str | os.PathLike[str]


def new_figure(width: float, height: float) -> Figure:
    """A figure of its own (no ``pyplot`` state), laid out by the constrained layout engine."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path`` (its folder created) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A tight bounding box is a safety net for long tick labels the layout engine leaves clipped.
    fig.savefig(out, dpi=DPI, format="png", bbox_inches="tight", pad_inches=0.12)
    return out


#: What a figure says where no row has an interval or a test: with one seed there is neither.
NO_SPREAD = "no interval or p-value: fewer than 2 seeds"


def defined(frame: pd.DataFrame, *columns: str) -> bool:
    """Whether some row holds a value in every one of ``columns`` (present, not NaN): a figure
    claims intervals or tests only where it draws some."""
    return set(columns) <= set(frame.columns) and bool(frame[list(columns)].notna().all(axis=1).any())


def require(frame: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    """Raise unless ``frame`` is a DataFrame holding every one of ``columns``."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}; got {list(frame.columns)}")
