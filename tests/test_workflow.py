"""The Probe-Analyze-Refine workflow on a small corpus with the n-gram proxy (seconds per cell).

One workflow run, and one rerun of it, are shared by the tests of this module: each test reads
one behaviour off them.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import mixed_document, spec_dict, write_jsonl

from mlsandbox import figures, tracking
from mlsandbox.delta import DeltaSummary, holm, relative_delta, summarize_deltas
from mlsandbox.errors import PoolError, SpecError
from mlsandbox.executors.comparison import Comparisons
from mlsandbox.executors.fidelity import DECIDE, SCREEN
from mlsandbox.executors.prepare import prepare
from mlsandbox.pools import FillOrigin, RandomOrigin, RepeatOrigin, cut_splits
from mlsandbox.spec import ExperimentSpec, parse_spec
from mlsandbox.workflows.pool import single_op_pools
from mlsandbox.workflows.probe import headline_metrics
from mlsandbox.workflows.refine import (
    FILL,
    REPEAT,
    duplication_points,
    duplication_strategy,
    top_pools,
)
from mlsandbox.workflows.refine_candidates import duplication_candidates, pyramid_candidates
from mlsandbox.workflows.report import Answer, answer_of_run
from mlsandbox.workflows.workflow import WorkflowResult, answer_of, run_workflow

OPS = [{"name": "text_length_filter"}, {"name": "alphanumeric_filter"}, {"name": "special_characters_filter"}]
STAT_OF = {"text_length_filter": "text_len", "alphanumeric_filter": "alnum_ratio",
           "special_characters_filter": "special_char_ratio"}



@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> ExperimentSpec:
    root = tmp_path_factory.mktemp("workflow")
    corpus = write_jsonl(root / "corpus.jsonl",
                         [{"id": f"doc-{i:03d}", "text": mixed_document(i), "source": "test"} for i in range(90)])
    bench = write_jsonl(root / "bench.jsonl",
                        [{"text": f"A clean sentence about topic number {i}, written plainly."} for i in range(20)])
    bench2 = write_jsonl(root / "bench2.jsonl", [{"text": f"the cat sat on mat {i}"} for i in range(20)])
    raw = spec_dict(corpus, workspace=str(root / "ws"), ops=OPS, seeds=[0, 1],
                    model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench)}, {"name": "cats", "path": str(bench2)}],
                    analyze={"stat_clusters": 2, "metric_clusters": 2},
                    refine={"top_k": 2, "duplication": [1, 2, 4], "min_pool_size": 3})
    return parse_spec(raw)


@pytest.fixture(scope="module")
def workflow(spec: ExperimentSpec, module_store: str) -> WorkflowResult:
    """The whole workflow, run once in an empty store."""
    return run_workflow(spec, progress=False)


@pytest.fixture(scope="module")
def rerun(spec: ExperimentSpec, workflow: WorkflowResult) -> WorkflowResult:
    """The same workflow again, after the first one finished."""
    return run_workflow(spec, progress=False)


def _artifact_paths(run_id: str, folder: str | None = None) -> set[str]:
    paths: set[str] = set()
    for entry in mlflow.MlflowClient().list_artifacts(run_id, folder):
        paths |= _artifact_paths(run_id, entry.path) if entry.is_dir else {entry.path}
    return paths


def _whole_splits(prepared) -> dict[str, set[int]]:
    """Every split's samples before subsampling, by pool name."""
    return {c.name: set(c.rows.tolist()) for op in OPS
            for c in cut_splits(prepared.stats, op["name"], prepared.spec.pools)}


def test_the_pyramid_has_2k_minus_1_nested_levels(spec: ExperimentSpec) -> None:
    prepared = prepare(spec, progress=False)
    pools = [p for p in single_op_pools(prepared) if p.origin.split == "high"]
    levels = pyramid_candidates(prepared, pools)
    assert len(levels) == 2 ** 3 - 1
    assert [c.level for c in levels] == [1, 1, 1, 2, 2, 2, 3]
    whole = _whole_splits(prepared)
    rows = {frozenset(c.name.split(" & ")): set() if c.pool is None else set(c.pool.rows) for c in levels}
    for c in levels:
        members = frozenset(c.name.split(" & "))
        if c.level == 1:  # the probe's pool itself: its split, subsampled
            assert c.pool in pools and rows[members] <= whole[c.name]
            continue
        # higher levels: the samples of every one of their whole splits, nested level by level
        assert rows[members] == set.intersection(*(whole[m] for m in members))
        for sub in itertools.combinations(members, len(members) - 1):
            if len(sub) > 1:
                assert rows[members] <= rows[frozenset(sub)]
    for c in levels:  # each candidate is what its recipe selects
        if c.pool is not None:
            assert c.recipe.select(prepared.stats).digest == c.pool.digest


def test_duplication_pools_have_the_budget_and_the_repeats(spec: ExperimentSpec) -> None:
    prepared = prepare(spec, progress=False)
    pools = single_op_pools(prepared)
    top = [pools[0], pools[4]]  # text_length/low and alphanumeric/mid
    assert [p.name for p in top] == ["text_length_filter/low", "alphanumeric_filter/mid"]
    cands = duplication_candidates(prepared, top)
    whole = _whole_splits(prepared)
    top_rows = sorted(whole[top[0].name] & whole[top[1].name])
    repeat = {c.pool.origin.times: c.pool for c in cands if isinstance(c.pool.origin, RepeatOrigin)}
    fill = {c.pool.origin.multiple: c.pool for c in cands if isinstance(c.pool.origin, FillOrigin)}
    assert sorted(repeat) == sorted(fill) == [1, 2, 4]
    union = whole[top[0].name] | whole[top[1].name]
    for r in (1, 2, 4):
        assert repeat[r].size == r * len(top_rows) and set(repeat[r].repeats) == {r}
        assert repeat[r].rows.tolist() == top_rows
        assert set(fill[r].repeats) == {1}
        assert fill[r].size == min(r * len(top_rows), len(union))
        assert set(top_rows) <= set(fill[r].rows) <= union
    assert repeat[1].digest == fill[1].digest
    for c in cands:  # repeats are thresholds with a repeat rate; fills are id lists, reproduced exactly
        assert c.exact == (c.recipe.ids is None) == isinstance(c.pool.origin, RepeatOrigin)
        assert c.recipe.select(prepared.stats).digest == c.pool.digest


