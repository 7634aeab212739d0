"""Cheap answers: the race's stopping rule, the screen's cut, and a probe measured at two fidelities."""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import mixed_document, spec_dict, write_jsonl

from mlsandbox import figures
from mlsandbox.delta import DeltaSummary, holm, summarize_deltas
from mlsandbox.executors.cell_result import FIDELITY
from mlsandbox.executors.compare import _race
from mlsandbox.executors.comparison import Comparisons, PoolComparison
from mlsandbox.executors.fidelity import DECIDE, SCREEN, Fidelity
from mlsandbox.executors.race import certainly_in, certainly_out, open_after_screen, still_open
from mlsandbox.progress import Progress, resolve
from mlsandbox.spec import NgramSpec, SpecError, parse_spec
from mlsandbox.workflows.workflow import run_workflow


@dataclass
class _Pool:
    op: str | None
    digest: str = field(default_factory=lambda: uuid.uuid4().hex)  # each pool its own (id() of a temporary repeats)
    size: int = 100


@dataclass
class _Item:
    """What the race reads of a comparison: its pool's OP and its summary's interval."""

    pool: _Pool
    summary: DeltaSummary | None


def item(op: str, low: float, high: float) -> _Item:
    mean = (low + high) / 2
    return _Item(_Pool(op), DeltaSummary((mean,), mean, 0.0, 0.5, low, high))


def test_a_pool_is_out_when_k_other_ops_are_surely_above_it() -> None:
    a, b, c = item("a", 5, 7), item("b", 3, 4), item("c", 1, 2)
    items = [a, b, c]
    assert certainly_out(c, items, k=2) and not certainly_out(b, items, k=2)
    assert certainly_out(b, items, k=1)
    # two splits of one OP take one place of the top-k: c is not out of a top-2 held by "a" alone
    a_low = item("a", 3, 4)
    assert not certainly_out(c, [a, a_low, c], k=2)
    # nor is a pool out of the top-1 because its own OP's other split is above it: that OP's place is its own
    assert not certainly_out(a_low, [a, a_low, c], k=1)


def test_a_pool_is_in_when_fewer_than_k_other_ops_can_reach_above_it() -> None:
    a, b, c = item("a", 5, 7), item("b", 3, 6), item("c", 1, 2)
    assert certainly_in(a, [a, b, c], k=2) and not certainly_in(a, [a, b, c], k=1)


def test_a_pool_races_on_until_it_is_settled_and_its_place_is_certain() -> None:
    a, b, c = item("a", 5, 7), item("b", -1, 6), item("c", -3, -2)
    items = [a, b, c]
    assert still_open(a, items, k=1)  # ... but b may still be better: its place is open
    assert not still_open(a, [a, c], k=1)  # settled and surely the best: done
    assert still_open(b, items, k=2)  # its interval covers zero
    assert not still_open(c, items, k=1)  # surely out of the top-1
    assert not still_open(_Item(_Pool("d"), None), items, k=1)  # every cell failed


def test_the_screen_keeps_its_best_pools_and_every_undecided_one() -> None:
    best, second, clear_loser, unsure = item("a", 5, 7), item("b", 4, 4.5), item("c", -9, -8), item("d", -1, 1)
    keep = open_after_screen([best, second, clear_loser, unsure], k=1, margin=2)
    assert keep == [True, True, False, True]
    assert open_after_screen([best, second, clear_loser, unsure], k=1, margin=1) == [True, False, False, True]


class _FakeBench:
    """Per-seed deltas of known effects and noise, in place of trained cells."""

    def __init__(self, effects: dict[str, float], noise: float) -> None:
        self.effects, self.noise, self.progress = effects, noise, Progress(0, "cells", "cell", "off")
        self.seeds: dict[str, int] = {}

    def measure(self, pools: list[_Pool], seeds: tuple[int, ...], level: Fidelity) -> list[_Item]:
        out = []
        for pool in pools:
            self.seeds[pool.op] = len(seeds)
            rng = np.random.default_rng([len(pool.op), 7])
            deltas = self.effects[pool.op] + rng.normal(0, self.noise, len(seeds))
            baseline = [{"b": 1.0}] * len(seeds)
            out.append(_Item(pool, summarize_deltas([{"b": 1 + d} for d in deltas], baseline, level.looks)))
        return out


