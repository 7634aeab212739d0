"""docs/concepts.md against what a `pool` command really writes: the workspace's stats cache, its
checkpoints and pool files at the paths the page gives, what changes a stats cache key, and the
pool command's MLflow runs (names, tags, params, metrics, artifacts, dataset inputs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import mlflow
import numpy as np
import pytest
from conftest import spec_dict, write_jsonl

import mlsandbox
from mlsandbox.data import load_dataset
from mlsandbox.errors import OpError
from mlsandbox.ops import Op, TextBatch, create_op
from mlsandbox.spec import DatasetSpec, parse_spec
from mlsandbox.stats import cache_key, compute_stats, pass_batch_size
from mlsandbox.stats._passes import pass_key
from mlsandbox.workflows.pool import PoolsResult, run_pools

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "concepts.md").read_text(encoding="utf-8")
OPS = ["text_length_filter", "alphanumeric_filter"]


def _span(pattern: str) -> str:
    """The page's one code span that matches ``pattern`` (a path template)."""
    found = sorted({s for s in re.findall(r"`([^`]+)`", PAGE) if re.fullmatch(pattern, s)})
    assert len(found) == 1, f"concepts.md should give one path like {pattern!r}, gives {found}"
    return found[0]


def _fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace(f"<{name.replace('_', ' ')}>", value)
    assert "<" not in template, f"a placeholder is left in {template}"
    return template


def _section(heading: str) -> str:
    start = PAGE.index(heading)
    end = PAGE.find("\n## ", start + 1)
    return PAGE[start:end if end >= 0 else None]


def _names(text: str) -> list[str]:
    return re.findall(r"`([^`\s]+)`", text)


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory, module_store: str) -> PoolsResult:
    root = tmp_path_factory.mktemp("guide")
    rows = [{"id": f"doc-{i:03d}", "text": ("word " * (1 + i % 17)) + "!" * (i % 4), "source": f"s{i % 2}"}
            for i in range(60)]
    corpus = write_jsonl(root / "corpus.jsonl", rows)
    spec = parse_spec(spec_dict(corpus, name="guide-workspace", workspace=str(root / "ws"),
                                ops=[{"name": name} for name in OPS]))
    return run_pools(spec, progress=False)


def test_the_stats_cache_is_where_the_page_says(pooled: PoolsResult) -> None:
    template = _span(r"<workspace>/stats/.*\.parquet")
    prepared = pooled.prepared
    for name in OPS:
        op = create_op(name)
        path = _fill(template, workspace=str(prepared.workspace), dataset_digest=prepared.dataset.digest,
                     op_name=op.name, key=cache_key(op))
        assert Path(path).is_file(), f"no stats cache at {path}"


def test_the_pool_files_are_where_the_page_says(pooled: PoolsResult) -> None:
    template = _span(r"<workspace>/pools/.*\.jsonl")
    prepared = pooled.prepared
    assert prepared.dataset.metadata_digest  # the corpus has a metadata column, `source`
    for logged in pooled.pools:
        path = _fill(template, workspace=str(prepared.workspace), dataset_digest=prepared.dataset.digest,
                     metadata_digest=prepared.dataset.metadata_digest, pool_digest=logged.pool.digest)
        assert Path(path).is_file() and Path(path) == logged.file


def test_a_dataset_without_other_columns_has_its_pool_files_in_the_dataset_folder(tmp_path: Path) -> None:
    assert "its pool files lie in `pools/<dataset digest>/`" in PAGE
    corpus = write_jsonl(tmp_path / "plain.jsonl", [{"id": f"d{i}", "text": "x" * (1 + i)} for i in range(9)])
    from mlsandbox.executors.prepare import Prepared

    spec = parse_spec(spec_dict(corpus, workspace=str(tmp_path / "ws")))
    dataset = load_dataset(spec.dataset)
    prepared = Prepared(spec, dataset, None)  # type: ignore[arg-type]  # only the paths are read
    assert prepared.pools_dir == tmp_path / "ws" / "pools" / dataset.digest


class _KilledModelOp(Op):
    """A model-backed stand-in (its own pass, batches of 4) that fails on its third batch."""

    name = "guide_killed_model"
    stat_keys = ("guide_len",)
    max_batch = 4
    calls: ClassVar[int] = 0

    def compute(self, batch: TextBatch) -> dict[str, np.ndarray]:
        type(self).calls += 1
        if type(self).calls == 3:
            raise RuntimeError("killed")
        return {"guide_len": batch.lengths.astype(float)}


