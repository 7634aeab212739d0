"""The process's compute budget: how many cores it may use."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS has one, else all cores, and no
    more than ``OMP_NUM_THREADS`` where that is set (as Ray sets it to a task's ``num_cpus``)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores


def resolve_workers(workers: int) -> int:
    """A worker or thread count where 0 means one per available core."""
    return workers if workers > 0 else available_cores()
