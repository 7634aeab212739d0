"""Recipes: the data-processing choices found in the sandbox, as typed, portable objects.

A recipe is a list of per-OP stat conditions (intersected), an optional seeded subsample and a
repeat (duplication) rate. It selects a :class:`~mlsandbox.pools.Pool` from a stats table, is
saved as YAML, and moves to and from Data-Juicer's ``process:`` lists, so that a recipe found on
a small sample can be run by Data-Juicer at full scale. Thresholds can be refined from the data
by k-sigma (:func:`ksigma_recipe`) or percentiles (:func:`percentile_recipe`).
"""

from mlsandbox.errors import RecipeError
from mlsandbox.ops import UNBOUNDED
from mlsandbox.recipes._data_juicer import (
    RANDOM_SELECTOR,
    data_juicer_keys,
    export_recipe,
    from_data_juicer,
    read_data_juicer,
    save_data_juicer,
    to_data_juicer,
)
from mlsandbox.recipes._files import load_recipe, parse_recipe, recipe_text, save_recipe
from mlsandbox.recipes._recipe import Condition, MeasuredPool, Recipe
from mlsandbox.recipes._thresholds import ksigma_recipe, percentile_recipe
from mlsandbox.recipes._word_lists import data_juicer_word_lists, word_lists_folder

__all__ = [
    "RANDOM_SELECTOR",
    "UNBOUNDED",
    "Condition",
    "MeasuredPool",
    "Recipe",
    "RecipeError",
    "data_juicer_keys",
    "data_juicer_word_lists",
    "export_recipe",
    "from_data_juicer",
    "ksigma_recipe",
    "load_recipe",
    "parse_recipe",
    "percentile_recipe",
    "read_data_juicer",
    "recipe_text",
    "save_data_juicer",
    "save_recipe",
    "to_data_juicer",
    "word_lists_folder",
]
