"""The process's compute budget: how many cores it may use."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one, else all cores)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_workers(workers: int) -> int:
    """A worker or thread count where 0 means one per available core."""
    return workers if workers > 0 else available_cores()