def test_the_probe_ranks_every_op_split_once_best_first(workflow: WorkflowResult) -> None:
    ranking = workflow.probe.ranking
    assert sorted(ranking["pool"]) == sorted(f"{op['name']}/{s}" for op in OPS for s in ("low", "mid", "high"))
    assert ranking["rank"].iloc[0] == 1 and list(ranking["rank"]) == sorted(ranking["rank"])
    assert ranking["delta_pct"].iloc[0] == ranking["delta_pct"].max()
    # the 95% interval over seeds holds the mean; p_adjusted is Holm's across all the probe's pools
    measured = ranking.dropna(subset=["ci_low_pct"])
    assert (measured["ci_low_pct"] <= measured["delta_pct"]).all() and (measured["delta_pct"] <= measured["ci_high_pct"]).all()
    # (a pool that two OPs select alike, one digest, is one test of the family)
    by_digest: dict[str, float] = {}
    for c in workflow.probe.comparisons.items:
        by_digest.setdefault(c.pool.digest, c.summary.p_value if c.summary is not None else float("nan"))
    adjusted = dict(zip(by_digest, holm(list(by_digest.values()))))
    expected = [adjusted[c.pool.digest] for c in workflow.probe.comparisons.items]
    shown = ranking.set_index("pool").loc[[c.pool.name for c in workflow.probe.comparisons.items], "p_adjusted"]
    assert shown.tolist() == pytest.approx(expected, nan_ok=True)
    assert len(by_digest) < len(ranking)  # this small corpus has such pools


def test_each_seed_draws_its_own_control_shared_by_the_pools_of_its_size(workflow: WorkflowResult) -> None:
    items = workflow.probe.comparisons.items
    for item in items:
        assert {s: b.pool.size for s, b in item.baselines.items()} == {0: item.pool.size, 1: item.pool.size}
        assert item.baselines[0].pool.digest != item.baselines[1].pool.digest  # another draw per seed
    for a, b in itertools.combinations(items, 2):
        if a.pool.size == b.pool.size:  # one control cell per (size, seed), trained once
            assert [c.run_id for c in a.baselines.values()] == [c.run_id for c in b.baselines.values()]
    metrics = mlflow.get_run(workflow.run_id).data.metrics
    top = items[0]
    assert metrics[tracking.metric_key("p_adjusted", top.pool.name)] == pytest.approx(top.summary.p_adjusted)
    assert metrics[tracking.metric_key("delta_ci_low_pct", top.pool.name)] == pytest.approx(top.summary.ci_low_pct)
    assert metrics[tracking.metric_key("delta_ci_high_pct", top.pool.name)] == pytest.approx(top.summary.ci_high_pct)


def test_each_stat_cluster_names_its_best_probed_pool(workflow: WorkflowResult) -> None:
    clusters = workflow.analysis.stat_clusters
    assert set(clusters.labels) == set(STAT_OF.values()) and clusters.n_clusters == 2
    ranking = workflow.probe.ranking.dropna(subset=["delta_pct"])
    groups = clusters.groups()
    assert set(workflow.analysis.best_by_stat_cluster) == set(groups)
    for cluster, pool in workflow.analysis.best_by_stat_cluster.items():
        members = ranking[ranking["op"].map(STAT_OF).isin(groups[cluster])]
        assert pool == members.loc[members["delta_pct"].idxmax(), "pool"]


def test_benchmarks_are_clustered_by_their_scores_across_models(workflow: WorkflowResult) -> None:
    clusters = workflow.analysis.metric_clusters
    assert set(clusters.labels) == {"clean", "cats"} and clusters.n_clusters == 2
    probed = set(workflow.probe.ranking["pool"])
    assert set(workflow.analysis.best_by_metric_cluster) == set(clusters.groups())
    assert set(workflow.analysis.best_by_metric_cluster.values()) <= probed
    # each cluster's pool comes with the delta that chose it: on that cluster's benchmarks only
    for cluster, pool in workflow.analysis.best_by_metric_cluster.items():
        (item,) = [i for i in workflow.probe.comparisons.items if i.pool.name == pool]
        benches = clusters.groups()[cluster]
        deltas = [relative_delta({b: c.scores[b] for b in benches}, {b: base.scores[b] for b in benches})
                  for c, base in item.paired()]
        assert workflow.analysis.metric_cluster_delta[cluster].mean == pytest.approx(np.mean(deltas))


def test_a_metric_cluster_on_which_no_pool_differs_from_its_control_names_no_pool() -> None:
    """A benchmark every model scores alike gives every pool a delta of 0 on it: picking the first
    pool of the table as its "best" would make a refine candidate of chance. Two names of one pool
    (the same delta) still name a best."""
    from types import SimpleNamespace

    from mlsandbox.workflows.analyze import _best_per_metric_cluster

    def item(name: str, varied: float, digest: str | None = None) -> SimpleNamespace:
        pairs = [(SimpleNamespace(scores={"flat": 1.0, "varied": varied}), SimpleNamespace(scores={"flat": 1.0, "varied": 1.0}))]
        return SimpleNamespace(pool=SimpleNamespace(name=name, digest=digest or name), paired=lambda: pairs, looks=1)

    def chosen(comparisons: SimpleNamespace) -> dict[int, tuple[str, float]]:
        return {c: (pool, s.mean) for c, (pool, s) in _best_per_metric_cluster(comparisons, clusters).items()}

    clusters = SimpleNamespace(groups=lambda: {0: ["flat"], 1: ["varied"]})
    comparisons = SimpleNamespace(at=lambda fidelity: [item("a", 1.1), item("b", 0.9)])
    assert chosen(comparisons) == {1: ("a", pytest.approx(0.1))}
    alone = SimpleNamespace(at=lambda fidelity: [item("a", 1.1)])
    assert chosen(alone) == {1: ("a", pytest.approx(0.1))}
    twice = SimpleNamespace(at=lambda fidelity: [item("a", 1.1), item("a-again", 1.1, digest="a")])
    assert chosen(twice) == {1: ("a", pytest.approx(0.1))}


