"""``mlsandbox apply``: a recipe's samples written out, exactly the pool it selects, as an MLflow run."""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import Result
from conftest import mixed_document, spec_dict, write_jsonl
from PIL import Image
from typer.testing import CliRunner

from mlsandbox.cli import app
from mlsandbox.executors.prepare import prepare
from mlsandbox.project import load_project
from mlsandbox.recipes import Condition, Recipe, load_recipe, recipe_text, save_recipe


def _project(tmp_path: Path, rows: list[dict], ops: tuple[str, ...] = ("text_length_filter",), **dataset: object) -> Path:
    data = write_jsonl(tmp_path / "corpus.jsonl", rows)
    raw = spec_dict(data, workspace=str(tmp_path / "ws"))
    raw["dataset"].update(dataset)
    raw["ops"] = [{"name": op} for op in ops]
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "sandbox.yaml"


ROWS = [{"doc_id": f"d{i:02d}", "content": mixed_document(i), "source": f"s{i % 3}"} for i in range(30)]


def _apply(project: Path, recipe: Path, out: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["apply", str(recipe), "-p", str(project), "--out", str(out), "-q", *args])


def _recipe(tmp_path: Path, **fields: object) -> Path:
    recipe = Recipe(name="long", conditions=[Condition(op="text_length_filter", min=40)], **fields)  # type: ignore[arg-type]
    return save_recipe(recipe, tmp_path / "recipe.yaml")


def _lines(path: Path) -> list[dict]:
    opened = gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")
    with opened as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("name", ["kept.jsonl", "kept.jsonl.gz", "kept.parquet"])
def test_the_recipes_samples_are_written_in_dataset_order_under_the_datasets_field_names(
        tmp_path: Path, tracking_uri: str, name: str) -> None:
    project = _project(tmp_path, ROWS, text_field="content", id_field="doc_id")
    out = tmp_path / "out" / name
    result = _apply(project, _recipe(tmp_path, repeat=2), out)
    assert result.exit_code == 0, result.output
    kept = [r for r in ROWS if len(r["content"]) >= 40]
    expected = [r for r in kept for _ in range(2)]  # each as often as the recipe repeats it, in place
    written = pq.read_table(out).to_pylist() if name.endswith(".parquet") else _lines(out)
    assert written == expected
    assert f"wrote {out}: {len(expected)} samples ({len(kept)} distinct) of the dataset's 30" in result.stdout
    assert "as its conditions (it records no measurement)" in result.stdout  # a hand-written recipe
    run = mlflow.get_run(mlflow.search_runs(search_all_experiments=True, output_format="list")[0].info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mlsandbox.kind"] == "apply"
    assert run.data.params["output"] == str(out.resolve()) and run.data.metrics["samples"] == len(expected)
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"source", "output"} and inputs["output"].name == name
    assert json.loads(inputs["output"].source)["uri"] == str(out.resolve())
    assert "conditions" in mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/apply/recipe.yaml")


