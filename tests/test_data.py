"""Datasets load from JSONL, JSON, Parquet and CSV into a table with stable ids; bad input is named."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (pa.parquet)
import pytest
from conftest import write_jsonl

from mlsandbox.data import load_dataset
from mlsandbox.errors import DataError
from mlsandbox.spec import DatasetSpec

ROWS = [{"id": f"r{i}", "text": f"text number {i}", "lang": "en"} for i in range(5)]


def _load(path: Path | str, **kw: object):
    return load_dataset(DatasetSpec(path=str(path), **kw))


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "json", "parquet", "csv"])
def test_every_format_gives_the_same_table_and_digest(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"data.{fmt}"
    frame = pd.DataFrame(ROWS)
    if fmt == "jsonl":
        write_jsonl(path, ROWS)
    elif fmt == "jsonl.gz":
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in ROWS).encode()))
    elif fmt == "json":
        path.write_text(json.dumps(ROWS))
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    ds = _load(path)
    assert ds.table.column_names == ["id", "text", "lang"]
    assert ds.table["id"].to_pylist() == [r["id"] for r in ROWS]
    assert ds.texts == [r["text"] for r in ROWS]
    assert ds.table["lang"].to_pylist() == ["en"] * len(ROWS)
    reference = _load(write_jsonl(tmp_path / "ref.jsonl", ROWS))
    assert ds.digest == reference.digest
    # 64-bit offsets: pools of a corpus past 2 GiB of text are taken from it without overflow
    assert (ds.table.schema.field("text").type, ds.table.schema.field("lang").type) == (pa.large_string(),) * 2


def test_digest_depends_on_content_not_on_file_name(tmp_path: Path) -> None:
    a = _load(write_jsonl(tmp_path / "a.jsonl", ROWS))
    b = _load(write_jsonl(tmp_path / "b.jsonl", ROWS))
    changed = _load(write_jsonl(tmp_path / "c.jsonl", ROWS[:-1] + [{"id": "r4", "text": "edited"}]))
    assert a.digest == b.digest != changed.digest


def test_ids_are_generated_stably_when_absent(tmp_path: Path) -> None:
    rows = [{"text": "a"}, {"text": "b"}]
    path = write_jsonl(tmp_path / "noid.jsonl", rows)
    assert _load(path).table["id"].to_pylist() == ["noid:1", "noid:2"]
    assert _load(path).digest == _load(path).digest


def test_a_folder_and_a_glob_load_every_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    write_jsonl(tmp_path / "d" / "part1.jsonl", [{"text": "one"}])
    write_jsonl(tmp_path / "d" / "part2.jsonl", [{"text": "two"}, {"text": "three"}])
    assert len(_load(tmp_path / "d")) == 3
    ds = _load(tmp_path / "d" / "part*.jsonl")
    assert ds.table["id"].to_pylist() == ["part1.jsonl:1", "part2.jsonl:1", "part2.jsonl:2"]


def test_a_configurable_text_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"content": "hello", "topic": 3}])
    loaded = _load(path, text_field="content")
    assert loaded.texts == ["hello"] and loaded.table.column_names == ["id", "text", "topic"]


def test_a_malformed_json_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "broken\n{"text": "fine"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: malformed JSON line"):
        _load(path)


def test_skipping_malformed_lines_is_explicit_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "broken\n[1, 2]\n{"text": "fine"}\n')
    ds = _load(path, on_error="skip")
    assert ds.texts == ["ok", "fine"] and ds.skipped == 2


def test_non_utf8_bytes_are_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin1\.jsonl:2: not UTF-8"):
        _load(path)


def test_a_missing_text_field_is_named(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"text": "a"}, {"body": "b"}])
    with pytest.raises(DataError, match=r"m\.jsonl:2: no text field 'text' \(fields: body\)"):
        _load(path)
    frame = tmp_path / "m.parquet"
    pd.DataFrame({"body": ["x"]}).to_parquet(frame)
    with pytest.raises(DataError, match="no text field 'text'"):
        _load(frame)
    rows = write_jsonl(tmp_path / "ids.jsonl", [{"text": "a", "doc_key": "1"}])
    with pytest.raises(DataError, match=r"no id field 'dockey' \(columns: text, doc_key\)$"):  # only the file's
        _load(rows, id_field="dockey")


def test_a_non_string_text_is_named(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "n.jsonl", [{"text": "a"}, {"text": None}])
    with pytest.raises(DataError, match=r"n\.jsonl:2: text field 'text' is null, not a string"):
        _load(path)


def test_empty_datasets_and_missing_paths_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="empty"):
        _load(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match="no such file"):
        _load(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="/dev/null: not a regular file or folder"):
        _load(Path("/dev/null"))


def test_an_empty_file_is_empty_whether_or_not_ids_are_named(tmp_path: Path) -> None:
    """With an id field named, an empty shard stopped a folder's load with "no id field 'id' (columns:
    text)": a column the file does not have, of a check an empty file has nothing to fail."""
    shards = tmp_path / "shards"
    shards.mkdir()
    write_jsonl(shards / "a.jsonl", [{"id": "a1", "text": "x"}])
    (shards / "b.jsonl").write_text("")
    (shards / "c.json").write_text("[]")
    write_jsonl(shards / "d.jsonl", [{"id": "d1", "text": "y"}])
    for id_field in ("id", None):
        assert _load(shards, id_field=id_field).texts == ["x", "y"]
        with pytest.raises(DataError, match="empty"):
            _load(shards / "b.jsonl", id_field=id_field)
    (shards / "a.jsonl").write_text("\n")
    (shards / "d.jsonl").write_text("")
    with pytest.raises(DataError, match="empty"):
        _load(shards, id_field="id")


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "dup.jsonl", [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])
    with pytest.raises(DataError, match="occur more than once.*'a'"):
        _load(path)


