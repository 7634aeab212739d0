"""Where stats live on disk: one Parquet file per (dataset digest, OP identity), and the
per-batch checkpoints of a pass in progress. Every write is write-then-rename, so a killed run
never leaves a half-written file; an unreadable file is recomputed, never trusted."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import mlsandbox
from mlsandbox.content import content_digest, hub_commit, local_path
from mlsandbox.data import ID
from mlsandbox.files import published
from mlsandbox.ops import Op

log = logging.getLogger("mlsandbox.stats")


def cache_key(op: Op) -> str:
    """Identity of an OP's stats: name, params, the OP's ``version`` and the package version, the
    bytes of any local file or folder a param names in place of its spelling (a model replaced in
    place is a new model; ``./lm.arpa`` and its absolute path are one), and the commit the local hub
    cache holds for a hub model a param names.

    An OP bumps its class attribute ``version`` whenever a change alters the values it computes,
    so stats of an older definition are never served for the new one. Version 1 (every OP that
    declares none) keeps the key it had before versions existed, so those caches stay valid.
    """
    payload = json.dumps({**statistic_identity(op), "version": mlsandbox.__version__}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def statistic_identity(op: Op) -> dict[str, Any]:
    """What an OP's values mean, whichever mlsandbox computes them (the cache key adds its version):
    its name and params, the OP's ``version`` where above 1, the bytes of local files its params
    name, the hub commits of hub models they name, the versions of the packages it reads."""
    identity = op.identity()
    version = op_version(op)
    if version != 1:
        identity["op_version"] = version
    identity["params"], files = _local_files(identity["params"])
    if files:
        identity["files"] = files
    if pins := _hub_pins(identity["params"]):
        identity["pins"] = pins
    if packages := op.package_versions():
        identity["packages"] = packages
    return identity


def _hub_pins(params: dict[str, Any]) -> dict[str, str]:
    """Each param that names a hub model the local hub cache holds, as ``name@commit``."""
    commits = {key: hub_commit(value) for key, value in params.items() if isinstance(value, str)}
    return {key: f"{params[key]}@{commit}" for key, commit in commits.items() if commit}


#: What a param naming a local file or folder is keyed as: its bytes say what it is, not its
#: spelling (``lm.arpa``, ``./lm.arpa`` and its absolute path name one model).
LOCAL_PATH = "<local path>"


def _local_files(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``params`` with each that names a local file or folder as :data:`LOCAL_PATH`, and the digest
    of the bytes it names by param name."""
    named = {key: local_path(value) for key, value in params.items() if isinstance(value, str)}
    paths = {key: path for key, path in named.items() if path is not None}
    files = {key: content_digest([path]) for key, path in sorted(paths.items())}
    return {**params, **dict.fromkeys(paths, LOCAL_PATH)}, files


def op_version(op: Op) -> int:
    """The version of the OP's definition (its class attribute ``version``, checked to be an int)."""
    return type(op).version


def stats_folder(cache_dir: Path, dataset_digest: str) -> Path:
    """Where a dataset's cached stats (and a running pass's checkpoints) are kept."""
    return cache_dir / "stats" / dataset_digest


def cache_path(cache_dir: Path, dataset_digest: str, op: Op) -> Path:
    return stats_folder(cache_dir, dataset_digest) / f"{op.name}-{cache_key(op)}.parquet"


def read_cached(path: Path, ids: np.ndarray, keys: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The cached stats ``keys`` of the dataset rows ``ids``; None (recompute) when there are none,
    or they are unreadable, for other rows or other keys (an OP's keys renamed in place), or NaN."""
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
        cached_ids = table[ID].to_numpy(zero_copy_only=False)
    except (pa.ArrowException, OSError, KeyError):  # a Parquet file, but not a stats cache: no id column
        log.warning("ignoring unreadable stats cache %s", path)
        return None
    if len(cached_ids) != len(ids) or not np.array_equal(cached_ids, ids):
        log.warning("ignoring stats cache %s: its ids differ from the dataset's", path)
        return None
    cached_keys = [c for c in table.column_names if c != ID]
    if sorted(cached_keys) != sorted(keys):
        log.warning("ignoring stats cache %s: it holds %s, the OP computes %s", path, cached_keys, list(keys))
        return None
    values = {c: table[c].to_numpy(zero_copy_only=False) for c in cached_keys}
    if any(v.dtype.kind == "f" and np.isnan(v).any() for v in values.values()):  # written before NaN was refused
        log.warning("ignoring stats cache %s: it holds NaN, which no statistic may be", path)
        return None
    return values


def write_cached(path: Path, ids: np.ndarray, values: dict[str, np.ndarray]) -> None:
    _write(path, pa.table({ID: ids, **values}))


def read_checkpoint(directory: Path, start: int, keys: list[str]) -> dict[str, np.ndarray] | None:
    """The stats of the batch starting at row ``start``, if a killed pass finished it."""
    path = directory / f"{start:012d}.parquet"
    if not path.exists():
        return None
    try:
        table = pq.read_table(path)
        return {k: table[k].to_numpy(zero_copy_only=False) for k in keys}
    except (pa.ArrowInvalid, OSError, KeyError):
        return None


def write_checkpoint(directory: Path, start: int, values: dict[str, np.ndarray]) -> None:
    _write(directory / f"{start:012d}.parquet", pa.table(values))


def _write(path: Path, table: pa.Table) -> None:
    with published(path) as tmp:
        pq.write_table(table, tmp)