def test_on_the_measured_dataset_it_writes_the_measured_pool_or_refuses(tmp_path: Path, tracking_uri: str) -> None:
    project = _project(tmp_path, ROWS, text_field="content", id_field="doc_id")
    stats = prepare(load_project(project), progress=False).stats
    recipe = Recipe(name="long", conditions=[Condition(op="text_length_filter", min=40)])
    measured = save_recipe(recipe.measured_as(recipe.select(stats), stats, run_id="r1"), tmp_path / "measured.yaml")
    result = _apply(project, measured, tmp_path / "kept.jsonl")
    assert result.exit_code == 0, result.output
    assert "as the pool it was measured as" in result.stdout
    other = write_jsonl(tmp_path / "full.jsonl", ROWS + [{"doc_id": "new", "content": "x" * 80, "source": "s"}])
    result = _apply(project, measured, tmp_path / "full-kept.jsonl", "--set", f"dataset.path={other}")
    assert result.exit_code == 0, result.output
    assert "as its conditions, on a dataset it was not measured on" in result.stdout
    assert [r["doc_id"] for r in _lines(tmp_path / "full-kept.jsonl")][-1] == "new"
    loaded = load_recipe(measured)
    assert loaded.measured is not None
    then = {"text_length_filter": {**loaded.measured.statistics["text_length_filter"], "op_version": 99}}
    other_definition = loaded.model_copy(update={"measured": loaded.measured.model_copy(update={"statistics": then})})
    shutil.rmtree(tmp_path / "ws")
    result = _apply(project, save_recipe(other_definition, tmp_path / "v99.yaml"), tmp_path / "v99.jsonl",
                    "--set", f"dataset.path={other}")
    assert result.exit_code == 2 and "measured on another definition of its statistic (op_version" in result.stderr
    assert not list((tmp_path / "ws").rglob("*.parquet"))  # refused before the stats of the full corpus
    edited = load_recipe(measured).model_copy(update={"conditions": [Condition(op="text_length_filter", min=50)]})
    result = _apply(project, save_recipe(edited, tmp_path / "edited.yaml"), tmp_path / "edited.jsonl")
    assert result.exit_code == 2 and "when it was measured by run r1, but" in result.stderr
    assert not (tmp_path / "edited.jsonl").exists()


def test_pictures_are_written_as_parquet_bytes(tmp_path: Path, tracking_uri: str) -> None:
    rows = []
    for i in range(12):
        png = io.BytesIO()
        Image.new("RGB", (8 + i, 8), (20 * i, 0, 0)).save(png, format="PNG")
        rows.append({"caption": f"a red box number {i} " + "word " * i, "picture": png.getvalue()})
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    raw = spec_dict(tmp_path / "pairs.parquet", workspace=str(tmp_path / "ws"))
    raw["dataset"].update(text_field="caption", image_field="picture")
    raw["ops"] = [{"name": "text_length_filter"}]
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    refused = _apply(tmp_path / "sandbox.yaml", _recipe(tmp_path), tmp_path / "kept.jsonl")
    assert refused.exit_code == 2 and "write a .parquet file" in refused.stderr
    result = _apply(tmp_path / "sandbox.yaml", _recipe(tmp_path), tmp_path / "kept.parquet")
    assert result.exit_code == 0, result.output
    written = pq.read_table(tmp_path / "kept.parquet").to_pylist()
    assert [(r["caption"], r["picture"]) for r in written] == [
        (r["caption"], r["picture"]) for r in rows if len(r["caption"]) >= 40]


@pytest.mark.parametrize(("out", "message"), [
    ("kept.csv", "name a .jsonl, .jsonl.gz, .parquet file"),
    ("taken.jsonl", "exists: name another file, or --force to replace it"),
    ("folder.jsonl", "folder.jsonl: a folder; name the file to write"),
    ("taken.jsonl/x.jsonl", "taken.jsonl exists and is not a folder"),
])
def test_bad_output_is_refused_before_any_work(tmp_path: Path, tracking_uri: str, out: str, message: str) -> None:
    project = _project(tmp_path, ROWS, text_field="content", id_field="doc_id")
    (tmp_path / "taken.jsonl").write_text("mine\n")
    (tmp_path / "folder.jsonl").mkdir()
    result = _apply(project, _recipe(tmp_path), tmp_path / out)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert (tmp_path / "taken.jsonl").read_text() == "mine\n"
    assert not (tmp_path / "ws").exists()  # no stats computed
    replaced = _apply(project, _recipe(tmp_path), tmp_path / "taken.jsonl", "--force")
    assert replaced.exit_code == 0 and _lines(tmp_path / "taken.jsonl")[0]["doc_id"] != "mine"