def test_a_saved_hugging_face_dataset_loads(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "hf"))
    ds = _load(tmp_path / "hf", format="hf")
    assert ds.table["id"].to_pylist() == [r["id"] for r in ROWS]
    assert ds.digest == _load(write_jsonl(tmp_path / "ref.jsonl", ROWS)).digest


def _named_then_skipped(path: Path, match: str, kept: list[str]) -> None:
    """Loading ``path`` fails with ``match``; with ``on_error: skip`` only ``kept`` texts remain, the rest counted."""
    with pytest.raises(DataError, match=match):
        _load(path)
    ds = _load(path, on_error="skip")
    assert ds.texts == kept and ds.skipped > 0


def test_a_lone_surrogate_escape_is_named_by_file_and_line_or_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "ok"}\n{"id": "s0", "text": "lone \\ud800 here"}\n{"text": "pair \\ud83d\\ude00"}\n')
    _named_then_skipped(path, r"s\.jsonl:2: not valid Unicode text: lone surrogate escape \\ud800",
                        ["ok", "pair \U0001f600"])
    listed = tmp_path / "s.json"
    listed.write_text('[{"text": "ok"}, {"text": "x", "meta": "\\udc00"}]')
    _named_then_skipped(listed, r"s\.json: object 2: not valid Unicode text: lone surrogate escape \\udc00", ["ok"])


@pytest.mark.parametrize("name", ["d.jsonl.gz", "d.json.gz", "d.csv.gz"])
def test_a_corrupt_or_truncated_gzip_file_is_named(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"garbage" * 10)
    with pytest.raises(DataError, match=rf"{name}: not a readable gzip file"):
        _load(path)
    path.write_bytes(gzip.compress(b"text\n" + b"a line of text\n" * 500)[:40])
    with pytest.raises(DataError, match=rf"{name}: not a readable gzip file"):
        _load(path)


