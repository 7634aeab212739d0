"""docs/models.md names every key of every model type, and its table of the shared training keys
gives each model's default as the code has it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from mlsandbox.spec import CommandSpec, HFLoraSpec, NgramSpec, TinyCaptionerSpec, TinyLMSpec, TinyT2VSpec

DOC = (Path(__file__).parents[1] / "docs" / "models.md").read_text(encoding="utf-8")
MODELS: dict[str, type[BaseModel]] = {"tiny-lm": TinyLMSpec, "tiny-captioner": TinyCaptionerSpec,
                                      "tiny-t2v": TinyT2VSpec, "ngram": NgramSpec, "hf-lora": HFLoraSpec,
                                      "command": CommandSpec}


def _section(name: str) -> str:
    match = re.search(rf"^## `{re.escape(name)}`.*?$(.*?)(?=^## )", DOC, re.S | re.M)
    assert match, f"docs/models.md has no section for `{name}`"
    return match.group(1)


def _shared() -> tuple[list[str], dict[str, list[str]]]:
    """The shared-keys table: its model columns and, per key, the documented defaults."""
    lines = [line for line in DOC.splitlines() if line.startswith("| key | meaning |")]
    assert len(lines) == 1, "one table of the shared training keys"
    columns = re.findall(r"`([^`]+)`", lines[0])
    rows = {}
    for line in DOC.splitlines()[DOC.splitlines().index(lines[0]) + 2:]:
        if not line.startswith("| `"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[2:]
    return columns, rows


@pytest.mark.parametrize("name", MODELS)
def test_every_key_of_a_model_is_named_in_its_section_or_the_shared_table(name: str) -> None:
    shared = _shared()[1]
    text = _section(name)
    missing = [key for key in MODELS[name].model_fields
               if key != "type" and key not in shared and not re.search(rf"`{key}`|\b{key}:", text)]
    assert not missing, f"`{name}` keys documented nowhere in docs/models.md: {missing}"


def test_the_shared_tables_defaults_are_the_models() -> None:
    columns, rows = _shared()
    for key, defaults in rows.items():
        for name, documented in zip(columns, defaults):
            fields = MODELS[name].model_fields
            if documented == "—":
                assert key not in fields, f"{name}.{key} exists but is documented as absent"
                continue
            assert key in fields, f"{name} has no key {key}"
            assert yaml.safe_load(documented.strip("`")) == fields[key].default, f"{name}.{key}: doc {documented}"
