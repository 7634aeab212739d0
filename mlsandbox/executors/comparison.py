"""What a step measured: each pool's cells against its per-seed random controls, and their table."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlsandbox.delta import DeltaSummary, adjust_summaries, summarize_deltas
from mlsandbox.executors.cell_result import CellResult
from mlsandbox.executors.fidelity import DECIDE, SCREEN
from mlsandbox.pools import Pool

#: Table order of the fidelities: the deciding model's rows rank before the screen's.
FIDELITY_ORDER = {DECIDE: 0, SCREEN: 1}


@dataclass
class PoolComparison:
    pool: Pool
    summary: DeltaSummary | None  # None when every seed's cell (or its baseline) failed
    cells: list[CellResult]
    baselines: dict[int, CellResult]  # seed -> the cell of that seed's random control
    fidelity: str = DECIDE  # which model measured it (see executors.fidelity)
    looks: int = 1  # the tests a seed race may take at it (see delta.summarize_deltas)

    def paired(self) -> list[tuple[CellResult, CellResult]]:
        """(pool cell, baseline cell) of every seed where both finished."""
        return [(c, self.baselines[c.seed]) for c in self.cells if c.ok and self.baselines[c.seed].ok]

    @property
    def failed(self) -> int:
        return sum(not c.ok for c in self.cells)

    def summarize(self) -> PoolComparison:
        """Set the summary from the paired cells (None without a pair); p_adjusted is set by the step."""
        pairs = self.paired()
        self.summary = summarize_deltas([c.scores for c, _ in pairs], [b.scores for _, b in pairs],
                                        self.looks) if pairs else None
        return self


@dataclass
class Comparisons:
    """The comparisons of one step, with every cell it ran or reused (baselines included).

    ``items`` holds one decision per pool: the deciding model's where it measured the pool, else
    the screen's. ``screened`` holds the screen's measurement of every pool (empty without one).
    ``carried`` holds pools an earlier step already decided, with that step's numbers and Holm
    family (refine's single-OP pools are the probe's): not measured, logged or corrected again.
    """

    items: list[PoolComparison] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    screened: list[PoolComparison] = field(default_factory=list)
    carried: list[PoolComparison] = field(default_factory=list)

    def decisions(self) -> list[PoolComparison]:
        """Every pool the step reports: the ones it measured, then the ones it carried."""
        return self.items + self.carried

    def carries(self, item: PoolComparison) -> bool:
        """Whether ``item`` was decided by an earlier step (and belongs to that step's family)."""
        return any(item is c for c in self.carried)

    def table(self) -> pd.DataFrame:
        """One row per pool: size, unique samples, delta mean ± std (%) with its 95% interval,
        p-value, Holm-adjusted p-value (within the fidelity that decided it), seeds, failed cells,
        the fidelity that decided it, rank (the deciding model's rows first, then by delta)."""
        screen = {c.pool.digest: c.summary for c in self.screened}
        rows = []
        for c in self.items:
            s = c.summary
            row = {"pool": c.pool.name, "op": c.pool.op or "", "split": c.pool.origin.split,
                   "size": c.pool.size, "unique": c.pool.unique_size, **summary_columns(s),
                   "seeds": s.seeds if s else 0, "failed": c.failed, "fidelity": c.fidelity}
            if screen:
                row.update(screen_columns(screen.get(c.pool.digest)))
            rows.append(row)
        table = pd.DataFrame(rows)
        if not table.empty:
            fidelity = table["fidelity"].map(FIDELITY_ORDER).fillna(len(FIDELITY_ORDER))  # a transfer label: one model
            order = table.assign(_f=fidelity, _d=-table["delta_pct"])
            ranked = order.sort_values(["_f", "_d"], na_position="last", kind="stable")
            position = pd.Series(range(1, len(table) + 1), index=ranked.index)
            rank = position.groupby([ranked["_f"], ranked["_d"]]).transform("min")  # a tie shares its rank
            table["rank"] = rank.where(table["delta_pct"].notna()).astype("Int64")
        return table

    def at(self, fidelity: str) -> list[PoolComparison]:
        """The decisions made at one fidelity."""
        return [c for c in self.items if c.fidelity == fidelity]

    def family(self, fidelity: str) -> list[PoolComparison]:
        """The Holm family of a decision at ``fidelity``: every pool the screen measured (its decisions are
        among them), else the decisions at that fidelity (the deciding model's; each model's of a transfer)."""
        return (self.screened or self.at(SCREEN)) if fidelity == SCREEN else self.at(fidelity)

    def adjust(self) -> None:
        """Holm's correction within each fidelity's family: every pool the screen measured (the
        screen's decisions are among them), and each other fidelity's decisions (the deciding
        model's; each model's of a transfer). A pool that two OPs select alike (the same digest,
        so the same cells) is one test of the family, as refine counts it."""
        for family in map(self.family, {*(c.fidelity for c in self.items), SCREEN}):
            first: dict[str, PoolComparison] = {}  # each distinct pool's first item with a p-value, else its first
            for c in family:
                if c.pool.digest not in first or _tested(c) and not _tested(first[c.pool.digest]):
                    first[c.pool.digest] = c
            adjusted = dict(zip(first, adjust_summaries([c.summary for c in first.values()])))
            for item in family:
                summary = adjusted[item.pool.digest]
                if item.summary is not None and summary is not None and _tested(item):  # a row without a p-value keeps none
                    item.summary = dataclasses.replace(item.summary, p_adjusted=summary.p_adjusted)


def _tested(item: PoolComparison) -> bool:
    return item.summary is not None and bool(np.isfinite(item.summary.p_value))


def family_size(items: Iterable[PoolComparison]) -> int:
    """How many tests Holm's correction of ``items`` counts: their distinct pools with a p-value."""
    return len({c.pool.digest for c in items if _tested(c)})


def _pct(summary: DeltaSummary | None) -> float:
    return summary.mean_pct if summary else np.nan


def screen_columns(summary: DeltaSummary | None) -> dict[str, float]:
    """The screen's delta of a pool with its 95% interval and Holm-adjusted p (within the screen's family):
    a delta shown is a claim, whichever model measured it."""
    columns = summary_columns(summary)
    return {f"screen_{name}": columns[name] for name in ("delta_pct", "ci_low_pct", "ci_high_pct", "p_adjusted")}


def summary_columns(summary: DeltaSummary | None) -> dict[str, float]:
    """The table columns of a pool's delta summary (%, p-values); NaN where it was not measured."""
    s = summary
    return {"delta_pct": _pct(s), "std_pct": s.std_pct if s else np.nan,
            "ci_low_pct": s.ci_low_pct if s else np.nan, "ci_high_pct": s.ci_high_pct if s else np.nan,
            "p_value": s.p_value if s else np.nan, "p_adjusted": s.p_adjusted if s else np.nan}
