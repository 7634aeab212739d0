"""Bad input at the command line: exit code 2 and one line naming the problem, never a traceback.

Each case runs a real command (``mlsandbox stats``: spec, workspace, dataset) on a project
written to a temporary folder; ``on_error: skip`` cases check that the good rows still load.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import http.server
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
import yaml
from click.testing import Result
from conftest import spec_dict, write_jsonl
from typer.testing import CliRunner

from mlsandbox.cli import app
from mlsandbox.errors import RecipeError, SpecError
from mlsandbox.recipes import load_recipe

GOOD = [{"id": f"g{i}", "text": f"a clean sentence number {i}"} for i in range(6)]


def _project(tmp_path: Path, data: Path | str, dataset: dict | None = None, **extra: object) -> Path:
    """A project on ``data``; ``dataset`` adds keys to its ``dataset:`` section."""
    project = tmp_path / "proj"
    project.mkdir(exist_ok=True)
    raw = spec_dict(Path(data), **{"workspace": str(tmp_path / "ws"), **extra})
    raw["dataset"].update(dataset or {})
    (project / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    return project


def _stats(project: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["stats", "-p", str(project), "-q", *args])


def _one_error_line(result: Result) -> str:
    """The single ``error: ...`` line of a run that exited with code 2 and printed no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _surrogate_file(tmp_path: Path) -> Path:
    path = write_jsonl(tmp_path / "data.jsonl", GOOD)
    with path.open("a", encoding="utf-8") as f:
        f.write('{"id":"s0","text":"lone \\ud800 here"}\n')  # the JSON escape of an unpaired surrogate
    return path


def test_a_lone_surrogate_escape_is_named_by_file_and_line(tmp_path: Path) -> None:
    data = _surrogate_file(tmp_path)
    line = _one_error_line(_stats(_project(tmp_path, data)))
    assert f"{data}:7: not valid Unicode text: lone surrogate escape \\ud800" in line


def test_a_lone_surrogate_row_is_skipped_and_counted_with_on_error_skip(tmp_path: Path) -> None:
    data = _surrogate_file(tmp_path)
    result = _stats(_project(tmp_path, data, dataset={"on_error": "skip"}))
    assert result.exit_code == 0, result.output
    assert f"{len(GOOD)} samples" in result.output


def test_a_command_that_trains_records_the_rows_it_skipped(tmp_path: Path, tracking_uri: str) -> None:
    rows = [{"id": f"g{i}", "text": f"a clean sentence number {i} " * (i + 1)} for i in range(9)]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    with data.open("a", encoding="utf-8") as f:
        f.write('{"id": "bad", "text": broken\n')
    project = _project(tmp_path, data, dataset={"on_error": "skip"}, pools={"size": 3}, seeds=[0])
    result = CliRunner().invoke(app, ["train", "-p", str(project), "--pool", "text_length_filter/high", "-q"])
    assert result.exit_code == 0, result.output
    (run,) = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`mlflow.runName` = 'train'",
                                output_format="list")
    assert run.data.metrics["rows_skipped"] == 1


@pytest.mark.parametrize(("code", "reason"), [(errno.EACCES, "Permission denied"), (errno.ENOSPC, "No space left on device")])
def test_a_file_that_cannot_be_written_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int,
                                                   reason: str) -> None:
    """MLflow's artifact folder in a folder one cannot write to, or a full disk: a traceback before."""
    from mlsandbox.workflows import pool

    def unwritable(*args: object, **kwargs: object) -> None:
        try:
            raise OSError(code, reason, str(tmp_path / "mlruns"))
        except OSError as err:
            raise RuntimeError("could not log the artifact") from err  # as a library wraps it

    monkeypatch.setattr(pool, "prepare", unwritable)
    line = _one_error_line(_stats(_project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))))
    assert line == (f"error: cannot use {tmp_path / 'mlruns'}: {reason} (fix the permission or free the disk, or work "
                    "where files can be written, then run the same command again)")