def test_a_run_id_names_the_recipe_the_run_logged(tmp_path: Path, tracking_uri: str) -> None:
    project = _project(tmp_path, ROWS, text_field="content", id_field="doc_id")
    recipe = Recipe(name="long", conditions=[Condition(op="text_length_filter", min=40)])
    mlflow.set_experiment("elsewhere")  # another experiment's run is found by its id
    with mlflow.start_run() as candidate:  # as a refine candidate or a search trial logs it
        mlflow.log_text(recipe_text(recipe), "recipe.yaml")
    with mlflow.start_run() as bare:
        pass
    result = _apply(project, Path(candidate.info.run_id), tmp_path / "kept.jsonl")
    assert result.exit_code == 0, result.output
    assert len(_lines(tmp_path / "kept.jsonl")) == sum(len(r["content"]) >= 40 for r in ROWS)
    applied = mlflow.search_runs(filter_string="tags.`mlsandbox.kind` = 'apply'", output_format="list",
                                 search_all_experiments=True)[0]
    assert applied.data.params["recipe_source"] == f"runs:/{candidate.info.run_id}/recipe.yaml"
    again = _apply(project, Path(applied.info.run_id), tmp_path / "again.jsonl")  # an apply run's recipe
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "kept.jsonl").read_bytes()
    refused = _apply(project, Path(bare.info.run_id), tmp_path / "none.jsonl")
    assert refused.exit_code == 2 and "logged no recipe; expected a recipe file, or the run id" in refused.stderr
    unknown = _apply(project, Path("0123456789abcdef0123456789abcdef"), tmp_path / "none.jsonl")
    assert unknown.exit_code == 2 and "no run '0123456789abcdef0123456789abcdef'" in unknown.stderr


@pytest.mark.parametrize(("metrics", "note"), [
    ({"answer.delta_pct": 0.4, "answer.p_adjusted": 0.3}, "answer was not a win (long: +0.40% over random, Holm-adjusted p 0.3)"),
    ({"answer.delta_pct": 2.0, "answer.p_adjusted": 0.01, "answer.confirmed_seeds": 5, "answer.confirmed_pct": -0.5,
      "answer.confirmed_p": 0.6}, "beat the random control (+2.00% over random, Holm-adjusted p 0.01) but not again on 5"),
    ({"answer.delta_pct": 1.0}, "answer was not a win (long: +1.00% over random, no p-value: one seed)"),
    ({"answer.delta_pct": 2.0, "answer.p_adjusted": 0.01}, None),
])
def test_a_workflows_recipe_that_did_not_win_is_written_with_a_note(tmp_path: Path, tracking_uri: str, metrics: dict,
                                                                    note: str | None) -> None:
    project = _project(tmp_path, ROWS, text_field="content", id_field="doc_id")
    recipe = Recipe(name="long", conditions=[Condition(op="text_length_filter", min=40)])
    mlflow.set_experiment("workflows")
    with mlflow.start_run() as workflow:  # as a workflow run logs its answer and best recipe
        mlflow.log_text(recipe_text(recipe), "refine/best_recipe.yaml")
        mlflow.log_params({"answer.kind": "recipe", "answer.name": "long"})
        mlflow.log_metrics(metrics)
    result = _apply(project, Path(workflow.info.run_id), tmp_path / "kept.jsonl")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith(f"note: run {workflow.info.run_id}")]
    assert [note in line for line in notes] == ([] if note is None else [True]), result.stdout