def test_a_killed_pass_leaves_its_checkpoints_where_the_page_says(small_corpus: Path, tmp_path: Path,
                                                                   register_ops) -> None:
    register_ops(_KilledModelOp)
    _KilledModelOp.calls = 0
    template = _span(r"<workspace>/stats/<digest>/\.partial/.*")
    dataset = load_dataset(DatasetSpec(path=str(small_corpus)))
    op = create_op("guide_killed_model")
    with pytest.raises(OpError, match="killed"):
        compute_stats(dataset, [op], tmp_path, progress=False)
    size = pass_batch_size(len(dataset), 2000, [op])
    folder = Path(_fill(template, workspace=str(tmp_path), digest=dataset.digest, pass_key=pass_key([op], size)))
    assert sorted(p.name for p in folder.glob("*.parquet")) == ["000000000000.parquet", "000000000004.parquet"]
    compute_stats(dataset, [op], tmp_path, progress=False)
    assert "removed when the pass ends" in PAGE and not folder.exists()


def test_what_the_page_says_changes_a_stats_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "OP params, OP version, mlsandbox version" in " ".join(PAGE.split())
    op = create_op("character_repetition_filter")
    key = cache_key(op)
    assert cache_key(create_op("character_repetition_filter")) == key
    assert cache_key(create_op("character_repetition_filter", {"rep_len": 7})) != key  # params

    class Changed(type(op)):  # type: ignore[misc]
        version = 2

    assert cache_key(Changed()) != key  # the OP's version
    monkeypatch.setattr(type(op), "package_versions", lambda self: {"some-data-package": "9.9"})
    assert cache_key(op) != key  # a package the OP reads
    monkeypatch.undo()
    monkeypatch.setattr(mlsandbox, "__version__", "0.0.0-other")
    assert cache_key(op) != key  # mlsandbox's version


def _run(run_id: str) -> mlflow.entities.Run:
    return mlflow.MlflowClient().get_run(run_id)


def _artifacts(run_id: str, path: str = "") -> set[str]:
    out: set[str] = set()
    for item in mlflow.MlflowClient().list_artifacts(run_id, path):
        out |= _artifacts(run_id, item.path) if item.is_dir else {item.path}
    return out


def _contexts(run: mlflow.entities.Run) -> set[str]:
    return {t.value for d in run.inputs.dataset_inputs for t in d.tags if t.key == "mlflow.data.context"}


def test_the_pool_commands_parent_run_is_as_the_page_says(pooled: PoolsResult) -> None:
    bullet = next(b for b in _section("## MLflow layout").split("\n- ") if b.startswith("One **parent run**"))
    pool_part = bullet[:bullet.index("The probe,")]
    parent = _run(pooled.parent_run_id)
    assert parent.info.run_name == "pool"
    for tag in re.findall(r"`tags\.(mlsandbox\.\w+) = (\w+)`", pool_part):
        assert parent.data.tags.get(tag[0]) == tag[1]
    assert _contexts(parent) == {"source"} and "(context `source`)" in pool_part
    files = [n for n in _names(pool_part) if re.search(r"\.(csv|md|yaml|png)$", n)]
    shown = {f if f.startswith("stats/") else f"stats/{f}" for f in files}
    assert len(shown) == 5 and shown <= _artifacts(pooled.parent_run_id)
    params = [n for n in _names(pool_part[pool_part.index("its params"):])]
    assert params and set(params) <= set(parent.data.params)


def test_the_pool_runs_are_as_the_page_says(pooled: PoolsResult) -> None:
    bullet = next(b for b in _section("## MLflow layout").split("\n- ") if b.startswith("One **child run**"))
    lines = {line.strip().split(":")[0].removeprefix("- "): line for line in bullet.split("\n  - ")}
    params_line = " ".join(lines["params"].split())
    op_params = set(_names(params_line[:params_line.index("(")]))
    random_params = set(_names(params_line[params_line.index("("):]))
    metrics = set(_names(lines["metrics"]))
    tags = set(_names(lines["tags"]))
    assert "mlsandbox.kind = pool" in bullet
    children = mlflow.MlflowClient().search_runs(
        [_run(pooled.parent_run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{pooled.parent_run_id}'")
    assert len(children) == len(pooled.pools)
    stats = pooled.prepared.stats.numeric_keys()
    for run in children:
        name = run.info.run_name
        assert run.data.tags["mlsandbox.kind"] == "pool"
        assert _contexts(run) == {"pool"}
        assert run.inputs.dataset_inputs[0].dataset.name == name
        assert run.inputs.dataset_inputs[0].dataset.digest == run.data.tags["mlsandbox.pool_digest"]
        if name == "random":
            assert set(run.data.params) == random_params
            assert set(run.data.tags) >= tags - {"mlsandbox.op"} and "mlsandbox.op" not in run.data.tags
        else:
            op, split = name.split("/")
            assert run.data.params["op"] == op and run.data.params["split"] == split
            assert set(run.data.params) == op_params
            assert set(run.data.tags) >= tags
            wanted = {m for m in metrics if "<" not in m} | {f"mean.{k}" for k in stats}
            assert set(run.data.metrics) == wanted