def test_a_metric_clusters_delta_has_its_interval_and_a_p_value_adjusted_across_the_pools_compared() -> None:
    """The best of a cluster's pools is chosen among many: its p-value is Holm-adjusted across the
    distinct pools compared on the cluster's benchmarks (two names of one pool are one test)."""
    from types import SimpleNamespace

    from mlsandbox.workflows.analyze import _best_per_metric_cluster

    def item(name: str, deltas: list[float], digest: str | None = None) -> SimpleNamespace:
        pairs = [(SimpleNamespace(scores={"x": 1.0 + d, "y": 2.0}), SimpleNamespace(scores={"x": 1.0, "y": 2.0}))
                 for d in deltas]
        return SimpleNamespace(pool=SimpleNamespace(name=name, digest=digest or name), paired=lambda: pairs, looks=1)

    items = [item("a", [0.10, 0.12, 0.11, 0.13]), item("b", [0.01, -0.02, 0.03, 0.00]),
             item("c", [0.02, 0.05, -0.01, 0.01]), item("c-again", [0.02, 0.05, -0.01, 0.01], digest="c")]
    clusters = SimpleNamespace(groups=lambda: {0: ["x"]})
    ((pool, summary),) = _best_per_metric_cluster(SimpleNamespace(at=lambda fidelity: items), clusters).values()
    def on_x(i: SimpleNamespace) -> DeltaSummary:  # the cluster's benchmark alone
        return summarize_deltas([{"x": c.scores["x"]} for c, _ in i.paired()], [{"x": b.scores["x"]} for _, b in i.paired()])

    alone, others = on_x(items[0]), [on_x(i).p_value for i in items[1:3]]
    assert pool == "a" and summary.mean == pytest.approx(0.115) and summary.ci_low == pytest.approx(alone.ci_low)
    assert summary.p_adjusted == pytest.approx(holm([alone.p_value, *others])[0])  # a family of 3, not 4
    assert summary.p_adjusted > alone.p_value


def test_refine_builds_the_pyramid_the_duplication_study_and_threshold_recipes(workflow: WorkflowResult) -> None:
    table = workflow.refined.table
    kinds = table["kind"].value_counts().to_dict()
    assert (kinds["pyramid"], kinds["duplication"], kinds["ksigma"], kinds["percentile"]) == (3, 6, 1, 1)
    dup = table[table["kind"] == "duplication"]
    assert sorted(zip(dup["strategy"], dup["multiple"])) == sorted(
        itertools.product((FILL, REPEAT), (1.0, 2.0, 4.0)))


def test_the_best_recipe_is_the_reproducible_candidate_with_the_highest_delta(workflow: WorkflowResult) -> None:
    refined = workflow.refined
    reproducible = refined.table[refined.table["strategy"] != FILL]  # a fill pool has no recipe equivalent
    best = reproducible.loc[reproducible["delta_pct"].idxmax()]
    assert (refined.best.name, refined.best_delta_pct) == (best["name"], best["delta_pct"])
    run = mlflow.get_run(workflow.run_id)
    assert run.data.params["best_recipe"] == best["name"]
    assert run.data.metrics["best_recipe_delta_pct"] == pytest.approx(best["delta_pct"])


def test_the_headline_deltas_come_with_their_interval_and_holm_p(workflow: WorkflowResult) -> None:
    """best_single_op_* and best_recipe_*: the rows the deltas come from, never a delta alone."""
    metrics = mlflow.get_run(workflow.run_id).data.metrics
    table = workflow.refined.table
    rows = (("best_single_op", workflow.probe.best(1).iloc[0]),
            ("best_recipe", table[table["name"] == workflow.refined.best.name].iloc[0]))
    for name, row in rows:
        for column in ("delta_pct", "ci_low_pct", "ci_high_pct", "p_adjusted"):
            assert metrics[f"{name}_{column}"] == pytest.approx(row[column]), (name, column)


def test_a_headline_leaves_out_what_one_seed_cannot_give() -> None:
    row = pd.Series({"delta_pct": 1.5, "std_pct": math.nan, "ci_low_pct": math.nan, "ci_high_pct": math.nan,
                     "p_adjusted": math.nan})
    assert headline_metrics("best_recipe", row) == {"best_recipe_delta_pct": 1.5}


def test_candidate_runs_name_the_step_whose_holm_family_corrected_their_p(workflow: WorkflowResult) -> None:
    """Refine's top single-OP rows carry the probe's p_adjusted: their runs say so, the others say refine."""
    probe = {c.pool.digest for c in workflow.probe.comparisons.at(DECIDE)}
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list", filter_string=(
        f"tags.mlflow.parentRunId = '{workflow.run_id}' and tags.mlsandbox.kind = 'candidate'"))
    families = {r.data.tags["mlsandbox.pool_digest"]: r.data.params["p_adjusted_family"]
                for r in runs if "p_adjusted" in r.data.metrics}
    assert families and set(families.values()) == {"probe", "refine"}
    assert families == {digest: "probe" if digest in probe else "refine" for digest in families}


def test_the_workflow_run_logs_each_step_at_its_artifact_paths(workflow: WorkflowResult) -> None:
    comparison = {"deltas.json", "deltas.md", "cells.json"}
    figures = {"probe/ranking.png", "refine/pyramid.png", "refine/duplication.png",
               *(f"analyze/{kind}_{name}" for kind in ("stat", "metric") for name in ("correlation.png", "dendrogram.png"))}
    assert _artifact_paths(workflow.run_id) == {
        "sandbox.yaml",
        *(f"probe/{name}" for name in comparison | {"ranking.json", "ranking.md", "ranking.png"}),
        *(f"analyze/{kind}_{name}" for kind in ("stat", "metric")
          for name in ("correlation.png", "correlation.csv", "dendrogram.png")),
        "analyze/clusters.yaml",
        *(f"refine/{name}" for name in comparison | {"recipes.json", "recipes.md", "pyramid.png", "duplication.png",
                                                     "best_recipe.yaml", "best_recipe.data_juicer.yaml"}),
        "report/report.html", "report/report.md", *(f"report/{figure}" for figure in figures),  # the Markdown's
        *(f"refine/recipes/{c.recipe.digest()}.yaml" for c in workflow.refined.candidates),
    }


