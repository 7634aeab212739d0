"""The stats table and its summaries (Data-Juicer's DataAnalyzer view)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlsandbox.data import ID
from mlsandbox.ops import Op

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


@dataclass
class StatsTable:
    """Stats of one dataset: a frame with ``id`` then one column per stat key, in dataset order."""

    frame: pd.DataFrame
    dataset_digest: str
    ops: list[Op]
    computed: list[str]  # OP names computed now (the rest came from the cache)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> np.ndarray:
        return self.frame[ID].to_numpy()

    def stat(self, key: str) -> np.ndarray:
        if key not in self.frame.columns:
            known = ", ".join(c for c in self.frame.columns if c != ID)
            raise KeyError(f"no stat {key!r} in the stats table (stats: {known})")
        return self.frame[key].to_numpy()

    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(f"OP {name!r} is not in this stats table (OPs: {', '.join(o.name for o in self.ops)})")

    def numeric_keys(self) -> list[str]:
        return [c for c in self.frame.columns if c != ID and pd.api.types.is_numeric_dtype(self.frame[c])]


def summarize(stats: StatsTable) -> pd.DataFrame:
    """Per-stat summary (count, mean, std, min, percentiles, max): Data-Juicer's DataAnalyzer view."""
    rows = {}
    for key in stats.numeric_keys():
        values = stats.frame[key].astype(float)
        row = {"count": int(values.count()), "mean": values.mean(), "std": values.std(ddof=0),
               "min": values.min()}
        row.update({f"p{p}": v for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))})
        row["max"] = values.max()
        rows[key] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def summary_markdown(summary: pd.DataFrame) -> str:
    """:func:`summarize`'s table as Markdown: counts whole, values to 6 significant digits (a count of
    12,782 read ``1.278e+04`` at 4)."""
    return summary.to_markdown(floatfmt=["", *(".0f" if c == "count" else ".6g" for c in summary.columns)])


def categorical_summary(stats: StatsTable, top: int = 10) -> dict[str, dict[str, int]]:
    """Most frequent values of non-numeric stats (e.g. ``lang``)."""
    keys = [c for c in stats.frame.columns if c != ID and c not in stats.numeric_keys()]
    return {k: stats.frame[k].value_counts().head(top).to_dict() for k in keys}
