"""Shared fixtures: small datasets on disk and an isolated MLflow store per test."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pytest

if TYPE_CHECKING:
    from mlsandbox.ops import Op


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    outer = os.environ.get("MLFLOW_TRACKING_URI")
    levels = {name: logging.getLogger(name).level for name in ("", "mlflow", "mlsandbox.progress")}
    yield
    for name, level in levels.items():  # a command's --quiet or --log-level must not be the next test's
        logging.getLogger(name).setLevel(level)
    mlflow.set_tracking_uri(None)  # a store a test set must not be the next test's: it reads the environment
    if outer is not None:
        os.environ["MLFLOW_TRACKING_URI"] = outer


@pytest.fixture(scope="session", autouse=True)
def _outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run the tests from a scratch folder: a database store puts its runs' artifacts in ``./mlruns``
    of the working directory, which would otherwise fill the checkout."""
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(here)


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite MLflow store in the test's folder."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh SQLite MLflow store shared by a module's tests (one workflow run, many checks of it)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("HF_HUB_OFFLINE", "1")
        for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            patch.delenv(var, raising=False)
        mlflow.set_tracking_uri(uri)
        yield uri
        mlflow.set_tracking_uri(None)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def mixed_document(i: int) -> str:
    """Three qualities in turn: a repetitive phrase, a clean sentence, symbol noise."""
    if i % 3 == 0:
        return "the cat sat on the mat " * (1 + i % 7)
    if i % 3 == 1:
        return f"Document {i}: a clean sentence about topic number {i}, written plainly."
    return "!!!" * (i % 5 + 1) + f" ### {i} ###"


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """90 documents of varied quality, enough for tercile pools of 30."""
    rows = [{"id": f"doc-{i:03d}", "text": mixed_document(i), "source": "test"} for i in range(90)]
    return write_jsonl(tmp_path / "corpus.jsonl", rows)


def spec_dict(dataset: Path, **extra: object) -> dict:
    spec = {
        "name": "test-project",
        "dataset": {"path": str(dataset)},
        "ops": [{"name": "text_length_filter"}, {"name": "alphanumeric_filter"}],
        "stats": {"workers": 1},
        **extra,
    }
    return spec


_OP_MODULE = """import numpy as np
from mlsandbox.ops import Op, TextBatch, register

@register
class UserOp(Op[TextBatch]):
    \"\"\"A user's own OP.\"\"\"

    name = {name!r}
    stat_keys = ({stat!r},)

    def compute(self, batch):
        return {{{stat!r}: np.array([{expression} for t in batch.texts])}}
"""


@pytest.fixture
def op_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str, str, str], str]:
    """``op_module(module, name, stat, expression)`` writes a module that registers a text OP when
    imported, as a user's own OP module does (``expression`` computes the stat of one text ``t``),
    importable from ``sys.path``; the registry is as it was after the test."""
    import sys

    from mlsandbox.ops import registry

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    def write(module: str, name: str, stat: str, expression: str) -> str:
        (tmp_path / f"{module}.py").write_text(_OP_MODULE.format(name=name, stat=stat, expression=expression))
        monkeypatch.delitem(sys.modules, module, raising=False)
        return module

    return write


@pytest.fixture
def register_ops() -> Iterator[Callable[..., None]]:
    """Make test OP classes known by name for one test: ``register_ops(MyOp, ...)``.

    They are registered through :func:`mlsandbox.ops.registered`, so they are gone after the test
    and no test sees another test's OPs.
    """
    from mlsandbox.ops import registered

    with ExitStack() as stack:

        def register(*classes: type[Op]) -> None:
            stack.enter_context(registered(*classes))

        yield register


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Ray, connected to the cluster at RAY_ADDRESS (CI starts one with `ray start --head`), else
    to a local one of 2 CPUs started for the test module."""
    ray = pytest.importorskip("ray")
    # The workers import the test modules' OPs and functions by name, as they would a user's installed module.
    importable = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                          os.environ.get("PYTHONPATH")]))}}
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False, runtime_env=importable)
    else:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=importable)
    yield ray
    ray.shutdown()


@pytest.fixture
def search_raw(small_corpus: Path, tmp_path: Path) -> dict:
    """A search-ready spec (as a dict) on the small corpus: one seed, a 2-gram, a clean benchmark."""
    bench = write_jsonl(tmp_path / "bench.jsonl",
                        [{"text": f"A clean sentence about topic number {i}, written plainly."} for i in range(20)])
    return spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0],
                     model={"type": "ngram", "order": 2}, benchmarks=[{"name": "clean", "path": str(bench)}])
