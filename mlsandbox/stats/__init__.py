"""Per-sample statistics: computed once per (dataset digest, OP, params), cached as Parquet.

The stats table is the hub of the sandbox: every pool, recipe and search trial is a selection
over it. Asking again reuses the cache; adding an OP computes only that OP. Computation runs
over batches, all pending OPs of a batch sharing one tokenisation, on one of two engines:
worker processes on this machine, or a Ray cluster (``stats.engine: ray``).
"""

from mlsandbox.stats._cache import cache_key, cache_path, op_version, statistic_identity
from mlsandbox.stats._compute import EngineName, compute_stats
from mlsandbox.stats._passes import pass_batch_size, passes, shared_pass
from mlsandbox.stats._table import PERCENTILES, StatsTable, categorical_summary, summarize, summary_markdown

__all__ = [
    "PERCENTILES",
    "EngineName",
    "StatsTable",
    "cache_key",
    "statistic_identity",
    "cache_path",
    "categorical_summary",
    "compute_stats",
    "op_version",
    "pass_batch_size",
    "passes",
    "shared_pass",
    "summarize",
    "summary_markdown",
]
