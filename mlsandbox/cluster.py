"""The Ray cluster this process works with: cells, trials and stats on Ray all connect here."""

from __future__ import annotations

import logging
import os
from types import ModuleType

from mlsandbox.errors import SpecError


def connect(address: str | None = None, purpose: str = "--executor ray") -> ModuleType:
    """Ray, connected to the cluster at ``address`` (else ``RAY_ADDRESS``, else a new local one).

    Connecting once per process: later calls reuse the connection whatever address they name.
    """
    try:
        import ray
    except ImportError:
        raise SpecError(f"{purpose} needs Ray: pip install 'mlsandbox[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
    return ray


def cluster_cpus(ray: ModuleType) -> int:
    """The CPUs of the whole cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def cluster_gpus(ray: ModuleType) -> int:
    return int(ray.cluster_resources().get("GPU", 0))
