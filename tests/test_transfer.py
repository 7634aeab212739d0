"""Rank transfer: the probe's pools at two fidelities, their agreement logged with a figure."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import spec_dict, write_jsonl
from typer.testing import CliRunner

from mlsandbox import artifacts
from mlsandbox.agreement import decision_accuracy, rank_agreement
from mlsandbox.cli import app
from mlsandbox.delta import holm
from mlsandbox.figures import _transfer as figures_transfer
from mlsandbox.spec import SpecError, parse_spec
from mlsandbox.workflows.transfer import STATISTIC_COLUMNS, STATISTICS, run_transfer, shown_pairs


def test_decision_accuracy_is_the_share_of_pairs_ordered_alike() -> None:
    assert decision_accuracy([1, 2, 3], [10, 20, 30]) == 1.0
    assert decision_accuracy([1, 2, 3], [30, 20, 10]) == 0.0
    assert decision_accuracy([1, 2, 3], [10, 30, 20]) == pytest.approx(2 / 3)
    assert decision_accuracy([1, 1, 3], [5, 5, 6]) == 1.0  # a tie under both is the same decision
    assert decision_accuracy([1, 1, 3], [5, 6, 7]) == pytest.approx(2 / 3)  # a tie under one is not


def test_agreement_comes_with_an_interval_over_pools_and_a_permutation_p_value() -> None:
    rng = np.random.default_rng(0)
    cheap = rng.normal(size=12)
    close, unrelated = rank_agreement(cheap, cheap + rng.normal(scale=0.2, size=12)), rank_agreement(
        cheap, rng.normal(size=12))
    for measured in (close, unrelated):
        for estimate in (measured.spearman, measured.decision_accuracy):
            assert estimate.low <= estimate.value <= estimate.high
    assert close.spearman.low > 0.5 and close.spearman.p_value < 0.001
    assert close.decision_accuracy.low > 0.5 and close.decision_accuracy.p_value < 0.001
    assert unrelated.spearman.low < 0 < unrelated.spearman.high and unrelated.spearman.p_value > 0.05
    assert rank_agreement(cheap, cheap) == rank_agreement(cheap, cheap)  # seeded: the same deltas, the same claim


def test_a_pool_drawn_twice_is_not_counted_as_agreeing_with_itself() -> None:
    # orders that disagree on every pair: every resample must too, however often it repeats a pool
    measured = rank_agreement([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]).decision_accuracy
    assert (measured.value, measured.low, measured.high) == (0.0, 0.0, 0.0)
    assert measured.p_value == pytest.approx(2 / 120)  # exact: 5! orderings, two-sided


def test_too_few_pools_or_a_constant_ranking_have_no_interval() -> None:
    two = rank_agreement([1, 2], [1, 2])
    assert np.isnan(two.spearman.value) and np.isnan(two.decision_accuracy.low) and two.decision_accuracy.value == 1
    flat = rank_agreement([1, 1, 1, 1], [1, 2, 3, 4])
    assert np.isnan(flat.spearman.value) and np.isnan(flat.spearman.low)


def _spec(tmp_path: Path, models: list[dict]) -> dict:
    docs = [f"Document {i}: a clean sentence about topic {i}." if i % 2 else "zz qq " * (1 + i % 5) for i in range(80)]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"text": t} for t in docs])
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence about topic {i}."} for i in range(20)])
    return spec_dict(corpus, workspace=str(tmp_path / "ws"), benchmarks=[{"name": "clean", "path": str(bench)}],
                     transfer={"models": models, "names": [f"ngram{m['order']}" for m in models], "seeds": [0, 1]})


def test_transfer_measures_every_probe_pool_at_each_fidelity(tmp_path: Path, tracking_uri: str,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    spec = parse_spec(_spec(tmp_path, [{"type": "ngram", "order": 1}, {"type": "ngram", "order": 2},
                                       {"type": "ngram", "order": 3}]))
    result = run_transfer(spec, progress=False)
    assert list(result.deltas.columns) == ["ngram1", "ngram2", "ngram3"]
    assert len(result.deltas) == 6 and result.deltas.notna().all().all()  # 2 OPs x 3 splits
    assert [tuple(r) for r in result.pairs[["cheap", "costly"]].itertuples(index=False)] == [
        ("ngram1", "ngram2"), ("ngram1", "ngram3"), ("ngram2", "ngram3")]
    row = result.pairs.iloc[2]
    assert row["decision_accuracy"] == decision_accuracy(result.deltas["ngram2"], result.deltas["ngram3"])
    run = mlflow.get_run(result.run_id)
    for column in (*STATISTIC_COLUMNS, f"top{spec.refine.top_k}_overlap"):
        assert run.data.metrics[f"{column}.ngram2.ngram3"] == pytest.approx(row[column])
    for name in STATISTICS:  # Holm over the three pairs: never below the pair's own permutation p-value
        raw = [getattr(rank_agreement(result.deltas[a], result.deltas[b]), name).p_value
               for a, b in result.pairs[["cheap", "costly"]].itertuples(index=False)]
        assert result.pairs[f"{name}_p_value"].tolist() == pytest.approx(raw)
        assert (result.pairs[f"{name}_p_adjusted"].to_numpy() >= np.array(raw) - 1e-12).all()
        assert result.pairs[f"{name}_p_adjusted"].tolist() == pytest.approx(holm(raw))
    paths = {f.path for f in mlflow.MlflowClient().list_artifacts(result.run_id, artifacts.TRANSFER)}
    assert {artifacts.TRANSFER_FIGURE, artifacts.TRANSFER_PAIRS, artifacts.TRANSFER_DELTAS} <= paths
    caplog.set_level(logging.INFO, logger="mlsandbox.progress")
    again = run_transfer(spec, progress="lines")
    assert all(c.reused for c in again.cells) and again.pairs.equals(result.pairs)
    first, second = (mlflow.get_run(r.run_id).data.metrics for r in (result, again))  # every model's cells
    assert first["cells_run"] == sum(not c.reused for c in result.cells) > 0
    assert first["cells_run"] + first["cells_reused"] == len(result.cells)
    assert first["cells_failed"] == 0
    assert (second["cells_run"], second["cells_reused"]) == (0, len(again.cells))
    assert "transfer/ngram3 (model 3 of 3) cells: 16/16 cells (100%), 16 reused" in caplog.text  # which of how many


def test_transfer_needs_two_models(tmp_path: Path) -> None:
    spec = parse_spec(_spec(tmp_path, [{"type": "ngram", "order": 1}]))
    with pytest.raises(SpecError, match="at least two models"):
        run_transfer(spec, progress=False)
    empty = parse_spec(_spec(tmp_path, []))
    with pytest.raises(SpecError, match="transfer.models is empty"):
        run_transfer(empty, progress=False)
    named = _spec(tmp_path, [])
    named["transfer"]["names"] = ["cheap", "costly"]  # emptied on the command line: the models are what is missing
    with pytest.raises(SpecError, match="transfer.models is empty"):
        run_transfer(parse_spec(named), progress=False)
    without = _spec(tmp_path, [])
    del without["transfer"]
    with pytest.raises(SpecError, match="has no `transfer:` section"):
        run_transfer(parse_spec(without), progress=False)


def test_each_models_pools_get_their_own_metrics_and_holm_family(tmp_path: Path, tracking_uri: str) -> None:
    models = [{"type": "ngram", "order": 1, "max_tokens": 300}, {"type": "ngram", "order": 3, "max_tokens": 300}]
    raw = _spec(tmp_path, models)
    raw["transfer"]["seeds"] = [0, 1, 2]  # a token budget makes the seed matter: an interval and a p-value per pool
    result = run_transfer(parse_spec(raw), progress=False)
    metrics = mlflow.get_run(result.run_id).data.metrics
    client = mlflow.MlflowClient()
    for name in ("ngram1", "ngram3"):
        table = client.load_table(mlflow.get_run(result.run_id).info.experiment_id,
                                  artifact_file=f"{artifacts.TRANSFER}/{name}/{artifacts.DELTAS_TABLE}",
                                  run_ids=[result.run_id])
        assert table["p_adjusted"].notna().all() and (table["p_adjusted"] >= table["p_value"]).all()
        for pool, delta in result.deltas[name].items():
            key = f"delta_pct.{name}.{pool.replace('/', '.')}"
            assert metrics[key] == pytest.approx(delta)
            assert len(client.get_metric_history(result.run_id, key)) == 1  # not written over by the other model
        # the deltas shown are claims: each with its interval and its p-value adjusted across the model's pools
        shown = result.claims_table()
        for row in table.itertuples():
            assert shown.at[row.pool, f"{name} delta %"] == pytest.approx(row.delta_pct)
            assert shown.at[row.pool, f"{name} 95% interval"] == f"[{row.ci_low_pct:+.2f}, {row.ci_high_pct:+.2f}]"
            assert shown.at[row.pool, f"{name} p (Holm)"] == pytest.approx(row.p_adjusted)
    project = tmp_path / "project"
    project.mkdir()
    (project / "sandbox.yaml").write_text(yaml.safe_dump(parse_spec(raw).model_dump(mode="json")))
    out = CliRunner().invoke(app, ["transfer", "-p", str(project), "-q"])
    assert out.exit_code == 0, out.output
    header = next(line for line in out.output.splitlines() if "ngram1 delta %" in line)
    assert [c.strip() for c in header.split("|")[1:5]] == ["pool", "ngram1 delta %", "ngram1 95% interval", "ngram1 p (Holm)"]


def test_a_p_value_at_the_permutation_floor_is_shown_as_a_bound() -> None:
    floor = figures_transfer.p_floor()
    pairs = pd.DataFrame({"cheap": ["a", "a"], "costly": ["b", "c"],
                          "spearman_p_value": [floor, 0.3], "spearman_p_adjusted": [2 * floor, 0.3],
                          "decision_accuracy_p_value": [0.01, float("nan")],
                          "decision_accuracy_p_adjusted": [0.01, float("nan")]})
    shown = shown_pairs(pairs)
    assert shown["spearman_p_value"].tolist() == ["≤ 0.0002", "0.3"]
    assert shown["spearman_p_adjusted"].tolist() == ["≤ 0.0004", "0.3"]  # the floor times the family of 2
    assert shown["decision_accuracy_p_value"].tolist() == ["0.01", "n/a"]
    assert pairs["spearman_p_value"].iloc[0] == floor  # the logged numbers stay numbers
    lifted = pairs.assign(spearman_p_value=[floor, 2 * floor], spearman_p_adjusted=[2 * floor, 2 * floor])
    assert shown_pairs(lifted)["spearman_p_adjusted"].tolist() == ["≤ 0.0004", "0.0004"]  # the second's own Holm value


def test_a_top_k_of_every_pool_claims_no_overlap_and_logs_none(tmp_path: Path, tracking_uri: str) -> None:
    """With k pools or fewer the top-k overlap would be all of them: undefined (n/a), not 1 and not an error."""
    from mlsandbox.workflows.transfer import overlap_column

    raw = _spec(tmp_path, [{"type": "ngram", "order": 1}, {"type": "ngram", "order": 2}])
    raw["refine"] = {"top_k": 6}  # the probe's 6 pools
    result = run_transfer(parse_spec(raw), progress=False)
    column = overlap_column(6)
    assert len(result.deltas) == 6 and result.pairs[column].isna().all()
    assert not any(key.startswith(column) for key in mlflow.get_run(result.run_id).data.metrics)