def test_benchmark_samples_that_are_in_the_dataset_are_counted_and_named(tmp_path: Path, tracking_uri: str,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Scored on what it trained on, a pool measures memory: said, and logged as evidence (0 where none)."""
    rows = [{"id": f"g{i}", "text": f"a clean sentence number {i} " * (i + 1)} for i in range(9)]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    leaky = write_jsonl(tmp_path / "leaky.jsonl", [{"text": rows[2]["text"]}, {"text": rows[5]["text"]}, {"text": "new"}])
    held = write_jsonl(tmp_path / "held.jsonl", [{"text": "held out entirely"}])
    project = _project(tmp_path, data, pools={"size": 3}, seeds=[0], model={"type": "ngram", "order": 2},
                       benchmarks=[{"name": "leaky", "path": str(leaky)}, {"name": "held", "path": str(held)}])
    result = CliRunner().invoke(app, ["train", "-p", str(project), "--pool", "text_length_filter/high", "-q"])
    assert result.exit_code == 0, result.output
    assert "benchmark leaky: 2 of its samples are in the dataset too" in caplog.text and "benchmark held" not in caplog.text
    (run,) = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`mlflow.runName` = 'train'",
                                output_format="list")
    assert run.data.metrics["benchmark_in_dataset.leaky"] == 2 and run.data.metrics["benchmark_in_dataset.held"] == 0


@pytest.mark.parametrize(("setting", "key"), [("pools.size=[1", "pools.size"), ("seeds=[0,1", "seeds")])
def test_a_set_value_that_is_not_yaml_names_the_key(tmp_path: Path, setting: str, key: str) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    line = _one_error_line(_stats(_project(tmp_path, data), "--set", setting))
    value = setting.partition("=")[2]
    assert f"cannot set {key!r}: the value {value!r} is not valid YAML" in line


@pytest.mark.parametrize("setting", ["pools.seed=-5", "seeds=[0, -1]", f"search.seed={2**32}"])
def test_a_seed_out_of_numpys_range_names_the_key(tmp_path: Path, setting: str) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    line = _one_error_line(_stats(_project(tmp_path, data), "--set", setting))
    key = setting.partition("=")[0]
    assert f"invalid experiment spec: {key}" in line and "a seed must be an integer from 0 to 4294967295" in line


def test_a_spec_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    spec = project / "sandbox.yaml"
    spec.write_bytes(spec.read_bytes() + b"description: caf\xe9\n")
    line = _one_error_line(_stats(project))
    assert f"{spec}: not valid YAML at line" in line and "not UTF-8 text" in line


@pytest.mark.parametrize(("text", "key", "line_no"), [
    ("name: second\n", "name", 5),
    ("pools:\n  seed: 1\n  seed: 2\n", "seed", 7),
])
def test_a_key_written_twice_in_the_spec_is_rejected(tmp_path: Path, text: str, key: str, line_no: int) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    project = tmp_path / "proj"
    project.mkdir()
    spec = project / "sandbox.yaml"
    spec.write_text(f"name: first\ndataset:\n  path: {data}\nops: [{{name: text_length_filter}}]\n{text}")
    line = _one_error_line(_stats(project))
    assert f"{spec}: not valid YAML at line {line_no}" in line and f"duplicate key {key!r}" in line


def test_a_key_written_twice_in_a_recipe_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("name: a\nconditions: []\nname: b\n")
    with pytest.raises(RecipeError, match=r"recipe\.yaml: not valid YAML: line 3, column 1: duplicate key 'name'"):
        load_recipe(path)


@pytest.mark.parametrize("content", [
    b"\x1f\x8b\x08\x00" + b"garbage" * 10,  # a gzip header, then no deflate stream
    gzip.compress("".join(json.dumps(r) + "\n" for r in GOOD * 50).encode())[:60],  # cut short
])
def test_a_corrupt_gzip_file_is_named(tmp_path: Path, content: bytes) -> None:
    data = tmp_path / "data.jsonl.gz"
    data.write_bytes(content)
    line = _one_error_line(_stats(_project(tmp_path, data)))
    assert f"{data}: not a readable gzip file" in line


def _ragged_csv(tmp_path: Path) -> Path:
    data = tmp_path / "data.csv"
    data.write_text("id,text\n001,a clean sentence\n002,one field too many,x\n003,another clean sentence\n")
    return data


def test_a_ragged_csv_row_is_named_by_its_line_without_a_traceback(tmp_path: Path) -> None:
    """Run as a process: a failure inside the CSV reader's callback would print to the real stderr."""
    data = _ragged_csv(tmp_path)
    project = _project(tmp_path, data)
    command = [sys.executable, "-c", "from mlsandbox.cli import app; app()", "stats", "-p", str(project), "-q"]
    failed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2, failed.stderr
    assert failed.stderr.strip().splitlines() == [
        f"error: {data}:3: malformed CSV row: expected 2 fields, got 3: '002,one field too many,x' "
        "(set dataset.on_error: skip to skip such rows)"
    ]
    _project(tmp_path, data, dataset={"on_error": "skip"})
    skipped = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert skipped.returncode == 0, skipped.stderr
    assert "2 samples" in skipped.stdout
    assert "Traceback" not in skipped.stderr and "Exception ignored" not in skipped.stderr
    assert f"{data}:3: malformed CSV row" in skipped.stderr


def test_a_metadata_column_of_mixed_types_is_named(tmp_path: Path) -> None:
    rows = [{**r, "score": 1 if i else "high"} for i, r in enumerate(GOOD)]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    line = _one_error_line(_stats(_project(tmp_path, data)))
    assert f"{data}: column 'score' mixes value types: string (line 1), number (line 2)" in line


@pytest.mark.parametrize("bad_id, kind", [(3.0, "float"), (True, "bool"), ({"n": 1}, "dict")])
def test_an_id_that_is_neither_an_integer_nor_a_string_is_named(tmp_path: Path, bad_id: object, kind: str) -> None:
    rows = [GOOD[0], {**GOOD[1], "id": bad_id}, *GOOD[2:]]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    line = _one_error_line(_stats(_project(tmp_path, data)))
    assert line == f"error: {data}: line 2: id {bad_id!r} is a {kind}; ids are integers or strings"


def test_a_metadata_column_of_one_type_per_file_but_two_across_files_is_named(tmp_path: Path) -> None:
    (tmp_path / "crawl").mkdir()
    first = write_jsonl(tmp_path / "crawl" / "a.jsonl", [{**r, "score": 1} for r in GOOD[:3]])
    second = write_jsonl(tmp_path / "crawl" / "b.jsonl", [{**r, "score": "high"} for r in GOOD[3:]])
    line = _one_error_line(_stats(_project(tmp_path, tmp_path / "crawl" / "*.jsonl")))
    assert line == (f"error: column 'score' is numbers (int64) in {first} but text in {second}: "
                    "give it one type in every file")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_image_path_that_is_a_device_is_refused_before_reading(tmp_path: Path) -> None:
    rows = [{**r, "file": "/dev/zero"} for r in GOOD]
    data = write_jsonl(tmp_path / "data.jsonl", rows)
    line = _one_error_line(_stats(_project(tmp_path, data, dataset={"image_field": "file"})))
    assert "image path /dev/zero is not a regular file" in line


def test_a_workspace_that_is_a_file_is_named_before_any_work(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    occupied = tmp_path / "occupied"
    occupied.write_text("not a folder")
    line = _one_error_line(_stats(_project(tmp_path, data, workspace=str(occupied))))
    assert f"invalid experiment spec: workspace: {occupied} exists and is not a folder" in line
    line = _one_error_line(_stats(_project(tmp_path, data, workspace=str(occupied / "ws"))))
    assert f"workspace: cannot create {occupied / 'ws'}: {occupied} is not a folder" in line
    assert occupied.read_text() == "not a folder"


@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_workspace_is_refused_not_read_as_the_working_directory(tmp_path: Path, blank: str) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    line = _one_error_line(_stats(_project(tmp_path, data, workspace=blank)))
    assert f'workspace: empty: name a folder ("." for the working directory) (got {blank!r})' in line


def test_an_unwritable_workspace_is_named_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # root may write anywhere: stand in for a read-only folder
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    try:
        line = _one_error_line(_stats(_project(tmp_path, data, workspace=str(locked / "ws"))))
        assert f"workspace: cannot create {locked / 'ws'}: folder {locked} is not writable" in line
        line = _one_error_line(_stats(_project(tmp_path, data, workspace=str(locked))))
        assert f"workspace: folder {locked} is not writable" in line
        assert "relative workspace" not in line
        monkeypatch.chdir(locked)  # the default workspace, made in the folder the command runs in
        line = _one_error_line(_stats(_project(tmp_path, data, workspace=".mlsandbox")))
        assert line.endswith("a relative workspace ('.mlsandbox') is made in the folder the command runs in: run it "
                             "where files can be written, or --set workspace=PATH")
        assert not (locked / "ws").exists() and not (tmp_path / "ws").exists()
    finally:
        locked.chmod(0o755)


def test_an_unknown_log_level_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["--log-level", "bogus", "ops"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'bogus'" in result.output and "--log-level" in result.output
    assert CliRunner().invoke(app, ["--log-level", "WARNING", "ops"]).exit_code == 0


def test_a_repeated_seed_is_rejected(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    line = _one_error_line(_stats(_project(tmp_path, data), "--set", "seeds=[0, 0, 1]"))
    assert "seeds: seeds must be distinct" in line


def test_an_out_folder_that_is_a_file_is_named_before_any_work(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    taken = tmp_path / "report.txt"
    taken.write_text("mine")
    line = _one_error_line(_stats(_project(tmp_path, data), "--out", str(taken)))
    assert f"--out {taken}: exists and is not a folder" in line
    assert taken.read_text() == "mine" and not (tmp_path / "ws").exists()


def test_an_out_file_that_is_a_folder_is_named_before_any_work(tmp_path: Path) -> None:
    """stats --out wrote summary.csv, then failed on a folder named stat_histograms.png: half an output."""
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    out = tmp_path / "out"
    (out / "stat_histograms.png").mkdir(parents=True)
    line = _one_error_line(_stats(_project(tmp_path, data), "--out", str(out)))
    assert line == f"error: --out {out}: stat_histograms.png there is a folder, where this command writes a file"
    assert [p.name for p in out.iterdir()] == ["stat_histograms.png"] and not (tmp_path / "ws").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_an_out_folder_that_refuses_files_is_named_before_any_work(tmp_path: Path) -> None:
    """An existing folder that cannot take a file (here /proc, as a read-only mount would) crashed
    `report --out` with a traceback once its files were rendered."""
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    line = _one_error_line(_stats(_project(tmp_path, data), "--out", "/proc"))
    assert line.startswith("error: --out /proc: cannot be written (") and not (tmp_path / "ws").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_a_workspace_where_folders_cannot_be_made_is_named_before_any_work(tmp_path: Path) -> None:
    """/proc looks writable to root (os.access) but refuses every new folder."""
    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    line = _one_error_line(_stats(_project(tmp_path, data, workspace="/proc/mlsandbox-ws")))
    assert line.startswith("error: ") and "workspace: cannot create /proc/mlsandbox-ws" in line


def test_a_hugging_face_dataset_that_cannot_be_loaded_is_named(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    empty = tmp_path / "saved"
    empty.mkdir()
    line = _one_error_line(_stats(_project(tmp_path, empty, {"format": "hf"})))
    assert f"{empty}: cannot load it as a Hugging Face dataset" in line


@pytest.mark.parametrize("key, url", [
    ("dataset.path", "https://alice:S3cr3tPW@data.example/x.jsonl"),
    ("dataset.path", "https://data.example/x.jsonl?token=S3cr3tPW"),
    ("benchmarks", "[{name: b, path: 'https://alice:S3cr3tPW@data.example/b.jsonl'}]"),
])
def test_a_url_as_a_data_path_is_refused_without_its_password(tmp_path: Path, key: str, url: str) -> None:
    """Made a path, the URL's "//" would fold to "/" and its password would no longer read as one."""
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    result = _stats(project, "--set", f"{key}={url}")
    line = _one_error_line(result)
    assert "path: a URL: data is read from a local file" in line and "S3cr3tPW" not in result.output


def test_a_bundled_project_outside_a_clone_says_where_the_projects_are(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # as after a package install: no projects/ folder here
    line = _one_error_line(CliRunner().invoke(app, ["stats", "-q"]))
    assert "no experiment spec at projects/text-quality" in line and "run from a clone of it" in line and "mlsandbox init DIR" in line
    (tmp_path / "projects" / "text-quality").mkdir(parents=True)  # in a clone: a misspelt project is named
    (tmp_path / "projects" / "text-quality" / "sandbox.yaml").write_text("name: x\n")
    for given in ("projects/text-qualty", "projects/text-qualty/sandbox.yaml"):
        line = _one_error_line(CliRunner().invoke(app, ["stats", "-p", given, "-q"]))
        assert line.endswith(f"(expected a sandbox.yaml file or its folder, relative to {tmp_path}; did you mean "
                             "'projects/text-quality'?)")
    (tmp_path / "docs").mkdir()  # a folder without a spec: not a project to suggest, nor itself
    for given in ("docs", "doc"):
        line = _one_error_line(CliRunner().invoke(app, ["stats", "-p", given, "-q"]))
        assert line.endswith(f"or its folder, relative to {tmp_path})")
    line = _one_error_line(CliRunner().invoke(app, ["stats", "-p", str(tmp_path / "doc"), "-q"]))
    assert line.endswith("or its folder)")  # an absolute path says where it is itself


@pytest.mark.parametrize("args, expected", [
    (["stats", "-p", "https://alice:S3cr3tPW@host/x.parquet"], "no experiment spec at https:/alice:***@host/"),
    (["stats", "--out", "https://alice:S3cr3tPW@host/out"], "--out https:/alice:***@host/out: a URL"),
    (["stats", "--set", "workspace=https://alice:S3cr3tPW@host/ws"], "workspace: a URL: the workspace is a folder"),
    (["stats", "--set", "dataset.path=alice:S3cr3tPW@host:x.jsonl"], "alice:***@host:x.jsonl: no such file, folder or "
                                                                        "glob match (relative to "),
    (["train", "--pool-file", "https://alice:S3cr3tPW@host/pool.jsonl"], "pool file https:/alice:***@host/pool.jsonl"),
    (["train", "--recipe", "https://alice:S3cr3tPW@host/r.yaml"], "no recipe file at https:/alice:***@host/r.yaml"),
])
def test_a_url_where_a_local_path_belongs_is_refused_without_its_password(tmp_path: Path, args: list[str],
                                                                          expected: str) -> None:
    """Made a path, a URL's "//" folds to "/"; the password must not show in that form either, nor be
    written into a folder's name (a workspace, an --out) that the MLflow store then records."""
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    command = args if args[1] == "-p" else [args[0], "-p", str(project), *args[1:]]
    result = CliRunner().invoke(app, [*command, "-q"])
    line = _one_error_line(result)
    assert expected in line and "S3cr3tPW" not in result.output
    assert not Path("https:").exists()  # no folder made of the URL


@pytest.mark.parametrize("command", ["evaluate", "report", "pool"])
def test_a_tracking_store_that_cannot_be_used_is_named_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    args = {"evaluate": ["evaluate", "0123abcd", "-p", str(project)], "report": ["report", "0123abcd"],
            "pool": ["pool", "-p", str(project), "-q"]}[command]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "foo://alice:S3cr3tPW@tracking.example/x")
    result = CliRunner().invoke(app, args)
    line = _one_error_line(result)
    assert "cannot use the tracking store foo://alice:***@tracking.example/x" in line
    assert "S3cr3tPW" not in result.output


def test_an_artifact_location_that_cannot_be_written_is_refused_before_any_work(tmp_path: Path,
                                                                               tracking_uri: str) -> None:
    """As under a server started with --default-artifact-root on a path it cannot create."""
    import mlflow

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    mlflow.MlflowClient().create_experiment("test-project", artifact_location=str(blocker / "artifacts"))
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    line = _one_error_line(CliRunner().invoke(app, ["pool", "-p", str(project), "-q"]))
    assert line.startswith("error: cannot write the artifacts of experiment ") and str(blocker) in line, line
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("store", ["http://alice:{}@127.0.0.1:1", "postgresql+psycopg2://alice:{}@127.0.0.1:1/db"])
def test_a_tracking_server_that_nothing_answers_at_is_refused_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       store: str) -> None:
    """Not after MLflow's minutes of retries (a database's: a warning per attempt)."""
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.format("S3cr3tPW"))
    started = time.monotonic()
    line = _one_error_line(CliRunner().invoke(app, ["pool", "-p", str(project), "-q"]))
    assert line.startswith(f"error: cannot use the tracking store {store.format('***')}: no server answers at "
                           "127.0.0.1:1"), line
    assert time.monotonic() - started < 60 and not (tmp_path / "ws").exists()


@pytest.mark.parametrize("store", ["mysql+mysqldb://u:pw@localhost/db", "postgresql://u:pw@localhost:1/db?host=/run/pg",
                                   "mysql+pymysql://u:pw@db.example:1/db?unix_socket=/tmp/mysql.sock"])
def test_a_database_reached_through_a_local_socket_is_not_refused_for_its_port(store: str) -> None:
    from mlsandbox.tracking._store import _check_answers

    _check_answers(store)  # its driver, not a port, says whether it can be used


@pytest.mark.parametrize("command", ["report", "search"])
def test_a_sqlite_store_in_a_folder_that_does_not_exist_is_refused_and_nothing_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'typo' / 'mlflow.db'}")
    args = {"report": ["report", "0123abcd"], "search": ["search", "-p", str(project), "-q", "-n", "1"]}[command]
    line = _one_error_line(CliRunner().invoke(app, args))
    assert line == (f"error: cannot use the tracking store sqlite:///{tmp_path / 'typo' / 'mlflow.db'}: "
                    f"no folder {tmp_path / 'typo'} to hold a new SQLite store")
    assert not (tmp_path / "typo").exists()


def test_a_sqlite_store_that_is_a_folder_is_refused_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow retried for about 100 s before saying it could not open the database."""
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}")
    started = time.monotonic()
    line = _one_error_line(CliRunner().invoke(app, ["pool", "-p", str(project), "-q"]))
    assert line == f"error: cannot use the tracking store sqlite:///{tmp_path}: {tmp_path} is a folder, not a SQLite file"
    assert time.monotonic() - started < 30


def test_a_half_created_sqlite_store_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlflow run` creates the store itself: killed while it made the tables, the file was left half made."""
    import sqlite3

    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as db:
        db.execute("create table review_queues (id integer)")  # a table of a later migration, made before the rest
        db.commit()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    line = _one_error_line(CliRunner().invoke(app, ["pool", "-p", str(project), "-q"]))
    assert line.endswith("table review_queues already exists; it looks half-created (stopped while MLflow made its "
                         "tables): if it holds no runs you need, move it away and run again")


@pytest.mark.parametrize("address, says", [
    ("127.0.0.1:1", "no Ray cluster answers at 127.0.0.1:1"),
    ("no-such-host.invalid:6379", "no Ray cluster answers at no-such-host.invalid:6379"),
    ("localhost", "Ray address 'localhost' is not host:port"),
    ("127.0.0.1:99999", "Ray address '127.0.0.1:99999' is not host:port"),  # no such port
    ("http://127.0.0.1:8265", "Ray address 'http://127.0.0.1:8265' is not host:port or ray://host:port (an http://"),
])
def test_a_ray_cluster_that_cannot_be_reached_is_one_line_before_any_work(tmp_path: Path, address: str, says: str,
                                                                          tracking_uri: str) -> None:
    pytest.importorskip("ray")
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    result = CliRunner().invoke(app, ["probe", "-p", str(project), "-q", "--executor", "ray",
                                      "--set", f"executor.address={address}"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    last = result.stderr.strip().splitlines()[-1]  # after MLflow's own lines on creating the store
    assert last.startswith("error: ") and says in last, result.stderr
    assert not (tmp_path / "ws").exists()  # refused before the stats


def test_a_cell_shape_no_ray_node_can_run_is_refused() -> None:
    """Ray queues such tasks for good, silently to a driver that hides its logs: the command hung."""
    from types import SimpleNamespace

    from mlsandbox.cluster import check_fits

    ray = SimpleNamespace(nodes=lambda: [{"Alive": True, "Resources": {"CPU": 2.0}},
                                         {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}])
    check_fits(ray, 2, 0)
    with pytest.raises(SpecError, match=r"asks for 64 CPUs and 0 GPUs .*the largest: 2 CPUs, 0 GPUs"):
        check_fits(ray, 64, 0)
    with pytest.raises(SpecError, match="asks for 1 CPUs and 1 GPUs"):
        check_fits(ray, 1, 1)  # the node with GPUs is dead


def test_a_ray_stats_engine_that_cannot_be_reached_is_refused_even_with_every_stat_cached(
        tmp_path: Path, tracking_uri: str) -> None:
    pytest.importorskip("ray")
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    assert CliRunner().invoke(app, ["stats", "-p", str(project), "-q"]).exit_code == 0  # every stat now cached
    result = CliRunner().invoke(app, ["stats", "-p", str(project), "-q", "--stats-engine", "ray",
                                      "--set", "executor.address=127.0.0.1:1"])
    assert result.exit_code == 2, result.output
    assert _one_error_line(result).startswith("error: stats.engine ray: no Ray cluster answers at 127.0.0.1:1")


def test_a_server_that_is_not_ray_is_one_line_at_once(tmp_path: Path, tracking_uri: str) -> None:
    """ray.init at a port where, say, a web server listens retried for minutes."""
    pytest.importorskip("ray")
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        address = f"127.0.0.1:{web.server_address[1]}"
        started = time.monotonic()
        result = CliRunner().invoke(app, ["probe", "-p", str(project), "-q", "--executor", "ray",
                                          "--set", f"executor.address={address}"])
        web.shutdown()
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --executor ray: the server at {address} is not a Ray cluster (it does not speak gRPC); "
        "give the head node's GCS port (6379 by default) or ray://host:10001")
    assert time.monotonic() - started < 30 and not (tmp_path / "ws").exists()


@pytest.mark.parametrize("model, says", [
    ({"type": "command", "command": ["/no/such/trainer", "{pool_file}"]},
     "model.command[0]: '/no/such/trainer' is neither a program on PATH nor an executable file"),
    ({"type": "command", "mlflow_project": "no-such-project"}, "model.mlflow_project: no folder 'no-such-project' here"),
    ({"type": "hf-lora", "model": "/no/such-model"}, "model.model: no such folder /no/such-model"),
    ({"type": "hf-lora", "model": "./no-such-model"}, "model.model: no such folder "),
])
def test_a_command_trainer_that_cannot_start_is_one_line_before_any_cell(tmp_path: Path, model: dict, says: str) -> None:
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD), model=model)
    assert says in _one_error_line(_stats(project))
    assert not (tmp_path / "ws").exists()


def _hang_up_on_every_caller(server: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the server closed
        while True:
            server.accept()[0].close()


def test_the_tracking_stores_retries_are_logged_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """MLflow retries a database it cannot reach, logging the driver's error: an unencoded "@" in
    the password puts part of it in the host name the driver names."""
    import mlflow.store.db.utils

    pytest.importorskip("psycopg2")
    monkeypatch.setattr(mlflow.store.db.utils, "MAX_RETRY_COUNT", 2)
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    with socket.create_server(("127.0.0.1", 0)) as server:  # answers, and hangs up: no database there
        threading.Thread(target=_hang_up_on_every_caller, args=(server,), daemon=True).start()
        port = server.getsockname()[1]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"postgresql+psycopg2://u:Ab9@Zq7@127.0.0.1:{port}/db")
        with caplog.at_level(logging.WARNING):
            result = CliRunner().invoke(app, ["pool", "-p", str(project), "-q"])
    assert result.exit_code == 2 and result.output.splitlines()[-1].startswith("error: cannot use the tracking store")
    assert "retried" in result.output and "Zq7" not in caplog.text + result.output


def test_a_password_in_the_tracking_uri_is_not_in_run_links(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from mlsandbox import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:S3cr3tPW@127.0.0.1:5077")
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    run = SimpleNamespace(info=SimpleNamespace(experiment_id="1", run_id="abc"))
    assert tracking.run_url(run) == "http://alice:***@127.0.0.1:5077/#/experiments/1/runs/abc"  # type: ignore[arg-type]
    tracking.hide_run_links("http://alice:S3cr3tPW@127.0.0.1:5077")  # MLflow's own links: off
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"


def test_a_json_list_entry_that_is_not_an_object_is_named_by_its_position(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps([GOOD[0], 5, *GOOD[1:]]))
    line = _one_error_line(_stats(_project(tmp_path, data)))
    assert f"{data}: object 2: expected a JSON object, got int" in line


@pytest.mark.parametrize("argv, says", [
    (["pool", "--bogus"], "No such option: --bogus (see 'mlsandbox pool --help')"),
    (["stats", "-p"], "Option '-p' requires an argument. (see 'mlsandbox stats --help')"),
    (["pool", "--log-level", "debug"], "(--log-level goes before the command: mlsandbox --log-level … <command>)"),
    (["nosuch"], "No such command 'nosuch'"),
    (["search", "--n-trials", "x"], "Invalid value for '--n-trials'"),
    (["search", "--n-trials", "100001"], "expected a number of trials, from 1 to 100000, got '100001'"),
    (["stats", "--workers", "-1"], "Invalid value for '--workers'"),
    (["evaluate"], "Missing argument 'run_id'"),
    (["--log-level", "loud", "ops"], "'loud' is not one of debug, info, warning, error"),
    (["stats", "--workers", "abc"], "'-w': expected a number of processes, from 0 to 256, got 'abc'"),
    (["stats", "--workers", "²"], "'-w': expected a number of processes, from 0 to 256, got '²'"),
    (["stats", "--workers", "100000"], "'-w': expected a number of processes, from 0 to 256, got '100000'"),
    (["search", "--worker", "-1"], "'--worker': expected a worker index, 0 or more, got '-1'"),
    (["search", "--trial-workers", "0"], "'--trial-workers': expected a number of trial workers, 1 or more, got '0'"),
    (["stats", "--stats-engine", "spark"], "Invalid value for '--stats-engine': expected local or ray, got 'spark'"),
    (["probe", "--executor", "slurm"], "Invalid value for '--executor': expected local or ray, got 'slurm'"),
    (["workflow", "--profile", "fast"], "Invalid value for '--profile': expected quick or full"),
    (["probe", "--quick", "--profile", "full"], "'--profile': expected quick or full (and not the opposite of --quick/"),
    (["probe", "--full", "--profile", "quick"], "'--profile': expected quick or full (and not the opposite of --quick/"),
    (["search", "--profile", "fast"], "Invalid value for '--profile': expected quick or full"),
    (["search", "--quick", "--profile", "full"], "'--profile': expected quick or full (and not the opposite of --quick/"),
])
def test_a_usage_error_is_one_line_too(argv: list[str], says: str) -> None:
    assert says in _one_error_line(CliRunner().invoke(app, argv, prog_name="mlsandbox"))


def test_an_empty_profile_is_none_given(tmp_path: Path) -> None:
    """`mlflow run -P profile=` passes --profile '': the entry point's default, not an invalid value."""
    result = CliRunner().invoke(app, ["probe", "--profile", "", "-p", str(tmp_path / "missing")])
    assert "--profile" not in _one_error_line(result) and "missing" in result.stderr


def test_trial_workers_without_ray_are_refused_not_ignored(tmp_path: Path) -> None:
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    result = CliRunner().invoke(app, ["search", "-p", str(project), "-q", "--trial-workers", "2"])
    assert "Invalid value for '--trial-workers': needs --executor ray" in _one_error_line(result)


def test_an_empty_workers_value_is_the_specs(tmp_path: Path) -> None:
    """`mlflow run -e stats` passes --workers '' by default: the spec's stats.workers, not one per core."""
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD), stats={"workers": 1})
    result = CliRunner().invoke(app, ["stats", "-p", str(project), "--workers", ""])
    assert result.exit_code == 0, result.output
    assert "stats workers" not in result.output  # one worker: computed in this process


def test_quiet_keeps_progress_and_warnings_but_not_chatter(tmp_path: Path, tracking_uri: str) -> None:
    import logging

    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    logging.getLogger().setLevel(logging.INFO)  # as `--log-level info` (the default) sets it
    logging.getLogger("optuna").setLevel(logging.INFO)  # as importing Optuna sets it
    CliRunner().invoke(app, ["stats", "-p", str(project)])
    assert logging.getLogger("mlsandbox.data").isEnabledFor(logging.INFO)
    CliRunner().invoke(app, ["stats", "-p", str(project), "-q"])
    assert not logging.getLogger("mlsandbox.data").isEnabledFor(logging.INFO)  # chatter off
    assert logging.getLogger("mlsandbox.data").isEnabledFor(logging.WARNING)
    assert logging.getLogger("mlsandbox.progress").isEnabledFor(logging.INFO)  # progress on
    assert not logging.getLogger("optuna").isEnabledFor(logging.INFO)  # a search's "Trial 3 pruned" lines too


def test_an_ops_missing_model_file_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model.arpa"
    ops = [{"name": "perplexity_filter", "params": {"kenlm_model": str(missing)}}]
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD), ops=ops)
    assert f"KenLM model file not found: {missing} (param `kenlm_model`)" in _one_error_line(_stats(project))


