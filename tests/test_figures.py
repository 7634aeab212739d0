"""Every figure is written as a real PNG, including the edge cases a small sandbox run produces."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlsandbox import figures
from mlsandbox.correlation import cluster, pearson_matrix

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAN = float("nan")


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert path.stat().st_size > 5_000


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


def test_import_is_cheap_and_drawing_never_touches_pyplot(tmp_path: Path) -> None:
    script = (
        "import sys, mlsandbox; already = 'matplotlib' in sys.modules\n"
        "import mlsandbox.figures as f; import pandas as pd\n"
        "assert already or 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
        "corr = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=['a', 'b'], columns=['a', 'b'])\n"
        "from mlsandbox.correlation import cluster\n"
        f"f.dendrogram(cluster(corr, 2), {str(tmp_path / 'd.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=60)


def test_ranking_bars_with_significance_marks(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "label": ["alnum_ratio high", "text_len low", "perplexity mid", "num_words high"],
            "delta_pct": [2.5, -1.2, 0.0, 0.7],
            "std_pct": [0.4, 0.8, NAN, 0.1],
            "p_value": [0.01, 0.2, NAN, 0.04],
        }
    )
    out = figures.ranking_bars(table, tmp_path / "bars" / "ranking.png", title="OP ranking")
    assert out == tmp_path / "bars" / "ranking.png"
    assert_png(out)


@pytest.mark.parametrize("delta", [-3.0, 0.0, 4.0])
def test_ranking_bars_with_one_row_and_no_std(tmp_path: Path, delta: float) -> None:
    table = pd.DataFrame({"label": ["only"], "delta_pct": [delta], "std_pct": [NAN]})
    assert_png(figures.ranking_bars(table, tmp_path / "one.png"))


def test_ranking_bars_names_the_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing columns \['std_pct'\]"):
        figures.ranking_bars(pd.DataFrame({"label": ["a"], "delta_pct": [1.0]}), tmp_path / "x.png")


def test_correlation_heatmap_plain_and_ordered_by_a_clustering(tmp_path: Path, stats: pd.DataFrame) -> None:
    corr = pearson_matrix(stats)
    assert_png(figures.correlation_heatmap(corr, tmp_path / "plain.png"))
    assert_png(figures.correlation_heatmap(corr, tmp_path / "clustered.png", clustering=cluster(corr, 2)))


def test_correlation_heatmap_of_many_items_drops_the_numbers(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    corr = pearson_matrix(pd.DataFrame(rng.normal(size=(50, 20)), columns=[f"stat_{i}" for i in range(20)]))
    assert_png(figures.correlation_heatmap(corr, tmp_path / "many.png", clustering=cluster(corr, 4)))


def test_correlation_heatmap_rejects_a_clustering_of_other_items(tmp_path: Path, stats: pd.DataFrame) -> None:
    corr = pearson_matrix(stats)
    other = cluster(corr.iloc[:3, :3], 2)
    with pytest.raises(ValueError, match="differ"):
        figures.correlation_heatmap(corr, tmp_path / "x.png", clustering=other)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_dendrogram(tmp_path: Path, stats: pd.DataFrame, k: int) -> None:
    assert_png(figures.dendrogram(cluster(pearson_matrix(stats), k), tmp_path / f"dendrogram_{k}.png"))


def test_dendrogram_of_a_single_item(tmp_path: Path) -> None:
    single = cluster(pd.DataFrame([[1.0]], index=["alnum_ratio"], columns=["alnum_ratio"]), 1)
    assert_png(figures.dendrogram(single, tmp_path / "single.png"))


def pyramid_levels(names: list[str]) -> pd.DataFrame:
    rows = []
    for level in range(1, len(names) + 1):
        for combo in itertools.combinations(names, level):
            size = 2000 // 3**level
            rows.append(
                {
                    "label": "∩".join(combo),
                    "level": level,
                    "size": size,
                    "delta_pct": level - 1.5,
                    "std_pct": 0.3,
                }
            )
    return pd.DataFrame(rows)


def test_pyramid_of_three_ops(tmp_path: Path) -> None:
    assert_png(figures.pyramid(pyramid_levels(["alnum_ratio", "text_len", "perplexity"]), tmp_path / "p.png"))


def test_pyramid_with_an_empty_intersection_and_no_std(tmp_path: Path) -> None:
    levels = pyramid_levels(["A", "B"]).drop(columns="std_pct")
    levels.loc[levels["level"] == 2, ["size", "delta_pct"]] = [0, NAN]
    assert_png(figures.pyramid(levels, tmp_path / "p.png"))


def test_pyramid_of_one_box(tmp_path: Path) -> None:
    levels = pd.DataFrame({"label": ["A"], "level": [1], "size": [500], "delta_pct": [-0.4]})
    assert_png(figures.pyramid(levels, tmp_path / "p.png"))


def test_duplication_curves(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        [
            {"strategy": s, "r": r, "delta_pct": d, "std_pct": NAN if r == 8 else 0.5}
            for s, ds in (
                ("repeat top pool", [1.0, 0.4, -0.3, -1.1]),
                ("fill from lower levels", [1.0, 1.3, 1.6, 1.4]),
            )
            for r, d in zip((1, 2, 4, 8), ds)
        ]
    )
    assert_png(figures.duplication_curves(frame, tmp_path / "dup.png"))
    assert_png(figures.duplication_curves(frame.drop(columns="std_pct").head(1), tmp_path / "one.png"))


def test_duplication_curves_rejects_repeated_points(tmp_path: Path) -> None:
    frame = pd.DataFrame({"strategy": ["a", "a"], "r": [2, 2], "delta_pct": [1.0, 2.0]})
    with pytest.raises(ValueError, match="more than one row"):
        figures.duplication_curves(frame, tmp_path / "x.png")


def test_history_curve(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=30)
    values[4] = NAN
    frame = pd.DataFrame({"trial": np.arange(30), "value": values})
    assert_png(figures.history_curve(frame, tmp_path / "history.png"))
    two = pd.concat([frame.assign(series="tpe"), frame.assign(series="random", value=values - 1)])
    assert_png(figures.history_curve(two, tmp_path / "two.png", direction="minimize"))


def test_duplication_curves_accept_the_multiple_column_of_the_recipe_table(tmp_path: Path) -> None:
    frame = pd.DataFrame({"strategy": ["repeat", "repeat"], "multiple": [2.0, 4.0], "delta_pct": [0.5, 0.2]})
    assert_png(figures.duplication_curves(frame, tmp_path / "dup.png"))


def test_duplication_curves_reject_a_missing_or_non_positive_multiple(tmp_path: Path) -> None:
    frame = pd.DataFrame({"strategy": ["a", "a"], "r": [0.0, NAN], "delta_pct": [1.0, 2.0]})
    with pytest.raises(ValueError, match="positive budget multiple"):
        figures.duplication_curves(frame, tmp_path / "x.png")


def test_ranking_bars_with_an_unmeasured_row(tmp_path: Path) -> None:
    table = pd.DataFrame({"label": ["a", "b"], "delta_pct": [1.0, NAN], "std_pct": [0.2, NAN]})
    assert_png(figures.ranking_bars(table, tmp_path / "bars.png"))
