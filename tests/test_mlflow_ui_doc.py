"""docs/mlflow-ui.md against what a small workflow and `pool` command really log.

The page tells users which tags, params, metrics, dataset inputs and artifacts to look for in the
MLflow UI, and which filters to type; each claim is checked here on one n-gram workflow (seconds a
cell) and one `pool` command in a fresh store, and every filter of the page's table is run
through ``search_runs``.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import mlflow
import pytest
from conftest import spec_dict, write_jsonl
from mlflow.entities import Run

from mlsandbox.spec import ExperimentSpec, parse_spec
from mlsandbox.workflows.pool import run_pools
from mlsandbox.workflows.workflow import WorkflowResult, run_workflow

DOC = (Path(__file__).resolve().parents[1] / "docs" / "mlflow-ui.md").read_text(encoding="utf-8")
OPS = [{"name": "text_length_filter"}, {"name": "stopwords_filter"}, {"name": "special_characters_filter"}]
CONTEXT = "mlflow.data.context"
STOPWORDS = ["the", "a", "of", "and", "to", "in", "it", "is", "on", "was"]
CONTENT = ["cat", "market", "river", "engine", "garden", "theory", "music", "window", "planet", "bread"]


def _document(i: int) -> str:
    """Length, share of stopwords and symbol noise varying independently, so the OPs' pools differ."""
    rng = random.Random(i)
    words = [rng.choice(STOPWORDS) if rng.random() < rng.random() else rng.choice(CONTENT)
             for _ in range(rng.randint(3, 40))]
    return " ".join(words) + " " + "#!" * rng.choice([0, 0, 1, 3, 8])


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> ExperimentSpec:
    root = tmp_path_factory.mktemp("ui-doc")
    corpus = write_jsonl(root / "corpus.jsonl",
                         [{"id": f"doc-{i:03d}", "text": _document(i), "source": "test"} for i in range(150)])
    bench = write_jsonl(root / "bench.jsonl",
                        [{"text": f"the cat and the garden of the planet {i}"} for i in range(20)])
    raw = spec_dict(corpus, name="ui-doc", workspace=str(root / "ws"), ops=OPS, seeds=[0, 1],
                    model={"type": "ngram", "order": 2}, benchmarks=[{"name": "clean", "path": str(bench)}],
                    analyze={"stat_clusters": 2, "metric_clusters": 2},
                    refine={"top_k": 2, "duplication": [1, 2], "min_pool_size": 3})
    return parse_spec(raw)


@pytest.fixture(scope="module")
def workflow(spec: ExperimentSpec, module_store: str) -> WorkflowResult:
    return run_workflow(spec, progress=False)


@pytest.fixture(scope="module")
def pool_parent(spec: ExperimentSpec, workflow: WorkflowResult) -> str:
    """The `pool` command's run, in the workflow's experiment."""
    return run_pools(spec, progress=False).parent_run_id


@pytest.fixture(scope="module")
def runs(workflow: WorkflowResult, pool_parent: str) -> list[Run]:
    return _search("")


def _search(filter_string: str) -> list[Run]:
    experiment = mlflow.get_experiment_by_name("ui-doc")
    return mlflow.MlflowClient().search_runs([experiment.experiment_id], filter_string, max_results=5000)


def _kind(run: Run) -> str | None:
    return run.data.tags.get("mlsandbox.kind")


def _children(runs: list[Run], parent: str, kind: str) -> list[Run]:
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent and _kind(r) == kind]


def _contexts(run: Run) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in run.inputs.dataset_inputs:
        context = {t.key: t.value for t in d.tags}[CONTEXT]
        out.setdefault(context, []).append(d.dataset.name)
    return out


def test_each_command_is_a_top_level_run_tagged_with_its_entry_point(runs: list[Run], workflow: WorkflowResult,
                                                                      pool_parent: str) -> None:
    top = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert set(top) == {workflow.run_id, pool_parent}
    assert {(r.info.run_name, _kind(r), r.data.tags["mlsandbox.entry_point"]) for r in top.values()} == {
        ("workflow", "workflow", "workflow"), ("pool", "workflow", "pool")}
    assert not [r for r in runs if r.info.run_id not in top and "mlsandbox.entry_point" in r.data.tags]
    assert "source" in _contexts(top[workflow.run_id])  # the parent run's corpus


def test_a_workflows_children_are_its_cells_and_candidates(runs: list[Run], workflow: WorkflowResult) -> None:
    kinds = {_kind(r) for r in runs if r.data.tags.get("mlflow.parentRunId") == workflow.run_id}
    assert kinds == {"cell", "candidate"}
    candidates = _children(runs, workflow.run_id, "candidate")
    assert candidates and all(r.info.run_name.startswith("candidate/") for r in candidates)


