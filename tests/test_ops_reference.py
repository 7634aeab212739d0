"""The OP tables of docs/ops.md, docs/ops-model-backed.md, docs/ops-image.md and docs/ops-video.md
against the registry and `mlsandbox ops`: every built-in OP in one table, with its modality, stat
keys, version, and each param with its default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlsandbox.cli import app
from mlsandbox.ops import list_ops
from mlsandbox.ops.registry import op_class

DOCS = Path(__file__).parents[1] / "docs"
PAGES = ("ops.md", "ops-model-backed.md", "ops-image.md", "ops-video.md")
REQUIRED = object()


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def _params(cell: str) -> dict[str, Any]:
    """``{param: default}`` of a params cell: `a` (`1`), `b`, `c` (default `x`), `d` (**required**);
    names listed together before one default share it, and words around the names are ignored."""
    params: dict[str, Any] = {}
    pending: list[str] = []
    for m in re.finditer(r"`([^`]+)`(?:\s*\((?:default )?(?:`([^`]*)`|(\*\*required\*\*))\))?", cell):
        pending.append(m[1])
        if m[2] is not None or m[3]:
            default = REQUIRED if m[3] else None if m[2] == "None" else yaml.safe_load(m[2])
            params.update(dict.fromkeys(pending, default))
            pending = []
    assert not pending, f"params without a default: {pending} in {cell!r}"
    return params


def _rows() -> dict[str, dict[str, Any]]:
    """``{op: {page, modality, stats, version, params}}`` of every OP table (a table whose header
    starts with ``OP`` and names a stat key column)."""
    rows: dict[str, dict[str, Any]] = {}
    for page in PAGES:
        header: list[str] | None = None
        for line in (DOCS / page).read_text(encoding="utf-8").splitlines():
            if line.startswith("| OP |"):
                header = _cells(line) if {"stat key", "stat keys"} & set(_cells(line)) else None
            elif not line.startswith("|"):
                header = None
            elif header and line.startswith("| `"):
                row = dict(zip(header, _cells(line)))
                name = re.match(r"`([^`]+)`", row["OP"])[1]  # type: ignore[index]
                assert name not in rows, f"{name} is in the tables of {rows[name]['page']} and {page}"
                version = re.search(r"\(version (\d+)\)", row["OP"])
                rows[name] = {
                    "page": page,
                    "modality": row.get("modality"),
                    "stats": re.findall(r"`([^`]+)`", row.get("stat key") or row["stat keys"]),
                    "version": int(version[1]) if version else 1,
                    "params": _params(row.get("params (default)") or row["params"]),
                }
    return rows


ROWS = _rows()
BUILT_IN = sorted(c.name for c in list_ops() if c.__module__.startswith("mlsandbox.ops."))


def test_every_built_in_op_has_one_row_and_every_row_is_an_op() -> None:
    assert sorted(ROWS) == BUILT_IN


@pytest.mark.parametrize("name", sorted(ROWS))
def test_each_row_has_its_ops_modality_stats_version_and_params(name: str) -> None:
    row, cls = ROWS[name], op_class(name)
    if row["modality"] is not None:
        assert row["modality"] == cls.modality, f"{row['page']}: {name}'s modality"
    assert row["stats"] == list(cls.stat_keys), f"{row['page']}: {name}'s stat keys"
    assert row["version"] == cls.version, f"{name}: write `(version {cls.version})` after its name"
    fields = cls.Params.model_fields
    assert set(row["params"]) == set(fields), f"{row['page']}: {name}'s params"
    for key, documented in row["params"].items():
        if documented is REQUIRED:  # no usable default: creating the OP without it is an error naming it
            with pytest.raises(ValueError, match=f"`{key}`"):
                cls()
            continue
        field = fields[key]
        code = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
        assert not field.is_required() and documented == code and type(documented) in (type(code), int), (
            f"{row['page']}: {name}.{key} documented as {documented!r}, the default is {code!r}")


def test_mlsandbox_ops_lists_each_op_as_its_row_does() -> None:
    lines = CliRunner().invoke(app, ["ops"]).output.splitlines()[1:]
    listed = {parts[0]: parts for parts in (re.split(r"\s{2,}", line.strip()) for line in lines)}
    for name, row in ROWS.items():
        assert listed[name][1] == (row["modality"] or "text"), name
        assert listed[name][2].split(", ") == row["stats"], name
