"""Recipes to and from Data-Juicer configs (``process:`` lists of filters), by each OP's mapping.

An OP class's ``data_juicer`` attribute (:class:`~mlsandbox.ops.DataJuicerFilter`) says how its
stats are spelled as arguments of Data-Juicer's filter of the same name; OPs without one cannot
be exported, and Data-Juicer filters without a matching OP are skipped on import.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from mlsandbox.data import IMAGE, VIDEO
from mlsandbox.errors import RecipeError, describe_validation_error, listed
from mlsandbox.files import published
from mlsandbox.ops import DataJuicerFilter, StatArgs, list_ops, op_class
from mlsandbox.recipes._bounds import STORED_DIGITS, at_limit, data_juicer_bound, float_bound
from mlsandbox.recipes._files import parse_recipe, read_yaml, save_recipe
from mlsandbox.recipes._recipe import Condition, Recipe
from mlsandbox.recipes._word_lists import (
    clear_word_lists,
    data_juicer_word_lists,
    folder_args,
    other_words,
    word_lists_folder,
    write_word_lists,
)
from mlsandbox.spec import DatasetSpec, dump_yaml

log = logging.getLogger(__name__)

#: Filter args of Data-Juicer's base class that change which samples pass; with a non-default
#: value the filter is not one of our conditions.
_INTERVAL_ARGS = {"min_closed_interval": True, "max_closed_interval": True, "reversed_range": False}

#: Data-Juicer's selector that draws a fixed number of samples: the nearest thing to sample_size.
RANDOM_SELECTOR = "random_selector"


def _mapping(op_name: str) -> DataJuicerFilter | None:
    """The Data-Juicer mapping of a registered OP; None for an OP without one or an unknown name."""
    try:
        return op_class(op_name).data_juicer
    except ValueError:
        return None


def _data_juicer_filter(op_name: str) -> DataJuicerFilter:
    """The Data-Juicer mapping of an OP; an error lists the OPs that have one."""
    spec = _mapping(op_name)
    if spec is None:
        known = ", ".join(cls.name for cls in list_ops() if cls.data_juicer is not None)
        raise RecipeError(f"OP {op_name!r} has no Data-Juicer mapping; mapped OPs: {known}")
    return spec


# --- export ----------------------------------------------------------------------------------


def to_data_juicer(
    recipe: Recipe,
    dataset_path: str = "data.jsonl",
    export_path: str = "processed.jsonl",
    text_key: str = "text",
    processes: int = 4,
    image_key: str | None = None,
    video_key: str | None = None,
    words_dir: str | None = None,
) -> dict[str, Any]:
    """A Data-Juicer config that keeps the samples the recipe's conditions keep.

    ``text_key``, ``image_key`` and ``video_key`` name the dataset's fields (:func:`data_juicer_keys`
    gives a project's); Data-Juicer's image and video filters keep every sample without the key.
    A filter that counts words of a list reads them from ``words_dir``, the folder that
    :func:`save_data_juicer` writes (:func:`data_juicer_word_lists`); without one, Data-Juicer downloads
    its own lists, which count other words.

    Conditions on the same OP and params become one filter entry (bounds intersected). A
    ``sample_size`` is left out: it is the equal-size draw that made pools comparable, not a
    quality choice, and at full scale a ``random_selector`` of that many samples would keep a few
    thousand documents of millions. ``repeat`` has no Data-Juicer equivalent and Data-Juicer
    rejects unknown config keys. :func:`save_data_juicer` records both in YAML comments.
    """
    if recipe.ids is not None:
        raise RecipeError(
            f"recipe {recipe.name!r} is an id list of {len(recipe.ids)} samples (ids_digest {recipe.ids_digest}): "
            "no threshold selects exactly these samples, and Data-Juicer has no filter that keeps samples by id"
        )
    process: list[dict[str, Any]] = []
    groups = _group_by_op(recipe.conditions)
    ops = [op for op, _ in groups]
    if repeated := sorted({op for op in ops if ops.count(op) > 1}):
        raise RecipeError(f"{', '.join(repeated)}: one OP with two sets of params; Data-Juicer computes a statistic "
                          "once per sample, so the second filter would read the first one's value")
    for (op_name, _), group in groups.items():
        process.append({op_name: _dj_args(op_name, group, words_dir)})
    media = {k: v for k, v in (("image_key", image_key), ("video_key", video_key)) if v is not None}
    return {
        "project_name": recipe.name,
        "dataset_path": dataset_path,
        "export_path": export_path,
        "text_keys": text_key,
        **media,
        "np": processes,
        "process": process,
    }


def data_juicer_keys(dataset: DatasetSpec) -> dict[str, str]:
    """The fields of a project's samples, as :func:`to_data_juicer`'s ``*_key`` arguments. A folder
    of captioned files (``format: images|videos``) is named as mlsandbox's pool files name it."""
    keys = {"text_key": dataset.text_field}
    if dataset.has("images"):
        keys["image_key"] = dataset.image_field or IMAGE
    if dataset.has("videos"):
        keys["video_key"] = dataset.video_field or VIDEO
    return keys


