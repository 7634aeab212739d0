"""Recipes: the data-processing choices found in the sandbox, as typed, portable objects.

A recipe is a list of per-OP stat conditions (intersected), an optional seeded subsample and a
repeat (duplication) rate. It selects a :class:`~mlsandbox.pools.Pool` from a stats table, is
saved as YAML, and moves to and from Data-Juicer's ``process:`` lists, so that a recipe found on
a small sample can be run by Data-Juicer at full scale. Thresholds can be refined from the data
by k-sigma (:func:`ksigma_recipe`) or percentiles (:func:`percentile_recipe`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlsandbox.errors import PoolError, RecipeError, describe_validation_error
from mlsandbox.ops import Op, op_class
from mlsandbox.pools import Pool, RecipeOrigin, filter_pool, make_pool
from mlsandbox.stats import StatsTable

log = logging.getLogger(__name__)


class Condition(BaseModel):
    """Keep samples whose ``stat`` of ``op`` lies in ``[min, max]`` (or is one of ``values``).

    ``stat`` defaults to the OP's split stat. Numeric stats take ``min``/``max`` (inclusive, as
    in Data-Juicer; None = unbounded); categorical stats such as ``lang`` take ``values``.
    ``params`` are the OP's params (they change what the stat means), stored without defaults
    so that equal OPs compare and digest equal.
    """

    model_config = ConfigDict(extra="forbid")

    op: str
    stat: str | None = None
    min: float | None = None
    max: float | None = None
    values: list[str] | None = Field(None, description="allowed values of a categorical stat")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Condition:
        cls = op_class(self.op)  # ValueError naming the known OPs
        if self.stat is None:
            self.stat = cls.split_stat()
        elif self.stat not in cls.stat_keys:
            raise ValueError(
                f"condition on {self.op}: unknown stat {self.stat!r}; {self.op} has {', '.join(cls.stat_keys)}"
            )
        try:
            op = cls(**self.params)
        except ValueError as err:
            raise ValueError(f"condition on {self.label}: {err}") from None
        self.params = op.params.model_dump(mode="json", exclude_defaults=True)
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"condition on {self.label}: {name} must be finite, got {value}")
        if self.values is not None:
            if self.min is not None or self.max is not None:
                raise ValueError(f"condition on {self.label}: give either values or min/max, not both")
            if not self.values:
                raise ValueError(f"condition on {self.label}: values is empty, so nothing would be kept")
        elif self.min is None and self.max is None:
            raise ValueError(f"condition on {self.label}: set min, max (or values for a categorical stat)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"condition on {self.label}: min {self.min} is above max {self.max}")
        return self

    @property
    def label(self) -> str:
        return f"{self.op}.{self.stat}" if self.stat else self.op

    def describe(self) -> str:
        if self.values is not None:
            return f"{self.label} in {self.values}"
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"{self.label} in [{lo}, {hi}]"


class Recipe(BaseModel):
    """Conditions (intersected; none = all data), then a seeded subsample, then ``repeat`` copies."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    conditions: list[Condition] = Field(default_factory=list)
    sample_size: int | None = Field(None, ge=1, description="seeded subsample of the selection")
    seed: int = 42
    repeat: int = Field(1, ge=1, description="times each selected sample is seen (duplication rate)")
    source: str = Field("", description="provenance, e.g. 'k-sigma k=2' or 'top-3 intersection'")

    def digest(self) -> str:
        """sha256 of the recipe's canonical JSON (sorted keys, no whitespace), 16 hex chars."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def select(self, stats: StatsTable) -> Pool:
        """The pool this recipe keeps from ``stats``; :class:`PoolError` if nothing or too little."""
        bounds, allowed = _merge_conditions(self.conditions, stats, self.name)
        try:
            pool = filter_pool(stats, bounds, self.name)
            if allowed:
                keep = np.ones(pool.unique_size, dtype=bool)
                for key, values in allowed.items():
                    keep &= np.isin(stats.stat(key)[pool.rows], list(values))
                pool = make_pool(self.name, stats, pool.rows[keep], pool.origin)
        except PoolError:
            described = "; ".join(c.describe() for c in self.conditions)
            raise PoolError(f"recipe {self.name!r}: empty selection, no sample passes {described}") from None
        if self.sample_size is not None:
            if self.sample_size > pool.unique_size:
                raise PoolError(
                    f"recipe {self.name!r}: sample_size={self.sample_size} but its conditions select "
                    f"only {pool.unique_size} samples"
                )
            rows = np.random.default_rng(self.seed).choice(pool.rows, self.sample_size, replace=False)
            pool = make_pool(self.name, stats, rows, pool.origin)
        origin = RecipeOrigin(self.name, self.digest(), self.sample_size, self.seed, self.repeat)
        return Pool(self.name, pool.dataset_digest, pool.rows, pool.repeats * self.repeat, origin)


def _merge_conditions(
    conditions: Iterable[Condition], stats: StatsTable, name: str
) -> tuple[dict[str, tuple[float | None, float | None]], dict[str, set[str]]]:
    """Intersect the conditions per stat, after checking that the table's stats mean the same."""
    bounds: dict[str, tuple[float | None, float | None]] = {}
    allowed: dict[str, set[str]] = {}
    for c in conditions:
        try:
            op = stats.op(c.op)
        except KeyError as err:
            raise RecipeError(f"recipe {name!r}, condition {c.label}: {err.args[0]}") from None
        if op.params.model_dump(mode="json", exclude_defaults=True) != c.params:
            raise RecipeError(
                f"recipe {name!r}, condition {c.label}: needs params {c.params or 'defaults'} but the stats "
                f"table computed {c.op} with {op.params.model_dump(mode='json')}"
            )
        assert c.stat is not None  # filled in by validation
        numeric = pd.api.types.is_numeric_dtype(stats.frame[c.stat])
        if c.values is not None:
            allowed[c.stat] = allowed[c.stat] & set(c.values) if c.stat in allowed else set(c.values)
            if not allowed[c.stat]:
                raise PoolError(f"recipe {name!r}: the conditions on {c.label} allow no common value")
            continue
        if not numeric:
            raise RecipeError(f"recipe {name!r}, condition {c.label}: {c.stat} is categorical; use values, not min/max")
        lo, hi = bounds.get(c.stat, (None, None))
        lo = c.min if lo is None else lo if c.min is None else max(lo, c.min)
        hi = c.max if hi is None else hi if c.max is None else min(hi, c.max)
        if lo is not None and hi is not None and lo > hi:
            raise PoolError(f"recipe {name!r}: empty selection, the conditions on {c.label} do not overlap")
        bounds[c.stat] = (lo, hi)
    return bounds, allowed