def test_a_ragged_csv_row_is_named_by_its_line_or_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "r.csv"
    path.write_text('id,text,x\n1,hello,a\n\n2,"two\nlines",b,extra\n3,short\n4,ok,e\n')
    _named_then_skipped(path, r"r\.csv:4: malformed CSV row: expected 3 fields, got 4", ["hello", "ok"])
    assert _load(path, on_error="skip").skipped == 2
    assert "r.csv:4: malformed CSV row" in caplog.text and "r.csv:6: malformed CSV row: expected 3 fields, got 2" in caplog.text


def test_an_unclosed_quote_does_not_swallow_the_rest_of_a_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('id,text\n1,hello\n2,"never closed\n3,third\n4,fourth\n')
    _named_then_skipped(path, r"q\.csv:3: malformed CSV row: a quoted value opened on this line is never closed, "
                              r"so it and the 2 lines after it", ["hello"])
    path.write_text('id,text\n1,hello\n2,"two\nlines"\n')  # a closed quote may span lines
    assert _load(path).texts == ["hello", "two\nlines"]


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_a_stray_quote_closed_in_a_later_row_stops_the_load_naming_its_line(tmp_path: Path, on_error: str) -> None:
    """Arrow reads the rows up to the closing quote as part of the stray one's value: 2 rows lost, exit 0.
    Which rows it swallowed cannot be told apart, so not even `skip` goes on."""
    path = tmp_path / "q.csv"
    path.write_text('id,text\n1,hello\n2,"never closed\n3,third\n4,"was not ""worth it"" at all"\n5,fifth\n')
    with pytest.raises(DataError, match=r"q\.csv:3: malformed CSV: the quoted value opened on this line is followed "
                                        r"by more text after its closing quote on line 5 \(',' expected after '\"'\); "
                                        r"if that quote is a stray one, lines 3-5 are read as one row"):
        _load(path, on_error=on_error)
    path.write_text('id,text\n1,"two\nlines"\n2,"never closed\n')  # left open on the last line, after a multi-line value
    with pytest.raises(DataError, match=r"q\.csv:4: malformed CSV row: a quoted value opened on this line is never "
                                        r"closed"):
        _load(path, on_error="raise")
    assert _load(path, on_error="skip").texts == ["two\nlines"]
    path.write_text('id,text\n1,"one ""quoted"" word\nover two lines"\n2,plain\n')  # well quoted: read as ever
    assert _load(path).texts == ['one "quoted" word\nover two lines', "plain"]
    path.write_text('id,text\n1,"two\nlines"\n2,"12" monitor\n')  # read as "12 monitor": the text lost its quote
    with pytest.raises(DataError, match=r"q\.csv:4: malformed CSV: the quoted value opened on this line is followed by "
                                        r"more text after its closing quote \(',' expected after '\"'\); if that quote is"):
        _load(path, on_error=on_error)
    # a stray quote closed on its own line: the value's other lines were read as rows of their own (a fake sample)
    for stray in ('"stray "quote here', '"stray ,"quote here'):  # after a comma too: it looks like an opening quote
        path.write_text(f'id,text\na1,"first"\na2,{stray}\nline two, with comma\nmore text"\na3,"third"\n')
        with pytest.raises(DataError, match=r"q\.csv:3: malformed CSV: .* the lines after it may be read as rows of their"):
            _load(path, on_error=on_error)
    path.write_text('id,text\n1,"a\n"x\n')  # a closing quote at a line's start, text after it
    with pytest.raises(DataError, match=r"q\.csv:2: malformed CSV: .* after its closing quote on line 3"):
        _load(path, on_error=on_error)


def test_a_csv_value_over_python_readers_field_limit_is_read_and_its_ragged_rows_named(tmp_path: Path) -> None:
    long = "word " * 40_000  # 200 kB: over the 128 KiB Python's csv module takes by default
    path = tmp_path / "long.csv"
    path.write_text(f'id,text\n1,hello\n2,"{long}\nsecond line"\n')  # the last value spans lines
    assert _load(path).texts == ["hello", f"{long}\nsecond line"]
    path.write_text(f'id,text\n1,"{long}"\n2,ragged,row\n3,ok\n')
    _named_then_skipped(path, r"long\.csv:3: malformed CSV row: expected 2 fields, got 3", [long, "ok"])