def _group_by_op(conditions: Iterable[Condition]) -> dict[tuple[str, str], list[Condition]]:
    groups: dict[tuple[str, str], list[Condition]] = {}
    for c in conditions:
        groups.setdefault((c.op, json.dumps(c.params, sort_keys=True)), []).append(c)
    return groups


def _dj_args(op_name: str, conditions: list[Condition], words_dir: str | None) -> dict[str, Any]:
    spec = _data_juicer_filter(op_name)
    args: dict[str, Any] = {**spec.inert, **spec.fixed}
    if spec.words is not None and words_dir is not None:
        args[spec.words.folder_arg] = words_dir
    # The OP's params, defaults included, under Data-Juicer's names.
    params = op_class(op_name)(**conditions[0].params).params.stat_params()
    for ours, theirs in spec.renamed.items():
        if params.get(ours) is not None:
            args[theirs.name] = params[ours]
    args.update({k: v for k, v in params.items() if k not in spec.renamed and k not in spec.local})
    for c in conditions:
        if c.stat not in spec.stat_keys():
            raise RecipeError(f"condition {c.label}: Data-Juicer's {op_name} has no argument for {c.stat}")
        if c.stat in spec.categorical and c.values is None:
            raise RecipeError(f"condition {c.label}: {c.stat} is categorical; use values, not min/max")
        if c.stat in spec.stats and c.values is not None:
            raise RecipeError(f"condition {c.label}: {c.stat} is numeric; use min/max, not values")
    for stat, dj_arg in spec.categorical.items():
        allowed = [c.values for c in conditions if c.stat == stat and c.values is not None]
        if allowed:
            common = [v for v in allowed[0] if all(v in a for a in allowed[1:])]
            if not common:
                raise RecipeError(f"{op_name}: the conditions on {stat} allow no common value")
            args[dj_arg] = common[0] if len(common) == 1 else common
    for stat, sa in spec.stats.items():
        lo = max((c.min for c in conditions if c.stat == stat and c.min is not None), default=None)
        hi = min((c.max for c in conditions if c.stat == stat and c.max is not None), default=None)
        if hi is not None and hi >= sa.ceiling:  # at the stat's ceiling: cuts nothing, needs no argument
            hi = None
        if hi is not None and sa.max_arg is None:
            raise RecipeError(f"condition {op_name}.{stat}: Data-Juicer's {op_name} has no maximum for {stat}")
        sides: tuple[tuple[Literal["min", "max"], float | None, str | None], ...] = (
            ("min", lo, sa.min_arg), ("max", hi, sa.max_arg)
        )
        for side, bound, bound_arg in sides:
            if bound_arg is None:
                continue
            if bound is not None:
                args[bound_arg] = data_juicer_bound(bound, side, sa)
            elif not sa.default_is_open(side):
                args[bound_arg] = sa.floor if side == "min" else sa.ceiling
    return args


