"""Each figure claims no more than its data: intervals where the reader takes them for intervals,
partial and untested results drawn as such, small samples and resolution limits said out loud, and
axes in the numbers' own units."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

from mlsandbox import figures
from mlsandbox.figures import _stats, _transfer

NAN = float("nan")
LONG_OPS = ["flagged_words_filter/high", "character_repetition_filter/mid", "words_num_filter/high"]


def texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def bars(ax: Axes) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


# pyramid


def refine_levels(names: list[str], sep: str = " & ") -> pd.DataFrame:
    """Pyramid rows as refine's table has them: names joined by " & ", the interval and Holm's p."""
    rows = []
    for level in range(1, len(names) + 1):
        for i, combo in enumerate(itertools.combinations(names, level)):
            delta = level - 1.5
            rows.append({"label": sep.join(combo), "level": level, "size": 3000 // 3**level, "delta_pct": delta,
                         "std_pct": 0.3, "ci_low_pct": delta - 0.6, "ci_high_pct": delta + 0.5,
                         "p_value": 0.001, "p_adjusted": 0.01 if i == 0 else 0.3})
    return pd.DataFrame(rows)


def test_pyramid_boxes_show_the_95_interval_and_star_the_holm_findings() -> None:
    levels = refine_levels(["A", "B"]).assign(p_adjusted=[0.01, 0.3, NAN])
    fig = figures.pyramid_figure(levels)
    ax = fig.axes[0]
    assert "A\nn=1,000\n-0.50%*\n[-1.10, +0.00]" in texts(ax)  # Holm-adjusted p 0.01
    assert "B\nn=1,000\n-0.50%\n[-1.10, +0.00]" in texts(ax)  # p 0.001, but 0.3 once adjusted: no star
    assert "A & B\nn=333\n+0.50%\n[-0.10, +1.00]" in texts(ax)  # untested: no star
    assert not any("±" in t for t in texts(ax))
    assert "[95% interval]; * Holm-adjusted p < 0.05" in fig.texts[0].get_text()


def test_pyramid_draws_boxes_the_holm_test_does_not_flag_pale_as_the_ranking_does() -> None:
    levels = refine_levels(["A", "B"]).assign(delta_pct=[2.0, 2.0, 2.0], p_adjusted=[0.01, 0.3, NAN])
    fig = figures.pyramid_figure(levels)
    top, found, not_found = [p.get_facecolor() for p in fig.axes[0].patches if isinstance(p, FancyBboxPatch)]
    assert not_found == figures._ranking.pale(found) and top == not_found  # p 0.3 and untested alike
    assert "pale: Holm-adjusted p ≥ 0.05 or untested" in fig.texts[0].get_text().replace("\n", " ")


def test_pyramid_caption_says_its_single_op_boxes_keep_the_probes_holm_family() -> None:
    caption = figures.pyramid_figure(refine_levels(["A", "B"])).texts[0].get_text().replace("\n", " ")
    assert "refine's top single-OP rows keep the probe's, corrected across the probe's pools" in caption


def test_pyramid_says_interval_n_a_where_one_seed_gave_none() -> None:
    levels = refine_levels(["A"]).assign(ci_low_pct=NAN, ci_high_pct=NAN)
    assert texts(figures.pyramid_figure(levels).axes[0])[0] == "A\nn=1,000\n-0.50%*\ninterval n/a"


@pytest.mark.parametrize("sep", [" & ", "∩"])
def test_pyramid_labels_of_long_op_names_wrap_inside_their_boxes(sep: str, tmp_path: Path) -> None:
    fig = figures.pyramid_figure(refine_levels(LONG_OPS, sep))
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    drawn = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    labels = [t for t in ax.texts if "\n" in t.get_text()]
    assert len(drawn) == len(labels) == 7
    for box, label in zip(drawn, labels):
        inside, text = box.get_window_extent(renderer), label.get_window_extent(renderer)
        assert inside.x0 < text.x0 and text.x1 < inside.x1, label.get_text()
        assert inside.y0 < text.y0 and text.y1 < inside.y1, label.get_text()
    for a, b in itertools.combinations(labels, 2):
        assert not a.get_window_extent(renderer).overlaps(b.get_window_extent(renderer))
    top = labels[0].get_text()
    assert top.replace("\n", "").replace(" ", "").startswith(sep.join(LONG_OPS).replace(" ", ""))  # nothing lost
    figures.save(fig, tmp_path / "pyramid.png")


def test_pyramid_wrap_breaks_between_ops_before_inside_a_name() -> None:
    def fits(s: str) -> bool:
        return len(s) <= 27

    assert figures._pyramid.wrap("flagged_words_filter/high & words_num_filter/high", fits) == [
        "flagged_words_filter/high &", "words_num_filter/high"]
    assert figures._pyramid.wrap("character_repetition_filter/mid", lambda s: len(s) <= 21) == [
        "character_repetition_", "filter/mid"]
    assert figures._pyramid.wrap("abcdefgh", lambda s: len(s) <= 3) == ["abc", "def", "gh"]


# history_curve


def study_trials() -> pd.DataFrame:
    """Trials as the study's table has them: pruned ones carry their running delta, warm starts a label."""
    return pd.DataFrame({
        "trial": [0, 1, 2, 3, 4, 5],
        "value": [1.0, 0.5, 9.0, NAN, 2.0, 3.0],
        "state": ["COMPLETE", "COMPLETE", "PRUNED", "PRUNED", "COMPLETE", "FAIL"],
        "warm_start": ["workflow: A & B", "ksigma: ksigma", "", "", "", ""],
    })


