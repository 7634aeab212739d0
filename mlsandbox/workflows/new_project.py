"""A new sandbox project for a dataset: the commented ``sandbox.yaml`` of its modality, checked
(spec, dataset, benchmarks) before it is written, so that a package install without the
repository's ``projects/`` starts from the same measured defaults as the bundled projects."""

from __future__ import annotations

import contextlib
import glob
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Literal

from mlsandbox.data import BUILTIN_PREFIX, load_dataset
from mlsandbox.errors import InvalidInputError
from mlsandbox.files import published
from mlsandbox.models.benchmarks import bundled_benchmarks, load_benchmarks
from mlsandbox.project import parse_project
from mlsandbox.spec import ExperimentSpec, dump_yaml, load_yaml

Modality = Literal["text", "image-text", "video-text"]
MODALITIES: tuple[Modality, ...] = ("text", "image-text", "video-text")
SPEC_FILE = "sandbox.yaml"

#: The bundled demo set and held-out benchmarks of each modality (text: ``bench_<name>`` by name).
_BUNDLED: dict[Modality, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "text": ({"path": "builtin:demo", "text_field": "text"},
             [{"name": b.name} for b in bundled_benchmarks()]),
    "image-text": ({"path": "builtin:images/captions.parquet", "text_field": "text", "image_field": "image"},
                   [{"name": n, "path": f"builtin:images/bench_{n}.parquet", "image_field": "image"}
                    for n in ("clipart", "emoji", "stamps")]),
    "video-text": ({"path": "builtin:videos/clips.parquet", "text_field": "text", "video_field": "video"},
                   [{"name": n, "path": f"builtin:videos/bench_{n}.parquet", "video_field": "video"}
                    for n in ("emoji", "stamps")]),
}


@dataclass(frozen=True)
class DatasetChoice:
    """What ``mlsandbox init`` was told of the data (None: the bundled demo set of the modality)."""

    path: str | None = None
    format: str | None = None
    text_field: str = "text"
    image_field: str | None = None
    video_field: str | None = None
    id_field: str | None = None

    def modality(self, asked: str | None) -> Modality:
        """The asked modality, else the one the fields or the format imply, else text."""
        implied: Modality | None = (
            "image-text" if self.image_field or self.format == "images"
            else "video-text" if self.video_field or self.format == "videos" else None)
        if asked is not None and asked not in MODALITIES:
            raise InvalidInputError(f"--modality must be one of {', '.join(MODALITIES)} (got {asked!r})")
        if asked is not None and implied is not None and asked != implied:
            raise InvalidInputError(f"--modality {asked} contradicts the media the data options name ({implied})")
        return asked or implied or "text"


@dataclass(frozen=True)
class NewProject:
    """A written project: its spec file and what the checks found."""

    spec_file: Path
    spec: ExperimentSpec
    modality: Modality
    samples: int


def write_project(folder: Path, data: DatasetChoice, modality: str | None = None, benchmarks: list[str] | None = None,
                  name: str | None = None, force: bool = False) -> NewProject:
    """Write ``folder/sandbox.yaml`` for ``data`` once the spec, the dataset and the benchmarks load;
    an existing spec is replaced only with ``force``, and nothing is written when a check fails."""
    spec_file = folder / SPEC_FILE
    if spec_file.exists() and not force:
        raise InvalidInputError(f"{spec_file} exists: choose another folder, or --force to replace it")
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{folder} exists and is not a folder")
    kind = data.modality(modality)
    named = [_benchmark_name(b) for b in benchmarks or []]
    for path in [data.path, *(path for _, path in named)]:
        if path is not None and not _named(path, data.format) and not _found(os.path.expanduser(path)):
            raise InvalidInputError(f"{path}: no such file, folder or glob match (relative to {Path.cwd()})")
    text = render(folder, data, kind, named, name or folder.resolve().name)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)  # the spec's relative paths lead out of it
    try:
        spec = parse_project(load_yaml(text), base_dir=folder, origin=str(spec_file))
        dataset = load_dataset(spec.dataset, spec.base_dir)
        load_benchmarks(spec.benchmarks, spec.base_dir)
        with published(spec_file) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except BaseException:
        for empty in made:  # innermost first
            with contextlib.suppress(OSError):
                empty.rmdir()
        raise
    return NewProject(spec_file, spec, kind, len(dataset))