def _moved(c: Condition) -> bool:
    """Whether the export writes one of the condition's bounds half a stored step out."""
    sa = _data_juicer_filter(c.op).stats.get(c.stat or "")
    return sa is not None and not sa.integer and (
        (c.min is not None and not at_limit(sa, c.min, "min")) or (c.max is not None and not at_limit(sa, c.max, "max")))


def save_data_juicer(recipe: Recipe, path: str | Path, words_dir: str | Path | None = None, **kwargs: Any) -> Path:
    """Write :func:`to_data_juicer`'s config as YAML, with the recipe's provenance in comments, and the
    word lists its filters count into ``words_dir`` (default: beside it, named after it), which the
    config names as given (a relative folder is read from where Data-Juicer runs)."""
    path = Path(path)
    header = [f"# Data-Juicer recipe exported from mlsandbox recipe {recipe.name!r} (digest {recipe.digest()})"]
    if recipe.source:
        header.append(f"# source: {recipe.source}")
    if (measured := recipe.measured) is not None:
        header.append(f"# measured: {measured.samples} samples (pool {measured.pool_digest}) of dataset "
                      f"{measured.dataset_digest}" + (f" in run {measured.run_id}" if measured.run_id else ""))
    if recipe.repeat > 1:
        header.append(f"# repeat: {recipe.repeat} (not expressible in Data-Juicer: duplicate the export "
                      f"{recipe.repeat} times for training)")
    if recipe.sample_size is not None:
        header.append(f"# sample_size: {recipe.sample_size} (seed {recipe.seed}), the sandbox's equal-size draw for "
                      "its comparison, is not in process: every sample that passes the filters is kept; to draw "
                      f"as many (another draw), append - {RANDOM_SELECTOR}: {{select_num: {recipe.sample_size}}}")
    for op_name in dict.fromkeys(c.op for c in recipe.conditions):
        if caveat := _data_juicer_filter(op_name).caveat:
            header.append(f"# not exact in Data-Juicer: {op_name}: {caveat}")
    words = word_lists_folder(path) if words_dir is None else Path(words_dir)
    config = to_data_juicer(recipe, words_dir=words.name if words_dir is None else str(words_dir), **kwargs)
    lists = data_juicer_word_lists(recipe)
    clear_word_lists(words)  # an earlier export's: only this recipe's lists may be read there
    if any(_moved(c) for c in recipe.conditions):
        header.append(f"# fractional bounds lie half a stored step outside the measured ones: Data-Juicer compares "
                      f"each statistic as its stats column stores it, to {STORED_DIGITS} decimals, so a sample on "
                      "a bound is kept as the sandbox kept it")
    if lists:
        write_word_lists(words, lists)
        named = folder_args(recipe.conditions)
        where = f"{words.name}/, written beside this file" if words_dir is None else f"{words_dir}/, written"
        header.append(f"# word lists: {' and '.join(named)} name{'s' * (len(named) == 1)} {where} with the lists "
                      "mlsandbox counted; Data-Juicer reads a relative path from the directory it runs in: run it "
                      "from this file's folder or make the path absolute (without the lists there, Data-Juicer "
                      "downloads its own, which count other words)")
    if placeholders := [f"{key}: {config[key]}" for key in ("dataset_path", "export_path") if key not in kwargs]:
        header.append(f"# placeholders, set them before running it: {', '.join(placeholders)} (the dataset to "
                      "process, the file to write)")
    body = dump_yaml(config)
    with published(path) as tmp:
        tmp.write_text("\n".join(header) + "\n" + body, encoding="utf-8")
    return path