def test_history_curve_draws_pruned_trials_hollow_and_grey_and_never_as_the_best() -> None:
    ax = figures.history_curve_figure(study_trials()).axes[0]
    (best,) = ax.lines
    assert list(best.get_ydata()) == [1.0, 1.0, 1.0, 1.0, 2.0, 2.0]  # a pruned 9.0 after one seed is no best
    complete, pruned, unvalued, warm = ax.collections
    np.testing.assert_array_equal(complete.get_offsets(), [[0, 1.0], [1, 0.5], [4, 2.0]])
    np.testing.assert_array_equal(pruned.get_offsets(), [[2, 9.0]])
    assert len(pruned.get_facecolors()) == 0 or pruned.get_facecolors()[0][3] == 0  # hollow
    assert tuple(pruned.get_edgecolors()[0]) == to_rgba(figures.NEUTRAL)
    np.testing.assert_array_equal(unvalued.get_offsets(), [[3, 0.0]])  # on the axis: pruned before any seed
    np.testing.assert_array_equal(warm.get_offsets(), [[0, 1.0], [1, 0.5]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "complete trials", "best so far (complete trials)", "pruned: running value after some seeds (partial)",
        "pruned before its first seed (no value)", "warm start"]


def test_history_curve_keeps_its_legend_off_the_data_and_titles_what_it_plots() -> None:
    fig = figures.history_curve_figure(study_trials(), title="study demo")
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    assert ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    assert ax.get_title() == "study demo: best-so-far delta over random (%) by trial"


def test_history_curve_gives_each_complete_trial_its_interval_and_stars_its_holm_finding() -> None:
    """A trial's delta as a bare dot read as a finding: a bar for its 95% interval, a star where
    its Holm-adjusted p (across the complete trials' distinct pools) is below 0.05."""
    frame = study_trials().assign(ci_low_pct=[0.2, -0.5, NAN, NAN, 1.2, NAN],
                                  ci_high_pct=[1.8, 1.5, NAN, NAN, 2.8, NAN],
                                  p_adjusted=[0.3, NAN, NAN, NAN, 0.01, NAN])
    ax = figures.history_curve_figure(frame, title="study demo").axes[0]
    (bars,) = [c for c in ax.containers if c.get_label() == "95% interval over seeds"]
    ends = sorted((round(float(s[0][1]), 6), round(float(s[1][1]), 6)) for s in bars.lines[2][0].get_segments())
    assert ends == [(-0.5, 1.5), (0.2, 1.8), (1.2, 2.8)]  # complete trials only: no bar for a pruned one
    stars = [c.get_offsets().tolist() for c in ax.collections if list(getattr(c, "get_sizes", list)()) == [110]]
    assert stars == [[[4.0, 2.0]], []]  # the trial with adjusted p 0.01; then the legend's entry
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"95% interval over seeds", "Holm-adjusted p < 0.05"} <= set(labels)
    assert ax.get_title().splitlines()[1:] == [
        "bars: 95% interval over seeds", "*: Holm-adjusted p < 0.05 across the complete trials' distinct pools"]