def test_evaluating_a_cell_whose_logged_model_has_no_manifest_is_one_line(
        tmp_path: Path, tracking_uri: str) -> None:
    import mlflow

    from mlsandbox import tracking

    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    client = mlflow.MlflowClient()
    cell = client.create_run(mlflow.set_experiment("test-project").experiment_id,
                             tags={tracking.KIND: "cell"}).info.run_id
    client.log_text(cell, "not a saved model", "model/weights.txt")
    client.set_terminated(cell)  # a cell that finished, yet whose model is not one
    result = CliRunner().invoke(app, ["evaluate", cell, "-p", str(project)])
    assert _one_error_line(result) == f"error: run {cell}'s `model` artifact: no saved model at model: manifest.json is missing"


def test_a_failing_command_evaluator_is_one_line_its_output_said_before_it(
        tmp_path: Path, tracking_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    """The error carried the evaluator's log tail: a dozen lines after `error:`."""
    import logging

    import mlflow

    from mlsandbox import tracking
    from mlsandbox.models import TrainingJob, trainer_for
    from mlsandbox.spec import NgramSpec

    script = tmp_path / "evaluate.py"
    script.write_text("import sys\nfor i in range(30):\n    print('evaluating', i)\nsys.exit('evalboom')\n")
    evaluator = {"type": "command", "command": [sys.executable, str(script)]}
    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD), evaluator=evaluator)
    saved = tmp_path / "model"
    trainer_for(NgramSpec(order=2)).train(TrainingJob([r["text"] for r in GOOD], tmp_path / "out")).save(saved)
    client = mlflow.MlflowClient()
    cell = client.create_run(mlflow.set_experiment("test-project").experiment_id,
                             tags={tracking.KIND: "cell"}).info.run_id
    client.log_artifacts(cell, str(saved), "model")
    client.set_terminated(cell)
    with caplog.at_level(logging.INFO, logger="mlsandbox.cli"):
        result = CliRunner().invoke(app, ["evaluate", cell, "-p", str(project)])
    line = _one_error_line(result)
    assert "command exited with status 1 (evalboom)" in line and "evaluating 29" not in line
    assert "evaluating 29" in caplog.text  # the output's last lines, as chatter before it


