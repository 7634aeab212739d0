"""Unusual but legitimate names and files: a folder named with ``%20``, a byte-order mark, a path with spaces."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from conftest import spec_dict

from mlsandbox import tracking
from mlsandbox.data import load_dataset
from mlsandbox.errors import SpecError
from mlsandbox.spec import DatasetSpec, parse_spec
from mlsandbox.tracking._store import create_sqlite_store
from mlsandbox.workflows.train import _read_ids

ROWS = [{"id": f"d{i}", "text": f"a clean sentence number {i}"} for i in range(4)]


def test_a_new_store_in_a_folder_whose_name_looks_percent_encoded_is_created_there(tmp_path: Path) -> None:
    folder = tmp_path / "g%20h ü"
    folder.mkdir()
    create_sqlite_store(f"sqlite:///{quote(str(folder / 'mlflow.db'))}")
    assert (folder / "mlflow.db").is_file() and not (tmp_path / "g h ü").exists()


def test_jsonl_data_and_pool_files_may_start_with_a_byte_order_mark(tmp_path: Path) -> None:
    """Some editors write one; it is not part of the first line's JSON."""
    data = tmp_path / "bom.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS), encoding="utf-8-sig")
    assert load_dataset(DatasetSpec(path=str(data))).ids.to_pylist() == [r["id"] for r in ROWS]
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"id": "d1"}\n{"id": "d3"}\n', encoding="utf-8-sig")
    assert _read_ids(pool) == ["d1", "d3"]


def test_the_view_hint_of_a_store_under_a_path_with_spaces_can_be_pasted(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path}/my runs/mlflow.db"
    monkeypatch.setattr(tracking._logging, "shown_tracking_uri", lambda: uri)
    run = SimpleNamespace(info=SimpleNamespace(run_id="abc", experiment_id="1"))
    hint = tracking.run_url(run)  # type: ignore[arg-type]
    assert shlex.split(hint.split("(view: ", 1)[1].rstrip(")"))[-1] == uri


def test_a_project_name_longer_than_an_mlflow_experiment_name_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="name: String should have at most 500 characters"):
        parse_spec({**spec_dict(tmp_path / "data.jsonl"), "name": "x" * 501})


def test_a_glob_under_a_folder_whose_name_has_brackets_finds_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "crawl [v2]"
    folder.mkdir()
    for part in ("a", "b"):
        (folder / f"{part}.jsonl").write_text("\n".join(json.dumps({**r, "id": f"{part}{r['id']}"}) for r in ROWS))
    assert len(load_dataset(DatasetSpec(path=str(folder / "*.jsonl")))) == 2 * len(ROWS)


@pytest.mark.parametrize("name", [1, True])
def test_a_name_that_yaml_reads_as_a_number_or_boolean_says_to_quote_it(tmp_path: Path, name: object) -> None:
    with pytest.raises(SpecError, match=r"name: Input should be a valid string \(YAML reads .* quote it\)"):
        parse_spec({**spec_dict(tmp_path / "data.jsonl"), "name": name})
