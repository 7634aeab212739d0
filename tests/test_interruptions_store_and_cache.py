"""What a process killed outright leaves behind is removed or ignored by the next one: the build
files of a new SQLite store, and a stats cache file that is not one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pyarrow.parquet as pq

from mlsandbox.data import load_dataset
from mlsandbox.ops import create_op
from mlsandbox.spec import DatasetSpec
from mlsandbox.stats import cache_path, compute_stats
from mlsandbox.tracking._store import create_sqlite_store

_KILLED_WHILE_BUILDING = """
import os, signal, sys
import mlflow
from mlsandbox.tracking._store import create_sqlite_store

def killed(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 while MLflow builds the tables

mlflow.MlflowClient.search_experiments = killed
create_sqlite_store(sys.argv[1])
"""


def test_the_build_files_of_a_store_whose_creator_was_killed_are_removed_by_the_next(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = subprocess.run([sys.executable, "-c", _KILLED_WHILE_BUILDING, uri], capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".mlflow.db.")]  # its build files stay behind
    assert not (tmp_path / "mlflow.db").exists()

    create_sqlite_store(uri)

    assert [p.name for p in tmp_path.iterdir()] == ["mlflow.db"]
    assert [e.name for e in mlflow.MlflowClient(tracking_uri=uri).search_experiments()] == ["Default"]


def test_a_parquet_file_without_ids_in_place_of_a_stats_cache_is_recomputed(small_corpus: Path, tmp_path: Path) -> None:
    dataset = load_dataset(DatasetSpec(path=str(small_corpus)))
    op = create_op("text_length_filter")
    first = compute_stats(dataset, [op], tmp_path, workers=1, progress=False)
    cached = cache_path(tmp_path, dataset.digest, op)
    pq.write_table(pq.read_table(cached).drop(["id"]), cached)  # readable, but not a stats cache

    again = compute_stats(dataset, [op], tmp_path, workers=1, progress=False)

    assert again.computed == ["text_length_filter"]
    assert again.frame.equals(first.frame)
    assert "id" in pq.read_table(cached).column_names  # and written again whole