def test_cells_carry_the_columns_tags_metrics_and_inputs_the_page_lists(runs: list[Run],
                                                                         workflow: WorkflowResult) -> None:
    cells = _children(runs, workflow.run_id, "cell")
    client = mlflow.MlflowClient()
    for cell in cells:
        tags, params, metrics = cell.data.tags, cell.data.params, cell.data.metrics
        for tag in ("cell", "seed", "model_digest", "benchmarks_digest", "pool_digest", "dataset_digest", "split"):
            assert f"mlsandbox.{tag}" in tags, (cell.info.run_name, tag)
        assert {"pool", "split", "seed", "pool_size"} <= set(params)
        assert {"score_sum", "score.clean", "bpb.clean", "train_s"} <= set(metrics)
        assert _contexts(cell) == {"training": [params["pool"]], "evaluation": ["clean"]}
        assert cell.inputs.dataset_inputs[0].dataset.digest == tags["mlsandbox.pool_digest"]
        if params["split"] == "random":  # the baselines: no delta, no baseline
            assert "delta_pct" not in metrics and not any(k.startswith("mlsandbox.baseline_run.") for k in tags)
            continue
        history = client.get_metric_history(cell.info.run_id, "delta_pct")
        steps = [m.step for m in history]
        assert steps and sorted(steps) == sorted({m.step for m in history})  # delta_pct at step = the seed
        assert {f"mlsandbox.baseline_run.{s}" for s in steps} <= set(tags)
        assert metrics["delta_pct"] == max(history, key=lambda m: m.step).value  # the table: the highest seed
        if params["split"] in ("low", "mid", "high"):
            assert params["op"] == tags["mlsandbox.op"] and params["pool"] == f"{params['op']}/{params['split']}"


def test_the_workflow_run_holds_the_aggregates(runs: list[Run], workflow: WorkflowResult) -> None:
    metrics = mlflow.get_run(workflow.run_id).data.metrics
    for key in ("best_single_op_delta_pct", "best_single_op_ci_low_pct", "best_single_op_ci_high_pct",
                "best_single_op_p_adjusted", "best_recipe_delta_pct", "best_recipe_ci_low_pct",
                "best_recipe_ci_high_pct", "best_recipe_p_adjusted", "cells_run", "cells_reused",
                "answer.delta_pct", "answer.p_adjusted"):
        assert key in metrics, key
    probed = [r.data.params["pool"] for r in _children(runs, workflow.run_id, "cell")
              if r.data.params["split"] in ("low", "mid", "high")]
    for pool in probed:
        for prefix in ("delta_pct", "delta_std_pct", "delta_ci_low_pct", "delta_ci_high_pct", "p_value", "p_adjusted"):
            assert f"{prefix}.{pool.replace('/', '.')}" in metrics
    assert any(" and " in key for key in metrics if key.startswith("delta_pct."))  # an intersection's pools


def test_candidate_runs_hold_the_params_metrics_recipe_and_pool_the_page_lists(runs: list[Run],
                                                                                workflow: WorkflowResult) -> None:
    client = mlflow.MlflowClient()
    for run in _children(runs, workflow.run_id, "candidate"):
        params, metrics = run.data.params, run.data.metrics
        assert {"candidate", "kind", "recipe", "fidelity", "repeat", "source"} <= set(params)
        assert params["recipe"] in ("thresholds", "id list")
        assert set(params) <= {"candidate", "kind", "recipe", "fidelity", "sample_size", "repeat", "source", "note",
                               "p_adjusted_family"} | {k for k in params if re.fullmatch(r"condition\.\w+\.\w+", k)}
        if "note" not in params:
            assert {"size", "unique", "level", "delta_pct", "std_pct", "ci_low_pct", "ci_high_pct", "p_value",
                    "p_adjusted"} <= set(metrics)
            assert params["p_adjusted_family"] in ("probe", "refine")
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["recipe.yaml"]
        (pool,) = run.inputs.dataset_inputs
        assert {t.key: t.value for t in pool.tags}[CONTEXT] == "candidate"
        assert pool.dataset.digest == run.data.tags["mlsandbox.pool_digest"]
        assert Path(json.loads(pool.dataset.source)["uri"]).name.startswith(pool.dataset.digest)
        assert Path(json.loads(pool.dataset.source)["uri"]).is_file()  # the file of the pool its cells recorded
        if "delta_pct" in metrics:  # its digest finds the cells that measured it
            assert _search(f"tags.mlsandbox.pool_digest = '{pool.dataset.digest}' and tags.mlsandbox.kind = 'cell'")


def test_pool_runs_hold_the_columns_and_input_the_page_lists(runs: list[Run], pool_parent: str) -> None:
    pools = _children(runs, pool_parent, "pool")
    assert pools
    for run in pools:
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        assert "split" in params and "size" in metrics and any(k.startswith("mean.") for k in metrics)
        assert {"mlsandbox.pool_digest", "mlsandbox.dataset_digest", "mlsandbox.split"} <= set(tags)
        (pool,) = run.inputs.dataset_inputs
        assert {t.key: t.value for t in pool.tags}[CONTEXT] == "pool"
        assert pool.dataset.digest == tags["mlsandbox.pool_digest"]
        assert pool.dataset.name == run.info.run_name
        if params["split"] != "random":
            assert params["op"] == tags["mlsandbox.op"] and "stat_mean" in metrics
            assert pool.dataset.name == f"{params['op']}/{params['split']}"
            assert f"/pools/{tags['mlsandbox.dataset_digest']}/" in pool.dataset.source