# importance_bars


def test_importance_bars_say_how_many_completed_trials_and_warn_when_too_few() -> None:
    shares = {f"p{i}": 1 / 9 for i in range(9)}
    few = figures.importance_bars_figure(shares, "importance", completed=5).axes[0]
    assert few.get_title() == ("importance, from 5 completed trials\n"
                               "caveat: fewer than 2 trials per parameter (9 parameters): mostly noise")
    assert {b.get_facecolor() for b in bars(few)} == {to_rgba(figures.NEUTRAL)}
    enough = figures.importance_bars_figure(shares, "importance", completed=18).axes[0]
    assert enough.get_title() == "importance, from 18 completed trials"
    assert {b.get_facecolor() for b in bars(enough)} == {to_rgba(figures.POSITIVE)}


# stat_histograms


def demo_like_stats(n: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    spike = np.where(rng.random(n) < 0.9, 0.0, rng.uniform(0, 0.3, n))  # a ratio, mostly exactly 0
    lengths = np.round(np.exp(rng.normal(5.5, 1.3, n)))  # a positive, long-tailed count
    return pd.DataFrame({"flagged_words_ratio": spike, "text_len": np.maximum(lengths, 1),
                         "alnum_ratio": rng.beta(8, 2, n)})


def rendered(fig: Figure) -> Figure:
    FigureCanvasAgg(fig).draw()
    return fig


def test_stat_histograms_draw_a_zero_spike_ratio_linearly_over_log_counts() -> None:
    ax = rendered(figures.stat_histograms_figure(demo_like_stats())).axes[0]
    assert ax.get_title() == "flagged_words_ratio"
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "log")
    edges = [b.get_x() for b in bars(ax)]
    assert min(edges) == pytest.approx(0.0) and max(b.get_x() + b.get_width() for b in bars(ax)) <= 0.3  # its units
    assert ax.lines[0].get_xdata()[0] == 0.0  # the median


def test_stat_histograms_put_a_long_tailed_count_on_a_log_axis_labelled_in_its_own_numbers() -> None:
    ax = rendered(figures.stat_histograms_figure(demo_like_stats())).axes[1]
    values = demo_like_stats()["text_len"]
    assert (ax.get_title(), ax.get_xscale(), ax.get_yscale()) == ("text_len (log x)", "log", "linear")
    assert min(b.get_x() for b in bars(ax)) == pytest.approx(values.min())
    assert max(b.get_x() + b.get_width() for b in bars(ax)) == pytest.approx(values.max())
    assert ax.lines[0].get_xdata()[0] == values.median()
    ticks = {t.get_text() for t in ax.get_xticklabels() if t.get_text()}
    assert {"10", "100", "1000"} <= ticks


def test_stat_histograms_keep_a_bounded_ratio_linear() -> None:
    ax = figures.stat_histograms_figure(demo_like_stats()).axes[2]
    assert (ax.get_title(), ax.get_xscale(), ax.get_yscale()) == ("alnum_ratio", "linear", "linear")


def test_a_log_value_axis_names_the_zeros_it_cannot_show() -> None:
    values = np.concatenate([np.zeros(3), np.round(np.exp(np.random.default_rng(1).normal(5, 1.3, 997)))])
    assert _stats.scale_of(values) == "log x"
    ax = figures.stat_histograms_figure(pd.DataFrame({"num_words": values})).axes[0]
    assert ax.get_title() == f"num_words (log x; {int((values == 0).sum())} zeros not shown)"


# ranking_bars


def probe_ranking() -> pd.DataFrame:
    return pd.DataFrame({"label": ["a", "b", "c", "d"], "delta_pct": [3.0, 1.0, -0.5, -2.0],
                         "std_pct": [0.5] * 4, "ci_low_pct": [2.0, -0.5, -1.5, -2.8],
                         "ci_high_pct": [4.0, 2.5, 0.5, -1.2], "p_adjusted": [0.01, 0.3, NAN, 0.02]})