def export_recipe(recipe: Recipe, directory: str | Path, stem: str = "best_recipe", **kwargs: Any) -> list[Path]:
    """Our YAML and, where Data-Juicer can express the recipe, its ``process:`` config.

    A recipe Data-Juicer cannot express (say, a maximum language score) gets a
    ``<stem>.data_juicer.txt`` saying why instead, so that a workflow never fails at its last step.
    """
    directory = Path(directory)
    written = [save_recipe(recipe, directory / f"{stem}.yaml")]
    config, note = directory / f"{stem}.data_juicer.yaml", directory / f"{stem}.data_juicer.txt"
    words = Path(kwargs.get("words_dir") or word_lists_folder(config))
    try:
        written.append(save_data_juicer(recipe, config, **kwargs))
        note.unlink(missing_ok=True)  # an earlier recipe's reason
        if words.exists():
            written.append(words)
    except RecipeError as err:
        config.unlink(missing_ok=True)  # an earlier recipe's config: it is not this recipe
        clear_word_lists(words)
        with published(note) as tmp:
            tmp.write_text(f"not exportable to Data-Juicer: {err}\n", encoding="utf-8")
        written.append(note)
    return written


# --- import ----------------------------------------------------------------------------------


def read_data_juicer(config: Mapping[str, Any] | str | Path, name: str | None = None) -> tuple[Recipe, list[str]]:
    """A recipe from a Data-Juicer config, and notes on what was not imported.

    Known filters become conditions; a bound at the stat's natural range (or left out where
    Data-Juicer's default is open) is unbounded, a left-out bound whose default cuts keeps that
    default. Mappers, deduplicators, unknown filters and filters with args that change their
    statistic or interval are skipped with a note. A filter that counts words of a list gets a note
    where its folder (a relative one read from the config's folder, where an export writes it) does
    not hold the OP's list.
    """
    origin, base = "Data-Juicer config", Path.cwd()
    if isinstance(config, (str, Path)):
        origin, base = str(config), Path(config).parent
        config = read_yaml(Path(config), "Data-Juicer config")
    if not isinstance(config, Mapping):
        raise RecipeError(f"{origin}: a Data-Juicer config must be a mapping, got {type(config).__name__}")
    process = config.get("process", [])
    if not isinstance(process, list):
        raise RecipeError(f"{origin}: process must be a list of {{op_name: {{args}}}}, got {type(process).__name__}")
    conditions: list[Condition] = []
    notes: list[str] = []
    sample_size: int | None = None
    for i, entry in enumerate(process):
        if not (isinstance(entry, Mapping) and len(entry) == 1):
            raise RecipeError(f"{origin}: process[{i}] must be a one-key mapping {{op_name: {{args}}}}, got {entry!r}")
        op_name, args = next(iter(entry.items()))
        where = f"process[{i}] ({op_name})"
        if args is not None and not isinstance(args, Mapping):
            raise RecipeError(f"{origin}: {where}: its arguments must be a mapping, got {args!r}")
        args = dict(args or {})
        if op_name == RANDOM_SELECTOR:
            if args.get("select_ratio") is not None or not isinstance(args.get("select_num"), int):
                notes.append(f"{where}: skipped, only select_num (a fixed sample size) is imported")
            else:
                sample_size = args["select_num"]
            continue
        spec = _mapping(op_name)
        if spec is None:
            known = any(cls.name == op_name for cls in list_ops())
            notes.append(f"{where}: skipped, " + ("mlsandbox has this OP but no Data-Juicer mapping for it" if known
                                                  else "not a filter mlsandbox has a stat for"))
            continue
        try:
            conditions.extend(_conditions_from_dj(op_name, spec, args, where, notes, base))
        except ValidationError as err:  # an argument value our OP refuses
            raise RecipeError(f"{origin}: {where}{listed(describe_validation_error(err))}") from None
        except (TypeError, ValueError) as err:
            raise RecipeError(f"{origin}: {where}: {err}") from None
    recipe_name = name or str(config.get("project_name") or "data-juicer")
    recipe = parse_recipe(
        {"name": recipe_name, "conditions": [c.model_dump() for c in conditions],
         "sample_size": sample_size,
         "source": origin if origin == "Data-Juicer config" else f"Data-Juicer config {origin}"},
        origin=origin,
    )
    return recipe, notes


