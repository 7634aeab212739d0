"""Reading a project's spec file: YAML, the command line's ``--set`` overrides and the ``--quick`` profile."""

from __future__ import annotations

import copy
import difflib
import logging
import re
from pathlib import Path
from typing import Any

from mlsandbox.errors import SpecError
from mlsandbox.spec._yaml import YAMLInputError, load_yaml
from mlsandbox.spec.experiment import QUICK_BASE, ExperimentSpec, default_quick, invalid_spec, parse_spec

log = logging.getLogger(__name__)


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None, quick: bool = False) -> ExperimentSpec:
    """Read a project's spec: a ``sandbox.yaml`` file, or a folder that holds one.

    ``overrides`` are dotted keys (``{"pools.size": 500}``) applied before validation, as the CLI's
    ``--set key=value`` does; with ``quick``, the spec as its ``quick`` profile sets it (the overrides
    still win). Both the spec and its quick profile are validated, whichever is returned.
    """
    file = spec_file(path)
    if not file.is_file():
        where = "" if Path(path).expanduser().is_absolute() else f", relative to {Path.cwd()}"
        raise SpecError(f"no experiment spec at {file} (expected a sandbox.yaml file or its folder{where}"
                        f"{_hint(Path(path))})")
    try:
        raw = load_yaml(file.read_bytes())
    except OSError as err:
        raise SpecError(f"{file}: cannot read the spec: {err.strerror or err}") from None
    except YAMLInputError as err:
        where = f" at {err.where()}" if err.line is not None else ""
        raise SpecError(f"{file}: not valid YAML{where}: {err.problem}") from None
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise SpecError(f"{file}: the spec must be a mapping of keys (got {got})")
    overrides = overrides or {}
    for key, value in overrides.items():  # first, so that they may set the quick profile itself
        _set_dotted(raw, key, value)
    profile = raw["quick"] if "quick" in raw else default_quick(raw)  # `quick: {}` overrides nothing
    if not isinstance(profile, dict):
        raise invalid_spec(spec_origin(path, overrides), [f"quick: must be a mapping of dotted keys to values "
                                                          f"(got {profile!r})"])
    profiled = copy.deepcopy(raw)
    for key, value in {**QUICK_BASE, **profile}.items():
        _set_dotted(profiled, key, value)
    settings = {**QUICK_BASE, **profile}
    turned_off = [key for key, value in settings.items() if value is None]
    replaced = [key for key, value in settings.items() if isinstance(value, (dict, list))]  # the model, the seeds
    for key, value in overrides.items():  # the command line's settings win, but for a section the profile turns
        # off, or a key inside a section it replaces whole (`model.threads` of the full run's model, `seeds[7]`)
        dotted = _dotted(key)
        if (off := next((s for s in turned_off if dotted == s or dotted.startswith(s + ".")), None)) is not None:
            if quick:
                log.warning("--quick turns `%s` off: --set %s is left out of this run", off, key)
        elif (whole := next((s for s in replaced if dotted.startswith(s + ".")), None)) is not None:
            if quick:
                log.warning("--quick replaces `%s` whole: --set %s is left out of this run", whole, key)
        else:
            _set_dotted(profiled, key, value)
    full = parse_spec(raw, base_dir=file.parent.resolve(), origin=spec_origin(path, overrides, quick=False))
    # checked whichever profile runs: a mistake in `quick` must not wait for the first --quick
    quick_spec = parse_spec(profiled, base_dir=file.parent.resolve(), origin=spec_origin(path, overrides, quick=True))
    return quick_spec if quick else full


def spec_origin(path: str | Path, overrides: dict[str, Any] | None = None, quick: bool = False) -> str:
    """Where a loaded spec came from, as its errors name it: the file, its quick profile, the command line's settings."""
    profile = "'s quick profile" if quick else ""
    settings = " with the command line's settings" if overrides else ""
    return f"{spec_file(path)}{profile}{settings}"


def _hint(missing: Path) -> str:
    """Where a missing project may be: a project folder of a name close to it, or, for the bundled
    projects outside a clone of the repository (a package install), where those are."""
    if missing.name == "sandbox.yaml":
        missing = missing.parent
    if missing.exists():
        return ""
    try:
        projects = [p.name for p in missing.parent.iterdir() if (p / "sandbox.yaml").is_file()]
    except OSError:  # no such folder, or one that cannot be listed
        projects = []
    if close := difflib.get_close_matches(missing.name, projects, n=1):
        return f"; did you mean {str(missing.parent / close[0])!r}?"
    if missing.parts[:1] == ("projects",) and not Path("projects").is_dir():
        return ("; the bundled projects are in the repository's projects/ folder: run from a clone of it, "
                "or start one of your own: mlsandbox init DIR --data FILE")
    return ""


def spec_file(path: str | Path) -> Path:
    """The spec file a project path names: the path itself, or the ``sandbox.yaml`` in that folder."""
    file = Path(path)
    return file / "sandbox.yaml" if file.is_dir() else file


def _dotted(key: str) -> str:
    """``ops[1].params`` as ``ops.1.params``: a list item by its position, as errors name it."""
    return re.sub(r"\[(-?\d+)\]", r".\1", key)


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``pools.size``-style keys; a list item by its position, as errors name it
    (``ops[1].params.rep_len``, or ``ops.1.params.rep_len``)."""
    parts = _dotted(key).split(".")
    if not all(parts):
        raise SpecError(f"cannot set {key!r}: a dotted key has no empty parts")
    node: Any = raw
    *parents, last = parts
    for p in parents:
        node = _child(node, p, key)
    if isinstance(value, str):
        try:
            value = load_yaml(value)
        except YAMLInputError as err:
            raise SpecError(f"cannot set {key!r}: the value {value!r} is not valid YAML: {err.problem}") from None
    if isinstance(node, list):
        node[_position(node, last, key)] = value
    else:
        node[last] = value


def _child(node: Any, part: str, key: str) -> Any:
    """The mapping or list under ``part`` of ``node`` (a missing mapping key gets an empty mapping)."""
    if isinstance(node, list):
        node = node[_position(node, part, key)]
    elif isinstance(node, dict):
        node = node.setdefault(part, {})
    if not isinstance(node, (dict, list)):
        raise SpecError(f"cannot set {key!r}: {part!r} is not a mapping or a list (got {str(node)[:80]!r})")
    return node


def _position(items: list[Any], part: str, key: str) -> int:
    if not items:
        raise SpecError(f"cannot set {key!r}: the list is empty (got position {part!r})")
    if not part.isdigit() or int(part) >= len(items):
        raise SpecError(f"cannot set {key!r}: a list item is named by its position, 0 to {len(items) - 1} (got {part!r})")
    return int(part)
