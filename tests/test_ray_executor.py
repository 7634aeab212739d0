"""Cells as Ray tasks: a quick probe through a local Ray cluster ranks as the local executor does,
and logs every cell once. Set RAY_ADDRESS to run it against an existing cluster (CI starts one)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from conftest import spec_dict, write_jsonl

from mlsandbox.spec import parse_spec
from mlsandbox.workflows.workflow import run_workflow

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """The cluster at RAY_ADDRESS (as CI starts one with `ray start --head`), else a local one."""
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    else:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _spec(tmp_path: Path, executor: str) -> dict:
    docs = [f"Document {i}: a clean sentence about topic {i}." if i % 2 else "zz qq !! " * (1 + i % 5)
            for i in range(90)]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": f"d{i}", "text": t} for i, t in enumerate(docs)])
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence about topic {i}."} for i in range(20)])
    spec = spec_dict(corpus, workspace=str(tmp_path / "ws"), seeds=[0, 1], model={"type": "ngram", "order": 2},
                     benchmarks=[{"name": "clean", "path": str(bench)}], executor={"type": executor})
    return {**spec, "name": f"probe-{executor}"}


def test_a_probe_through_ray_ranks_as_the_local_one(cluster: object, tmp_path: Path, tracking_uri: str) -> None:
    rankings = {}
    for executor in ("local", "ray"):
        (tmp_path / executor).mkdir()
        result = run_workflow(parse_spec(_spec(tmp_path / executor, executor)), until="probe", progress=False)
        rankings[executor] = result.probe.ranking
        experiment = mlflow.get_experiment_by_name(f"probe-{executor}").experiment_id
        cells = mlflow.search_runs([experiment], filter_string="tags.`mlsandbox.kind` = 'cell'")
        keys = cells["tags.mlsandbox.cell"]
        assert keys.is_unique  # every cell trained once
        assert len(keys) == sum(not c.reused for c in result.cells)
    columns = ["pool", "delta_pct", "rank"]
    assert rankings["ray"][columns].equals(rankings["local"][columns])