def from_data_juicer(config: Mapping[str, Any] | str | Path, name: str | None = None) -> Recipe:
    """:func:`read_data_juicer`, logging what was skipped."""
    recipe, notes = read_data_juicer(config, name)
    for note in notes:
        log.warning("Data-Juicer import: %s", note)
    return recipe


def _conditions_from_dj(
    op_name: str, spec: DataJuicerFilter, args: dict[str, Any], where: str, notes: list[str], base: Path
) -> list[Condition]:
    param_names = set(op_class(op_name).Params.model_fields)
    for arg, default in _INTERVAL_ARGS.items():
        if arg in args and args.pop(arg) != default:
            notes.append(f"{where}: skipped, {arg} is not {default} (mlsandbox bounds are closed intervals)")
            return []
    for arg, value in spec.fixed.items():
        if arg in args and args.pop(arg) != value:
            notes.append(f"{where}: skipped, {arg} must be {value!r} for the stat mlsandbox computes")
            return []
    for arg in spec.inert:
        args.pop(arg, None)
    params = {k: args.pop(k) for k in list(args) if k in param_names - spec.local - set(spec.renamed)}
    for ours, theirs in spec.renamed.items():
        params[ours] = args.pop(theirs.name, None) or theirs.default
    out: list[Condition] = []
    for stat, arg in spec.categorical.items():
        allowed = args.pop(arg, None)
        if allowed:  # Data-Juicer: "", [] or None keep every language
            listed_values = isinstance(allowed, list) and all(isinstance(v, str) for v in allowed)
            if not (isinstance(allowed, str) or listed_values):
                raise TypeError(f"{arg} must be a value or a list of values, got {allowed!r}")
            values = [allowed] if isinstance(allowed, str) else list(allowed)
            out.append(Condition(op=op_name, stat=stat, values=values, params=params))
    for stat, sa in spec.stats.items():
        lo = _dj_bound(args, sa, "min")
        hi = _dj_bound(args, sa, "max")
        if (lo is not None and lo > sa.ceiling) or (hi is not None and hi < sa.floor):
            bound = f"minimum {lo} is above" if lo is not None and lo > sa.ceiling else f"maximum {hi} is below"
            raise ValueError(f"the {bound} the range of {stat}, [{sa.floor}, {sa.ceiling}]: "
                             "the filter would keep no sample")
        lo = None if lo is None or lo <= sa.floor else lo
        hi = None if hi is None or hi >= sa.ceiling else hi
        if lo is None and hi is None:
            continue  # the filter keeps every value of this stat
        out.append(Condition(op=op_name, stat=stat, min=lo, max=hi, params=params))
    if spec.words is not None:  # after the conditions, which check the params (a language without a list)
        given = args.pop(spec.words.folder_arg, None)
        if out and (note := other_words(spec.words, given, params, base)):
            notes.append(f"{where}: {note}")
    if args:
        notes.append(f"{where}: ignored args {sorted(args)} (mlsandbox's {op_name} has no such setting: "
                     "check that they keep Data-Juicer's defaults, or the imported bounds may keep other samples)")
    if not out:
        notes.append(f"{where}: dropped, its bounds cut nothing")
    return out


def _dj_bound(args: dict[str, Any], sa: StatArgs, side: Literal["min", "max"]) -> float | None:
    arg, default = (sa.min_arg, sa.min_default) if side == "min" else (sa.max_arg, sa.max_default)
    if arg is None:
        return None
    value = args.pop(arg, default)
    if value is None:
        return None
    if sa.fraction and not isinstance(value, bool):
        try:
            return float_bound(Fraction(str(value).replace(":", "/")), side)
        except (ValueError, ZeroDivisionError):
            raise TypeError(f"{arg} must be a number or a fraction such as '9/21', got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{arg} must be a number, got {value!r}")
    return float(value)


