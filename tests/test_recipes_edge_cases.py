"""docs/recipes.md's promises at their edges: an imported config's provenance, the export round trip,
and `train --recipe` refusing a bad or hand-edited recipe file with exit code 2 and one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from conftest import spec_dict, write_jsonl
from typer.testing import CliRunner

from mlsandbox.cli import app
from mlsandbox.executors.prepare import prepare
from mlsandbox.project import load_project
from mlsandbox.recipes import Condition, Recipe, from_data_juicer, recipe_text, save_data_juicer

DOCS = [{"id": f"d{i}", "text": "word " * (i + 1) + "x" * i} for i in range(12)]


def test_an_imported_config_names_where_it_came_from_once(tmp_path: Path) -> None:
    config = {"process": [{"text_length_filter": {"min_len": 20}}]}
    assert from_data_juicer(config).source == "Data-Juicer config"
    path = tmp_path / "process.yaml"
    path.write_text(yaml.safe_dump(config))
    assert from_data_juicer(path).source == f"Data-Juicer config {path}"


def test_an_exported_recipe_imports_as_the_same_conditions(tmp_path: Path) -> None:
    recipe = Recipe(name="r", conditions=[Condition(op="text_length_filter", min=20.0, max=300.0)], repeat=2)
    back = from_data_juicer(save_data_juicer(recipe, tmp_path / "dj.yaml"))
    assert back.conditions == recipe.conditions and back.repeat == 1  # repeat is a comment, not read back


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    raw = spec_dict(write_jsonl(tmp_path / "data.jsonl", DOCS), workspace=str(tmp_path / "ws"))
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    return folder


def _train(project: Path, recipe: Path) -> Result:
    return CliRunner().invoke(app, ["train", "-p", str(project), "--recipe", str(recipe), "--seeds", "0", "-q"])


def _measured(project: Path) -> dict:
    stats = prepare(load_project(project), progress=False).stats
    recipe = Recipe(name="long", conditions=[Condition(op="text_length_filter", min=30.0)])
    return yaml.safe_load(recipe_text(recipe.measured_as(recipe.select(stats), stats, "run-1")))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["conditions"][0].update(min=40.0), "selected pool .* but now selects pool"),
    (lambda d: d["measured"].update(pool_digest="0" * 16), "selected pool 0{16} .* but now selects pool"),
    (lambda d: d["conditions"][0].pop("min"), "set min, max"),
    (lambda d: d["conditions"][0].update(op="no_such_filter"), "unknown OP 'no_such_filter'"),
    (lambda d: d["measured"].pop("pool_digest"), "measured.pool_digest: required key missing"),
])
def test_train_refuses_a_hand_edited_recipe_in_one_line(project: Path, tmp_path: Path, tracking_uri: str,
                                                       edit, message: str) -> None:
    raw = _measured(project)
    edit(raw)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = _train(project, path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]


def test_train_refuses_a_malformed_recipe_file_in_one_line(project: Path, tmp_path: Path, tracking_uri: str) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("name: x\nconditions:\n  - op: text_length_filter\n    min: [1\n")
    result = _train(project, path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "recipe.yaml: not valid YAML" in result.stderr