def test_clear_pools_stop_at_the_minimum_and_close_ones_race_to_the_maximum() -> None:
    effects = {"clear_best": 0.20, "clear_loser": -0.20, "close_a": 0.01, "close_b": 0.012}
    bench = _FakeBench(effects, noise=0.004)
    level = Fidelity(DECIDE, NgramSpec(), (0, 1, 2, 3, 4, 5), min_seeds=3)
    items = _race(bench, [_Pool(op) for op in effects], level, k=2)  # type: ignore[arg-type]
    assert bench.seeds["clear_best"] == 3 and bench.seeds["clear_loser"] == 3
    assert bench.seeds["close_a"] == bench.seeds["close_b"] == 6  # which of them is second stays open
    assert [i.summary.seeds for i in items] == [3, 3, 6, 6]
    assert all(i.summary.looks == 4 for i in items)  # type: ignore[union-attr]



class _NullBench:
    """Pools that are no better than random: each is one draw of documents, scored the same on
    every seed (a seed-independent model), against a fresh random control per seed."""

    def __init__(self, pools: int, seeds: int, correct: bool) -> None:
        rng = np.random.default_rng(11)
        self.deltas = rng.normal(0, 0.01, (pools, 1)) - rng.normal(0, 0.01, (pools, seeds))
        self.correct, self.progress = correct, Progress(0, "cells", "cell", "off")

    def measure(self, pools: list[_Pool], seeds: tuple[int, ...], level: Fidelity) -> list[_Item]:
        n, looks = len(seeds), level.looks if self.correct else 1
        return [_Item(pool, summarize_deltas([{"b": 1 + d} for d in self.deltas[int(pool.op), :n]], [{"b": 1.0}] * n,
                                             looks)) for pool in pools]


@pytest.mark.parametrize("correct", [True, False])
def test_racing_seeds_keeps_the_p_values_error_rate(correct: bool) -> None:
    # A pool races on while its interval holds 0 and stops once it excludes 0 (5 to 8 seeds): tested
    # up to 4 times, an uncorrected 5% test rejects a null pool about
    # twice as often; corrected for the looks it stays at or below 5%.
    pools, level = 1500, Fidelity(DECIDE, NgramSpec(), tuple(range(8)), min_seeds=5)
    bench = _NullBench(pools, level.max_seeds, correct)
    rejected = [_race(bench, [_Pool(str(i))], level, k=1)[0].summary.p_value < 0.05  # type: ignore[arg-type,union-attr]
                for i in range(pools)]
    rate = float(np.mean(rejected))
    assert (rate <= 0.055) if correct else (rate > 0.075), rate