def _filters() -> list[str]:
    """The filters of the page's table (first column), and the chart view's."""
    section = DOC.split("## Filters", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ")[0] for line in section.splitlines() if line.startswith("| `")]
    found = [f for row in rows for f in re.findall(r"`([^`]+)`", row)]
    found += re.findall(r"`(tags\.mlflow\.parentRunId = '<id>'[^`]*)`", DOC)
    return found


FILTERS = _filters()


def test_the_page_has_its_filters() -> None:
    assert len(FILTERS) >= 9 and any("<id>" in f for f in FILTERS)


@pytest.mark.parametrize("filter_string", FILTERS)
def test_each_filter_of_the_page_selects_what_it_says(filter_string: str, runs: list[Run],
                                                      workflow: WorkflowResult, pool_parent: str) -> None:
    candidates = _children(runs, workflow.run_id, "candidate")
    multi = next(r for r in candidates if " & " in r.data.params["candidate"] and "note" not in r.data.params)
    pool_run = next(r for r in _children(runs, pool_parent, "pool") if r.data.tags.get("mlsandbox.op"))
    digest = (multi.data.tags["mlsandbox.recipe_digest"] if "recipe_digest" in filter_string
              else pool_run.data.tags["mlsandbox.pool_digest"])
    text = (filter_string.replace("<run id>", workflow.run_id).replace("<id>", workflow.run_id)
            .replace("<digest>", digest))
    found = _search(text)
    assert found, text
    kinds = {_kind(r) for r in found}
    parents = {r.data.tags.get("mlflow.parentRunId") for r in found}
    if "parentRunId" in text:
        assert parents == {workflow.run_id}
    if "kind = 'cell'" in text:
        assert kinds == {"cell"}
    if "entry_point = 'workflow'" in text:
        assert [r.info.run_id for r in found] == [workflow.run_id]
    if "op = 'stopwords_filter'" in text:
        assert kinds == {"pool", "cell"} and {r.data.tags["mlsandbox.op"] for r in found} == {"stopwords_filter"}
    if "split = 'random'" in text:
        assert {r.data.tags["mlsandbox.split"] for r in found} == {"random"}
    if "split != 'random'" in text:
        assert kinds <= {"pool", "cell"} and "random" not in {r.data.params["split"] for r in found}
    if "pool_digest" in text:  # every run of one pool, in any command (and a candidate measuring it)
        assert {"pool", "cell"} <= kinds <= {"pool", "cell", "candidate"} and len(parents) == 2
    if "recipe_digest" in text:  # the candidate run and the cells first trained for it
        assert kinds == {"candidate", "cell"} and multi.info.run_id in {r.info.run_id for r in found}


def test_the_workflow_run_has_the_artifacts_the_page_lists(runs: list[Run], workflow: WorkflowResult) -> None:
    client = mlflow.MlflowClient()

    def walk(path: str | None = None) -> set[str]:
        out: set[str] = set()
        for a in client.list_artifacts(workflow.run_id, path):
            out |= walk(a.path) if a.is_dir else {a.path}
        return out

    logged = walk()
    listed = ["probe/ranking.png", "probe/ranking.md", "probe/ranking.json", "probe/deltas.json", "probe/deltas.md",
              "probe/cells.json", "analyze/clusters.yaml", "refine/recipes.json", "refine/recipes.md",
              "refine/deltas.json", "refine/deltas.md", "refine/cells.json", "refine/pyramid.png",
              "refine/duplication.png", "refine/best_recipe.yaml", "report/report.html", "report/report.md",
              "sandbox.yaml"]
    assert not [p for p in listed if p not in logged]
    for path in listed:  # the page names each (a folder's later files by their names alone)
        assert path in DOC or path.rsplit("/", 1)[-1] in DOC or path.rsplit("/", 1)[-1].rsplit(".", 1)[0] in DOC
    assert any(re.fullmatch(r"analyze/.+\.png", p) for p in logged)
    assert any(re.fullmatch(r"analyze/.+\.csv", p) for p in logged)
    assert {"refine/best_recipe.data_juicer.yaml", "refine/best_recipe.data_juicer.txt"} & logged
    assert any(p.startswith(("report/probe/", "report/analyze/", "report/refine/")) for p in logged)
    for run in _children(runs, workflow.run_id, "candidate"):  # every candidate's recipe, by its digest
        assert f"refine/recipes/{run.data.tags['mlsandbox.recipe_digest']}.yaml" in logged