def test_a_json_object_with_a_key_twice_is_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "k.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "seen here", "meta": 1, "text": "or here"}\n')
    _named_then_skipped(path, r"k\.jsonl:2: malformed JSON line: duplicate key 'text' in one object", ["ok"])
    listed = tmp_path / "k.json"
    listed.write_text('[{"text": "ok"}, {"text": "a", "text": "b"}]')
    with pytest.raises(DataError, match=r"k\.json: malformed JSON: duplicate key 'text'"):
        _load(listed)


def test_csv_values_keep_their_text(tmp_path: Path) -> None:
    """CSV has no types: an inferred one lost what was written (02134 became 2134, N/A null) in files written back."""
    path = tmp_path / "ids.csv"
    path.write_text("id,text,n,zip,flag\n001,a,1,02134,TRUE\n002,b,2,N/A,false\n010,c,3,,\n")
    ds = _load(path)
    assert ds.table["id"].to_pylist() == ["001", "002", "010"]
    assert ds.table["n"].to_pylist() == ["1", "2", "3"]
    assert ds.table["zip"].to_pylist() == ["02134", "N/A", ""] and ds.table["flag"].to_pylist() == ["TRUE", "false", ""]
    with gzip.open(tmp_path / "z.csv.gz", "wt", encoding="utf-8-sig") as f:  # the header of a gzipped file, past its BOM
        f.write('text,"the ""zip"""\na,00501\n')
    assert _load(tmp_path / "z.csv.gz").table['the "zip"'].to_pylist() == ["00501"]
    path.write_text("\r\nid,text,zip\n1,a,02134\n")  # the header after a blank line, which Arrow skips
    assert _load(path).table["zip"].to_pylist() == ["02134"]
    path.write_text("doc,text\n007,a\n0x1,b\n")
    assert _load(path, id_field="doc").table["id"].to_pylist() == ["007", "0x1"]


def test_integers_beyond_int64_are_unsigned_or_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text('{"text": "a", "simhash": 18446744073709551615}\n{"text": "b", "simhash": 3}\n')
    assert _load(path).table["simhash"].to_pylist() == [2**64 - 1, 3]  # a traceback (OverflowError) before
    path.write_text('{"text": "a", "n": 18446744073709551616}\n')
    with pytest.raises(DataError, match=r"line 1: column 'n' holds an integer beyond 64 bits"):
        _load(path)
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.jsonl").write_text('{"text": "a", "h": 18446744073709551615}\n')
    (shards / "b.jsonl").write_text('{"text": "b", "h": 7}\n')  # all below 2**63 in this file: read as signed
    assert _load(shards).table["h"].to_pylist() == [2**64 - 1, 7]
    (shards / "c.jsonl").write_text('{"text": "c", "h": -7}\n')
    with pytest.raises(DataError, match=r"column 'h' is numbers \(uint64\) in .*a\.jsonl but numbers \(int64\) in"):
        _load(shards)
    path.write_text('{"text": "a", "m": {"h": 18446744073709551615}}\n')
    with pytest.raises(DataError, match=r"column 'm' holds an integer beyond 64-bit signed inside an array or object"):
        _load(path)
    path.write_text('{"text": "a", "n": 18446744073709551615}\n{"text": "b", "n": -1}\n')
    with pytest.raises(DataError, match=r"column 'n' holds negative integers \(line 2\) and integers above"):
        _load(path)


def test_a_column_of_mixed_types_is_named_with_where_each_type_starts(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"text": "a", "meta": 1}, {"text": "b"}, {"text": "c", "meta": "x"}])
    with pytest.raises(DataError, match=r"m\.jsonl: column 'meta' mixes value types: number \(line 1\), "
                                        r"string \(line 3\)"):
        _load(path)
    listed = tmp_path / "m.json"
    listed.write_text(json.dumps([{"text": "a", "tags": ["x"]}, {"text": "b", "tags": {"k": 1}}]))
    with pytest.raises(DataError, match=r"column 'tags' mixes value types: array \(object 1\), object \(object 2\)"):
        _load(listed)