def test_the_answer_names_the_best_recipe_its_interval_documents_and_verdict(workflow: WorkflowResult) -> None:
    answer, best = workflow.answer, workflow.refined.best
    step = workflow.refined.comparisons
    (item,) = [c for c in step.items + step.carried if c.pool.digest == best.pool.digest]
    assert (answer.kind, answer.name, answer.kept, answer.documents) == ("recipe", best.name, best.unique_size, 90)
    assert (answer.delta_pct, answer.ci_low_pct, answer.p_adjusted) == (
        item.summary.mean_pct, item.summary.ci_low_pct, item.summary.p_adjusted)
    text = answer.text()
    assert f"{answer.delta_pct:+.2f}%" in text and f"keeps {best.unique_size} of the dataset's 90 samples" in text
    if answer.won:
        assert text.startswith("Best recipe") and "beat the random control after Holm's correction" in text
    else:  # not presented as a win
        assert text.startswith("No recipe beat the random control after Holm's correction")
    no_win = replace(answer, p_adjusted=0.2)
    assert not no_win.won and no_win.text().startswith("No recipe beat") and "This is not a win" in no_win.text()
    win = replace(answer, delta_pct=1.5, p_adjusted=0.01)
    assert win.won and win.text().startswith(f"Best recipe, {best.name}: +1.50%")
    assert "As the best of the recipes compared, its delta is more likely over- than underestimated" in win.text()


def test_the_answer_names_refines_winners_when_its_best_recipe_was_carried_and_lost(workflow: WorkflowResult) -> None:
    """The best recipe can be a probe pool (with the probe's correction) that did not win while a
    refined candidate did, e.g. an id-list fill, which is never the best recipe: the answer names it."""
    probe_item = workflow.probe.comparisons.at(DECIDE)[0]
    refined_item = next(c for c in workflow.refined.comparisons.items if c.pool.digest != probe_item.pool.digest)
    lost = dataclasses.replace(probe_item, summary=replace(probe_item.summary, mean=0.05, p_adjusted=0.3))
    won = dataclasses.replace(refined_item, summary=replace(refined_item.summary, mean=0.06, p_adjusted=0.01))
    probed = replace(workflow.probe, comparisons=Comparisons(items=[lost]))
    refined = replace(workflow.refined, comparisons=Comparisons(items=[won], carried=[lost]),
                      best=replace(workflow.refined.best, pool=lost.pool))
    answer, pool = answer_of(probed, refined, 90)
    assert pool is lost.pool and not answer.won and answer.others == (won.pool.name,)
    assert answer.text().startswith("The best recipe did not beat the random control after Holm's correction")
    assert "Holm-adjusted p = 0.3 across the 1 distinct pool the deciding model compared in the probe)" in answer.text()
    assert answer.text().endswith(f"These other pools of the step did beat the control after the correction: "
                                  f"{won.pool.name}.")


def test_candidates_selecting_one_pool_say_so_in_the_refine_table(workflow: WorkflowResult) -> None:
    table = workflow.refined.table
    measured = table[table["delta_pct"].notna()]
    repeated = measured[measured.duplicated("pool_digest")]
    assert not repeated.empty  # the top pool is also the duplication study's x1 budget
    for _, row in repeated.iterrows():
        first = measured[measured["pool_digest"] == row["pool_digest"]].iloc[0]
        assert f"same pool as {first['name']}" in row["note"]
        assert row["delta_pct"] == first["delta_pct"]  # one pool, one measurement
    assert not any("same pool" in note for note in measured.drop_duplicates("pool_digest")["note"])
    assert (measured["seeds"] >= 2).all() and (table[table["delta_pct"].isna()]["seeds"] == 0).all()  # as the probe's


def test_refines_top_k_passes_over_a_pool_too_small_to_refine(workflow: WorkflowResult, spec: ExperimentSpec) -> None:
    probed = workflow.probe
    by_name = probed.pools_by_name()
    ranked = [by_name[name] for name in probed.best(len(by_name))["pool"]]
    k = spec.refine.top_k
    assert top_pools(probed, by_name, spec.refine) == ranked[:k]  # the fixture's pools are all large enough
    smallest = min(p.unique_size for p in ranked[:k])
    strict = spec.refine.model_copy(update={"min_pool_size": smallest + 1})
    assert top_pools(probed, by_name, strict) == [p for p in ranked if p.unique_size > smallest][:k]
    assert top_pools(probed, by_name, strict.model_copy(update={"on_small_pool": "use"})) == ranked[:k]
    largest = max(p.unique_size for p in ranked)
    with pytest.raises(PoolError, match=f"no probe pool has refine.min_pool_size={largest + 1} distinct samples "
                                        f"\\(the largest has {largest}\\)"):
        top_pools(probed, by_name, strict.model_copy(update={"min_pool_size": largest + 1}))  # was an IndexError


def test_a_refine_that_no_probe_pool_could_feed_stops_before_the_probe_trains(workflow: WorkflowResult,
                                                                            spec: ExperimentSpec) -> None:
    """Refine needs a probe pool of refine.min_pool_size distinct samples: where no split can have as
    many, the probe's cells would be trained for nothing."""
    strict = spec.model_copy(update={"refine": spec.refine.model_copy(update={"min_pool_size": 10**6})})
    runs = len(mlflow.search_runs(search_all_experiments=True, output_format="list"))
    with pytest.raises(PoolError, match=r"no probe pool has refine.min_pool_size=1000000 distinct samples \(the largest"):
        run_workflow(strict, progress=False)
    assert len(mlflow.search_runs(search_all_experiments=True, output_format="list")) == runs  # not a run started
    assert run_workflow(strict, until="probe", progress=False).probe  # the probe alone needs no such pool


def test_a_top_k_above_the_ops_with_pools_is_said_to_be_cut(workflow: WorkflowResult, spec: ExperimentSpec,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    probed = workflow.probe
    by_name = probed.pools_by_name()
    ops = len(probed.best(len(by_name)))
    assert len(top_pools(probed, by_name, spec.refine.model_copy(update={"top_k": ops + 1}))) == ops
    assert f"refine.top_k={ops + 1}, but only {ops} OPs have a pool to combine" in caplog.text


def test_the_logged_report_shows_every_section_and_figure(workflow: WorkflowResult, tmp_path: Path) -> None:
    root = tracking.download_artifacts(workflow.run_id, "report", tmp_path)
    markdown = (root / "report.md").read_text(encoding="utf-8")
    assert re.findall(r"^## (.+)$", markdown, re.MULTILINE) == [
        "Run", "Answer", "Best recipe", "Ranking of single-OP pools", "Refined recipes", "Clusters", "Figures", "Cost"]
    assert f"**{workflow.refined.best.name}**" in markdown
    best = markdown.split("## Best recipe", 1)[1].split("##", 1)[0]
    assert "interval" in best  # the recipe's delta is never shown bare
    assert workflow.answer.text() in markdown and "Holm" in markdown
    assert "process:" in markdown  # the Data-Juicer export of the best recipe
    logged = tracking.download_artifacts(workflow.run_id, "", tmp_path / "run")
    figures = sorted(str(p.relative_to(logged)) for p in logged.rglob("*.png") if p.relative_to(logged).parts[0] != "report")
    assert len(figures) == 7  # every figure the steps logged, the benchmarks' dendrogram included
    assert (root / "report.html").read_text(encoding="utf-8").count("src='data:image/png;base64,") == len(figures)
    linked = re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)
    assert sorted(linked) == figures and all((root / link).is_file() for link in linked)  # beside the Markdown


