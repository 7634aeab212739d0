"""The Probe-Analyze-Refine workflow on a small corpus with the n-gram proxy (seconds per cell)."""

from __future__ import annotations

import itertools
from pathlib import Path

import mlflow
import numpy as np
import pytest
from conftest import spec_dict, write_jsonl

from mlsandbox.executors.prepare import prepare
from mlsandbox.pools import FillOrigin, RepeatOrigin
from mlsandbox.spec import parse_spec
from mlsandbox.workflows.pool import single_op_pools
from mlsandbox.workflows.refine import duplication_candidates, pyramid_candidates
from mlsandbox.workflows.workflow import run_workflow

OPS = [{"name": "text_length_filter"}, {"name": "alphanumeric_filter"}, {"name": "special_characters_filter"}]


@pytest.fixture
def spec(small_corpus: Path, tmp_path: Path):
    bench = write_jsonl(tmp_path / "bench.jsonl",
                        [{"text": f"A clean sentence about topic number {i}, written plainly."} for i in range(20)])
    bench2 = write_jsonl(tmp_path / "bench2.jsonl", [{"text": f"the cat sat on mat {i}"} for i in range(20)])
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), ops=OPS, seeds=[0, 1],
                    model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench)}, {"name": "cats", "path": str(bench2)}],
                    analyze={"stat_clusters": 2, "metric_clusters": 2},
                    refine={"top_k": 2, "duplication": [1, 2, 4], "min_pool_size": 3})
    return parse_spec(raw)


def test_the_pyramid_has_2k_minus_1_nested_levels(spec) -> None:
    prepared = prepare(spec, progress=False)
    pools = [p for p in single_op_pools(prepared) if p.origin.split == "high"]
    levels = pyramid_candidates(prepared, pools)
    assert len(levels) == 2 ** 3 - 1
    assert [c.level for c in levels] == [1, 1, 1, 2, 2, 2, 3]
    rows = {frozenset(c.name.split(" & ")): set() if c.pool is None else set(c.pool.rows) for c in levels}
    for members, held in rows.items():
        for sub in itertools.combinations(members, len(members) - 1):
            if sub:  # every level is contained in each level below that it combines
                assert held <= rows[frozenset(sub)]
        assert held == set.intersection(*(set(p.rows) for p in pools if p.name in members))


def test_duplication_pools_have_the_budget_and_the_repeats(spec) -> None:
    prepared = prepare(spec, progress=False)
    pools = single_op_pools(prepared)
    top = [pools[0], pools[4]]  # text_length/low and alphanumeric/mid
    cands = duplication_candidates(prepared, top)
    top_rows = np.intersect1d(top[0].rows, top[1].rows)
    repeat = {c.pool.origin.times: c.pool for c in cands if isinstance(c.pool.origin, RepeatOrigin)}
    fill = {c.pool.origin.multiple: c.pool for c in cands if isinstance(c.pool.origin, FillOrigin)}
    for r in (1, 2, 4):
        assert repeat[r].size == r * len(top_rows) and set(repeat[r].repeats) == {r}
        assert repeat[r].rows.tolist() == top_rows.tolist()
        assert set(fill[r].repeats) == {1}
        union = set(top[0].rows) | set(top[1].rows)
        assert fill[r].size == min(r * len(top_rows), len(union))
        assert set(top_rows) <= set(fill[r].rows) <= union
    assert repeat[1].digest == fill[1].digest


def test_the_workflow_ranks_clusters_refines_reports_and_resumes(spec, tracking_uri) -> None:
    first = run_workflow(spec, progress=False)
    ranking = first.probe.ranking
    assert len(ranking) == 9 and list(ranking["rank"]) == sorted(ranking["rank"])
    assert ranking["delta_pct"].iloc[0] == ranking["delta_pct"].max()
    assert set(first.analysis.stat_clusters.labels) == {"text_len", "alnum_ratio", "special_char_ratio"}
    table = first.refined.table
    assert (table["kind"] == "pyramid").sum() == 3 and (table["kind"] == "duplication").sum() == 6
    assert {"ksigma", "percentile"} <= set(table["kind"])
    assert first.refined.best is not None
    client = mlflow.MlflowClient()
    artifacts = {a.path for d in ("probe", "analyze", "refine", "report") for a in client.list_artifacts(first.run_id, d)}
    assert {"probe/ranking.json", "probe/ranking.png", "analyze/stat_correlation.png", "analyze/clusters.yaml",
            "refine/recipes.json", "refine/best_recipe.yaml", "refine/best_recipe.data_juicer.yaml",
            "report/report.html", "report/report.md"} <= artifacts
    run = client.get_run(first.run_id)
    # refine's single-OP pyramid level and its baselines were trained by the probe: reused, not rerun
    assert run.data.metrics["cells_run"] + run.data.metrics["cells_reused"] == len(first.cells)
    assert run.data.metrics["cells_reused"] >= 2 * 2 * 2

    again = run_workflow(spec, progress=False)
    assert all(c.reused for c in again.cells)
    assert again.probe.ranking["delta_pct"].tolist() == pytest.approx(ranking["delta_pct"].tolist(), nan_ok=True)
