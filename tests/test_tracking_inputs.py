"""Dataset inputs on a store shared by several processes: a lost insert race is retried, nothing else is."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST, INVALID_STATE
from sqlalchemy.exc import IntegrityError

from mlsandbox import tracking
from mlsandbox.models import Benchmark, BenchmarkSet
from mlsandbox.models.benchmarks import texts_digest


def _benchmarks() -> BenchmarkSet:
    bench = Benchmark("clean", ["A clean sentence.", "Another clean sentence."])
    return BenchmarkSet((bench,), {bench.name: texts_digest(bench.texts)})


def _patched_log_inputs(monkeypatch: pytest.MonkeyPatch, first_error: MlflowException) -> list[dict]:
    """``mlflow.log_inputs`` failing its first call with ``first_error``, then logging; the calls made."""
    real, calls = mlflow.log_inputs, []

    def log_inputs(**kwargs: object) -> None:
        calls.append(kwargs)
        if len(calls) == 1:
            raise first_error
        real(**kwargs)

    monkeypatch.setattr(mlflow, "log_inputs", log_inputs)
    mlflow.set_experiment("inputs")  # of this test's store, whatever an earlier test made active
    return calls


def test_inputs_lost_to_another_process_inserting_the_same_dataset_are_logged_again(tracking_uri, monkeypatch):
    # What the SQL store raises when another process inserted the dataset between its lookup and insert.
    lost = MlflowException("(psycopg2.errors.UniqueViolation) duplicate key value violates unique constraint "
                           '"dataset_pk"', error_code=BAD_REQUEST)
    lost.__cause__ = IntegrityError("INSERT INTO datasets ...", {}, Exception("duplicate key"))
    calls = _patched_log_inputs(monkeypatch, lost)
    with mlflow.start_run() as run:
        tracking.log_benchmark_inputs(_benchmarks())
    assert len(calls) == 2
    assert [i.dataset.name for i in mlflow.get_run(run.info.run_id).inputs.dataset_inputs] == ["clean"]


def test_the_same_race_reported_by_a_tracking_server_is_retried(tracking_uri, monkeypatch):
    lost = MlflowException("BAD_REQUEST: (sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id",
                           error_code=BAD_REQUEST)
    calls = _patched_log_inputs(monkeypatch, lost)
    with mlflow.start_run():
        tracking.log_benchmark_inputs(_benchmarks())
    assert len(calls) == 2


def test_any_other_error_is_raised_at_once(tracking_uri, monkeypatch):
    calls = _patched_log_inputs(monkeypatch, MlflowException("the run is not active", error_code=INVALID_STATE))
    with mlflow.start_run(), pytest.raises(MlflowException, match="not active"):
        tracking.log_benchmark_inputs(_benchmarks())
    assert len(calls) == 1


def test_a_logged_inputs_schema_is_that_of_every_row_inferred_on_a_few() -> None:
    import numpy as np
    import pandas as pd

    from mlsandbox.tracking._logging import _schema, _schema_rows

    n = 5000
    frame = pd.DataFrame({"id": [f"d{i}" for i in range(n)], "text": ["words"] * n, "len": np.arange(n),
                          "ratio": np.linspace(0, 1, n), "lang": ["en"] * n})
    frame.loc[4321, "ratio"] = np.nan  # missing only far past the head of the table
    frame.loc[n - 1, "lang"] = None
    rows = _schema_rows(frame)
    assert len(rows) == 1002 and {4321, n - 1} <= set(rows.tolist())
    assert _schema(frame.iloc[rows]) == _schema(frame)
    assert not _schema(frame).input_dict()["ratio"].required  # what the sample must keep


def test_metric_keys_name_each_pool_of_an_intersection() -> None:
    key = tracking.metric_key("delta_pct", "flagged_words_filter/high & words_num_filter/mid")
    assert key == "delta_pct.flagged_words_filter.high and words_num_filter.mid"
    assert tracking.metric_key("delta_pct", "metric-clusters: a/high & b/low") == "delta_pct.metric-clusters: a.high and b.low"


def test_long_pool_names_that_start_alike_keep_distinct_metric_keys_within_mlflows_limit() -> None:
    a, b = (f"alphanumeric_filter/{'L' * 300}{end}" for end in "ab")
    keys = {tracking.metric_key("delta_pct", name) for name in (a, b)}
    assert len(keys) == 2 and all(len(key) == 250 and key.startswith("delta_pct.alphanumeric_filter.LLL") for key in keys)
    assert tracking.metric_key("delta_pct", a) == tracking.metric_key("delta_pct", a)  # the same name, the same key


def test_a_logged_table_keeps_small_p_values_and_is_replaced_when_logged_again(tracking_uri, tmp_path) -> None:
    """pandas writes 2.3e-12 as 0.0 (10 decimal places): a report would show p = 0."""
    import json

    import pandas as pd

    with mlflow.start_run(experiment_id=mlflow.create_experiment("tables")) as run:
        for p_value in (2.3e-12, 4.5e-11):
            table = pd.DataFrame({"pool": ["a", "b"], "p_value": [p_value, float("nan")], "seeds": [16, 16]})
            tracking.log_table(run.info.run_id, table, "probe/ranking.json")
    path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="probe/ranking.json",
                                               dst_path=str(tmp_path))
    logged = json.loads(open(path).read())
    assert logged == {"columns": ["pool", "p_value", "seeds"], "data": [["a", 4.5e-11, 16], ["b", None, 16]]}


@pytest.mark.parametrize("enabled", [True, False])
def test_a_search_pauses_the_garbage_collector_and_leaves_it_as_it_was(tracking_uri, monkeypatch, enabled) -> None:
    import gc

    experiment = mlflow.create_experiment("searched")
    made = [mlflow.MlflowClient().create_run(experiment, tags={"k": str(i)}).info.run_id for i in range(3)]
    collecting: list[bool] = []
    search = mlflow.MlflowClient.search_runs
    monkeypatch.setattr(mlflow.MlflowClient, "search_runs",
                        lambda self, *a, **kw: collecting.append(gc.isenabled()) or search(self, *a, **kw))
    (gc.enable if enabled else gc.disable)()
    try:
        found = tracking.search_runs([experiment], "tags.k != '1'", order_by=["tags.k"])
        assert gc.isenabled() is enabled and collecting == [False]
    finally:
        gc.enable()
    assert [r.info.run_id for r in found] == [made[0], made[2]]
