"""docs/architecture.md against the package: its layer diagram is the import contract, in order;
every module and package of ``mlsandbox/`` is in it; every path and name it cites exists."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlsandbox"
PAGE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def _diagram() -> list[list[str]]:
    """The diagram's rows: the names of each layer as written (``stats/``, ``project``)."""
    block = re.search(r"^```\n(.*?)^```", PAGE, re.MULTILINE | re.DOTALL)
    assert block, "architecture.md has no layer diagram"
    return [[name.strip() for name in re.split(r"\s{2,}", line.strip())[0].split("|")]
            for line in block.group(1).splitlines() if line.strip()]


def _layers(contract: dict) -> list[list[str]]:
    return [[name.strip().removeprefix("mlsandbox.") for name in layer.split("|")] for layer in contract["layers"]]


def _paragraph(starting: str) -> str:
    start = PAGE.index(starting)
    end = PAGE.find("\n\n", start)
    return PAGE[start:end if end >= 0 else None]


def test_the_diagram_is_the_import_contract_in_order() -> None:
    diagram = [[name.rstrip("/") for name in row] for row in _diagram()]
    assert diagram == _layers(CONTRACTS[0])


def test_a_name_with_a_slash_is_a_package_and_one_without_a_module() -> None:
    for row in _diagram():
        for name in row:
            if name.endswith("/"):
                assert (PACKAGE / name / "__init__.py").is_file(), f"{name} is no package"
            else:
                assert (PACKAGE / f"{name}.py").is_file(), f"{name} is no module (a package is written {name}/)"


def test_every_module_and_package_of_the_package_is_in_the_diagram() -> None:
    shown = {name.rstrip("/") for row in _diagram() for name in row}
    present = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    present |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert present - shown == set(), "modules or packages the page does not describe"
    assert shown - present == set(), "layers the page names that do not exist"


def test_the_ops_paragraph_names_the_second_contracts_layers_in_order() -> None:
    paragraph = _paragraph("A name ending in")
    ops = next(c for c in CONTRACTS if c.get("containers") == ["mlsandbox.ops"])
    position = 0
    for layer in _layers(ops):
        for name in layer:
            assert (PACKAGE / "ops" / f"{name}.py").is_file() or (PACKAGE / "ops" / name).is_dir(), name
            found = re.search(rf"\b{re.escape(name)}\b", paragraph[position:])
            assert found, f"the ops paragraph names {name!r} after the layers above it"
        position += found.start()


def test_the_pure_spec_contract_is_described() -> None:
    forbidden = next(c for c in CONTRACTS if c["type"] == "forbidden")
    assert forbidden["source_modules"] == ["mlsandbox.spec"]
    paragraph = _paragraph("A name ending in")
    for module in forbidden["forbidden_modules"]:
        word = "OP" if module == "mlsandbox.ops" else module
        assert word in paragraph, f"the page does not say that spec imports no {module}"
    assert len(CONTRACTS) == 3 and "three import contracts" in PAGE


def _cited_paths() -> list[str]:
    spans = re.findall(r"`([^`\s]+)`", PAGE)
    return sorted({s for s in spans if re.fullmatch(r"[\w.]+(/[\w.]+)*(\.py|/)", s) or s.startswith("mlsandbox/")})


@pytest.mark.parametrize("path", _cited_paths())
def test_a_cited_path_exists(path: str) -> None:
    candidates = [ROOT / path, PACKAGE / path, PACKAGE / "ops" / path]
    if "/" not in path.rstrip("/"):  # a bare file name, in the context of its package
        candidates += list(PACKAGE.rglob(path.rstrip("/")))
    assert any(c.exists() for c in candidates), f"architecture.md cites {path}, which does not exist"


def test_the_cited_paths_are_many() -> None:
    assert {"mlsandbox/ops/text/", "models/base.py", "spec/_base.py", "_passes.py", "executors/runners.py",
            "search/_ray.py", "mlsandbox/cluster.py", "mlsandbox/cli/_errors.py"} <= set(_cited_paths())


@pytest.mark.parametrize("module, names", [
    ("mlsandbox.errors", ["InvalidInputError"]),
    ("mlsandbox.ops.registry", ["register"]),
    ("mlsandbox.ops", ["TextBatch", "ImageBatch", "VideoBatch", "Op"]),
    ("mlsandbox.spec._base", []),
    ("mlsandbox.models.base", ["Trainer", "register_model_type"]),
    ("mlsandbox.pools._origins", ["SplitOrigin", "RandomOrigin", "RecipeOrigin"]),
    ("mlsandbox.search", ["run_search"]),
])
def test_a_cited_name_exists(module: str, names: list[str]) -> None:
    loaded = importlib.import_module(module)
    for name in names:
        assert hasattr(loaded, name), f"{module} has no {name}"


def test_the_class_attributes_the_page_tells_to_set_exist() -> None:
    from mlsandbox.models.base import Trainer
    from mlsandbox.ops import Op
    from mlsandbox.spec._base import StrictModel

    for attribute in ("data_juicer", "version"):
        assert f"`{attribute}`" in PAGE and hasattr(Op, attribute)
    assert hasattr(Trainer, "version")
    for attribute in ("limit_keys", "placement_keys"):
        assert f"`{attribute}`" in PAGE and hasattr(StrictModel, attribute)


def test_the_static_checks_are_those_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    block = PAGE[PAGE.index("## Static checks"):]
    commands = re.findall(r"^(\S[^#\n]*?)\s*(?:#.*)?$", block.split("```bash")[1].split("```")[0], re.MULTILINE)
    assert commands and all(command in ci for command in commands)
