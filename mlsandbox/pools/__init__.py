"""Pools: selections over the stats table (sample rows + repeat counts), identified by a digest.

A pool never copies data. Its rows are positions in the dataset's stats table, so building
every single-OP pool of a million samples is a handful of NumPy sorts; rows are written out
once, by :func:`materialize`, when a trainer needs them.
"""

from mlsandbox.pools._export import EXPORT_SUFFIXES, check_exportable, export_format, export_pool
from mlsandbox.pools._origins import (
    FILE,
    RANDOM,
    RECIPE,
    BoundsOrigin,
    FileOrigin,
    FillOrigin,
    IntersectionOrigin,
    OriginParams,
    PoolOrigin,
    RandomOrigin,
    RecipeOrigin,
    RepeatOrigin,
    SplitOrigin,
    recipe_digest,
)
from mlsandbox.pools._pool import Pool, filter_pool, make_pool, materialize, pool_file_path, random_pool
from mlsandbox.pools._splits import SplitCut, cut_splits, degenerate_splits, pool_size, split_pools, subsample

__all__ = [
    "EXPORT_SUFFIXES", "FILE", "RANDOM", "RECIPE", "BoundsOrigin", "FileOrigin", "FillOrigin", "IntersectionOrigin",
    "OriginParams", "Pool", "PoolOrigin", "RandomOrigin", "RecipeOrigin", "RepeatOrigin", "SplitCut", "SplitOrigin",
    "check_exportable", "cut_splits", "degenerate_splits", "export_format", "export_pool", "filter_pool",
    "make_pool", "materialize", "pool_file_path", "pool_size", "random_pool", "recipe_digest", "split_pools",
    "subsample"
]
