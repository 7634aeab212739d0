"""The pyramid of top-k pool intersections: one box per pool, one row per number of OPs combined.

The layout is in inches (one data unit is one inch on both axes), so each box is sized and each
label wrapped from the measured width of its text: a label never runs past its box into the next.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlsandbox.delta import ALPHA, CARRIED_FAMILY
from mlsandbox.figures._base import DPI, PathLike, defined, require, save
from mlsandbox.figures._ranking import pale

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap, Normalize
    from matplotlib.figure import Figure

Colour = tuple[float, float, float, float]
#: The colour of a box whose delta is undefined (an empty intersection, for instance).
UNDEFINED: Colour = (0.85, 0.85, 0.85, 1.0)
FONT_PT = 8.0
LINE_IN = FONT_PT * 1.4 / 72  # one line of box text, with matplotlib's line spacing and some air
PAD_IN, GAP_IN, ROW_GAP_IN = 0.08, 0.22, 0.22
MIN_BOX_IN, BOX_IN = 1.5, 1.8  # the narrowest box; the mean box width of the widest row
LEFT_IN, RIGHT_IN, TOP_IN, BOTTOM_IN = 0.75, 1.05, 0.45, 0.5
CAPTION_LINE_IN = 8 * 1.2 / 72  # one line of the 8 pt caption: each line past two widens the bottom margin
#: Where a label may break, most readable first: between OPs, inside an OP's name, anywhere.
BREAKS = (r"(?<=& )|(?<=∩)", r"(?<=[_/.-])", r"(?<=.)")


@dataclass
class _Box:
    row: pd.Series
    width: float
    lines: list[str]


def pyramid_figure(levels: pd.DataFrame, title: str = "pyramid of top-k pool intersections") -> Figure:
    """One row of boxes per level, the intersection of most OPs at the top.

    ``levels`` has ``label`` (e.g. ``"A & B"``), ``level`` (number of OPs combined), ``size``,
    ``delta_pct`` and optionally ``ci_low_pct``/``ci_high_pct`` (the 95% interval, written under
    the delta; else ``std_pct``, written as ± sd) and ``p_adjusted`` (``*`` after the delta where
    below 0.05; else ``p_value``). A box's width grows with sqrt(size); its colour is its delta
    (green up, red down, grey when undefined, e.g. an empty intersection), pale where a p-value is
    given and the box's is >= 0.05 or NaN, as in the ranking figure: a box that is no finding does
    not read as one.
    """
    require(levels, ("label", "level", "size", "delta_pct"), "pyramid")
    if levels.empty:
        raise ValueError("pyramid: no rows to draw")
    if (levels["size"] < 0).any():
        raise ValueError("pyramid: sizes must be >= 0")
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    frame = levels.assign(level=levels["level"].astype(int))
    rows = _layout({int(lv): r.reset_index(drop=True) for lv, r in frame.groupby("level", sort=True)})
    span = max(_row_width(boxes) for boxes in rows.values())
    heights = {lv: max(len(b.lines) for b in boxes) * LINE_IN + 2 * PAD_IN for lv, boxes in rows.items()}
    total = sum(heights.values()) + ROW_GAP_IN * (len(rows) - 1)

    deltas = frame["delta_pct"].to_numpy(dtype=float)
    bound = (float(np.nanmax(np.abs(deltas))) if np.isfinite(deltas).any() else 1.0) or 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)
    cmap = matplotlib.colormaps["RdYlGn"]

    width = LEFT_IN + span + RIGHT_IN
    caption = _caption(frame, _fits_in(width - LEFT_IN))
    bottom = BOTTOM_IN + max(0, caption.count("\n") - 1) * CAPTION_LINE_IN
    height = bottom + total + TOP_IN
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((LEFT_IN / width, bottom / height, span / width, total / height))
    top = total
    test = _test_column(frame)
    for lv in sorted(rows, reverse=True):
        _draw_row(ax, rows[lv], span, top, heights[lv], lambda row: _face(row, cmap, norm, test))
        ax.text(-0.12, top - heights[lv] / 2, f"{lv} OP{'s' if lv > 1 else ''}", ha="right", va="center", fontsize=9)
        top -= heights[lv] + ROW_GAP_IN
    ax.set_xlim(0, span)
    ax.set_ylim(0, total)
    ax.set_axis_off()
    cax = fig.add_axes(((LEFT_IN + span + 0.2) / width, bottom / height, 0.14 / width, total / height))
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, label="delta over random (%)")
    ax.set_title(f"{title} (top level: {max(rows)} OPs combined)", fontsize=11)
    fig.text(0.5 * LEFT_IN / width, 0.12 / height, caption, fontsize=8, va="bottom", color="#333333")
    return fig


def pyramid(levels: pd.DataFrame, path: PathLike, title: str = "pyramid of top-k pool intersections") -> Path:
    """:func:`pyramid_figure` written as a PNG at ``path``."""
    return save(pyramid_figure(levels, title), path)


def box_text(row: pd.Series) -> list[str]:
    """The lines under a box's label: its size, its delta (``*``: corrected p < 0.05), its spread."""
    d = float(row["delta_pct"])
    if not math.isfinite(d):
        return [f"n={int(row['size']):,}", "delta n/a"]
    p = row.get("p_adjusted", row.get("p_value", math.nan))
    lines = [f"n={int(row['size']):,}", f"{d:+.2f}%{'*' if float(p) < 0.05 else ''}"]
    if "ci_low_pct" in row.index and "ci_high_pct" in row.index:
        low, high = float(row["ci_low_pct"]), float(row["ci_high_pct"])
        lines.append(f"[{low:+.2f}, {high:+.2f}]" if math.isfinite(low) and math.isfinite(high) else "interval n/a")
    elif "std_pct" in row.index and math.isfinite(float(row["std_pct"])):
        lines.append(f"± {float(row['std_pct']):.2f} sd")
    return lines