def test_a_stop_before_the_file_has_its_record_leaves_no_file_and_the_same_command_runs_again(
        tmp_path: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put in place before its run logged it, a file outlived a kill: the same command then said it existed."""
    from mlsandbox.workflows import apply

    project = _project(tmp_path, ROWS, text_field="content", id_field="doc_id")
    logged = apply.tracking.log_batch

    def stopped(run_id: str, **kwargs: object) -> None:
        if "params" in kwargs:  # the run's record of the written file
            raise KeyboardInterrupt
        logged(run_id, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(apply.tracking, "log_batch", stopped)
    assert _apply(project, _recipe(tmp_path), tmp_path / "kept.jsonl").exit_code == 130
    assert list(tmp_path.glob("kept.jsonl*")) == []
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "KILLED"
    monkeypatch.setattr(apply.tracking, "log_batch", logged)
    assert _apply(project, _recipe(tmp_path), tmp_path / "kept.jsonl").exit_code == 0


def test_what_would_be_lost_or_wasted_is_refused(tmp_path: Path, tracking_uri: str) -> None:
    project = _project(tmp_path, ROWS, text_field="content", id_field="doc_id")
    corpus = tmp_path / "corpus.jsonl"
    before = corpus.read_bytes()
    overwrite = _apply(project, _recipe(tmp_path), corpus, "--force")
    assert overwrite.exit_code == 2 and "is a file of the dataset: write the selection elsewhere" in overwrite.stderr
    assert corpus.read_bytes() == before and not list((tmp_path / "ws").rglob("*.parquet"))  # refused before the stats
    other_op = save_recipe(Recipe(name="clean", conditions=[Condition(op="alphanumeric_filter", min=0.5)]),
                           tmp_path / "other.yaml")
    shutil.rmtree(tmp_path / "ws", ignore_errors=True)
    refused = _apply(project, other_op, tmp_path / "new" / "kept.jsonl")
    assert refused.exit_code == 2 and "bounds the stats of alphanumeric_filter, which the project does not" in refused.stderr
    assert not (tmp_path / "ws").exists() and not (tmp_path / "new").exists()  # before the stats, nothing made
    nothing = save_recipe(Recipe(name="none", conditions=[Condition(op="text_length_filter", min=10**6)]),
                          tmp_path / "none.yaml")
    assert _apply(project, nothing, tmp_path / "new" / "kept.jsonl").exit_code == 2
    assert not (tmp_path / "new").exists()


def test_json_lines_hold_no_bytes_and_no_nan(tmp_path: Path, tracking_uri: str) -> None:
    rows = [{"text": mixed_document(i), "score": float("nan") if i % 2 else 0.5, "blobs": [b"\x01"]} for i in range(30)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet")
    raw = spec_dict(tmp_path / "data.parquet", workspace=str(tmp_path / "ws"))
    raw["ops"] = [{"name": "text_length_filter"}]
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    refused = _apply(tmp_path / "sandbox.yaml", _recipe(tmp_path), tmp_path / "kept.jsonl")
    assert refused.exit_code == 2 and "holds bytes (blobs)" in refused.stderr
    assert not list((tmp_path / "ws").rglob("*.parquet"))  # refused before the stats
    pq.write_table(pa.Table.from_pylist(rows).drop_columns(["blobs"]), tmp_path / "data.parquet")
    result = _apply(tmp_path / "sandbox.yaml", _recipe(tmp_path), tmp_path / "kept.jsonl")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "kept.jsonl").read_text()
    assert "NaN" not in text and {r["score"] for r in _lines(tmp_path / "kept.jsonl")} <= {None, 0.5}


def test_each_written_file_is_its_own_output_record(tmp_path: Path, tracking_uri: str) -> None:
    """MLflow keeps one dataset record per name and digest: the pool's would name the first file."""
    project = _project(tmp_path, ROWS, text_field="content", id_field="doc_id")
    for name in ("a.jsonl", "b.jsonl"):
        assert _apply(project, _recipe(tmp_path), tmp_path / name).exit_code == 0
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    sources = {json.loads(i.dataset.source)["uri"] for r in runs for i in r.inputs.dataset_inputs
               if i.tags[0].value == "output"}
    assert sources == {str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")}


def test_only_the_stats_the_recipe_bounds_are_computed(tmp_path: Path, tracking_uri: str) -> None:
    """On a full corpus the project's other OPs (a perplexity model, say) could take hours and decide nothing."""
    project = _project(tmp_path, ROWS, ("alphanumeric_filter", "text_length_filter"), text_field="content")
    assert _apply(project, _recipe(tmp_path), tmp_path / "kept.jsonl").exit_code == 0
    cached = [p.name for p in (tmp_path / "ws" / "stats").rglob("*.parquet")]
    assert len(cached) == 1 and "text_length_filter" in cached[0], cached
