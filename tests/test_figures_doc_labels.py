"""Labels that the figures of docs/mlflow-ui.md print: readable, and in the data's own words."""

from __future__ import annotations

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg

from mlsandbox import figures

NAN = float("nan")


def test_a_fill_that_ran_short_does_not_print_its_budget_over_a_neighbours() -> None:
    # refine's fill from lower levels reached 4.52x where 8x was asked: its point sits beside 4x
    frame = pd.DataFrame({"strategy": ["repeat"] * 4 + ["fill"] * 4, "r": [1, 2, 4, 8, 1, 2, 4, 4.52],
                          "delta_pct": [5.1, 1.5, -1.4, -3.8, 5.1, 3.2, 1.6, 1.2]})
    fig = figures.duplication_curves_figure(frame)
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    shown = [t for t in ax.get_xticklabels() if t.get_text()]
    assert [t.get_text() for t in shown] == ["1×", "2×", "4×", "8×"]
    boxes = [t.get_window_extent(renderer) for t in shown]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert [t.get_text() for t in ax.texts] == ["4.52×"]  # named at its point instead


def test_a_transfer_panel_of_one_pool_says_pool() -> None:
    deltas = pd.DataFrame({"a": [1.0, NAN], "b": [2.0, 3.0]}, index=["p", "q"])
    pairs = pd.DataFrame([{"cheap": "a", "costly": "b", "pools": 1, **{
        f"{name}{suffix}": NAN for name in ("spearman", "decision_accuracy")
        for suffix in ("", "_low", "_high", "_p_value", "_p_adjusted")}}])
    title = figures.transfer_scatter_figure(deltas, pairs).axes[0].get_title()
    assert title.startswith("n = 1 pool\n")