def test_evaluating_a_cell_whose_logged_model_weights_are_corrupt_is_one_line(
        tmp_path: Path, tracking_uri: str) -> None:
    """As a bad manifest is: the weights file named, and numpy never asked to unpickle it."""
    import mlflow

    from mlsandbox import tracking
    from mlsandbox.models import TrainingJob, trainer_for
    from mlsandbox.spec import NgramSpec

    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    saved = tmp_path / "model"
    trainer_for(NgramSpec(order=2)).train(TrainingJob([r["text"] for r in GOOD], tmp_path / "out")).save(saved)
    (saved / "ngram.arrow").write_bytes(b"garbage" * 100)
    client = mlflow.MlflowClient()
    cell = client.create_run(mlflow.set_experiment("test-project").experiment_id,
                             tags={tracking.KIND: "cell"}).info.run_id
    client.log_artifacts(cell, str(saved), "model")
    client.set_terminated(cell)
    result = CliRunner().invoke(app, ["evaluate", cell, "-p", str(project)])
    assert _one_error_line(result) == f"error: run {cell}'s `model` artifact: model/ngram.arrow is not readable: Not an Arrow file"


def test_a_benchmark_file_that_cannot_be_read_is_one_line_before_any_run(
        tmp_path: Path, small_corpus: Path, tracking_uri: str) -> None:
    """As a dataset file is: named by the benchmark and the file, not the Parquet reader's traceback,
    and before the stats pass (which may take minutes on a first run)."""
    import mlflow

    bench = tmp_path / "bench.parquet"
    bench.write_bytes(b"not a parquet file at all")
    project = _project(tmp_path, small_corpus, benchmarks=[{"name": "x", "path": str(bench)}])
    result = CliRunner().invoke(app, ["train", "-p", str(project), "-q", "--pool", "text_length_filter/high"])
    line = _one_error_line(result)
    assert line.startswith(f"error: benchmark 'x': {bench}: not a readable Parquet file (Could not open Parquet"), line
    assert not mlflow.search_runs(search_all_experiments=True, output_format="list")  # refused before any run
    assert not (tmp_path / "ws" / "stats").exists()