def test_columns_of_later_rows_are_kept_and_ids_may_mix_numbers_and_strings(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "k.jsonl", [{"id": 1, "text": "a"}, {"id": "b", "text": "b", "late": 2.5}])
    ds = _load(path)
    assert ds.table["id"].to_pylist() == ["1", "b"]
    assert ds.table["late"].to_pylist() == [None, 2.5]


def test_a_large_dataset_says_it_is_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    import logging

    import mlsandbox.data

    path = write_jsonl(tmp_path / "data.jsonl", ROWS)
    with caplog.at_level(logging.INFO, logger="mlsandbox.progress"):
        _load(path)
        assert "loading dataset" not in caplog.text  # a small one loads in no time
        monkeypatch.setattr(mlsandbox.data, "LARGE_BYTES", 10)
        _load(path)
    assert f"loading dataset {path}: 0.0 GB in 1 file(s)" in caplog.text


@pytest.mark.parametrize("fmt", ["hf", "images", "videos"])
def test_the_builtin_corpus_under_a_format_it_is_not_is_one_clear_error(fmt: str) -> None:
    with pytest.raises(DataError, match=rf"dataset.format: builtin:demo is a JSONL file of texts.*\(got '{fmt}'\)"):
        load_dataset(DatasetSpec(path="builtin:demo", format=fmt))


@pytest.mark.parametrize("content, line", [
    (b"id,text,source\n1,hello,fortunes\n2,world,caf\xe9\n", "3: not UTF-8 (invalid continuation byte at byte 11)"),
    (b"id,text\n1,hello\n2,caf\xe9,extra\n", "3: not UTF-8 (invalid continuation byte at byte 5)"),
], ids=["a metadata column", "a ragged row"])
def test_a_byte_that_is_not_utf8_anywhere_in_a_csv_stops_the_load_naming_its_line(
        tmp_path: Path, content: bytes, line: str) -> None:
    """In another column Arrow read it as bytes (pool files held "b'caf\\xe9'"); in a ragged row it
    failed inside Arrow's handler and named no line. Skipping never applies to it."""
    for path in (tmp_path / "d.csv", tmp_path / "D.CSV.GZ"):
        path.write_bytes(gzip.compress(content) if path.suffix == ".GZ" else content)
        for on_error in ("raise", "skip"):
            with pytest.raises(DataError, match=rf"^{path}:{line}$".replace("(", r"\(").replace(")", r"\)")):
                _load(path, on_error=on_error)


def test_csv_ids_made_from_rows_keep_their_numbers_when_a_row_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("text,x\nfine,1\nok,2\nbad,3,4\nlater,5\n")
    assert _load(path, on_error="skip").ids.to_pylist() == ["c:1", "c:2", "c:4"]  # as once the bad row is fixed


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_column_named_twice_is_named(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"twice.{fmt}"
    if fmt == "csv":
        path.write_text("id,text,src,src\n1,a,x,y\n")
    else:
        table = pa.Table.from_arrays([pa.array(["1"]), pa.array(["a"]), pa.array(["b"])], names=["id", "text", "text"])
        pa.parquet.write_table(table, path)
    twice = "src" if fmt == "csv" else "text"
    with pytest.raises(DataError, match=rf"^{path}: column '{twice}' appears 2 times: name each column once$"):
        _load(path)


@pytest.mark.parametrize("fields, lost", [({"text_field": "content", "id_field": "doc_id"}, "id"),
                                          ({"text_field": "content"}, "text")])
def test_a_column_the_loaded_table_would_replace_is_refused_not_dropped(tmp_path: Path, fields: dict,
                                                                       lost: str) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"doc_id": "a", "content": "hi", "id": "x", "text": "t"}])
    with pytest.raises(DataError, match=rf"its column '{lost}' would be lost: the loaded table calls the {lost} field"):
        _load(path, **fields)


