"""Unusual or bad data files: each loads, or is refused in one line naming the file (and its line or type)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write_jsonl

from mlsandbox.data import load_dataset
from mlsandbox.errors import DataError
from mlsandbox.spec import DatasetSpec


def _load(path: Path, **kw: object):
    return load_dataset(DatasetSpec(path=str(path), **kw))


@pytest.mark.parametrize("ids", [[{"a": 1}, {"a": 2}], [[1], [2]], [0.5, 1.5], [True, False]],
                         ids=["struct", "list", "float", "bool"])
def test_a_parquet_id_column_that_is_not_integers_or_strings_is_named(tmp_path: Path, ids: list) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": ids, "text": ["one", "two"]}), path)
    with pytest.raises(DataError, match=r"d\.parquet: id field 'id' has type .*; ids are integers or strings"):
        _load(path)


def test_integer_and_categorical_parquet_ids_load_as_strings(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [7, 8], "text": ["one", "two"]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": pa.array(["x", "y"]).dictionary_encode(), "text": ["one", "two"]}),
                   tmp_path / "b.parquet")
    assert _load(tmp_path / "a.parquet").ids.to_pylist() == ["7", "8"]
    assert _load(tmp_path / "b.parquet").ids.to_pylist() == ["x", "y"]


def test_files_of_one_name_in_subfolders_get_distinct_line_ids(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_jsonl(tmp_path / "a" / "part.jsonl", [{"text": "one"}, {"text": "two"}])
    write_jsonl(tmp_path / "b" / "part.jsonl", [{"text": "three"}])
    ds = _load(tmp_path)
    assert ds.ids.to_pylist() == ["a/part.jsonl:1", "a/part.jsonl:2", "b/part.jsonl:1"]


def test_files_of_distinct_names_keep_their_name_as_the_id(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    write_jsonl(tmp_path / "a" / "x.jsonl", [{"text": "one"}])
    write_jsonl(tmp_path / "y.jsonl", [{"text": "two"}])
    assert _load(tmp_path).ids.to_pylist() == ["x.jsonl:1", "y.jsonl:1"]


def test_a_csv_value_longer_than_arrows_block_loads(tmp_path: Path) -> None:
    long = "word\nword " * 300_000  # 3 MB, across lines: longer than Arrow's 1 MB block
    path = tmp_path / "d.csv"
    path.write_text(f'id,text\n1,short\n2,"{long}"\n3,after\n')
    ds = _load(path)
    assert ds.ids.to_pylist() == ["1", "2", "3"]
    assert ds.texts[1] == long


def test_a_csv_byte_that_is_not_utf8_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b'id,text\n1,one\n2,"two\nlines"\n3,caf\xe9\n4,four\n')
    with pytest.raises(DataError, match=r"d\.csv:5: not UTF-8"):
        _load(path)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_repeated_id_is_named_with_its_first_two_places(tmp_path: Path, fmt: str) -> None:
    rows = [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}, {"id": "a", "text": "three"}]
    if fmt == "jsonl":
        path = tmp_path / "d.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2]) + "\n")
        where = "lines 1 and 4"
    else:
        path = tmp_path / "d.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        where = "rows 1 and 3"
    with pytest.raises(DataError, match=rf"d\.{fmt}: 1 sample ids occur more than once, the first 'a' at {where}"):
        _load(path)


def test_an_image_folder_given_as_a_relative_path_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    for name in ("a", "sub/b"):
        Image.new("RGB", (4, 4), (200, 0, 0)).save(tmp_path / "imgs" / f"{name}.png")
        (tmp_path / "imgs" / f"{name}.txt").write_text(f"a red square {name}")
    monkeypatch.chdir(tmp_path)
    ds = load_dataset(DatasetSpec(path="imgs", format="images"))
    assert ds.ids.to_pylist() == ["a", "sub/b"]
    assert ds.digest == load_dataset(DatasetSpec(path=str(tmp_path / "imgs"), format="images")).digest


def test_a_null_text_or_id_in_a_columnar_file_or_jsonl_is_named_by_its_row(tmp_path: Path) -> None:
    """A Parquet file holds nulls the JSONL reader never sees: each is named, not a pool of holes."""
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["one", None]}), tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"t\.parquet: row 2 has no text \(null 'text'\)"):
        _load(tmp_path / "t.parquet")
    path = write_jsonl(tmp_path / "i.jsonl", [{"id": "a", "text": "one"}, {"id": None, "text": "two"}])
    with pytest.raises(DataError, match=r"i\.jsonl: .*has no id \(null 'id'\)"):
        _load(path)