def wrap(text: str, fits: Callable[[str], bool], depth: int = 0) -> list[str]:
    """``text`` in lines that each ``fits``: broken between OPs where that is enough, inside an
    OP's name at ``_``, ``/``, ``.`` or ``-`` where it is not, and between any two characters last."""
    if fits(text.rstrip()) or depth == len(BREAKS):
        return [text.rstrip()]
    lines: list[str] = []
    current = ""
    for part in (p for p in re.split(BREAKS[depth], text) if p):
        if fits((current + part).rstrip()):
            current += part
            continue
        if current:
            lines.append(current.rstrip())
            current = ""
        if fits(part.rstrip()):
            current = part
        else:  # a part broken further ends its own lines
            lines += wrap(part, fits, depth + 1)
    if current:
        lines.append(current.rstrip())
    return lines


def text_width_in(text: str) -> float:
    """The width of one line of box text, in inches."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    width, _, _ = text_to_path.get_text_width_height_descent(text, FontProperties(size=FONT_PT), ismath=False)
    return float(width) / 72


def _layout(by_level: dict[int, pd.DataFrame]) -> dict[int, list[_Box]]:
    """Each level's boxes: width from sqrt(size) (a floor, and room for the numbers), label wrapped to it."""
    widest = max(len(rows) for rows in by_level.values())
    root = {lv: np.sqrt(rows["size"].to_numpy(dtype=float)) for lv, rows in by_level.items()}
    scale = BOX_IN * widest / (max(float(r.sum()) for r in root.values()) or 1.0)
    out = {}
    for lv, rows in by_level.items():
        boxes = []
        for (_, row), r in zip(rows.iterrows(), root[lv]):
            numbers = box_text(row)
            width = max(MIN_BOX_IN, r * scale, *(text_width_in(line) + 2 * PAD_IN for line in numbers))
            label = wrap(str(row["label"]), _fits_in(width - 2 * PAD_IN))
            boxes.append(_Box(row, width, label + numbers))
        out[lv] = boxes
    return out


def _fits_in(width: float) -> Callable[[str], bool]:
    """Whether a line of box text fits in ``width`` inches."""
    return lambda text: text_width_in(text) <= width


def _row_width(boxes: list[_Box]) -> float:
    return sum(b.width for b in boxes) + GAP_IN * (len(boxes) - 1)


def _test_column(frame: pd.DataFrame) -> str | None:
    """The p-value the boxes are flagged and paled by (Holm-adjusted where given), or None where no box has one."""
    column = "p_adjusted" if "p_adjusted" in frame else "p_value"
    return column if defined(frame, column) else None


def _face(row: pd.Series, cmap: Colormap, norm: Normalize, test: str | None) -> Colour:
    """A box's colour: its delta's; pale where a test was given and did not reject (p >= 0.05 or
    untested), so that only a finding is drawn in full colour, as in the ranking figure."""
    d = float(row["delta_pct"])
    if not math.isfinite(d):
        return UNDEFINED
    colour = cmap(norm(d))
    return colour if test is None or float(row[test]) < ALPHA else pale(colour)


def _draw_row(ax: Axes, boxes: list[_Box], span: float, top: float, height: float,
              face: Callable[[pd.Series], Colour]) -> None:
    from matplotlib.patches import FancyBboxPatch

    x = (span - _row_width(boxes)) / 2
    for box in boxes:
        ax.add_patch(FancyBboxPatch(
            (x, top - height), box.width, height, boxstyle="round,pad=0,rounding_size=0.08",
            facecolor=face(box.row), edgecolor="#444444", lw=0.8,
        ))
        ax.text(x + box.width / 2, top - height / 2, "\n".join(box.lines), ha="center", va="center",
                fontsize=FONT_PT, linespacing=1.15)
        x += box.width + GAP_IN


def _caption(frame: pd.DataFrame, fits: Callable[[str], bool]) -> str:
    """What a box says and what its colour means, in the words of the columns it was given, in
    lines that ``fits``; with Holm-adjusted p-values and a 1-OP row, whose family those are."""
    if {"ci_low_pct", "ci_high_pct"} <= set(frame.columns):
        spread = "[95% interval]"
    elif "std_pct" in frame:
        spread = "± sd over seeds"
    else:
        spread = ""
    test = "Holm-adjusted p" if "p_adjusted" in frame else "p" if "p_value" in frame else ""
    star = f"; * {test} < 0.05" if test else ""
    paled = f"; pale: {test} ≥ 0.05 or untested" if _test_column(frame) else ""
    parts = ["each box: the OPs combined, pool size n,", f"delta over random (%){' ' + spread if spread else ''}{star}{paled}"]
    if "p_adjusted" in frame and (frame["level"] == 1).any():
        parts.append(f"({CARRIED_FAMILY})")
    return "\n".join(line for part in parts for line in _words_in_lines(part, fits))


def _words_in_lines(text: str, fits: Callable[[str], bool]) -> list[str]:
    """``text`` broken between words into lines that each ``fits`` (a word too long stays whole):
    a caption never runs past the figure's edge."""
    lines = [""]
    for word in text.split(" "):
        line = f"{lines[-1]} {word}".lstrip()
        if lines[-1] and not fits(line):
            lines.append(word)
        else:
            lines[-1] = line
    return lines