def test_an_upper_case_gz_name_is_read_as_gzip(tmp_path: Path) -> None:
    path = tmp_path / "X.JSONL.GZ"
    path.write_bytes(gzip.compress(b'{"text": "packed"}\n'))
    assert _load(path).texts == ["packed"]


def test_a_builtin_path_cannot_leave_the_bundled_files() -> None:
    with pytest.raises(DataError, match=r"^builtin:\.\./data/_files\.py: a bundled file is named by its path under "):
        _load("builtin:../data/_files.py")


def test_a_users_key_named_like_the_readers_line_number_is_named_not_overwritten(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "l.jsonl", [{"text": "ok"}, {"text": "mine", "__line": 99}])
    _named_then_skipped(path, r"l\.jsonl:2: key '__line' is the reader's own \(it numbers the rows\): rename it", ["ok"])


def test_a_parquet_text_column_stored_as_a_category_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "cat.parquet"
    pd.DataFrame({"id": ["a", "b"], "text": pd.Categorical(["same", "same"])}).to_parquet(path)
    assert _load(path).texts == ["same", "same"]


def test_a_saved_hugging_face_dataset_read_as_files_says_to_set_its_format(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    for name in ("dataset_info.json", "state.json"):
        (folder / name).write_text("{}")
    with pytest.raises(DataError, match=r"a Hugging Face dataset saved with save_to_disk: set dataset\.format: hf$"):
        _load(folder)


def test_a_json_lists_rows_are_named_by_their_object_not_a_line(tmp_path: Path) -> None:
    """A pretty-printed JSON list spreads an object over lines: the reader numbers objects, and says so."""
    rows = [{"id": f"s{i}", "text": f"text {i}"} for i in range(8)]
    path = tmp_path / "d.json"
    path.write_text(json.dumps([*rows[:5], {"id": "s5", "text": None}, *rows[6:]], indent=2))
    with pytest.raises(DataError, match=r"d\.json: object 6: text field 'text' is null, not a string \(set "
                                        r"dataset\.on_error: skip to skip such rows\)$"):
        _load(path)
    assert _load(path, on_error="skip").skipped == 1  # a malformed row, as any other
    lines = tmp_path / "d.jsonl"  # a number, a list: skipped and counted too
    lines.write_text("".join(json.dumps(r) + "\n" for r in [*rows[:3], {"id": "n", "text": 7}, {"id": "l", "text": ["a"]}]))
    with pytest.raises(DataError, match=r"d\.jsonl:4: text field 'text' is int, not a string"):
        _load(lines)
    skipped = _load(lines, on_error="skip")
    assert (skipped.skipped, skipped.texts) == (2, ["text 0", "text 1", "text 2"])
    lines.write_text("".join(json.dumps(r) + "\n" for r in [*rows[:2], {"id": "x", "body": "no text"}]))
    assert _load(lines, on_error="skip").skipped == 1  # a row without the field the others have: malformed
    every = tmp_path / "body.jsonl"  # no row has it: the setting to fix, named even under skip
    every.write_text("".join(json.dumps({"id": f"b{i}", "body": "no text"}) + "\n" for i in range(3)))
    with pytest.raises(DataError, match=r"body\.jsonl:1: no text field 'text' \(fields: id, body\); set "
                                        r"dataset\.text_field$"):
        _load(every, on_error="skip")
    path.write_text(json.dumps([*rows[:5], {"id": "s1", "text": "again"}, *rows[6:]], indent=2))
    with pytest.raises(DataError, match=r"the first 's1' at objects 2 and 6; ids must be unique$"):
        _load(path)
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(rows).encode())  # a byte-order mark, as Windows editors write
    assert _load(path).texts == [r["text"] for r in rows]
    path.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*rows[:5], {"id": "s1", "text": "x"}]))
    with pytest.raises(DataError, match=r"the first 's1' at lines 2 and 6; ids must be unique$"):
        _load(path.with_suffix(".jsonl"))
