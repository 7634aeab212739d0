"""``mlsandbox init``: a new project's spec for a dataset, written only once it loads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from conftest import write_jsonl
from PIL import Image
from typer.testing import CliRunner

from mlsandbox.cli import app
from mlsandbox.models.benchmarks import bundled_benchmarks
from mlsandbox.project import load_project
from mlsandbox.workflows import new_project

ROOT = Path(__file__).resolve().parents[1]
#: The bundled project whose measured defaults each modality's template carries.
PROJECT_OF = {"text": "text-quality-fast", "image-text": "image-caption", "video-text": "text-to-video"}


def _init(*args: str) -> Result:
    return CliRunner().invoke(app, ["init", *args])


def _error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("modality", list(PROJECT_OF))
def test_each_template_on_its_bundled_set_is_the_bundled_project(tmp_path: Path, modality: str) -> None:
    """The template keeps the measured defaults of the project it stands for: a change to one that
    the other misses fails here."""
    result = _init(str(tmp_path / "p"), "--modality", modality)
    assert result.exit_code == 0, result.output
    next_step = result.stdout.splitlines()[-1]  # a quick profile of one seed gives no answer: not what to run next
    assert next_step.endswith(" --quick" if modality == "text" else "trains one seed: a check that the pipeline runs, no answer)")
    made = load_project(tmp_path / "p").model_dump()
    bundled = load_project(ROOT / "projects" / PROJECT_OF[modality]).model_dump()
    for spec in (made, bundled):
        spec.pop("name"), spec.pop("description")
        spec["benchmarks"] = spec["benchmarks"] or [b.model_dump() for b in bundled_benchmarks()]
    assert made == bundled


def test_a_dataset_of_ones_own_gets_a_project_that_runs(tmp_path: Path, small_corpus: Path, tracking_uri: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bench = write_jsonl(tmp_path / "held-out.jsonl", [{"text": f"a clean held-out sentence {i}."} for i in range(5)])
    monkeypatch.chdir(tmp_path)
    result = _init("projects/mine", "--data", small_corpus.name, "--benchmark", bench.name,
                   "--benchmark", f"again={bench}", "--name", "mine")
    assert result.exit_code == 0, result.output
    assert "a text project of 90 samples, 9 OPs, the ngram proxy; benchmarks held-out, again" in result.stdout
    assert "next: mlsandbox workflow -p projects/mine --quick" in result.stdout
    raw = yaml.safe_load((tmp_path / "projects/mine/sandbox.yaml").read_text())
    assert raw["name"] == "mine"
    assert raw["dataset"] == {"path": "../../corpus.jsonl", "text_field": "text"}
    assert raw["benchmarks"] == [{"name": "held-out", "path": "../../held-out.jsonl", "text_field": "text"},
                                 {"name": "again", "path": str(bench), "text_field": "text"}]
    stats = CliRunner().invoke(app, ["stats", "-p", "projects/mine", "-q"])
    assert stats.exit_code == 0, stats.output
    assert "90 samples; 9 of 9 OPs computed" in stats.stdout


def test_benchmarks_may_name_their_columns_otherwise_than_the_dataset(tmp_path: Path, small_corpus: Path) -> None:
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"body": f"held out text {i}"} for i in range(5)])
    folder = tmp_path / "p"
    message = _error(_init(str(folder), "--data", str(small_corpus), "--benchmark", str(bench)))
    assert "has no field 'text' (fields: body); set the benchmark's text_field (here: --benchmark-text-field" in message
    result = _init(str(folder), "--data", str(small_corpus), "--benchmark", str(bench), "--benchmark-text-field", "body")
    assert result.exit_code == 0, result.output
    assert load_project(folder).benchmarks[0].text_field == "body"
    assert "a text project's benchmarks hold no pictures or clips" in _error(_init(
        str(tmp_path / "q"), "--data", str(small_corpus), "--benchmark", str(bench), "--benchmark-media-field", "pic"))
    assert "name columns of --benchmark files: give one" in _error(_init(
        str(tmp_path / "q"), "--data", str(small_corpus), "--benchmark-text-field", "body"))
    assert not (tmp_path / "q").exists()


def test_data_too_small_for_the_templates_pools_gets_a_note(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "small.jsonl", [{"text": f"document {i} " * (1 + i % 7)} for i in range(60)])
    result = _init(str(tmp_path / "p"), "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "would hold about 20 samples, fewer than refine.min_pool_size=50: the workflow would stop" in result.stdout


def test_an_existing_spec_is_kept_unless_forced(tmp_path: Path, small_corpus: Path) -> None:
    spec = tmp_path / "p" / "sandbox.yaml"
    spec.parent.mkdir()
    spec.write_text("name: mine\n")
    assert "exists: choose another folder, or --force to replace it" in _error(_init(str(spec.parent)))
    assert spec.read_text() == "name: mine\n"
    assert _init(str(spec.parent), "--data", str(small_corpus), "--force").exit_code == 0
    assert yaml.safe_load(spec.read_text())["dataset"]["path"] == str(small_corpus)


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "missing.jsonl"], "missing.jsonl: no such file, folder or glob match"),
    (["--data", "{corpus}", "--text-field", "content"], "no text field 'content'"),
    (["--data", "{corpus}", "--image-field", "picture"], "no image field 'picture'"),
    (["--data", "{corpus}", "--benchmark", "gone.jsonl"], "--benchmark gone.jsonl: no such file (a benchmark is one"),
    (["--data", "{corpus}", "--benchmark", "{corpus_dir}"], "a folder (a benchmark is one JSONL, Parquet or CSV file)"),
    (["--data", "{corpus}", "--text-field", "body"], "no text field 'body' (fields: id, text, source); give --text-field"),
    (["--data", "{corpus}", "--benchmark", "a b={corpus}"], "a benchmark's name holds 1 to 100 letters"),
    (["--data", "{corpus}", "--benchmark", "{corpus}"], "is a file of the dataset; a benchmark is held-out data"),
    (["--data", "{corpus}", "--benchmark", "{hard_link}"], "is a file of the dataset; a benchmark is held-out data"),
    (["--data", "{corpus}", "--benchmark", "{copy}"], "samples is in the dataset; a benchmark is held-out data"),
    (["--data", "{corpus}", "--benchmark", "x={bench}", "--benchmark", "x={bench}"], "two benchmarks are named 'x'"),
    (["--data", "{corpus}", "--modality", "audio"], "--modality must be one of text, image-text, video-text"),
    (["--data", "{corpus}", "--modality", "text", "--video-field", "clip"], "contradicts the media"),
    (["--data", "{corpus}", "--format", "xml"], "--format must be one of auto, jsonl, json, parquet, csv, hf"),
    (["--data", "{corpus_dir}", "--format", "images", "--image-field", "pic"], "--image-field names a column"),
    (["--data", "{corpus}", "--name", "  "], "--name: the project's (and its MLflow experiment's) name is printable"),
])
def test_bad_input_writes_nothing(tmp_path: Path, small_corpus: Path, args: list[str], message: str) -> None:
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": "held out"}])
    (tmp_path / "copies").mkdir()
    os.link(small_corpus, hard_link := tmp_path / "copies" / f"linked-{small_corpus.name}")
    shutil.copy(small_corpus, copy := tmp_path / "copies" / small_corpus.name)
    folder = tmp_path / "new" / "project"
    given = [a.format(corpus=small_corpus, corpus_dir=small_corpus.parent, bench=bench, hard_link=hard_link, copy=copy)
             for a in args]
    assert message in _error(_init(str(folder), *given))
    assert not (tmp_path / "new").exists()


def test_a_folder_that_cannot_hold_the_spec_is_one_line(tmp_path: Path, small_corpus: Path) -> None:
    (tmp_path / "a-file").write_text("")
    assert "a-file is not a folder" in _error(_init(str(tmp_path / "a-file" / "sub"), "--data",
                                                               str(small_corpus)))
    (tmp_path / "p" / "sandbox.yaml").mkdir(parents=True)
    assert "sandbox.yaml is a folder" in _error(_init(str(tmp_path / "p"), "--data", str(small_corpus), "--force"))


def test_a_media_project_says_which_extra_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(new_project._EXTRAS, "video-text", ("video", ("av", "no_such_module_here")))
    message = _error(_init(str(tmp_path / "p"), "--modality", "video-text"))
    assert message == ("error: a video-text project's OPs and model need pip install 'mlsandbox[video]' "
                       "(missing: no_such_module_here)")


def test_paths_are_written_as_the_system_resolves_them(tmp_path: Path, small_corpus: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a symbolic link, ``link/p/..`` is the link's target's parent: a path worked out on the
    text of the folder's name would lead elsewhere."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "link").symlink_to(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path / "work")
    result = _init("link/my project", "--data", str(small_corpus), "--name", "Ünïcödé 项目")
    assert result.exit_code == 0, result.output
    assert "next: mlsandbox workflow -p 'link/my project' --quick" in result.stdout
    written = (tmp_path / "elsewhere" / "my project" / "sandbox.yaml").read_text(encoding="utf-8")
    assert "name: Ünïcödé 项目" in written
    assert load_project(tmp_path / "work" / "link" / "my project").dataset.path == str(small_corpus)
    monkeypatch.chdir(tmp_path)
    assert _init("work/link/q", "--data", small_corpus.name).exit_code == 0
    assert yaml.safe_load((tmp_path / "elsewhere" / "q" / "sandbox.yaml").read_text())["dataset"]["path"] == (
        "../../corpus.jsonl")


def test_a_folder_of_captioned_pictures_is_an_image_text_project(tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i in range(3):
        Image.new("RGB", (8 + i, 8), (i * 40, 0, 0)).save(pictures / f"{i}.png")
        (pictures / f"{i}.txt").write_text(f"a red square number {i}")
    result = _init(str(tmp_path / "p"), "--data", str(pictures), "--format", "images")
    assert result.exit_code == 0, result.output
    assert "an image-text project of 3 samples" in result.stdout
    raw = yaml.safe_load((tmp_path / "p" / "sandbox.yaml").read_text())
    assert raw["dataset"] == {"path": str(pictures), "text_field": "text", "format": "images"}
    assert raw["model"]["type"] == "tiny-captioner"


def test_malformed_rows_can_be_skipped_and_counted(tmp_path: Path, small_corpus: Path) -> None:
    data = tmp_path / "with-a-bad-line.jsonl"
    data.write_text(small_corpus.read_text() + "{not json\n")
    assert "with-a-bad-line.jsonl:91: " in _error(_init(str(tmp_path / "p"), "--data", str(data)))
    assert "--on-error must be raise or skip" in _error(_init(str(tmp_path / "p"), "--data", str(data), "--on-error", "x"))
    result = _init(str(tmp_path / "p"), "--data", str(data), "--on-error", "skip")
    assert result.exit_code == 0, result.output
    assert "a text project of 90 samples" in result.stdout
    assert yaml.safe_load((tmp_path / "p" / "sandbox.yaml").read_text())["dataset"]["on_error"] == "skip"