def test_the_reports_refined_table_says_its_single_op_rows_keep_the_probes_holm_family(workflow: WorkflowResult,
                                                                                       tmp_path: Path) -> None:
    root = tracking.download_artifacts(workflow.run_id, "report", tmp_path)
    section = (root / "report.md").read_text(encoding="utf-8").split("## Refined recipes", 1)[1].split("\n## ", 1)[0]
    assert "refine's top single-OP rows keep the probe's, corrected across the probe's pools" in section


def test_a_best_recipe_data_juicer_cannot_express_is_said_in_prose_not_a_yaml_block(workflow: WorkflowResult,
                                                                                  tmp_path: Path) -> None:
    from mlsandbox import artifacts
    from mlsandbox.workflows.report import _report

    root = tracking.download_artifacts(workflow.run_id, None, tmp_path)
    (root / artifacts.BEST_RECIPE_DATA_JUICER).unlink()
    (root / artifacts.BEST_RECIPE_DATA_JUICER_NOTE).write_text("not exportable to Data-Juicer: no mapping\n")
    report = _report(mlflow.get_run(workflow.run_id), root)
    best = report.markdown().split("## Best recipe", 1)[1].split("##", 1)[0]
    assert best.rstrip().endswith("```\n\nNot exportable to Data-Juicer: no mapping")
    assert best.count("```") == 2  # the recipe's own block alone
    assert "<p>Not exportable to Data-Juicer: no mapping</p>" in report.html()