def render(folder: Path, data: DatasetChoice, kind: Modality, benchmarks: list[tuple[str, str]], name: str) -> str:
    """The spec's text: the modality's template with the project's name, dataset and benchmarks
    (``(name, path)`` pairs; none: the bundled sets of the modality)."""
    dataset, bundled = _BUNDLED[kind]
    if data.path is not None:
        dataset = _dataset_entry(folder, data, kind)
    chosen = [_benchmark_entry(folder, label, path, dataset) for label, path in benchmarks] or bundled
    note = ("" if benchmarks else " The bundled held-out sets." if data.path is None
            else " The bundled sets stand in for yours here: replace them.")
    template = resources.files("mlsandbox.resources").joinpath("templates", f"{kind}.yaml").read_text("utf-8")
    blocks = {key: dump_yaml({key: value}).rstrip("\n")
              for key, value in (("name", name), ("dataset", dataset), ("benchmarks", chosen))}
    return Template(template).substitute(blocks, benchmarks_note=note)


def _dataset_entry(folder: Path, data: DatasetChoice, kind: Modality) -> dict[str, Any]:
    assert data.path is not None
    entry: dict[str, Any] = {"path": _relative(folder, data.path, data.format), "text_field": data.text_field}
    if data.format not in (None, "auto"):
        entry["format"] = data.format
    if kind == "image-text" and data.format != "images":
        entry["image_field"] = data.image_field or "image"
    if kind == "video-text" and data.format != "videos":
        entry["video_field"] = data.video_field or "video"
    if data.id_field is not None:
        entry["id_field"] = data.id_field
    return entry


def _benchmark_name(given: str) -> tuple[str, str]:
    """``NAME=FILE``, or ``FILE`` named by its file name without suffixes."""
    label, sep, path = given.partition("=")
    if sep and re.fullmatch(r"[A-Za-z0-9_.-]+", label):
        return label, path
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(given).name.split(".")[0]) or "benchmark", given


def _benchmark_entry(folder: Path, label: str, path: str, dataset: dict[str, Any]) -> dict[str, Any]:
    """A benchmark read with the dataset's field names (a folder of pictures or clips has none:
    ``image`` / ``video``)."""
    entry: dict[str, Any] = {"name": label, "path": _relative(folder, path, None), "text_field": dataset["text_field"]}
    for field, folder_format in (("image_field", "images"), ("video_field", "videos")):
        if field in dataset or dataset.get("format") == folder_format:
            entry[field] = dataset.get(field, field.removesuffix("_field"))
    return entry


def _found(path: str) -> bool:
    return os.path.exists(path) or bool(glob.glob(path, recursive=True))


def _named(path: str, data_format: str | None) -> bool:
    """Whether ``path`` names a bundled set or a Hugging Face dataset rather than files here."""
    return path.startswith(BUILTIN_PREFIX) or (data_format == "hf" and not os.path.exists(path))


def _relative(folder: Path, path: str, data_format: str | None) -> str:
    """``path`` (given relative to the working directory) as the spec reads it: relative to the
    project's folder. Bundled sets, absolute paths and Hugging Face names stay as given."""
    expanded = os.path.expanduser(path)
    if _named(path, data_format):
        return path
    if os.path.isabs(expanded):
        return expanded
    try:
        return Path(os.path.relpath(os.path.abspath(expanded), os.path.abspath(folder))).as_posix()
    except ValueError:  # another drive: no relative path leads there
        return os.path.abspath(expanded)