def test_progress_counts_reused_cells_apart_and_grows(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mlsandbox.progress")
    with Progress(4, "probe cells", "cell", "lines") as bar:
        bar.advance(1, "random-10 seed 0", reused=True)
        bar.add(2)
        for _ in range(5):
            bar.advance(1, "pool seed 1")
    assert bar.done == bar.total == 6 and bar.reused == 1
    assert "probe cells: 6/6 cells (100%), 1 reused, pool seed 1" in caplog.text


def test_a_long_wait_is_reported_naming_the_item_under_way(caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow cell in the middle of a step: lines keep coming while it runs, none once the step is over."""
    caplog.set_level(logging.INFO, logger="mlsandbox.progress")
    monkeypatch.setattr("mlsandbox.progress.LINE_INTERVAL_S", 0.1)
    with Progress(2, "probe cells", "cell", "lines") as bar:
        bar.working("decide pool seed 0 (running)")
        deadline = time.monotonic() + 10
        while "decide pool seed 0 (running)" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "probe cells: 0/2 cells (0%), decide pool seed 0 (running)" in caplog.text
    lines = len(caplog.records)
    time.sleep(0.5)
    assert len(caplog.records) == lines  # the step ended: its reporter with it


@pytest.mark.parametrize("columns, style", [(0, "lines"), (80, "bar")])
def test_a_terminal_without_columns_gets_lines(monkeypatch: pytest.MonkeyPatch, columns: int, style: str) -> None:
    """A pseudo-terminal given no size (``docker exec -t``, some CI runners) draws no bar at all."""
    class Terminal:
        def isatty(self) -> bool:
            return True

        def fileno(self) -> int:
            return 2

    monkeypatch.setattr("mlsandbox.progress.sys.stderr", Terminal())
    monkeypatch.setattr("mlsandbox.progress.os.get_terminal_size", lambda fd: os.terminal_size((columns, 24)))
    assert resolve("auto") == style


def test_time_left_is_not_inflated_by_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers that spend 20 s loading before their first batch, then 1 s per batch: the time left
    after three batches is that of the seven still to do at 1 s each, not 22 s / 3 per batch."""
    clock = iter([0.0, 20.0, 22.0])  # start, the first batch done, now (the third done)
    monkeypatch.setattr("mlsandbox.progress.time.monotonic", lambda: next(clock))
    bar = Progress(10, "stats", "batch", "off")
    assert bar.seconds_left() is None
    bar.advance(1)
    assert bar.seconds_left() is None  # one batch's time holds the start-up: no estimate yet
    for _ in range(2):
        bar.advance(1)
    assert bar.seconds_left() == pytest.approx(7.0)


def test_time_left_leaves_out_the_cells_known_to_be_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An n-gram pool trains once and its other seeds reuse that cell: 10 cells, 4 of them such
    repeats. After the first round and one more cell at 1 s each, 4 cells still train, not 8."""
    clock = iter([0.0, 20.0, 21.0, 21.0, 21.0])
    monkeypatch.setattr("mlsandbox.progress.time.monotonic", lambda: next(clock))
    bar = Progress(0, "probe cells", "cell", "off")
    bar.add(10, reusing=4)
    bar.advance(1)
    bar.advance(1)
    assert bar.seconds_left() == pytest.approx(4.0)
    bar.advance(2, reused=True)  # two of the repeats came
    assert bar.seconds_left() == pytest.approx(4.0)


def test_time_left_waits_for_the_end_of_the_first_round_of_parallel_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers that each take 7 s per batch end their first batches together: the second's
    0.01 s after the first is no rate (it would promise the whole pass in a second)."""
    now = [0.0]
    monkeypatch.setattr("mlsandbox.progress.time.monotonic", lambda: now[0])
    bar = Progress(10, "stats", "batch", "off", parallel=2)
    for t in (7.0, 7.01):
        now[0] = t
        bar.advance(1)
        assert bar.seconds_left() is None
    for t in (14.0, 14.01):
        now[0] = t
        bar.advance(1)
    assert bar.seconds_left() == pytest.approx(6 * 7.0 / 2)  # 6 batches left at two per 7 s



@pytest.fixture
def raced_spec(tmp_path: Path) -> dict:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": f"doc-{i:03d}", "text": mixed_document(i)} for i in range(120)])
    bench = write_jsonl(tmp_path / "bench.jsonl",
                        [{"text": f"A clean sentence about topic number {i}, written plainly."} for i in range(20)])
    return spec_dict(corpus, workspace=str(tmp_path / "ws"), seeds=[0, 1, 2, 3],
                     ops=[{"name": "text_length_filter"}, {"name": "alphanumeric_filter"},
                          {"name": "special_characters_filter"}],
                     model={"type": "ngram", "order": 3},
                     screen={"model": {"type": "ngram", "order": 1}, "seeds": [0, 1, 2], "margin": 1},
                     race={"min_seeds": 2, "max_seeds": 4},
                     benchmarks=[{"name": "clean", "path": str(bench)}],
                     refine={"top_k": 1, "duplication": [1, 2], "min_pool_size": 3})


def test_a_probe_screens_every_pool_and_races_the_open_ones(raced_spec: dict, tracking_uri: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_spec(raced_spec)
    drawn: dict[str, int] = {}
    bars = figures.ranking_bars
    monkeypatch.setattr(figures, "ranking_bars", lambda *a, looks=None, **kw: bars(*a, looks=drawn.setdefault("looks", looks), **kw))
    result = run_workflow(spec, until="probe", progress=False)
    assert drawn["looks"] == 3  # seeds 2, 3, 4: the figure's intervals say they are race-corrected
    comparisons = result.probe.comparisons
    assert len(comparisons.screened) == len(comparisons.items) == 9  # 3 OPs x 3 splits
    assert all(c.fidelity == SCREEN and c.summary.seeds == 3 for c in comparisons.screened)
    kept = open_after_screen(comparisons.screened, k=1, margin=1)
    decided = [c for c in comparisons.items if c.fidelity == DECIDE]
    assert 0 < len(decided) < 9  # the screen settled some pools, the deciding model the rest
    assert sorted(c.pool.name for c in decided) == sorted(
        c.pool.name for c, k in zip(comparisons.screened, kept) if k)
    for c in decided:
        assert 2 <= c.summary.seeds <= 4
        if c.summary.seeds < 4:  # stopped early: at its last round it was no longer open
            assert not still_open(c, decided, k=1)
    ranking = result.probe.ranking.dropna(subset=["rank"])
    fidelity_order = [0 if f == DECIDE else 1 for f in ranking["fidelity"]]
    assert fidelity_order == sorted(fidelity_order)  # the deciding model's rows rank first
    assert "screen_delta_pct" in ranking
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`mlsandbox.kind` = 'cell'")
    assert set(runs[f"tags.{FIDELITY}"]) == {SCREEN, DECIDE}
    again = run_workflow(spec, until="probe", progress=False)
    assert all(c.reused for c in again.cells)
    assert again.probe.ranking.equals(result.probe.ranking)


def test_the_race_needs_as_many_seeds_as_its_maximum(raced_spec: dict) -> None:
    raced_spec["seeds"] = [0, 1, 2]
    with pytest.raises(SpecError, match=r"race.max_seeds: needs that many `seeds`, and there are 3 \(got 4\)"):
        parse_spec(raced_spec)


def test_the_screens_decisions_are_corrected_across_every_pool_it_screened() -> None:
    """A pool the screen settled was one test among all it screened, not among the few it settled."""
    def measured(low: float, high: float, fidelity: str) -> PoolComparison:
        summary = summarize_deltas([{"a": 1 + low}, {"a": 1 + high}, {"a": 1 + (low + high) / 2}], [{"a": 1.0}] * 3)
        return PoolComparison(_Pool("x"), summary, [], {}, fidelity)  # type: ignore[arg-type]

    screened = [measured(d, 1.5 * d, SCREEN) for d in (0.01, 0.02, 0.03, 0.04)]
    comparisons = Comparisons(items=[screened[0], measured(0.05, 0.07, DECIDE)], screened=screened)
    comparisons.adjust()
    assert comparisons.items[0].summary.p_adjusted == holm([c.summary.p_value for c in screened])[0]
    assert comparisons.items[1].summary.p_adjusted == comparisons.items[1].summary.p_value  # a family of one


def test_a_pool_two_ops_select_alike_is_one_test_of_holms_family() -> None:
    """Two OPs whose stats order the data alike select one pool (one digest, the same cells): it was
    counted twice, which made the correction stricter than the pools compared warrant."""
    from types import SimpleNamespace

    def measured(name: str, digest: str, low: float, high: float) -> PoolComparison:
        summary = summarize_deltas([{"a": 1 + low}, {"a": 1 + high}, {"a": 1 + (low + high) / 2}], [{"a": 1.0}] * 3)
        pool = SimpleNamespace(name=name, op=name, origin=SimpleNamespace(split="high"), size=10, unique_size=10,
                               digest=digest)
        return PoolComparison(pool, summary, [], {}, DECIDE)  # type: ignore[arg-type]

    items = [measured("a", "same", 0.01, 0.015), measured("b", "same", 0.01, 0.015), measured("c", "other", 0.02, 0.03)]
    comparisons = Comparisons(items=items)
    comparisons.adjust()
    expected = holm([items[0].summary.p_value, items[2].summary.p_value])
    assert [c.summary.p_adjusted for c in comparisons.items] == [expected[0], expected[0], expected[1]]
    items[0].summary = None  # every cell of the pool failed under its first name, not under its second
    comparisons.adjust()
    assert [c.summary.p_adjusted for c in comparisons.items[1:]] == [expected[0], expected[1]]
    one_seed = summarize_deltas([{"a": 1.01}], [{"a": 1.0}])  # the same pool under a name with one seed: no p-value
    items[0].summary = one_seed
    comparisons.adjust()
    assert math.isnan(comparisons.items[0].summary.p_adjusted) and comparisons.items[1].summary.p_adjusted == expected[0]


def test_pools_with_the_same_delta_share_their_rank() -> None:
    """A model that gives pools one delta (a constant one: all 0) ranks none above another."""
    from types import SimpleNamespace

    def measured(name: str, delta: float, fidelity: str) -> PoolComparison:
        summary = summarize_deltas([{"a": 1 + delta}] * 2, [{"a": 1.0}] * 2)
        pool = SimpleNamespace(name=name, op="op", origin=SimpleNamespace(split=name), size=10, unique_size=10,
                               digest=name)
        return PoolComparison(pool, summary, [], {}, fidelity)  # type: ignore[arg-type]

    for fidelity in (DECIDE, "ngram2"):  # a transfer's models are labelled by name
        items = [measured("a", 0.01, fidelity), measured("b", 0.02, fidelity), measured("c", 0.01, fidelity)]
        assert Comparisons(items=items).table().set_index("pool")["rank"].to_dict() == {"b": 1, "a": 2, "c": 2}


def _lines_before_each_round(bench: _FakeBench) -> list[str]:
    """What the progress line says as each round of cells starts (its counts, not its clock)."""
    shown: list[str] = []
    measure = bench.measure

    def measured(pools: list[_Pool], seeds: tuple[int, ...], level: Fidelity) -> list[_Item]:
        shown.append(bench.progress.summary().split(", 0:")[0])
        return measure(pools, seeds, level)

    bench.measure = measured  # type: ignore[method-assign]
    return shown


def test_a_race_says_how_many_cells_it_may_still_add() -> None:
    """At 100% of the cells announced, a step whose pools still race does not look finished."""
    effects = {"clear": 0.20, "close_a": 0.01, "close_b": 0.012}
    bench = _FakeBench(effects, noise=0.004)
    bench.progress = Progress(9, "probe cells", "cell", "off")
    bench.progress.advance(9, "close_b seed 2")
    shown = _lines_before_each_round(bench)
    level = Fidelity(DECIDE, NgramSpec(), (0, 1, 2, 3, 4), min_seeds=3)
    _race(bench, [_Pool(op) for op in effects], level, k=2)  # type: ignore[arg-type]
    # while the first 3 seeds run, any pool may race on for 2 more seeds (3 pools + 1 control size
    # per seed); while the 4th runs, the two close ones may still take a 5th
    assert shown == ["probe cells: 9/9 cells (100%), up to 8 more while pools race, close_b seed 2",
                     "probe cells: 9/9 cells (100%), up to 3 more while pools race, close_b seed 2",
                     "probe cells: 9/9 cells (100%), close_b seed 2"]
    assert "up to" not in bench.progress.summary()  # the race is over


def test_a_screen_says_how_many_cells_the_deciding_model_may_add() -> None:
    bench = _FakeBench({"a": 0.2, "b": 0.01}, noise=0.004)
    shown = _lines_before_each_round(bench)
    _race(bench, [_Pool("a"), _Pool("b")], Fidelity(SCREEN, NgramSpec(), (0, 1), min_seeds=2), k=1,  # type: ignore[arg-type]
          later=9)
    assert shown == ["cells: 0/0 cells (100%), up to 9 more for the deciding model"]
    assert bench.progress.possible == 0  # the screen is over: the deciding model's race announces its own
