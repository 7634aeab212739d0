"""Stats on Ray Data: the same cached values as the local engine, byte for byte, and a pass
resumes from the batches a killed run finished, whichever engine wrote them."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlsandbox.data import load_dataset
from mlsandbox.errors import OpError
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



@pytest.fixture
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """OPs that modules register while the test imports them are gone after it."""
    from mlsandbox.ops import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_a_users_op_that_raises_on_ray_is_named_in_one_line(cluster: object, dataset, tmp_path: Path,
                                                             own_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the local engine: the OpError itself (exit code 2, one line), not Ray's chain of wrappers."""
    monkeypatch.delitem(sys.modules, "ray_user_ops", raising=False)
    importlib.import_module("ray_user_ops")
    with pytest.raises(OpError) as err:
        compute_stats(dataset, [create_op("test_raising_on_ray")], tmp_path, workers=2, progress=False, engine="ray")
    assert str(err.value) == "OP 'test_raising_on_ray' of ray_user_ops failed on a batch: 'missing'"


def test_a_users_op_whose_module_the_workers_cannot_import_is_named_in_one_line(
        cluster: object, dataset, tmp_path: Path, own_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "only_here_ops.py").write_text((Path(__file__).parent / "ray_user_ops.py").read_text()
                                               .replace("test_raising_on_ray", "test_only_here"))
    monkeypatch.syspath_prepend(str(tmp_path))  # importable by the driver alone
    importlib.import_module("only_here_ops")
    with pytest.raises(OpError, match=r"^OP 'test_only_here': its module only_here_ops cannot be imported where the "
                                      r"stats run: No module named 'only_here_ops' \(install it there"):
        compute_stats(dataset, [create_op("test_only_here")], tmp_path, workers=2, progress=False, engine="ray")