def test_ranking_bars_draw_pools_the_test_does_not_flag_pale() -> None:
    ax = figures.ranking_bars_figure(probe_ranking()).axes[0]
    colours = [b.get_facecolor() for b in bars(ax)]
    assert colours == [to_rgba(figures.POSITIVE), figures._ranking.pale(figures.POSITIVE),
                       figures._ranking.pale(figures.NEGATIVE), to_rgba(figures.NEGATIVE)]
    assert texts(ax) == ["+3.00*", "+1.00", "-0.50", "-2.00*"]


@pytest.mark.parametrize(("looks", "column", "label"), [
    (None, None, "delta over random (%), mean and 95% interval over seeds"),
    (4, None, "delta over random (%), mean and race-corrected 95% interval over seeds (4 looks)"),
    (None, [4, 4, 4, 4], "delta over random (%), mean and race-corrected 95% interval over seeds (4 looks)"),
    (None, [1, 4, 4, 1], "delta over random (%), mean and 95% interval over seeds (race-corrected for raced pools)"),
    (1, [4, 4, 4, 4], "delta over random (%), mean and 95% interval over seeds"),
])
def test_ranking_bars_say_when_the_interval_is_race_corrected(looks: int | None, column: list[int] | None,
                                                            label: str) -> None:
    table = probe_ranking() if column is None else probe_ranking().assign(looks=column)
    assert figures.ranking_bars_figure(table, looks=looks).axes[0].get_xlabel() == label


def test_the_savers_pass_the_new_keywords_on(tmp_path: Path) -> None:
    written = figures.ranking_bars(probe_ranking(), tmp_path / "r.png", looks=4).read_bytes()
    assert written == figures.save(figures.ranking_bars_figure(probe_ranking(), looks=4), tmp_path / "r0.png").read_bytes()
    shares = {"x": 0.7, "y": 0.3}
    written = figures.importance_bars(shares, tmp_path / "i.png", completed=3).read_bytes()
    assert written == figures.save(figures.importance_bars_figure(shares, completed=3), tmp_path / "i0.png").read_bytes()


# transfer_scatter


def transfer_pairs(p: float, pools: int = 23, rows: int = 1) -> pd.DataFrame:
    row = {"cheap": "ngram2", "costly": "ngram4", "pools": pools, "spearman": 0.89, "spearman_low": 0.73,
           "spearman_high": 0.96, "spearman_p_value": p, "spearman_p_adjusted": p, "decision_accuracy": 0.86,
           "decision_accuracy_low": 0.76, "decision_accuracy_high": 0.93, "decision_accuracy_p_value": 0.04,
           "decision_accuracy_p_adjusted": 0.04}
    return pd.DataFrame([row] * rows)


def transfer_deltas(pools: int = 23) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    cheap = rng.normal(size=pools)
    return pd.DataFrame({"ngram2": cheap, "ngram4": cheap + rng.normal(scale=0.3, size=pools)})


def test_transfer_scatter_shows_a_p_value_at_the_permutation_floor_as_a_bound_and_counts_the_pools() -> None:
    assert _transfer.p_floor() == pytest.approx(0.0002)
    ax = figures.transfer_scatter_figure(transfer_deltas(), transfer_pairs(_transfer.p_floor())).axes[0]
    assert ax.get_title() == ("n = 23 pools\nSpearman 0.89 [0.73, 0.96], p_adj ≤ 0.0002\n"
                              "decision acc. 0.86 [0.76, 0.93], p_adj 0.04")


def test_the_floor_is_the_smallest_p_value_the_agreement_test_gives() -> None:
    from mlsandbox.agreement import rank_agreement

    x = np.arange(23.0)
    assert rank_agreement(x, x).spearman.p_value == pytest.approx(_transfer.p_floor())


