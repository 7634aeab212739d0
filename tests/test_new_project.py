"""``mlsandbox init``: a new project's spec for a dataset, written only once it loads."""

from __future__ import annotations

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
    (["--data", "{corpus}", "--benchmark", "gone.jsonl"], "gone.jsonl: no such file, folder or glob match"),
    (["--data", "{corpus}", "--modality", "audio"], "--modality must be one of text, image-text, video-text"),
    (["--data", "{corpus}", "--modality", "text", "--video-field", "clip"], "contradicts the media"),
])
def test_bad_input_writes_nothing(tmp_path: Path, small_corpus: Path, args: list[str], message: str) -> None:
    folder = tmp_path / "new" / "project"
    result = _init(str(folder), *(a.format(corpus=small_corpus) for a in args))
    assert message in _error(result)
    assert not (tmp_path / "new").exists()


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
