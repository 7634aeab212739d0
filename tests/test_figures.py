"""Each figure shows what its data says: bars, order, colours, labels, marks and titles are read
back from the ``Figure`` its builder returns; each saver writes exactly that figure as a PNG."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgba
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

from mlsandbox import figures
from mlsandbox.correlation import Clustering, cluster, pearson_matrix

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAN = float("nan")


def labels(ax: Axes, axis: str = "y") -> list[str]:
    ticks = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    return [t.get_text() for t in ticks]


def texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def bars(ax: Axes) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def error_spans(ax: Axes, axis: str) -> list[tuple[float, float]]:
    """(low, high) of every error bar drawn along ``axis``."""
    spans = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            for collection in container.lines[2]:
                for (x0, y0), (x1, y1) in collection.get_segments():
                    spans.append((x0, x1) if axis == "x" else (y0, y1))
    return spans


@pytest.fixture
def stats() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    base = rng.normal(size=(300, 2))
    return pd.DataFrame(
        {
            "alnum_ratio": base[:, 0] + rng.normal(scale=0.3, size=300),
            "special_char_ratio": -base[:, 0] + rng.normal(scale=0.3, size=300),
            "text_len": base[:, 1] + rng.normal(scale=0.3, size=300),
            "num_words": base[:, 1] + rng.normal(scale=0.3, size=300),
            "perplexity": rng.normal(size=300),
        }
    )


@pytest.fixture
def ranking() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": ["alnum_ratio high", "text_len low", "perplexity mid", "num_words high"],
            "delta_pct": [2.5, -1.2, NAN, 0.7],
            "std_pct": [0.4, 0.8, NAN, 0.0],
            "p_value": [0.01, 0.2, NAN, 0.04],
        }
    )


def test_import_is_cheap_and_drawing_never_touches_pyplot(tmp_path: Path) -> None:
    script = (
        "import sys, mlsandbox; already = 'matplotlib' in sys.modules\n"
        "import mlsandbox.figures as f; import pandas as pd\n"
        "assert already or 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
        "corr = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=['a', 'b'], columns=['a', 'b'])\n"
        "from mlsandbox.correlation import cluster\n"
        f"f.dendrogram(cluster(corr, 2), {str(tmp_path / 'd.png')!r})\n"
        f"f.stat_histograms(corr, {str(tmp_path / 'h.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _clustering() -> Clustering:
    corr = pd.DataFrame([[1.0, 0.8, 0.1], [0.8, 1.0, 0.2], [0.1, 0.2, 1.0]], index=list("abc"), columns=list("abc"))
    return cluster(corr, 2)


SAVERS: dict[str, tuple[Callable[..., Path], Callable[..., Figure], Callable[[], Any]]] = {
    "ranking_bars": (
        figures.ranking_bars, figures.ranking_bars_figure,
        lambda: pd.DataFrame({"label": ["a", "b"], "delta_pct": [1.0, -0.5], "std_pct": [0.2, 0.1]}),
    ),
    "correlation_heatmap": (
        figures.correlation_heatmap, figures.correlation_heatmap_figure,
        lambda: pd.DataFrame([[1.0, -0.3], [-0.3, 1.0]], index=["a", "b"], columns=["a", "b"]),
    ),
    "dendrogram": (figures.dendrogram, figures.dendrogram_figure, _clustering),
    "pyramid": (
        figures.pyramid, figures.pyramid_figure,
        lambda: pd.DataFrame({"label": ["A", "B", "A∩B"], "level": [1, 1, 2], "size": [90, 60, 30],
                              "delta_pct": [1.0, -1.0, 2.0]}),
    ),
    "duplication_curves": (
        figures.duplication_curves, figures.duplication_curves_figure,
        lambda: pd.DataFrame({"strategy": ["s", "s"], "r": [1, 2], "delta_pct": [0.5, 0.2]}),
    ),
    "history_curve": (
        figures.history_curve, figures.history_curve_figure,
        lambda: pd.DataFrame({"trial": [0, 1, 2], "value": [0.1, 0.3, 0.2]}),
    ),
    "importance_bars": (figures.importance_bars, figures.importance_bars_figure, lambda: {"x": 0.7, "y": 0.3}),
    "stat_histograms": (
        figures.stat_histograms, figures.stat_histograms_figure,
        lambda: pd.DataFrame({"text_len": [3.0, 5.0, 8.0, 8.0]}),
    ),
}


@pytest.mark.parametrize("name", sorted(SAVERS))
def test_each_saver_writes_its_builders_figure_as_a_png_in_a_new_folder(tmp_path: Path, name: str) -> None:
    saver, builder, data = SAVERS[name]
    out = saver(data(), tmp_path / "new" / f"{name}.png")
    assert out == tmp_path / "new" / f"{name}.png"
    written = out.read_bytes()
    assert written[:8] == PNG_SIGNATURE
    assert written == figures.save(builder(data()), tmp_path / "reference.png").read_bytes()


@pytest.mark.parametrize("name", sorted(set(SAVERS) - {"stat_histograms"}))
def test_each_saver_passes_its_title_on(tmp_path: Path, name: str) -> None:
    saver, builder, data = SAVERS[name]
    titled = saver(data(), tmp_path / "titled.png", title="my own title").read_bytes()
    assert titled == figures.save(builder(data(), title="my own title"), tmp_path / "reference.png").read_bytes()
    assert titled != saver(data(), tmp_path / "default.png").read_bytes()
    assert builder(data(), title="my own title").axes[0].get_title().startswith("my own title")


# ranking_bars


def test_ranking_bars_put_the_best_delta_on_top_and_unmeasured_rows_last(ranking: pd.DataFrame) -> None:
    ax = figures.ranking_bars_figure(ranking).axes[0]
    assert labels(ax) == ["alnum_ratio high", "num_words high", "text_len low", "perplexity mid"]
    assert [b.get_width() for b in bars(ax)] == [2.5, 0.7, -1.2, 0.0]
    assert ax.yaxis_inverted()  # the first row is drawn at the top
    assert ax.get_xlabel() == "delta over random (%), mean ± std over seeds"


def test_ranking_bars_are_green_above_the_random_pool_red_below_and_grey_when_unmeasured(
    ranking: pd.DataFrame,
) -> None:
    ax = figures.ranking_bars_figure(ranking.drop(columns="p_value")).axes[0]  # no test: the sign alone
    colours = [b.get_facecolor() for b in bars(ax)]
    expected = [figures.POSITIVE, figures.POSITIVE, figures.NEGATIVE, figures.NEUTRAL]
    assert colours == [to_rgba(c) for c in expected]


def test_ranking_bars_write_each_delta_and_star_the_significant_ones(ranking: pd.DataFrame) -> None:
    ax = figures.ranking_bars_figure(ranking, title="OP ranking").axes[0]
    assert texts(ax) == ["+2.50*", "+0.70*", "-1.20", "n/a"]
    assert ax.get_title() == "OP ranking  (* p < 0.05; pale: p ≥ 0.05 or untested)"


def test_ranking_bars_without_p_values_star_nothing_and_keep_the_plain_title(ranking: pd.DataFrame) -> None:
    ax = figures.ranking_bars_figure(ranking.drop(columns="p_value"), title="OP ranking").axes[0]
    assert texts(ax) == ["+2.50", "+0.70", "-1.20", "n/a"]
    assert ax.get_title() == "OP ranking"


def test_ranking_bars_star_from_the_holm_adjusted_p_value_and_say_so(ranking: pd.DataFrame) -> None:
    table = ranking.assign(p_adjusted=[0.04, 0.6, NAN, 0.12])  # num_words high: p 0.04, but not after Holm
    ax = figures.ranking_bars_figure(table, title="OP ranking").axes[0]
    assert texts(ax) == ["+2.50*", "+0.70", "-1.20", "n/a"]
    assert ax.get_title() == "OP ranking  (* Holm-adjusted p < 0.05; pale: Holm-adjusted p ≥ 0.05 or untested)"


def test_ranking_bars_draw_the_95_interval_where_the_table_has_it(ranking: pd.DataFrame) -> None:
    # one seed (perplexity mid, and num_words high here) has no interval: no error bar
    table = ranking.assign(ci_low_pct=[1.5, -3.0, NAN, NAN], ci_high_pct=[4.0, 0.1, NAN, NAN])
    ax = figures.ranking_bars_figure(table).axes[0]
    np.testing.assert_allclose(sorted(error_spans(ax, "x")), [(-3.0, 0.1), (1.5, 4.0)])
    assert ax.get_xlabel() == "delta over random (%), mean and 95% interval over seeds"


def test_ranking_bars_draw_an_error_bar_only_for_a_positive_std(ranking: pd.DataFrame) -> None:
    ax = figures.ranking_bars_figure(ranking).axes[0]
    np.testing.assert_allclose(sorted(error_spans(ax, "x")), [(-2.0, -0.4), (2.1, 2.9)])


@pytest.mark.parametrize(("delta", "colour"), [(-3.0, figures.NEGATIVE), (0.0, figures.NEUTRAL), (4.0, figures.POSITIVE)])
def test_ranking_bars_of_one_row_without_std(delta: float, colour: str) -> None:
    table = pd.DataFrame({"label": ["only"], "delta_pct": [delta], "std_pct": [NAN]})
    ax = figures.ranking_bars_figure(table).axes[0]
    assert labels(ax) == ["only"]
    assert [(b.get_width(), b.get_facecolor()) for b in bars(ax)] == [(delta, to_rgba(colour))]
    assert texts(ax) == [f"{delta:+.2f}"]
    assert error_spans(ax, "x") == []


def test_ranking_bars_name_the_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"missing columns \['std_pct'\]"):
        figures.ranking_bars_figure(pd.DataFrame({"label": ["a"], "delta_pct": [1.0]}))


# correlation_heatmap and dendrogram


def test_heatmap_shows_each_correlation_and_its_value_in_matrix_order(stats: pd.DataFrame) -> None:
    corr = pearson_matrix(stats)
    ax = figures.correlation_heatmap_figure(corr).axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), corr.to_numpy())
    assert labels(ax, "x") == labels(ax, "y") == list(stats.columns)
    assert texts(ax) == [f"{v:.2f}" for v in corr.to_numpy().ravel()]
    assert ax.get_title() == "Pearson correlation"
    assert ax.images[0].get_clim() == (-1, 1)


def test_heatmap_follows_the_clustering_leaves_and_outlines_each_cluster(stats: pd.DataFrame) -> None:
    corr = pearson_matrix(stats)
    clustering = cluster(corr, 3)
    ax = figures.correlation_heatmap_figure(corr, clustering=clustering).axes[0]
    assert labels(ax, "x") == labels(ax, "y") == clustering.leaves
    np.testing.assert_allclose(ax.images[0].get_array(), corr.loc[clustering.leaves, clustering.leaves].to_numpy())
    sizes = [len(clustering.groups()[c]) for c in dict.fromkeys(clustering.labels[n] for n in clustering.leaves)]
    assert [(box.get_x(), box.get_width(), box.get_height()) for box in bars(ax)] == [
        (start - 0.5, size, size) for start, size in zip(np.cumsum([0, *sizes[:-1]]), sizes)
    ]
    assert ax.get_title() == "Pearson correlation (3 clusters)"


def test_heatmap_of_one_cluster_outlines_nothing(stats: pd.DataFrame) -> None:
    corr = pearson_matrix(stats)
    ax = figures.correlation_heatmap_figure(corr, clustering=cluster(corr, 1)).axes[0]
    assert bars(ax) == []
    assert ax.get_title() == "Pearson correlation (1 cluster)"


def test_heatmap_of_more_than_fifteen_items_writes_no_numbers() -> None:
    rng = np.random.default_rng(2)
    corr = pearson_matrix(pd.DataFrame(rng.normal(size=(50, 16)), columns=[f"stat_{i}" for i in range(16)]))
    ax = figures.correlation_heatmap_figure(corr).axes[0]
    assert texts(ax) == []
    assert len(labels(ax)) == 16


def test_heatmap_rejects_a_clustering_of_other_items_and_a_non_square_matrix(stats: pd.DataFrame) -> None:
    corr = pearson_matrix(stats)
    with pytest.raises(ValueError, match="differ"):
        figures.correlation_heatmap_figure(corr, clustering=cluster(corr.iloc[:3, :3], 2))
    with pytest.raises(ValueError, match="square"):
        figures.correlation_heatmap_figure(corr.iloc[:, :3])


def test_dendrogram_lists_the_leaves_top_down_in_clustering_order(stats: pd.DataFrame) -> None:
    clustering = cluster(pearson_matrix(stats), 2)
    ax = figures.dendrogram_figure(clustering, title="OP stats").axes[0]
    assert labels(ax) == clustering.leaves
    assert ax.yaxis_inverted()  # the first leaf at the top, as in the heatmap
    assert ax.get_xlabel() == "distance 1 − |r|"
    assert ax.get_title() == "OP stats"


@pytest.mark.parametrize("k", [2, 5])
def test_dendrogram_marks_the_cut_between_clusters(stats: pd.DataFrame, k: int) -> None:
    clustering = cluster(pearson_matrix(stats), k)
    ax = figures.dendrogram_figure(clustering).axes[0]
    cuts = [line.get_xdata() for line in ax.lines if line.get_linestyle() == "--"]
    assert cuts == [[clustering.cut_height()] * 2]
    assert texts(ax) == [f" cut: {k} clusters"]


def test_dendrogram_of_one_cluster_marks_no_cut(stats: pd.DataFrame) -> None:
    ax = figures.dendrogram_figure(cluster(pearson_matrix(stats), 1)).axes[0]
    assert [line for line in ax.lines if line.get_linestyle() == "--"] == []
    assert texts(ax) == []
    assert labels(ax) == cluster(pearson_matrix(stats), 1).leaves


def test_dendrogram_of_a_single_item_names_it_without_axes() -> None:
    single = cluster(pd.DataFrame([[1.0]], index=["alnum_ratio"], columns=["alnum_ratio"]), 1)
    ax = figures.dendrogram_figure(single).axes[0]
    assert texts(ax) == ["a single item: alnum_ratio"]
    assert not ax.axison


# pyramid and duplication_curves


def pyramid_levels(names: list[str]) -> pd.DataFrame:
    rows = []
    for level in range(1, len(names) + 1):
        for combo in itertools.combinations(names, level):
            rows.append(
                {"label": "∩".join(combo), "level": level, "size": 2000 // 3**level, "delta_pct": level - 1.5,
                 "std_pct": 0.3}
            )
    return pd.DataFrame(rows)


def boxes(ax: Axes) -> list[FancyBboxPatch]:
    return [p for p in ax.patches if isinstance(p, FancyBboxPatch)]


def test_pyramid_draws_a_box_per_pool_one_row_per_level_most_combined_on_top() -> None:
    levels = pyramid_levels(["alnum_ratio", "text_len", "perplexity"])
    ax = figures.pyramid_figure(levels).axes[0]
    drawn = boxes(ax)
    assert len(drawn) == 7
    rows = sorted({round(b.get_y(), 6) for b in drawn}, reverse=True)
    per_row = [sum(round(b.get_y(), 6) == y for b in drawn) for y in rows]
    assert per_row == [1, 3, 3]  # from the top: the triple, the pairs, the single OPs
    assert [t for t in texts(ax) if t.endswith("OPs") or t.endswith("OP")] == ["3 OPs", "2 OPs", "1 OP"]
    assert ax.get_title() == "pyramid of top-k pool intersections (top level: 3 OPs combined)"


def test_pyramid_boxes_say_label_size_and_delta_with_its_std_where_no_interval_is_given() -> None:
    ax = figures.pyramid_figure(pyramid_levels(["A", "B"])).axes[0]
    assert "A∩B\nn=222\n+0.50%\n± 0.30 sd" in texts(ax)
    assert "A\nn=666\n-0.50%\n± 0.30 sd" in texts(ax)


def test_pyramid_box_widths_grow_with_pool_size() -> None:
    levels = pd.DataFrame({"label": ["big", "small"], "level": [1, 1], "size": [900, 100], "delta_pct": [1.0, 1.0]})
    big, small = boxes(figures.pyramid_figure(levels).axes[0])
    assert big.get_width() > small.get_width()


def test_pyramid_colours_gains_green_losses_red_and_an_empty_intersection_grey() -> None:
    levels = pd.DataFrame(
        {"label": ["A", "B", "A∩B"], "level": [1, 1, 2], "size": [500, 400, 0], "delta_pct": [2.0, -2.0, NAN]}
    )
    ax = figures.pyramid_figure(levels).axes[0]
    empty, gain, loss = boxes(ax)  # the top row is drawn first
    assert empty.get_facecolor() == (0.85, 0.85, 0.85, 1.0)
    assert gain.get_facecolor()[1] > gain.get_facecolor()[0]
    assert loss.get_facecolor()[0] > loss.get_facecolor()[1]
    assert "A∩B\nn=0\ndelta n/a" in texts(ax)


def test_pyramid_rejects_negative_sizes_and_no_rows() -> None:
    levels = pd.DataFrame({"label": ["A"], "level": [1], "size": [-1], "delta_pct": [0.0]})
    with pytest.raises(ValueError, match=">= 0"):
        figures.pyramid_figure(levels)
    with pytest.raises(ValueError, match="no rows"):
        figures.pyramid_figure(levels.iloc[:0])


DUPLICATION = pd.DataFrame(
    [
        {"strategy": s, "r": r, "delta_pct": d, "std_pct": NAN if r == 8 else 0.5}
        for s, ds in (("repeat top pool", [1.0, 0.4, -0.3, -1.1]), ("fill from lower levels", [1.0, 1.3, 1.6, 1.4]))
        for r, d in zip((1, 2, 4, 8), ds)
    ]
)


def test_duplication_curves_draw_one_labelled_line_per_strategy_over_the_budget_multiples() -> None:
    ax = figures.duplication_curves_figure(DUPLICATION).axes[0]
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [c.get_label() for c in containers] == ["repeat top pool", "fill from lower levels"]
    curves = [c.lines[0] for c in containers]
    assert [list(c.get_xdata()) for c in curves] == [[1, 2, 4, 8]] * 2
    assert [list(c.get_ydata()) for c in curves] == [[1.0, 0.4, -0.3, -1.1], [1.0, 1.3, 1.6, 1.4]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["repeat top pool", "fill from lower levels"]
    assert ax.get_xscale() == "log"
    assert labels(ax, "x") == ["1×", "2×", "4×", "8×"]
    assert ax.get_ylabel() == "delta over random (%), ± std over seeds"


def test_duplication_curves_draw_the_interval_and_star_the_corrected_findings() -> None:
    frame = DUPLICATION.head(3).assign(ci_low_pct=[0.2, -0.5, -0.9], ci_high_pct=[1.8, 1.3, 0.3],
                                       p_adjusted=[0.01, 0.2, NAN])
    ax = figures.duplication_curves_figure(frame).axes[0]
    np.testing.assert_allclose(error_spans(ax, "y"), [(0.2, 1.8), (-0.5, 1.3), (-0.9, 0.3)])
    assert ax.get_ylabel() == "delta over random (%), 95% interval"
    stars = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())]
    assert [list(map(tuple, c.get_offsets())) for c in stars] == [[(1.0, 1.0)]]  # only the Holm-significant r = 1
    assert "Holm-adjusted p < 0.05" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_duplication_curves_draw_the_std_as_error_bars() -> None:
    ax = figures.duplication_curves_figure(DUPLICATION.head(4)).axes[0]
    spans = error_spans(ax, "y")
    # r = 1, 2, 4 with std 0.5; a NaN std (r = 8) draws a bar of no length.
    np.testing.assert_allclose(spans, [(0.5, 1.5), (-0.1, 0.9), (-0.8, 0.2), (-1.1, -1.1)])


def test_duplication_curves_without_std_draw_no_error_bars() -> None:
    ax = figures.duplication_curves_figure(DUPLICATION.drop(columns="std_pct").head(1)).axes[0]
    assert error_spans(ax, "y") == []
    assert labels(ax, "x") == ["1×"]


def test_duplication_curves_accept_the_multiple_column_of_the_recipe_table() -> None:
    frame = pd.DataFrame({"strategy": ["repeat", "repeat"], "multiple": [2.0, 4.0], "delta_pct": [0.5, 0.2]})
    ax = figures.duplication_curves_figure(frame).axes[0]
    assert list(ax.lines[0].get_xdata()) == [2.0, 4.0]
    assert labels(ax, "x") == ["2×", "4×"]


def test_duplication_curves_reject_repeated_points() -> None:
    frame = pd.DataFrame({"strategy": ["a", "a"], "r": [2, 2], "delta_pct": [1.0, 2.0]})
    with pytest.raises(ValueError, match="more than one row"):
        figures.duplication_curves_figure(frame)


def test_duplication_curves_reject_a_missing_or_non_positive_multiple() -> None:
    frame = pd.DataFrame({"strategy": ["a", "a"], "r": [0.0, NAN], "delta_pct": [1.0, 2.0]})
    with pytest.raises(ValueError, match="positive budget multiple"):
        figures.duplication_curves_figure(frame)


# history_curve and importance_bars


def test_history_curve_steps_through_the_best_so_far_and_failed_trials_do_not_move_it() -> None:
    frame = pd.DataFrame({"trial": [0, 1, 2, 3, 4], "value": [1.0, 3.0, NAN, 2.0, 5.0]})
    ax = figures.history_curve_figure(frame).axes[0]
    (best,) = ax.lines
    assert best.get_drawstyle() == "steps-post"
    assert list(best.get_xdata()) == [0, 1, 2, 3, 4]
    assert list(best.get_ydata()) == [1.0, 3.0, 3.0, 3.0, 5.0]
    (dots,) = ax.collections
    np.testing.assert_array_equal(dots.get_offsets()[:, 1], [1.0, 3.0, NAN, 2.0, 5.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["trials", "best so far"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("trial", "delta over random (%)")
    ax.figure.canvas.draw()
    assert all(float(t).is_integer() for t in ax.get_xticks())  # trials are whole: no tick at 0.5


def test_history_curve_minimizes_one_curve_per_series() -> None:
    frame = pd.DataFrame(
        {"trial": [0, 1, 2, 0, 1, 2], "value": [3.0, 1.0, 2.0, 5.0, 6.0, 4.0], "series": ["tpe"] * 3 + ["random"] * 3}
    )
    ax = figures.history_curve_figure(frame, ylabel="bits per byte", direction="minimize").axes[0]
    assert [list(line.get_ydata()) for line in ax.lines] == [[3.0, 1.0, 1.0], [5.0, 5.0, 4.0]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "tpe: trials", "tpe: best so far", "random: trials", "random: best so far"]
    assert ax.get_ylabel() == "bits per byte"


def test_history_curve_rejects_an_unknown_direction() -> None:
    with pytest.raises(ValueError, match="maximize"):
        figures.history_curve_figure(pd.DataFrame({"trial": [0], "value": [1.0]}), direction="up")


def test_importance_bars_put_the_largest_share_on_top_and_write_each_value() -> None:
    ax = figures.importance_bars_figure({"min_len": 0.2, "repeat": 0.6, "max_ppl": 0.2}).axes[0]
    assert labels(ax) == ["repeat", "min_len", "max_ppl"]
    assert [b.get_width() for b in bars(ax)] == [0.6, 0.2, 0.2]
    assert texts(ax) == [" 0.60", " 0.20", " 0.20"]
    assert ax.yaxis_inverted()
    assert ax.get_xlabel() == "importance"


def test_importance_bars_need_an_importance() -> None:
    with pytest.raises(ValueError, match="no importances"):
        figures.importance_bars_figure({})


# stat_histograms


def test_stat_histograms_draw_a_panel_per_numeric_column_with_its_median() -> None:
    frame = pd.DataFrame(
        {"id": ["a", "b", "c", "d", "e"], "text_len": [3.0, 4.0, 5.0, 9.0, 9.0], "alnum_ratio": [0.1, 0.5, 0.2, 0.9, 0.3]}
    )
    fig = figures.stat_histograms_figure(frame, bins=4)
    assert fig.get_suptitle() == "stat distributions (5 samples; red: median)"
    text_len, alnum, *unused = fig.axes
    assert [text_len.get_title(), alnum.get_title()] == ["text_len", "alnum_ratio"]
    assert [len(bars(text_len)), sum(b.get_height() for b in bars(text_len))] == [4, 5]
    assert [line.get_xdata()[0] for line in text_len.lines] == [5.0]
    assert [line.get_xdata()[0] for line in alnum.lines] == [0.3]
    assert text_len.get_ylabel() == "samples"
    assert unused == []  # two stats fill one row of two panels


def test_stat_histograms_leave_the_panels_past_the_last_stat_empty() -> None:
    frame = pd.DataFrame({f"s{i}": np.arange(10.0) + i for i in range(4)})
    fig = figures.stat_histograms_figure(frame)
    assert [ax.get_title() for ax in fig.axes] == ["s0", "s1", "s2", "s3", "", ""]
    assert [ax.axison for ax in fig.axes] == [True, True, True, True, False, False]


def test_stat_histograms_draw_a_zero_spike_in_its_own_units_over_log_counts() -> None:
    values = np.array([0.0] * 40 + [1.0] * 59 + [10_000.0])
    ax = figures.stat_histograms_figure(pd.DataFrame({"char_rep": values})).axes[0]
    assert ax.get_title() == "char_rep"
    assert (ax.get_xscale(), ax.get_yscale(), ax.get_ylabel()) == ("linear", "log", "samples (log scale)")
    assert ax.lines[0].get_xdata()[0] == 1.0  # the median, as it is
    assert max(b.get_x() + b.get_width() for b in bars(ax)) == pytest.approx(10_000.0)


def test_stat_histograms_leave_missing_values_out() -> None:
    ax = figures.stat_histograms_figure(pd.DataFrame({"ppl": [1.0, NAN, 3.0, 2.0]}), bins=3).axes[0]
    assert sum(b.get_height() for b in bars(ax)) == 3
    assert ax.lines[0].get_xdata()[0] == 2.0


def test_stat_histograms_need_a_numeric_column() -> None:
    with pytest.raises(ValueError, match="no numeric columns"):
        figures.stat_histograms_figure(pd.DataFrame({"lang": ["en", "de"]}))
