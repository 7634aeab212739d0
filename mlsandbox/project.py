"""A sandbox project: its spec, checked against the OP registry.

:mod:`mlsandbox.spec` validates what a spec says on its own (keys, types, ranges); this loader
adds what needs the registry: every OP exists and takes its params, no two OPs write the same
stat, image OPs have images to read, and every stat the search names belongs to its OP; and what
needs the file system: a ``command`` trainer's program and MLflow project exist, the workspace is
a folder that can be written (or created). Errors read
like the spec's own: one line per problem, naming the dotted key.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlsandbox.errors import InvalidInputError, OpParamsError, SpecError
from mlsandbox.hub import model_location
from mlsandbox.ops import Op, create_op, op_class
from mlsandbox.runtime import resolve_device
from mlsandbox.spec import ExperimentSpec, ThresholdSearch, invalid_spec, load_spec, parse_spec, spec_origin


def load_project(path: str | Path, overrides: dict[str, Any] | None = None, quick: bool = False) -> ExperimentSpec:
    """:func:`mlsandbox.spec.load_spec`, then the registry checks of :func:`check_project`."""
    spec = load_spec(path, overrides, quick=quick)
    check_project(spec, origin=spec_origin(path, overrides, quick))
    return spec


def parse_project(raw: dict[str, Any], base_dir: Path | None = None, origin: str = "spec") -> ExperimentSpec:
    """:func:`mlsandbox.spec.parse_spec`, then the registry checks of :func:`check_project`."""
    spec = parse_spec(raw, base_dir=base_dir, origin=origin)
    check_project(spec, origin=origin)
    return spec


def check_project(spec: ExperimentSpec, origin: str = "spec") -> None:
    """Raise :class:`~mlsandbox.errors.SpecError` listing every OP, stat, image or workspace problem."""
    problems = [*(list(_op_problems(spec)) or list(_search_problems(spec))), *_command_problems(spec),
                *_media_problems(spec), *_device_problems(spec), *_workspace_problems(spec)]
    if problems:
        raise invalid_spec(origin, problems)


def project_ops(spec: ExperimentSpec) -> list[Op]:
    """The spec's OPs, built with their params."""
    return [create_op(o.name, o.params) for o in spec.ops]


def search_stat(entry: ThresholdSearch) -> str:
    """The stat a search entry bounds: its ``stat``, or its OP's split stat."""
    return entry.stat or op_class(entry.op).split_stat()


def _op_problems(spec: ExperimentSpec) -> Iterator[str]:
    seen: dict[str, str] = {}
    listed: set[str] = set()
    image_ops, video_ops = [], []
    for i, op in enumerate(spec.ops):
        key = f"ops[{i}] ({op.name})"
        try:
            cls = op_class(op.name)
            cls(**op.params)
        except OpParamsError as err:
            yield from (f"{key}.params.{problem}" for problem in err.problems)
            continue
        except ValueError as err:
            yield f"{key}: {err}"
            continue
        if op.name in listed:  # its stats would "come from both" it and itself
            yield f"{key}: listed twice; list each OP once"
            continue
        listed.add(op.name)
        if cls.needs_images():
            image_ops.append(op.name)
        if cls.needs_videos():
            video_ops.append(op.name)
        for stat in cls.stat_keys:
            if stat in seen:
                yield f"{key}: stat {stat!r} would come from both {seen[stat]!r} and {op.name!r}; list each OP once"
            seen[stat] = op.name
    if image_ops and not spec.dataset.has("images"):
        yield (f"dataset: OPs {', '.join(image_ops)} read images, but the dataset has none: "
               "set dataset.image_field (or dataset.format: images)")
    if video_ops and not spec.dataset.has("videos"):
        yield (f"dataset: OPs {', '.join(video_ops)} read videos, but the dataset has none: "
               "set dataset.video_field (or dataset.format: videos)")


def _search_problems(spec: ExperimentSpec) -> Iterator[str]:
    stats: dict[str, int] = {}
    for i, entry in enumerate(spec.search.ops or []):
        key = f"search.ops[{i}]"
        try:
            cls = op_class(entry.op)
        except ValueError as err:
            yield f"{key}.op: {err}"
            continue
        if entry.stat is not None and entry.stat not in cls.stat_keys:
            yield f"{key}.stat: {entry.op} has no stat {entry.stat!r}; its stats: {', '.join(cls.stat_keys)}"
            continue
        stat = search_stat(entry)
        if stat in stats:
            yield f"{key}: stat {stat!r} is already searched by search.ops[{stats[stat]}]; name each stat once"
        stats[stat] = i


def _models(spec: ExperimentSpec) -> list[tuple[str, Any]]:
    """Every model the spec may train, by its key."""
    return [("model", spec.model), *([("screen.model", spec.screen.model)] if spec.screen else []),
            *((f"transfer.models[{i}]", m) for i, m in enumerate(spec.transfer.models))]