def test_the_workflow_command_prints_the_legend_then_each_table_under_its_heading(
        workflow: WorkflowResult, spec: ExperimentSpec, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from mlsandbox.cli import app

    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    out = CliRunner().invoke(app, ["workflow", "-p", str(tmp_path), "-q"])
    assert out.exit_code == 0, out.output
    legend, probe, refine = (out.output.index(s) for s in ("delta: relative change", "\nProbe: ", "\nRefine: "))
    assert legend < probe < refine
    header = out.output[probe:].splitlines()[2]
    assert "| split" in header and "note" not in header and "fidelity" not in header  # one model decided every row
    *_, cells, report = out.output.splitlines()
    assert "0 run" in cells  # the fixture's run: every cell reused
    page, to_folder = report.removeprefix("report: ").split(" (to write it to a folder: ")
    assert Path(page).is_file() and page.endswith("report/report.html")  # the logged report, a path to open
    run_id = re.findall(r"\brun ([0-9a-f]{32})\b", cells)[-1]  # this command's run (its cells reused)
    assert f"/{run_id}/" in page and to_folder == f"mlsandbox report {run_id} --out DIR)"


def test_a_stat_cluster_without_a_measured_pool_is_named_not_left_out(capsys: pytest.CaptureFixture[str]) -> None:
    from mlsandbox.cli._printed import print_cluster_bests
    from mlsandbox.correlation import cluster, pearson_matrix
    from mlsandbox.workflows.analyze import AnalysisResult

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    corr = pearson_matrix(pd.DataFrame({"a_len": x, "a_words": x + 0.01 * y, "b_ratio": y}))
    clusters = cluster(corr, 2)
    measured = clusters.labels["a_len"]
    ranking = pd.DataFrame({"delta_pct": [1.5], "ci_low_pct": [0.5], "ci_high_pct": [2.5], "p_adjusted": [0.01]},
                           index=["a/high"])
    print_cluster_bests(AnalysisResult(corr, clusters, {measured: "a/high"}, None, None, {}), ranking)
    lines = capsys.readouterr().out.splitlines()
    assert f"  {measured} (a_len, a_words): a/high +1.50% (95% interval [+0.50, +2.50]%, Holm-adjusted p = 0.01)" in lines
    assert f"  {clusters.labels['b_ratio']}: no measured pool (its stats: b_ratio; see the ranking's n/a rows)" in lines
    # a metric cluster without a best pool (every delta 0 on its benchmarks) is named too
    scores = pearson_matrix(pd.DataFrame({"clean": x, "news": x + 0.01 * y, "flat": y}))
    metric = cluster(scores, 2)
    best = metric.labels["clean"]
    chosen = DeltaSummary((0.02, 0.03, 0.01), 0.02, 0.01, 0.04, 0.005, 0.035, p_adjusted=0.08)
    print_cluster_bests(AnalysisResult(corr, clusters, {}, scores, metric, {best: "a/high"}, {best: chosen}), ranking)
    lines = capsys.readouterr().out.splitlines()
    assert f"  {metric.labels['flat']}: no pool differs from its control on flat (or none was measured)" in lines
    # the delta that chose a metric cluster's pool comes with its interval and adjusted p, as every delta does
    assert (f"  {best}: a/high +2.00% (95% interval [+0.50, +3.50]%, Holm-adjusted p = 0.08) on clean, news; "
            "over all: +1.50% (95% interval [+0.50, +2.50]%, Holm-adjusted p = 0.01)") in lines
    one_seed = DeltaSummary((0.02,), 0.02, np.nan, np.nan)
    print_cluster_bests(AnalysisResult(corr, clusters, {}, scores, metric, {best: "a/high"}, {best: one_seed}), ranking)
    assert f"  {best}: a/high +2.00% (no interval: one seed) on clean, news; " in capsys.readouterr().out


def test_a_degenerate_splits_reason_is_printed_below_the_probe_table(capsys: pytest.CaptureFixture[str]) -> None:
    from mlsandbox.cli._printed import print_ranking

    ranking = pd.DataFrame({"pool": ["a/high", "a/low"], "op": ["a", "a"], "split": ["high", "low"],
                            "delta_pct": [1.5, np.nan], "fidelity": ["decide", None], "note": ["", "degenerate: one value"]})
    print_ranking(ranking)
    table, notes = capsys.readouterr().out.split("\n  ", 1)
    assert "note" not in table and "degenerate" not in table and "fidelity" not in table  # one model decided
    assert notes == "a/low: degenerate: one value\n"


def test_the_report_of_a_run_still_at_work_says_so_and_is_not_logged_to_it(workflow: WorkflowResult,
                                                                            tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mlsandbox.cli import app

    client = mlflow.MlflowClient()
    logged = tracking.download_artifacts(workflow.run_id, "report/report.md", tmp_path / "logged").read_text()
    client.update_run(workflow.run_id, status="RUNNING")  # as another command sees it while it works
    try:
        out = CliRunner().invoke(app, ["report", workflow.run_id, "--out", str(tmp_path / "r")])
    finally:
        client.update_run(workflow.run_id, status="FINISHED")
    assert out.exit_code == 0, out.output
    assert f"not logged to run {workflow.run_id}: it is still RUNNING" in out.output
    assert "RUNNING: still at work" in (tmp_path / "r" / "report.md").read_text()
    assert tracking.download_artifacts(workflow.run_id, "report/report.md", tmp_path / "after").read_text() == logged
    assert "- status:" not in logged  # its own report, its last step
    client.update_run(workflow.run_id, status="KILLED")
    try:
        out = CliRunner().invoke(app, ["report", workflow.run_id, "--out", str(tmp_path / "k"), "--no-log"])
    finally:
        client.update_run(workflow.run_id, status="FINISHED")
    assert "- status: KILLED: it stopped early" in (tmp_path / "k" / "report.md").read_text()


def test_the_report_of_a_run_stopped_after_its_probe_counts_the_probes_cells(tmp_path: Path) -> None:
    """The whole run's cell counts are logged last: a run killed in refine had an empty Cost section."""
    from mlsandbox.workflows.report import build_report

    mlflow.set_experiment("stopped-after-probe")
    with mlflow.start_run() as run:
        mlflow.set_tags({tracking.KIND: "workflow", tracking.ENTRY_POINT: "workflow"})
        mlflow.log_metrics({"probe.cells_run": 12, "probe.cells_reused": 3, "probe.cells_failed": 0})
    mlflow.MlflowClient().set_terminated(run.info.run_id, "KILLED")
    _, md = build_report(run.info.run_id, tmp_path / "out")
    cost = md.read_text().split("## Cost", 1)[1]
    assert "probe: cells run" in cost and "12" in cost and "probe: cells reused" in cost


def test_the_report_of_an_earlier_versions_export_says_to_drop_its_equal_size_draw(workflow: WorkflowResult,
                                                                                   tmp_path: Path) -> None:
    from mlsandbox import artifacts
    from mlsandbox.workflows.report import build_report

    client = mlflow.MlflowClient()
    current = tracking.download_artifacts(workflow.run_id, artifacts.BEST_RECIPE_DATA_JUICER, tmp_path / "now")
    old = tmp_path / "old" / current.name
    old.parent.mkdir()
    old.write_text(current.read_text() + "- random_selector:\n    select_num: 20\n")  # as earlier versions wrote it
    try:
        client.log_artifact(workflow.run_id, str(old), "refine")
        _, md = build_report(workflow.run_id, tmp_path / "r")
    finally:
        client.log_artifact(workflow.run_id, str(current), "refine")
    assert "remove that step for a full-scale run" in md.read_text()
    assert "remove that step" not in build_report(workflow.run_id, tmp_path / "r2")[1].read_text()


def test_each_refine_candidate_is_a_run_to_compare_in_the_ui(workflow: WorkflowResult, spec: ExperimentSpec) -> None:
    import yaml

    from mlsandbox.recipes import parse_recipe
    from mlsandbox.workflows.candidate_runs import CANDIDATE
    from mlsandbox.workflows.train import find_pools

    refined = workflow.refined
    stats = prepare(spec, progress=False).stats
    runs = mlflow.search_runs(experiment_ids=[mlflow.get_run(workflow.run_id).info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{workflow.run_id}' and "
                                            f"tags.mlsandbox.kind = '{CANDIDATE}'", output_format="list")
    by_name = {r.data.params["candidate"]: r for r in runs}
    assert sorted(by_name) == sorted(refined.table["name"])  # one run per row of the table, skipped ones too
    for cand, row in zip(refined.candidates, refined.table.to_dict("records")):
        run = by_name[cand.name]
        assert run.info.status == "FINISHED" and run.data.tags[tracking.RECIPE_DIGEST] == cand.recipe.digest()
        for key in ("delta_pct", "ci_low_pct", "ci_high_pct", "p_adjusted", "size"):
            assert run.data.metrics.get(key, math.nan) == pytest.approx(row[key], nan_ok=True), (cand.name, key)
        conditions = {k: v for k, v in run.data.params.items() if k.startswith("condition.")}
        assert sorted(conditions) == sorted({f"condition.{c.label}" for c in cand.recipe.conditions})
        inputs = run.inputs.dataset_inputs
        recipe = parse_recipe(yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/recipe.yaml")))
        assert recipe.digest() == cand.recipe.digest()
        if math.isfinite(row["delta_pct"]):  # measured: its pool leads to the cells that measured it
            assert [i.dataset.digest for i in inputs] == [cand.pool.digest]
            assert run.data.tags[tracking.POOL_DIGEST] == cand.pool.digest
            # as in refine/recipes/: the pool, and the definition of each statistic its thresholds bound
            assert recipe.measured == cand.recipe.measured_as(cand.pool, stats, workflow.run_id).measured
            assert set(recipe.measured.statistics) == {c.op for c in cand.recipe.conditions}
    best = by_name[refined.best.name].info.run_id  # and trains again by its run id
    (pool,) = find_pools(prepare(spec, progress=False), [], [], [best])
    assert (pool.rows.tolist(), pool.repeats.tolist()) == (refined.best.pool.rows.tolist(),
                                                           refined.best.pool.repeats.tolist())


def test_refine_reuses_every_cell_the_probe_trained(workflow: WorkflowResult) -> None:
    # the n-gram model does not depend on the seed: one cell per pool, reused by every other seed
    probed = {c.pool.digest for c in workflow.probe.comparisons.cells}
    refined = workflow.refined.comparisons.cells
    first_seed = [c for c in refined if c.seed == 0]
    assert {c.pool.digest for c in first_seed if c.reused} == {c.pool.digest for c in first_seed} & probed
    assert all(c.reused for c in refined if c.seed == 1 and c.pool.digest in {d.pool.digest for d in first_seed})


def test_refine_keeps_the_probes_numbers_and_correction_for_its_single_op_pools(workflow: WorkflowResult) -> None:
    # the top-k splits were picked as the probe's best: re-testing them in refine's smaller family
    # would overstate them, so they are neither trained nor corrected again
    refined = workflow.refined
    decided = {c.pool.digest: c for c in workflow.probe.comparisons.at(DECIDE)}
    level_one = [c for c in refined.candidates if c.kind == "pyramid" and c.level == 1 and not c.skip_reason]
    assert level_one and all(c.pool.digest in decided for c in level_one)
    carried = {c.pool.digest for c in refined.comparisons.carried}
    assert {c.pool.digest for c in level_one} <= carried
    assert not carried & {c.pool.digest for c in refined.comparisons.cells}
    table = refined.table.set_index("name")
    for cand in level_one:
        summary = decided[cand.pool.digest].summary
        assert (table.loc[cand.name, "delta_pct"], table.loc[cand.name, "p_adjusted"]) == (
            summary.mean_pct, summary.p_adjusted)
    client = mlflow.MlflowClient()
    for item in refined.comparisons.carried:  # one value per metric on the parent run: the probe's
        history = client.get_metric_history(workflow.run_id, tracking.metric_key("p_adjusted", item.pool.name))
        assert {m.value for m in history} == {item.summary.p_adjusted}

def test_the_cost_metrics_count_every_cell_once(workflow: WorkflowResult) -> None:
    metrics = mlflow.get_run(workflow.run_id).data.metrics
    ran = sum(not c.reused for c in workflow.cells)
    assert (metrics["cells_run"], metrics["cells_reused"], metrics["cells_failed"]) == (
        ran, len(workflow.cells) - ran, 0)
    assert metrics["probe.cells_run"] + metrics["refine.cells_run"] == ran
    # The overhead is the sandbox's share of the steps: the stats' one-off work (minutes for model-backed
    # OPs on a first run) is neither the steps' nor the sandbox's bookkeeping.
    assert 0 < metrics["stats_s"] < metrics["wall_s"] == workflow.wall_s
    steps_s = metrics["wall_s"] - metrics["stats_s"]
    assert metrics["overhead_share"] == pytest.approx((steps_s - metrics["train_eval_s"]) / steps_s)


def test_a_rerun_reuses_every_cell_and_reproduces_the_ranking(workflow: WorkflowResult, rerun: WorkflowResult) -> None:
    assert [c.reused for c in rerun.cells] == [True] * len(workflow.cells)
    assert [c.run_id for c in rerun.cells] == [c.run_id for c in workflow.cells]
    assert mlflow.get_run(rerun.run_id).data.metrics["cells_run"] == 0
    for column in ("delta_pct", "ci_low_pct", "ci_high_pct", "p_value", "p_adjusted"):
        assert rerun.probe.ranking[column].tolist() == pytest.approx(
            workflow.probe.ranking[column].tolist(), nan_ok=True)
    assert rerun.answer == workflow.answer


def test_reused_cells_stay_under_the_finished_run(workflow: WorkflowResult, rerun: WorkflowResult) -> None:
    for cell in (mlflow.get_run(c.run_id) for c in rerun.cells[:3]):
        assert cell.data.tags[tracking.PARENT_RUN_ID] == workflow.run_id  # its parent finished: it stays
        assert tracking.TRAINED_UNDER not in cell.data.tags
    run = mlflow.get_run(rerun.run_id)
    assert run.info.status == "FINISHED" and run.data.tags[tracking.OWNER_HOST]


# --- confirm: the winner measured again on fresh seeds ----------------------------------------------------


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory, module_store: str) -> WorkflowResult:
    """A probe of short sentences like the benchmark's among longer text of another kind, scored on
    such sentences (the shortest third is a clear winner), confirmed on five fresh seeds."""
    root = tmp_path_factory.mktemp("confirm")
    docs = [f"Document {i}: a clean sentence about topic number {i}, written plainly." if i % 3 == 0 else
            f"Quarterly revenue grew by {i} million while operating costs declined sharply across every regional "
            "market segment." for i in range(600)]
    corpus = write_jsonl(root / "corpus.jsonl", [{"id": f"doc-{i:03d}", "text": t} for i, t in enumerate(docs)])
    bench = write_jsonl(root / "bench.jsonl", [{"text": f"A clean sentence about topic {i}, written plainly."}
                                               for i in range(20)])
    raw = spec_dict(corpus, name="workflow-confirm", workspace=str(root / "ws"), seeds=[0, 1, 2, 3],
                    model={"type": "ngram", "order": 2}, benchmarks=[{"name": "clean", "path": str(bench)}],
                    confirm={"seeds": [100, 101, 102, 103, 104]})
    return run_workflow(parse_spec(raw), until="probe", progress=False)


def test_a_winning_answer_is_measured_again_on_fresh_seeds(confirmed: WorkflowResult) -> None:
    answer = confirmed.answer
    assert answer.won and answer.confirmed_seeds == 5
    fresh = [c for c in confirmed.cells if c.seed >= 100]
    assert sorted({c.seed for c in fresh}) == [100, 101, 102, 103, 104]
    controls = [c for c in fresh if isinstance(c.pool.origin, RandomOrigin)]
    assert {c.pool.name for c in fresh if not isinstance(c.pool.origin, RandomOrigin)} == {answer.name}
    assert len(controls) == 5 and not any(c.reused for c in controls)  # fresh controls, trained for it
    assert len(confirmed.probe.comparisons.cells) + len(fresh) == len(confirmed.cells)
    assert answer.confirmed and answer.confirmed_ci_low_pct > 0 and answer.confirmed_p < 0.05
    assert "Measured again on 5 fresh seeds" in answer.text() and "confirmed" in answer.text()

    run = mlflow.get_run(confirmed.run_id)
    assert answer_of_run(run) == answer  # the report reads back what was measured
    assert run.data.metrics["confirm.cells_run"] == len([c for c in fresh if not c.reused])
    history = mlflow.MlflowClient().get_metric_history(confirmed.run_id, tracking.metric_key("delta_pct", answer.name))
    assert [m.value for m in history] == [answer.delta_pct]  # the pool's own keys keep the probe's value


def test_the_answer_names_its_holm_family_the_pools_one_model_compared_in_one_step() -> None:
    """With a screen the step compares more pools than the deciding model, in another family: the words say whose."""
    answer = Answer("recipe", "r", 3.0, 1.0, 5.0, 0.01, 9, 40, 90, family_step="refine")
    assert "Holm-adjusted p = 0.01 across the 9 distinct pools the deciding model compared in refine)" in answer.text()
    assert "across the 9 distinct pools the screening model compared in refine)" in replace(
        answer, fidelity=SCREEN).text()


def test_an_answer_the_screen_decided_counts_the_screens_whole_family() -> None:
    """The screen's p-values are corrected across every pool it measured, not only those it settled."""
    from types import SimpleNamespace

    from mlsandbox.executors.comparison import PoolComparison
    from mlsandbox.workflows.workflow import _answer

    def measured(name: str, deltas: tuple[float, ...], fidelity: str) -> PoolComparison:
        pool = SimpleNamespace(name=name, digest=name, unique_size=10)
        summary = summarize_deltas([{"x": 1 + d} for d in deltas], [{"x": 1.0}] * len(deltas))
        return PoolComparison(pool, summary, [], {}, fidelity=fidelity)

    screened = [measured(n, (0.1, 0.12, 0.11), SCREEN) for n in ("a", "b")] + [measured("c", (0.2, 0.21, 0.22), SCREEN)]
    comparisons = Comparisons(items=[measured("a", (0.1, 0.12, 0.11), DECIDE), measured("b", (0.0, 0.01, 0.02), DECIDE),
                                     screened[2]], screened=screened)
    comparisons.adjust()
    answer, _ = _answer("single-OP pool", "c", screened[2], "probe", comparisons, comparisons, 100)
    assert answer.family == 3 and "across the 3 distinct pools the screening model compared in the probe" in answer.text()


def test_a_failed_confirmation_says_so() -> None:
    won = Answer("recipe", "r", 3.0, 1.0, 5.0, 0.01, 9, 40, 90)
    inflated = replace(won, confirmed_seeds=3, confirmed_pct=0.4, confirmed_ci_low_pct=-1.0,
                       confirmed_ci_high_pct=1.8, confirmed_p=0.4)
    assert not inflated.confirmed and "not confirmed" in inflated.text() and "picked as the best" in inflated.text()
    worse = replace(inflated, confirmed_pct=-2.0, confirmed_ci_high_pct=-0.5, confirmed_p=0.01)
    assert not worse.confirmed and "worse than the random control" in worse.text()
    flat = replace(inflated, confirmed_p=math.nan)
    assert not flat.confirmed and "no test" in flat.text()
    failed = replace(won, confirmed_seeds=5)  # every cell of the confirmation failed
    assert not failed.confirmed and "measurement on 5 fresh seeds failed" in failed.text()
    assert "confirm its size on fresh seeds (`confirm:` in the spec)" in won.text()


def test_confirm_seeds_must_be_fresh(spec: ExperimentSpec) -> None:
    raw = spec.model_dump(mode="json")
    with pytest.raises(SpecError, match=r"confirm.seeds: must be fresh: \[1\] also choose the answer"):
        parse_spec(raw | {"confirm": {"seeds": [1, 100]}})
    with pytest.raises(SpecError, match="at least 2"):
        parse_spec(raw | {"confirm": {"seeds": [100]}})



def test_a_fill_that_runs_out_of_data_is_placed_at_the_budget_it_reached(spec: ExperimentSpec, tmp_path: Path) -> None:
    prepared = prepare(spec, progress=False)
    pools = single_op_pools(prepared)
    asked = dataclasses.replace(prepared, spec=spec.model_copy(
        update={"refine": spec.refine.model_copy(update={"duplication": [1, 32, 64]})}))
    cands = {c.name: c.pool for c in duplication_candidates(asked, [pools[0], pools[4]]) if c.pool is not None}
    top = cands["duplication/repeat-x1"].size
    strategies = {name: duplication_strategy(pool) for name, pool in cands.items()}
    assert strategies["duplication/repeat-x64"] == (REPEAT, 64)
    assert cands["duplication/fill-x32"].size < 32 * top  # the data ran out before the budget
    for r in (32, 64):
        assert strategies[f"duplication/fill-x{r}"] == (FILL, round(cands[f"duplication/fill-x{r}"].size / top, 2))
    # both ran out of data: one pool at the budget it reached, one point of the figure
    assert cands["duplication/fill-x32"].digest == cands["duplication/fill-x64"].digest
    table = pd.DataFrame([{"kind": "duplication", "name": name, "strategy": s, "multiple": m, "delta_pct": 1.0}
                          for name, (s, m) in strategies.items()])
    points = duplication_points(table)
    assert sorted(points["name"]) == ["duplication/fill-x1", "duplication/fill-x32", *(
        f"duplication/repeat-x{r}" for r in (1, 32, 64))]
    figures.duplication_curves(points, tmp_path / "duplication.png")  # refused repeated points before


def test_a_stat_with_one_value_on_the_dataset_is_left_out_of_the_stat_clusters(tracking_uri: str) -> None:
    """Its correlation with anything is undefined: drawn as r = 0, it took a cluster of its own."""
    from types import SimpleNamespace

    from mlsandbox.spec.experiment import AnalyzeSpec
    from mlsandbox.workflows.analyze import analyze

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "c": np.zeros(60)})
    ops = [SimpleNamespace(name=f"op_{stat}", split_stat=lambda stat=stat: stat) for stat in frame]
    prepared = SimpleNamespace(spec=SimpleNamespace(analyze=AnalyzeSpec(stat_clusters=2)),
                               stats=SimpleNamespace(ops=ops, frame=frame))
    probed = SimpleNamespace(ranking=pd.DataFrame(columns=["pool", "op", "delta_pct", "fidelity"]),
                             comparisons=Comparisons(items=[]))
    with mlflow.start_run(experiment_id=mlflow.create_experiment("constant-stat")) as run:
        result = analyze(prepared, probed, run.info.run_id)  # type: ignore[arg-type]
    assert set(result.stat_clusters.labels) == {"a", "b"} and result.stat_clusters.n_clusters == 2
