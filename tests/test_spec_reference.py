"""docs/spec.md, the reference of every spec key, against the spec models it documents: the same keys
both ways, and the same defaults, ranges, choices and list lengths where a table gives them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mlsandbox.errors import SpecError
from mlsandbox.spec import (
    AnalyzeSpec,
    ConfirmSpec,
    DatasetSpec,
    EvaluatorSpec,
    ExperimentSpec,
    PoolSpec,
    RaceSpec,
    RefineSpec,
    ScreenSpec,
    StatsSpec,
    TransferSpec,
    load_spec,
    parse_spec,
)

DOC = Path(__file__).parents[1] / "docs" / "spec.md"
#: The heading of each table in docs/spec.md and the model whose keys it lists.
SECTIONS: dict[str, type[BaseModel]] = {
    "Top level": ExperimentSpec, "dataset": DatasetSpec, "pools": PoolSpec, "stats": StatsSpec,
    "evaluator": EvaluatorSpec, "screen": ScreenSpec, "race": RaceSpec, "confirm": ConfirmSpec,
    "transfer": TransferSpec, "analyze": AnalyzeSpec, "refine": RefineSpec,
}
#: A section's dotted prefix, and what it needs besides to be valid, for the range checks below.
PREFIX = {"Top level": "", "race": "race.", "screen": "screen.", "confirm": "confirm."}
NEEDS: dict[str, dict[str, Any]] = {
    "race": {"seeds": list(range(64))}, "screen": {"screen": {"model": {"type": "ngram"}}},
    "confirm": {"confirm": {"seeds": [7, 8]}},
}
BASE = {"name": "x", "ops": [{"name": "text_length_filter"}]}


def _tables() -> dict[str, dict[str, list[str]]]:
    """``{heading: {key: [type, default, meaning]}}`` of every key table of docs/spec.md."""
    tables: dict[str, dict[str, list[str]]] = {}
    heading = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"## (?:`([^`]+)`|(Top level))", line):
            heading = m.group(1) or m.group(2)
        elif heading and line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            tables.setdefault(heading, {})[cells[0].strip("`")] = cells[1:]
    return tables


def _keys(model: type[BaseModel]) -> list[str]:
    return [k for k, f in model.model_fields.items() if not f.exclude]


TABLES = _tables()
ROWS = [(h, k) for h, model in SECTIONS.items() for k in _keys(model) if k in TABLES.get(h, {})]


def _bound(field: FieldInfo, name: str) -> Any:
    return next((getattr(m, name) for m in field.metadata if getattr(m, name, None) is not None), None)


def _code_default(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


@pytest.mark.parametrize("heading", SECTIONS)
def test_each_table_lists_exactly_the_keys_of_its_model(heading: str) -> None:
    documented = set(TABLES.get(heading, {}))
    keys = set(_keys(SECTIONS[heading]))
    assert documented == keys, f"{heading}: undocumented {sorted(keys - documented)}, not in the model {sorted(documented - keys)}"


@pytest.mark.parametrize(("heading", "key"), ROWS)
def test_each_documented_type_default_and_range_is_the_models(heading: str, key: str) -> None:
    field = SECTIONS[heading].model_fields[key]
    kind, default = TABLES[heading][key][:2]
    if default.startswith("required"):
        assert field.is_required(), f"{heading}.{key} is documented as required"
    elif literal := re.match(r"`([^`<]*)`|(-?[\d.]+|null)$", default):  # a YAML value, then perhaps words
        value, code = yaml.safe_load(literal.group(1) or literal.group(2)), _code_default(field)
        if isinstance(code, BaseModel):  # a section: the documented keys give the default
            value = type(code)(**value)
        assert (list(code) if isinstance(code, tuple) else code) == value, f"{heading}.{key}: doc {value!r}, code {code!r}"
    choices = re.findall(r"`([^`]+)`", kind)
    literal_args = next((get_args(a) for a in (field.annotation, *get_args(field.annotation)) if get_origin(a) is Literal), None)
    if literal_args is not None:
        assert sorted(choices) == sorted(literal_args), f"{heading}.{key}: doc {choices}, code {literal_args}"
    if m := re.search(r"int (\d+)–(\d+)", kind):
        assert (_bound(field, "ge"), _bound(field, "le")) == (int(m[1]), int(m[2])) or key.endswith("seed")
    if m := re.search(r"int ≥ (\d+)", kind):
        assert (_bound(field, "ge"), _bound(field, "le")) == (int(m[1]), None), f"{heading}.{key}"
    if m := re.search(r"float in \((\d+), (\d+)\]", kind):
        assert (_bound(field, "gt"), _bound(field, "le")) == (int(m[1]), int(m[2])), f"{heading}.{key}"
    if m := re.search(r"list of ≥ (\d+)", kind):
        assert _bound(field, "min_length") == int(m[1]), f"{heading}.{key}"


def _out_of_range() -> list[tuple[str, Any]]:
    """Each documented key with a numeric bound, and a value just past each of its bounds."""
    cases = []
    for heading, key in ROWS:
        field = SECTIONS[heading].model_fields[key]
        for name, step in (("ge", -1), ("gt", 0), ("le", 1), ("lt", 0)):
            if (bound := _bound(field, name)) is not None:
                cases.append((heading, key, bound + step))
    return cases


@pytest.mark.parametrize(("heading", "key", "value"), _out_of_range())
def test_a_value_past_a_documented_bound_is_one_error_naming_its_key(heading: str, key: str, value: Any) -> None:
    prefix = PREFIX.get(heading, f"{heading}.")
    raw: dict[str, Any] = {**BASE, **NEEDS.get(heading, {})}
    section = raw.setdefault(prefix.rstrip("."), {}) if prefix else raw
    section[key] = value
    with pytest.raises(SpecError) as err:
        parse_spec(raw)
    message = str(err.value)
    assert "\n" not in message and f": {prefix}{key}: " in message and f"(got {value!r})" in message, message


def test_a_bad_percentile_pair_is_quoted_once_as_written() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({**BASE, "refine": {"percentiles": [5, 5]}})
    assert str(err.value).endswith("refine.percentiles: percentiles must satisfy 0 <= lower < upper <= 100 (got [5, 5])")


def test_the_default_quick_profile_takes_the_specs_first_seed_so_confirms_seeds_stay_fresh(tmp_path: Path) -> None:
    """A default profile of seed 0 refused every load of a valid spec whose `confirm` used seed 0."""
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump({**BASE, "seeds": [5, 6], "confirm": {"seeds": [0, 1]}}))
    assert load_spec(tmp_path).confirm == ConfirmSpec(seeds=[0, 1])
    assert load_spec(tmp_path, quick=True).seeds == [5]
    (tmp_path / "sandbox.yaml").write_text(
        yaml.safe_dump({**BASE, "seeds": [5, 6], "confirm": {"seeds": [5, 1]}}))
    with pytest.raises(SpecError, match=r"confirm.seeds: must be fresh: \[5\]"):
        load_spec(tmp_path)


def test_every_profile_turns_screen_and_race_off_and_keeps_confirm(tmp_path: Path) -> None:
    raw = {**BASE, "seeds": [0, 1, 2, 3], "race": {}, "screen": {"model": {"type": "ngram"}}, "confirm": {"seeds": [8, 9]}}
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    full, quick = load_spec(tmp_path), load_spec(tmp_path, quick=True)
    assert full.race is not None and full.screen is not None
    assert (quick.race, quick.screen, quick.seeds, quick.confirm) == (None, None, [0], full.confirm)
    with pytest.raises(SpecError, match=r"race.max_seeds: needs that many `seeds`, and there are 2 \(got 4\)"):
        parse_spec({**raw, "seeds": [0, 1]})