def _media_problems(spec: ExperimentSpec) -> Iterator[str]:
    """A captioner or a text-to-video model trains on (media, caption) pairs and, scored in process,
    is scored on such pairs: text without them is one line before any work, not a failure per cell."""
    problems: list[str] = []
    for key, model in _models(spec):
        media = getattr(model, "media", None)
        if media is None:
            continue
        field = f"{media.removesuffix('s')}_field"
        if not spec.dataset.has(media):
            problems.append(f"{key}: {model.type} trains on {media} with their captions, but the dataset has none: "
                            f"set dataset.{field} (or dataset.format: {media})")
        if spec.evaluator.type != "perplexity":  # an external evaluator reads the benchmarks its own way
            continue
        if spec.benchmarks is None:
            problems.append(f"benchmarks: the bundled ones are text only, and {model.type} is scored on captions "
                            f"given their {media}: name benchmarks with their {field}")
        problems += [f"benchmarks: {bench.name!r} has no {field}, and {model.type} is scored on captions given "
                     f"their {media}: set its {field}" for bench in spec.benchmarks or [] if getattr(bench, field) is None]
    yield from dict.fromkeys(problems)  # a screen and a deciding captioner find the same benchmarks


def _device_problems(spec: ExperimentSpec) -> Iterator[str]:
    """A model pinned to ``device: cuda`` on a machine without one: refused before any run starts,
    not by each cell."""
    for key, model in _models(spec):
        if getattr(model, "device", None) == "cuda":
            try:
                resolve_device("cuda")
            except SpecError as err:
                yield f"{key}.{err}"


def _command_problems(spec: ExperimentSpec) -> Iterator[str]:
    """A ``command`` trainer or evaluator names a program that runs and a local MLflow project that
    exists, and a model path (``hf-lora``'s ``model``) names a folder: a typo is one line before
    any work, rather than every cell failing with it."""
    for key, model in [*_models(spec), ("evaluator", spec.evaluator)]:
        argv = getattr(model, "command", None)
        if argv and "{" not in argv[0] and shutil.which(argv[0]) is None:
            yield f"{key}.command[0]: {argv[0]!r} is neither a program on PATH nor an executable file"
        project = getattr(model, "mlflow_project", None)
        if project and "://" not in project and not project.startswith("git@") and not Path(project).expanduser().exists():
            yield (f"{key}.mlflow_project: no folder {project!r} here (a relative path is relative to the "
                   f"directory mlsandbox runs in, {Path.cwd()})")
        name = getattr(model, "model", None)
        if isinstance(name, str) and (where := model_location(name)).startswith("no such"):
            yield f"{key}.model: {where}"


def _workspace_problems(spec: ExperimentSpec) -> Iterator[str]:
    """The workspace must be a folder this process can write, or creatable in one: checked before
    any work, without creating anything."""
    workspace = spec.workspace_dir
    given = "" if str(workspace) == spec.workspace else f" (got {spec.workspace!r})"
    if problem := folder_problem(workspace):
        relative = "" if Path(spec.workspace).expanduser().is_absolute() else (
            f"; a relative workspace ({spec.workspace!r}) is made in the folder the command runs in: run it where "
            "files can be written, or --set workspace=PATH")
        yield f"workspace: {problem}{given}{relative}"


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a folder this process can write, nor can create, in words; None where it
    is or can be. Nothing is left created."""
    if folder.exists():
        if not folder.is_dir():
            return f"{folder} exists and is not a folder"
        return None if os.access(folder, os.W_OK | os.X_OK) else f"folder {folder} is not writable"
    parent = folder.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {folder}: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {folder}: folder {parent} is not writable"
    if refused := _refuses_folders(parent, folder):
        return f"cannot create {folder}: {refused}"
    return None


def _refuses_folders(parent: Path, workspace: Path) -> str | None:
    """Why the folders down to ``workspace`` cannot be made under ``parent``, which looks writable
    (some file systems, such as /proc, refuse them even to root): tried, and those made removed
    again; None if they can be."""
    chain = [workspace, *workspace.parents[: len(workspace.relative_to(parent).parts) - 1]][::-1]
    made: list[Path] = []
    try:
        for folder in chain:
            with contextlib.suppress(FileExistsError):  # another command making the workspace now
                folder.mkdir()
                made.append(folder)
    except OSError as err:
        return err.strerror or str(err)
    finally:
        for folder in reversed(made):
            with contextlib.suppress(OSError):  # already in use by that other command
                folder.rmdir()
    return None


#: A URL's scheme, as a path folds its "//" (``https:/host/x``).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")


def output_file(path: Path) -> Path:
    """``path`` as a file a command writes (``--out``), checked without creating anything: an input
    error (exit code 2) when it is a URL, a folder, or in a folder that cannot be written or made."""
    if _URL.match(str(path)):
        raise InvalidInputError(f"--out {path}: a URL; name a file on this machine")
    if path.is_dir():
        raise InvalidInputError(f"--out {path}: a folder; name the file to write")
    if problem := folder_problem(path.parent):
        raise InvalidInputError(f"--out {path}: {problem}")
    return path


def output_folder(path: Path, files: Sequence[str] = ()) -> Path:
    """``path`` as a folder for a command's ``files`` (``--out``), created if needed; an input error
    (exit code 2) when it is a URL (as a path its "//" is folded: ``https:/host/x``), a file or cannot be
    created, or one of ``files`` is a folder there."""
    if _URL.match(str(path)):
        raise InvalidInputError(f"--out {path}: a URL; name a folder on this machine")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        what = "exists and is not a folder" if path.exists() and not path.is_dir() else f"cannot be created ({err.strerror or err})"
        raise InvalidInputError(f"--out {path}: {what}") from None
    if folders := [name for name in files if (path / name).is_dir()]:
        raise InvalidInputError(f"--out {path}: {', '.join(folders)} there is a folder, where this command writes a file")
    try:  # an existing folder may still refuse files (permissions, a read-only mount): try one
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        raise InvalidInputError(f"--out {path}: cannot be written ({err.strerror or err})") from None
    return path