@pytest.mark.parametrize("command", [["train", "--pool", "text_length_filter/high"], ["probe"], ["search", "--n-trials", "1"]])
def test_a_model_that_cannot_be_loaded_here_is_one_line_before_any_run(
        tmp_path: Path, small_corpus: Path, tracking_uri: str, command: list[str]) -> None:
    """A hub name that is not in the local cache while the hub cannot be reached (the tests run with
    HF_HUB_OFFLINE): not one FAILED cell per pool and seed after the stats."""
    import mlflow

    project = _project(tmp_path, small_corpus, model={"type": "hf-lora", "model": "org/not-cached"})
    line = _one_error_line(CliRunner().invoke(app, [command[0], "-p", str(project), "-q", *command[1:]]))
    assert line.startswith("error: could not load causal LM 'org/not-cached' (Hugging Face name; the hub cannot be "
                           "reached: ") and "): not in the local cache" in line, line
    assert not mlflow.search_runs(search_all_experiments=True, output_format="list")  # refused before any run
    assert not (tmp_path / "ws" / "stats").exists()


def test_an_experiment_or_run_the_environment_names_but_the_store_lacks_is_one_line(
    tmp_path: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's own errors for these were a traceback and exit code 1."""
    import mlflow

    data = write_jsonl(tmp_path / "data.jsonl", GOOD)
    project = _project(tmp_path, data)
    monkeypatch.setattr("mlsandbox.tracking._runs._OURS", set())  # ids earlier tests' stores gave this process

    def pool_line(**env: str) -> str:
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            return _one_error_line(CliRunner().invoke(app, ["pool", "-p", str(project), "-q"]))

    assert pool_line(MLFLOW_EXPERIMENT_ID="99999") == f"error: MLFLOW_EXPERIMENT_ID=99999: no such experiment in {tracking_uri}"
    run_id = "0123456789abcdef0123456789abcdef"
    assert pool_line(MLFLOW_RUN_ID=run_id) == f"error: MLFLOW_RUN_ID={run_id}: no such run in {tracking_uri}"
    assert "MLflow allows 500" in pool_line(MLFLOW_EXPERIMENT_NAME="x" * 600)
    gone = mlflow.create_experiment("t")
    mlflow.delete_experiment(gone)
    deleted = f"experiment 't' (id {gone}) is deleted: restore it (mlflow experiments restore --experiment-id {gone})"
    assert deleted in pool_line(MLFLOW_EXPERIMENT_ID=gone)
    mlflow.delete_experiment(own := mlflow.create_experiment("test-project"))  # the project's own
    assert pool_line().startswith(f"error: experiment 'test-project' (id {own}) is deleted: restore it")
    assert not mlflow.search_runs(search_all_experiments=True, output_format="list")  # nothing started


def test_a_deleted_run_is_refused_as_the_run_to_work_from(tmp_path: Path, tracking_uri: str) -> None:
    import mlflow

    project = _project(tmp_path, write_jsonl(tmp_path / "data.jsonl", GOOD))
    with mlflow.start_run(experiment_id=mlflow.create_experiment("gone")) as run:
        pass
    mlflow.delete_run(run.info.run_id)
    for argv in (["evaluate", run.info.run_id, "-p", str(project)], ["report", run.info.run_id, "--out", str(tmp_path / "r")],
                 ["train", "-p", str(project), "-q", "--pool-run", run.info.run_id]):
        line = _one_error_line(CliRunner().invoke(app, argv))
        assert line.startswith(f"error: run {run.info.run_id} is deleted (mlflow runs restore --run-id {run.info.run_id}")
    assert not (tmp_path / "r").exists()
