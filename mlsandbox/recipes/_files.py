"""Recipe YAML files: our own format, the recipe's fields as written by :func:`save_recipe`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mlsandbox.errors import RecipeError, describe_validation_error, listed
from mlsandbox.files import published
from mlsandbox.recipes._recipe import Recipe
from mlsandbox.spec import dump_yaml, load_yaml


def parse_recipe(raw: Any, origin: str = "recipe") -> Recipe:
    """A recipe from a mapping; :class:`RecipeError` names the origin, the key and the problem."""
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{origin}: a recipe must be a mapping of keys, got {type(raw).__name__}")
    if "process" in raw and "conditions" not in raw:
        raise RecipeError(f"{origin}: a Data-Juicer config, not a recipe: turn it into one with "
                          "mlsandbox.recipes.from_data_juicer and save_recipe (see docs/recipes.md)")
    try:
        return Recipe.model_validate(dict(raw))
    except ValidationError as err:
        raise RecipeError(f"{origin}: invalid recipe{listed(describe_validation_error(err))}") from None


def recipe_text(recipe: Recipe) -> str:
    """The recipe as YAML (unset optional fields left out), as files and runs hold it."""
    return dump_yaml(recipe.model_dump(mode="json", exclude_none=True))


def save_recipe(recipe: Recipe, path: str | Path) -> Path:
    """Write the recipe as YAML (:func:`recipe_text`)."""
    path = Path(path)
    with published(path) as tmp:
        tmp.write_text(recipe_text(recipe), encoding="utf-8")
    return path


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe YAML file written by :func:`save_recipe` (or by hand)."""
    return parse_recipe(read_yaml(Path(path), "recipe"), origin=str(path))


def read_yaml(path: Path, what: str) -> Any:
    """The parsed YAML file; :class:`RecipeError` if it is missing or not YAML (``what`` names it).

    A key written twice in a mapping is an error too, as in the experiment spec.
    """
    if path.is_dir():
        raise RecipeError(f"{path} is a folder: give the {what} file in it")
    if not path.is_file():
        raise RecipeError(f"no {what} file at {path}")
    try:
        return load_yaml(path.read_bytes())
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from None
