"""Stats on Ray Data: the same cached values as the local engine, byte for byte, and a pass
resumes from the batches a killed run finished, whichever engine wrote them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlsandbox.data import load_dataset
from mlsandbox.ops import create_op
from mlsandbox.spec import DatasetSpec
from mlsandbox.stats import cache_path, compute_stats, pass_batch_size

pytest.importorskip("ray")

CHEAP = ["text_length_filter", "words_num_filter", "special_characters_filter", "language_id_score_filter"]
PARSED = ["text_action_filter", "text_entity_dependency_filter"]  # model-backed: one spaCy pass on actors


@pytest.fixture
def dataset(small_corpus: Path):
    return load_dataset(DatasetSpec(path=str(small_corpus)))


def test_stats_on_ray_are_the_local_engines_byte_for_byte(cluster: object, dataset, tmp_path: Path) -> None:
    ops = [create_op(name) for name in CHEAP + PARSED]
    local = compute_stats(dataset, ops, tmp_path / "local", workers=1, batch_size=16, progress=False)
    on_ray = compute_stats(dataset, ops, tmp_path / "ray", workers=2, batch_size=16, progress=False, engine="ray")
    assert on_ray.computed == [op.name for op in ops]
    for op in ops:
        files = [cache_path(tmp_path / where, dataset.digest, op) for where in ("local", "ray")]
        assert pq.read_table(files[0]).equals(pq.read_table(files[1])), op.name
        assert files[0].read_bytes() == files[1].read_bytes(), op.name
    assert on_ray.frame.equals(local.frame)


def test_a_pass_on_ray_resumes_from_finished_batches(cluster: object, dataset, tmp_path: Path) -> None:
    ops = [create_op(name) for name in PARSED]
    size = pass_batch_size(len(dataset), 16, ops)
    reference = compute_stats(dataset, ops, tmp_path / "reference", batch_size=16, progress=False)
    # A killed run had finished the first batch: its checkpoint (marked, to see that it is reused).
    from mlsandbox.stats._cache import write_checkpoint
    from mlsandbox.stats._passes import pass_key

    checkpoints = tmp_path / "stats" / dataset.digest / ".partial" / pass_key(ops, size)
    marked = {k: np.full(size, -7.0) for op in ops for k in op.stat_keys}
    write_checkpoint(checkpoints, 0, marked)
    resumed = compute_stats(dataset, ops, tmp_path, batch_size=16, progress=False, engine="ray")
    for key in marked:
        values = resumed.stat(key)
        assert (values[:size] == -7.0).all()  # reused, not recomputed
        np.testing.assert_array_equal(values[size:], reference.stat(key)[size:])
    assert not checkpoints.exists()
