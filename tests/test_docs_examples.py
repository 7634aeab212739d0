"""The YAML examples of the docs load: a spec fragment over a bundled project, a recipe as a recipe.

An example is copied into a user's spec as it stands, so one that no longer loads (an OP listed
twice, a renamed key or param) is a bug; nothing here loads a model or computes a stat.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mlsandbox.errors import SpecError
from mlsandbox.project import parse_project
from mlsandbox.recipes import parse_recipe
from mlsandbox.spec import ExperimentSpec

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "projects").glob("*/README.md"))]
#: The bundled projects a fragment is put over: the first whose data fits it (text, images, videos).
BASES = ("text-quality-fast", "image-caption", "text-to-video")
SPEC_KEYS = set(ExperimentSpec.model_fields) - {"base_dir"}
RECIPE_KEYS = {"conditions", "ids"}
_BLOCK = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    """Every ```yaml block of the pages, by ``page:line``."""
    return [(f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, m.start(1)) + 1}", m.group(1))
            for page in PAGES for text in [page.read_text(encoding="utf-8")] for m in _BLOCK.finditer(text)]


BLOCKS = _blocks()


def test_the_pages_have_yaml_examples() -> None:
    assert len(BLOCKS) > 10 and any("docs/ops-model-backed.md" in where for where, _ in BLOCKS)


@pytest.mark.parametrize("where, block", BLOCKS, ids=[where for where, _ in BLOCKS])
def test_a_yaml_example_loads(where: str, block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the pages name the bundled files from the repository root
    doc = yaml.safe_load(block)
    if not isinstance(doc, dict) or "process" in doc or set(doc) == {"measured"}:
        pytest.skip("not a spec or a recipe (a Data-Juicer config, a recipe's `measured` entry)")
    if set(doc) & RECIPE_KEYS:
        parse_recipe(doc, origin=where)
        return
    if not set(doc) & SPEC_KEYS:
        pytest.skip("not a spec fragment")
    assert set(doc) <= SPEC_KEYS, f"{where}: not spec keys: {sorted(set(doc) - SPEC_KEYS)}"
    errors = []
    for base in BASES:
        folder = ROOT / "projects" / base
        raw = {**yaml.safe_load((folder / "sandbox.yaml").read_text(encoding="utf-8")), **doc}
        try:
            parse_project(raw, base_dir=folder, origin=where)
            return
        except SpecError as err:  # one line per problem
            errors.append(f"over {base}: {err}")
    pytest.fail("\n".join(errors))
