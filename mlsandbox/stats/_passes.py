"""How pending OPs are grouped into passes over the dataset, and one batch through a pass.

A batch is computed the same way wherever it runs (this process, a worker process, a Ray task
or actor), so every engine writes the same values.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mlsandbox.data import ID, IMAGE, TEXT, VIDEO
from mlsandbox.errors import OpError, SandboxError, first_line
from mlsandbox.ops import ImageBatch, Op, TextBatch, VideoBatch, create_op, frame_samplings
from mlsandbox.stats._cache import cache_key

Columns = dict[str, list[Any]]
#: Each OP of a pass as (name, params, the module that defines it).
OpSpecs = list[tuple[str, dict[str, Any], str]]

#: A model pass advances its progress (and checkpoints) at least this many times ...
MODEL_PASS_STEPS = 50
#: ... unless that makes batches smaller than this (model OPs batch and sort by length inside).
MIN_MODEL_BATCH = 32


#: Text per batch of the statistical OPs, at most: their views of a batch take about 20 times its
#: size in memory, so 2,000 documents of 200 kB were one batch of 8 GB (and one worker, no progress).
CHEAP_BATCH_BYTES = 8 << 20


def pass_batch_size(samples: int, batch_size: int, ops: Sequence[Op], text_bytes: int = 0) -> int:
    """Samples per batch of a pass: ``batch_size`` for the statistical OPs, fewer where the dataset's
    documents (``text_bytes`` in all) are long enough to put more than :data:`CHEAP_BATCH_BYTES` in
    one; a model pass takes its OPs' ``max_batch``, smaller where that reports progress every 2% or
    so of the dataset.

    A model pass ignores ``batch_size``: a model's value for a sample can depend on which samples
    share its batch (perplexity in bfloat16 by up to several percent), and cached stats are keyed
    by the dataset and the OP, not by this setting, so their batches must follow from those alone.
    """
    caps = [op.max_batch for op in ops if op.max_batch]
    if not caps:
        return max(1, min(batch_size, samples * CHEAP_BATCH_BYTES // max(text_bytes, 1)))
    return max(1, min([*caps, max(MIN_MODEL_BATCH, math.ceil(samples / MODEL_PASS_STEPS))]))


def passes(pending: Sequence[Op]) -> list[list[Op]]:
    """Cheap OPs in one pass (sharing each batch's views); the model-backed image OPs in one pass
    (sharing each batch's decoded pixels); model-backed text OPs that read the same per-batch
    result (one spaCy parse: their ``shared_pass`` key) in one pass; every other model-backed
    OP in a pass of its own, so its stats are cached as soon as it finishes."""
    cheap = [op for op in pending if not op.max_batch]
    pixels = [op for op in pending if op.max_batch and needs_media(op)]
    models: dict[str, list[Op]] = {}
    for op in pending:
        if op.max_batch and not needs_media(op):
            models.setdefault(shared_pass(op) or f"{op.name}:{cache_key(op)}", []).append(op)
    return [group for group in (cheap, pixels) if group] + list(models.values())


def needs_media(op: Op) -> bool:
    return op.needs_images() or op.needs_videos()


def shared_pass(op: Op) -> str | None:
    """The key of the per-batch work the OP shares with other OPs of a pass (its attribute
    ``shared_pass``, e.g. the spaCy pipeline whose parse it reads), or None."""
    key = getattr(op, "shared_pass", None)
    return key if isinstance(key, str) else None


def pass_key(ops: Sequence[Op], batch_size: int) -> str:
    """The checkpoint folder of a pass: its OPs' identities and its batch size."""
    payload = json.dumps([[cache_key(op) for op in ops], batch_size])
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def op_specs(ops: Sequence[Op]) -> OpSpecs:
    """What a worker needs to rebuild the OPs: names, params and the modules that register them
    (picklable, small): a worker imports an OP's module, so an OP of the user's own module is known
    there too."""
    return [(op.name, op.params.model_dump(), type(op).__module__) for op in ops]


def _worker_op(name: str, params: dict[str, Any], module: str) -> Op:
    if module != "__main__":  # the user's script is not importable as such in a worker
        try:
            importlib.import_module(module)
        except Exception as err:
            if module.split(".", 1)[0] == "mlsandbox":
                raise
            raise OpError(f"OP {name!r}: its module {module} cannot be imported where the stats run: "
                          f"{first_line(err)} (install it there; on Ray, on every node or through the "
                          "job's runtime_env)") from err
    try:
        return create_op(name, params)
    except ValueError:
        if module == "__main__":
            raise ValueError(f"OP {name!r} is defined in the script that runs, which worker processes cannot "
                             "import: define it in a module of its own, or set stats.workers: 1") from None
        raise


def pass_columns(table: pa.Table, ops: Sequence[Op]) -> list[str]:
    """The columns a pass reads: texts, plus ids and images or videos when an OP needs them."""
    if not any(needs_media(op) for op in ops):
        return [TEXT]
    return [TEXT, ID, *(c for c in (IMAGE, VIDEO) if c in table.column_names)]


def columns_of(part: pa.Table, names: list[str]) -> Columns:
    """A batch as the OPs read it: Python lists of the pass's columns."""
    return {name: part[name].to_pylist() for name in names}


def batches(table: pa.Table, starts: Sequence[int], batch_size: int, names: list[str]) -> Iterator[Columns]:
    for start in starts:
        yield columns_of(table.slice(start, batch_size), names)


@dataclass(frozen=True)
class PassJob:
    """The batches of one pass still to compute: starts on a grid of ``batch_size`` rows."""

    table: pa.Table
    ops: list[Op]
    batch_size: int
    todo: list[int]
    columns: list[str]


_WORKER_OPS: dict[str, Op] = {}


def compute_batch(specs: OpSpecs, columns: Columns) -> dict[str, np.ndarray]:
    """One batch through every OP of a pass; OPs are built once per process (models load lazily)."""
    texts = columns[TEXT]
    ops = [_WORKER_OPS.get(key) or _WORKER_OPS.setdefault(key, _worker_op(name, params, module))
           for name, params, module in specs for key in [json.dumps([name, params], sort_keys=True)]]
    batch: TextBatch
    if VIDEO in columns:  # the frame OPs' samplings, decoded once per video for all of them
        batch = VideoBatch(texts, columns[VIDEO], columns[ID], samplings=frame_samplings(ops))
    elif IMAGE in columns:
        batch = ImageBatch(texts, columns[IMAGE], columns[ID])
    else:
        batch = TextBatch(texts)
    out: dict[str, np.ndarray] = {}
    for (name, _, _), op in zip(specs, ops):
        try:
            values = op.compute(batch)
            _check_output(name, op.stat_keys, values, len(texts))
        except Exception as err:
            if _own(op) or isinstance(err, SandboxError):
                raise
            raise OpError(f"OP {name!r} of {type(op).__module__} failed on a batch: {first_line(err)}") from err
        out.update(values)
    return out


def _own(op: Op) -> bool:
    """Whether the OP is one of mlsandbox's own: its failure is a bug (a traceback, exit code 1);
    a plug-in's is its author's to fix (one line, exit code 2), as a trainer's crash is."""
    return type(op).__module__.split(".", 1)[0] == "mlsandbox"


def _check_output(name: str, stat_keys: Sequence[str], values: dict[str, np.ndarray], n: int) -> None:
    """An OP returns exactly its ``stat_keys``, one value per sample and no NaN: another
    key would overwrite (and be cached as) another OP's stat, a NaN would pass for a statistic."""
    if set(values) != set(stat_keys):
        raise RuntimeError(f"OP {name!r} returned stats {sorted(values)}; its stat_keys are {list(stat_keys)}")
    for stat, arr in values.items():
        if len(arr) != n:
            raise RuntimeError(f"OP {name!r} returned {len(arr)} values of {stat!r} for {n} samples")
        nans = int(np.isnan(arr).sum()) if np.asarray(arr).dtype.kind == "f" else 0
        if nans:
            raise RuntimeError(f"OP {name!r} returned NaN for {nans} samples' {stat!r}")