# --- our YAML format -------------------------------------------------------------------------


def parse_recipe(raw: Any, origin: str = "recipe") -> Recipe:
    """A recipe from a mapping; :class:`RecipeError` names the origin, the key and the problem."""
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{origin}: a recipe must be a mapping of keys, got {type(raw).__name__}")
    try:
        return Recipe.model_validate(dict(raw))
    except ValidationError as err:
        problems = "\n".join(f"  - {line}" for line in describe_validation_error(err))
        raise RecipeError(f"{origin}: invalid recipe:\n{problems}") from None


def save_recipe(recipe: Recipe, path: str | Path) -> Path:
    """Write the recipe as YAML (unset optional fields left out)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json", exclude_none=True), sort_keys=False),
                    encoding="utf-8")
    return path


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe YAML file written by :func:`save_recipe` (or by hand)."""
    return parse_recipe(_read_yaml(Path(path), "recipe"), origin=str(path))


def _read_yaml(path: Path, what: str) -> Any:
    if not path.is_file():
        raise RecipeError(f"no {what} file at {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from None


# --- Data-Juicer -----------------------------------------------------------------------------

#: sys.maxsize is Data-Juicer's own "no upper limit" default (alphanumeric/text_length/words_num).
UNBOUNDED = sys.maxsize


@dataclass(frozen=True)
class StatArgs:
    """How one stat's bounds are spelled in a Data-Juicer filter, and which bounds are open.

    ``floor``/``ceiling`` are the stat's natural range: a bound there cuts nothing. Data-Juicer
    applies its default when an argument is left out, so an open bound is written explicitly
    (``floor``, or ``ceiling``/``UNBOUNDED``) wherever that default would cut.
    """

    min_arg: str | None
    max_arg: str | None
    min_default: float | None
    max_default: float | None
    floor: float = 0.0
    ceiling: float = UNBOUNDED
    integer: bool = False  # the stat is a count and Data-Juicer's arguments are int

    def default_is_open(self, side: str) -> bool:
        if side == "min":
            return self.min_default is None or self.min_default <= self.floor
        return self.max_default is None or self.max_default >= self.ceiling


@dataclass(frozen=True)
class DJFilter:
    """One Data-Juicer 1.6.1 filter: bound arguments per stat, categorical args, fixed args."""

    stats: dict[str, StatArgs]
    categorical: dict[str, str] = field(default_factory=dict)  # stat key -> DJ argument
    fixed: dict[str, Any] = field(default_factory=dict)  # args that make DJ compute our stat
    inert: dict[str, Any] = field(default_factory=dict)  # written for clarity; unused without tokenization


_RATIO = {"floor": 0.0, "ceiling": 1.0}
_COUNT = {"floor": 0, "ceiling": UNBOUNDED, "integer": True}

#: Verified against data_juicer/ops/filter/<op>.py (Data-Juicer 1.x, ``Filter.get_keep_boolean``:
#: closed interval ``min <= stat <= max`` by default, as in :func:`mlsandbox.pools.filter_pool`).
DATA_JUICER_FILTERS: dict[str, DJFilter] = {
    "alphanumeric_filter": DJFilter(
        {"alnum_ratio": StatArgs("min_ratio", "max_ratio", 0.25, UNBOUNDED, **_RATIO)},
        fixed={"tokenization": False},  # True would compute alpha_token_ratio instead
    ),
    "character_repetition_filter": DJFilter(
        {"char_rep_ratio": StatArgs("min_ratio", "max_ratio", 0.0, 0.5, **_RATIO)},
    ),
    "word_repetition_filter": DJFilter(
        {"word_rep_ratio": StatArgs("min_ratio", "max_ratio", 0.0, 0.5, **_RATIO)},
        fixed={"tokenization": False},
        inert={"lang": "en"},
    ),
    "special_characters_filter": DJFilter(
        {"special_char_ratio": StatArgs("min_ratio", "max_ratio", 0.0, 0.25, **_RATIO)},
    ),
    "text_length_filter": DJFilter(
        {"text_len": StatArgs("min_len", "max_len", 10, UNBOUNDED, **_COUNT)},
    ),
    "words_num_filter": DJFilter(
        {"num_words": StatArgs("min_num", "max_num", 10, UNBOUNDED, **_COUNT)},
        fixed={"tokenization": False},
        inert={"lang": "en"},
    ),
    "stopwords_filter": DJFilter(
        {"stopwords_ratio": StatArgs("min_ratio", "max_ratio", 0.3, 1.0, **_RATIO)},
        fixed={"tokenization": False},
    ),
    "flagged_words_filter": DJFilter(
        {"flagged_words_ratio": StatArgs("min_ratio", "max_ratio", 0.0, 0.045, **_RATIO)},
        fixed={"tokenization": False},
    ),
    "language_id_score_filter": DJFilter(
        # Data-Juicer has no upper bound on the score; lang "" (its default) keeps any language.
        {"lang_score": StatArgs("min_score", None, 0.8, None, **_RATIO)},
        categorical={"lang": "lang"},
    ),
    # One image per sample here, so Data-Juicer's any_or_all strategy makes no difference.
    "image_shape_filter": DJFilter(
        {"image_width": StatArgs("min_width", "max_width", 1, UNBOUNDED, floor=1, integer=True),
         "image_height": StatArgs("min_height", "max_height", 1, UNBOUNDED, floor=1, integer=True)},
        inert={"any_or_all": "any"},
    ),
    "image_aspect_ratio_filter": DJFilter(
        {"aspect_ratios": StatArgs("min_ratio", "max_ratio", 0.333, 3.0)},
        inert={"any_or_all": "any"},
    ),
}

#: Filter args of Data-Juicer's base class that change which samples pass; with a non-default
#: value the filter is not one of our conditions.
_INTERVAL_ARGS = {"min_closed_interval": True, "max_closed_interval": True, "reversed_range": False}

#: Data-Juicer's selector that draws a fixed number of samples: the nearest thing to sample_size.
RANDOM_SELECTOR = "random_selector"


def dj_filter(op: str) -> DJFilter:
    """The Data-Juicer mapping of an OP; an error lists the OPs that have one."""
    try:
        return DATA_JUICER_FILTERS[op]
    except KeyError:
        known = ", ".join(sorted(DATA_JUICER_FILTERS))
        raise RecipeError(f"OP {op!r} has no Data-Juicer mapping; mapped OPs: {known}") from None


def to_data_juicer(
    recipe: Recipe,
    dataset_path: str = "data.jsonl",
    export_path: str = "processed.jsonl",
    text_key: str = "text",
    processes: int = 4,
) -> dict[str, Any]:
    """A Data-Juicer config that keeps the samples the recipe's conditions keep.

    Conditions on the same OP and params become one filter entry (bounds intersected). A
    ``sample_size`` becomes a trailing ``random_selector`` (same size, Data-Juicer's own random
    draw). ``repeat`` has no Data-Juicer equivalent and Data-Juicer rejects unknown config keys,
    so it is not in the mapping: :func:`save_data_juicer` records it in a YAML comment.
    """
    process: list[dict[str, Any]] = []
    for (op_name, _), group in _group_by_op(recipe.conditions).items():
        process.append({op_name: _dj_args(op_name, group)})
    if recipe.sample_size is not None:
        process.append({RANDOM_SELECTOR: {"select_num": recipe.sample_size}})
    return {
        "project_name": recipe.name,
        "dataset_path": dataset_path,
        "export_path": export_path,
        "text_keys": text_key,
        "np": processes,
        "process": process,
    }


def _group_by_op(conditions: Iterable[Condition]) -> dict[tuple[str, str], list[Condition]]:
    groups: dict[tuple[str, str], list[Condition]] = {}
    for c in conditions:
        groups.setdefault((c.op, json.dumps(c.params, sort_keys=True)), []).append(c)
    return groups


def _dj_args(op_name: str, conditions: list[Condition]) -> dict[str, Any]:
    spec = dj_filter(op_name)
    cls = op_class(op_name)
    args: dict[str, Any] = {**spec.inert, **spec.fixed}
    args.update(cls(**conditions[0].params).params.model_dump(mode="json"))  # explicit, defaults included
    for stat, arg in spec.categorical.items():
        allowed = [c.values for c in conditions if c.stat == stat]
        if allowed:
            common = [v for v in allowed[0] if all(v in a for a in allowed[1:])]
            if not common:
                raise RecipeError(f"{op_name}: the conditions on {stat} allow no common value")
            args[arg] = common[0] if len(common) == 1 else common
    for c in conditions:
        if c.stat not in spec.stats and c.stat not in spec.categorical:
            raise RecipeError(f"condition {c.label}: Data-Juicer's {op_name} has no argument for {c.stat}")
    for stat, sa in spec.stats.items():
        lo = max((c.min for c in conditions if c.stat == stat and c.min is not None), default=None)
        hi = min((c.max for c in conditions if c.stat == stat and c.max is not None), default=None)
        if hi is not None and sa.max_arg is None:
            raise RecipeError(f"condition {op_name}.{stat}: Data-Juicer's {op_name} has no maximum for {stat}")
        for side, bound, arg in (("min", lo, sa.min_arg), ("max", hi, sa.max_arg)):
            if arg is None:
                continue
            if bound is not None:
                args[arg] = _dj_number(bound, side, sa)
            elif not sa.default_is_open(side):
                args[arg] = sa.floor if side == "min" else sa.ceiling
    return args


def _dj_number(value: float, side: str, sa: StatArgs) -> float | int:
    if sa.integer:
        # Data-Juicer types count bounds as int; rounding inward keeps the same integer stats.
        return math.ceil(value) if side == "min" else math.floor(value)
    return float(value)


def save_data_juicer(recipe: Recipe, path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`to_data_juicer`'s config as YAML, with the recipe's provenance in comments."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = [f"# Data-Juicer recipe exported from mlsandbox recipe {recipe.name!r} (digest {recipe.digest()})"]
    if recipe.source:
        header.append(f"# source: {recipe.source}")
    if recipe.repeat > 1:
        header.append(f"# repeat: {recipe.repeat} (not expressible in Data-Juicer: duplicate the export "
                      f"{recipe.repeat} times for training)")
    if recipe.sample_size is not None:
        header.append(f"# sample_size: {recipe.sample_size} drawn by random_selector (mlsandbox seed "
                      f"{recipe.seed} does not carry over)")
    body = yaml.safe_dump(to_data_juicer(recipe, **kwargs), sort_keys=False)
    path.write_text("\n".join(header) + "\n" + body, encoding="utf-8")
    return path


def export_recipe(recipe: Recipe, directory: str | Path, stem: str = "best_recipe", **kwargs: Any) -> list[Path]:
    """Our YAML and, where Data-Juicer can express the recipe, its ``process:`` config.

    A recipe Data-Juicer cannot express (say, a maximum language score) gets a
    ``<stem>.data_juicer.txt`` saying why instead, so that a workflow never fails at its last step.
    """
    directory = Path(directory)
    written = [save_recipe(recipe, directory / f"{stem}.yaml")]
    try:
        written.append(save_data_juicer(recipe, directory / f"{stem}.data_juicer.yaml", **kwargs))
    except RecipeError as err:
        note = directory / f"{stem}.data_juicer.txt"
        note.write_text(f"not exportable to Data-Juicer: {err}\n", encoding="utf-8")
        written.append(note)
    return written


def read_data_juicer(config: Mapping[str, Any] | str | Path, name: str | None = None) -> tuple[Recipe, list[str]]:
    """A recipe from a Data-Juicer config, and notes on what was not imported.

    Known filters become conditions; a bound at the stat's natural range (or left out where
    Data-Juicer's default is open) is unbounded, a left-out bound whose default cuts keeps that
    default. Mappers, deduplicators, unknown filters and filters with args that change their
    statistic or interval are skipped with a note.
    """
    origin = "Data-Juicer config"
    if isinstance(config, (str, Path)):
        origin = str(config)
        config = _read_yaml(Path(config), "Data-Juicer config")
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
        args = dict(args or {})
        where = f"process[{i}] ({op_name})"
        if op_name == RANDOM_SELECTOR:
            if args.get("select_ratio") is not None or not isinstance(args.get("select_num"), int):
                notes.append(f"{where}: skipped, only select_num (a fixed sample size) is imported")
            else:
                sample_size = args["select_num"]
            continue
        if op_name not in DATA_JUICER_FILTERS:
            notes.append(f"{where}: skipped, not a filter mlsandbox has a stat for")
            continue
        try:
            conditions.extend(_conditions_from_dj(op_name, args, where, notes))
        except (TypeError, ValueError) as err:
            raise RecipeError(f"{origin}: {where}: {err}") from None
    recipe_name = name or str(config.get("project_name") or "data-juicer")
    recipe = parse_recipe(
        {"name": recipe_name, "conditions": [c.model_dump() for c in conditions],
         "sample_size": sample_size, "source": f"Data-Juicer config {origin}"},
        origin=origin,
    )
    return recipe, notes


def from_data_juicer(config: Mapping[str, Any] | str | Path, name: str | None = None) -> Recipe:
    """:func:`read_data_juicer`, logging what was skipped."""
    recipe, notes = read_data_juicer(config, name)
    for note in notes:
        log.warning("Data-Juicer import: %s", note)
    return recipe


def _conditions_from_dj(op_name: str, args: dict[str, Any], where: str, notes: list[str]) -> list[Condition]:
    spec = DATA_JUICER_FILTERS[op_name]
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
    params = {k: args.pop(k) for k in list(args) if k in param_names}
    out: list[Condition] = []
    for stat, arg in spec.categorical.items():
        value = args.pop(arg, None)
        if value:  # Data-Juicer: "", [] or None keep every language
            out.append(Condition(op=op_name, stat=stat, values=[value] if isinstance(value, str) else list(value),
                                 params=params))
    for stat, sa in spec.stats.items():
        lo = _dj_bound(args, sa.min_arg, sa.min_default)
        hi = _dj_bound(args, sa.max_arg, sa.max_default)
        lo = None if lo is None or lo <= sa.floor else lo
        hi = None if hi is None or hi >= sa.ceiling else hi
        if lo is None and hi is None:
            continue  # the filter keeps every value of this stat
        out.append(Condition(op=op_name, stat=stat, min=lo, max=hi, params=params))
    if args:
        notes.append(f"{where}: ignored args {sorted(args)} (they do not change which samples pass)")
    if not out:
        notes.append(f"{where}: dropped, its bounds cut nothing")
    return out


def _dj_bound(args: dict[str, Any], arg: str | None, default: float | None) -> float | None:
    if arg is None:
        return None
    value = args.pop(arg, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{arg} must be a number, got {value!r}")
    return float(value)


# --- threshold refinement --------------------------------------------------------------------


def ksigma_recipe(
    stats: StatsTable,
    k: float | Mapping[str, float],
    keys: list[str] | None = None,
    name: str = "ksigma",
) -> Recipe:
    """Keep ``mean ± k·std`` of each stat (population std; ``k`` per stat via a mapping).

    A bound outside the stat's observed range would cut nothing, so it is dropped; a stat with
    both bounds dropped gets no condition. This is decided per stat from the data, not from
    the names of Data-Juicer arguments.
    """
    if keys is None and isinstance(k, Mapping):
        keys = list(k)
    keys = _resolve_keys(stats, keys)
    if isinstance(k, Mapping):
        missing = [key for key in keys if key not in k]
        if missing:
            raise RecipeError(f"k-sigma: no k for stats {missing}; give k for every stat in keys")
        ks = {key: k[key] for key in keys}
    else:
        ks = {key: k for key in keys}
    for key, kk in ks.items():
        if isinstance(kk, bool) or not isinstance(kk, (int, float)) or not math.isfinite(kk) or kk <= 0:
            raise RecipeError(f"k-sigma: k for {key} must be a positive number, got {kk!r}")
    bounds = {}
    for key in keys:
        values = stats.stat(key).astype(float)
        mean, std = float(values.mean()), float(values.std())
        bounds[key] = (mean - ks[key] * std, mean + ks[key] * std)
    if isinstance(k, Mapping):
        source = "k-sigma k={" + ", ".join(f"{key}: {ks[key]:g}" for key in keys) + "}"
    else:
        source = f"k-sigma k={k:g}"
    return _bounded_recipe(stats, bounds, name, source)


def percentile_recipe(
    stats: StatsTable,
    lower: float | None,
    upper: float | None,
    keys: list[str] | None = None,
    name: str = "percentile",
) -> Recipe:
    """Keep each stat between its ``lower`` and ``upper`` percentiles (0-100; None = unbounded)."""
    if lower is None and upper is None:
        raise RecipeError("percentile: give lower, upper or both")
    for label, q in (("lower", lower), ("upper", upper)):
        if q is not None and not 0 <= q <= 100:
            raise RecipeError(f"percentile: {label} must be in [0, 100], got {q}")
    if lower is not None and upper is not None and lower >= upper:
        raise RecipeError(f"percentile: lower {lower} must be below upper {upper}")
    keys = _resolve_keys(stats, keys)
    bounds = {}
    for key in keys:
        values = stats.stat(key).astype(float)
        bounds[key] = (
            None if lower is None else float(np.percentile(values, lower)),
            None if upper is None else float(np.percentile(values, upper)),
        )
    return _bounded_recipe(stats, bounds, name, f"percentile lower={lower} upper={upper}")


def _resolve_keys(stats: StatsTable, keys: list[str] | None) -> list[str]:
    """Default: every OP's split stat; each key must be a numeric stat of the table."""
    numeric = set(stats.numeric_keys())
    if keys is None:
        keys = [op.split_stat() for op in stats.ops if op.split_stat() in numeric]
    for key in keys:
        if key not in numeric:
            raise RecipeError(f"{key!r} is not a numeric stat of the stats table (numeric: {sorted(numeric)})")
    if not keys:
        raise RecipeError("no stats to refine: the stats table has no numeric stat")
    return list(keys)


def _bounded_recipe(
    stats: StatsTable, bounds: Mapping[str, tuple[float | None, float | None]], name: str, source: str
) -> Recipe:
    conditions = []
    for key, (lo, hi) in bounds.items():
        values = stats.stat(key)
        # A bound at or beyond the observed extreme keeps every sample: no need to write it.
        lo = None if lo is None or lo <= values.min() else lo
        hi = None if hi is None or hi >= values.max() else hi
        if lo is None and hi is None:
            continue
        op = _owner(stats, key)
        conditions.append(Condition(op=op.name, stat=key, min=lo, max=hi,
                                    params=op.params.model_dump(mode="json")))
    return Recipe(name=name, conditions=conditions, source=source)


def _owner(stats: StatsTable, key: str) -> Op:
    for op in stats.ops:
        if key in op.stat_keys:
            return op
    raise RecipeError(f"stat {key!r} belongs to no OP of the stats table")