def test_transfer_scatter_bounds_the_floor_of_a_holm_family() -> None:
    deltas = transfer_deltas().assign(ngram8=transfer_deltas()["ngram4"])
    floor = _transfer.p_floor()
    pairs = transfer_pairs(3 * floor, rows=3).assign(spearman_p_value=floor)  # all at the floor: Holm gives 3 × 0.0002
    pairs["cheap"], pairs["costly"] = ["ngram2", "ngram2", "ngram4"], ["ngram4", "ngram8", "ngram8"]
    assert all("p_adj ≤ 0.0006" in ax.get_title() for ax in figures.transfer_scatter_figure(deltas, pairs).axes)
    # a third pair of raw p 3 × 0.0002 keeps its own Holm value whatever the floored two's: exact, not a bound
    titles = [ax.get_title() for ax in figures.transfer_scatter_figure(
        deltas, pairs.assign(spearman_p_value=[floor, floor, 3 * floor])).axes]
    assert ["p_adj ≤ 0.0006" in t for t in titles] == [True, True, False] and "p_adj 0.0006" in titles[2]


def test_transfer_scatter_counts_the_pools_both_measured_without_a_pools_column() -> None:
    deltas = transfer_deltas(10)
    deltas.iloc[0, 1] = NAN
    pairs = transfer_pairs(0.01).drop(columns="pools").assign(spearman=NAN)
    title = figures.transfer_scatter_figure(deltas, pairs).axes[0].get_title()
    assert title.startswith("n = 9 pools\nSpearman n/a\n")


# refine's figures


def test_refines_figures_draw_the_deciding_models_deltas_alone_and_count_the_screens(
        monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> None:
    """A screen's delta is on another model's scale: on one curve with the deciding model's, a
    screen-settled repeat-x8 would make the curve climb back (as the probe's ranking, it is left out)."""
    import mlflow

    from mlsandbox.workflows import refine

    rows = [("pyramid", "A", "decide", None, None), ("pyramid", "B", "screen", None, None),
            ("duplication", "duplication/repeat-x2", "decide", "repeat", 2.0),
            ("duplication", "duplication/repeat-x4", "decide", "repeat", 4.0),
            ("duplication", "duplication/repeat-x8", "screen", "repeat", 8.0)]
    table = pd.DataFrame([{"kind": k, "name": n, "fidelity": f, "strategy": s, "multiple": m, "level": 1,
                           "size": 100, "delta_pct": -1.0 if f == "decide" else 3.0} for k, n, f, s, m in rows])
    drawn: dict[str, tuple[pd.DataFrame, str]] = {}
    monkeypatch.setattr(figures, "pyramid", lambda frame, path, title: drawn.setdefault("pyramid", (frame, title)))
    monkeypatch.setattr(figures, "duplication_curves",
                        lambda frame, path, title: drawn.setdefault("duplication", (frame, title)))
    mlflow.set_experiment("refine-figures")  # in this test's store (the active one may be another test's)
    with mlflow.start_run() as run:
        refine._log(refine.RefineResult(table, comparisons=None, best=None), None, run.info.run_id, {})  # type: ignore[arg-type]
    pyramid, title = drawn["pyramid"]
    assert pyramid["label"].tolist() == ["A"]
    assert "the deciding model's 1 pools; the 1 the screen settled are in recipes.md" in title
    curve, title = drawn["duplication"]
    assert curve["r"].tolist() == [2.0, 4.0] and (curve["fidelity"] == "decide").all()
    assert "the deciding model's 2 pools; the 1 the screen settled are in recipes.md" in title


def test_figures_of_one_seed_claim_no_interval_and_no_test() -> None:
    """With one seed no row has an interval or a p-value: the axes say so instead of promising them."""
    one_seed = pd.DataFrame({"label": ["a/high", "b/low"], "delta_pct": [1.5, -2.0], "std_pct": [NAN, NAN],
                             "ci_low_pct": [NAN, NAN], "ci_high_pct": [NAN, NAN], "p_value": [NAN, NAN],
                             "p_adjusted": [NAN, NAN]})
    ax = figures.ranking_bars_figure(one_seed).axes[0]
    assert ax.get_xlabel() == "delta over random (%), mean over seeds (no interval or p-value: fewer than 2 seeds)"
    assert "Holm" not in ax.get_title() and "*" not in ax.get_title()
    curve = one_seed.assign(strategy=["repeat", "fill"], r=[2.0, 2.0]).drop(columns="label")
    ax = figures.duplication_curves_figure(curve).axes[0]
    assert ax.get_ylabel() == "delta over random (%) (no interval or p-value: fewer than 2 seeds)"
    assert "Holm-adjusted p < 0.05" not in [t.get_text() for t in ax.get_legend().get_texts()]
