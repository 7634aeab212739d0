"""Rank transfer on degenerate inputs, as docs/commands.md#mlsandbox-transfer describes them: a model
that gives every pool the same delta ranks nothing, and a probe of one pool has nothing to rank."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import spec_dict, write_jsonl

from mlsandbox import figures
from mlsandbox.agreement import decision_accuracy, rank_agreement
from mlsandbox.errors import PoolError
from mlsandbox.spec import parse_spec
from mlsandbox.workflows.transfer import agreement, run_transfer


def test_a_model_that_gives_every_pool_the_same_delta_has_no_decision_accuracy() -> None:
    flat = rank_agreement([1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]).decision_accuracy
    assert all(np.isnan(v) for v in (flat.value, flat.low, flat.high, flat.p_value))  # not 0: nothing is reversed
    assert np.isnan(decision_accuracy([1, 1], [1, 2]))
    assert decision_accuracy([1, 1, 3], [5, 5, 6]) == 1.0  # some ties still leave a ranking


def test_an_undefined_pair_stays_out_of_the_holm_family_and_claims_no_top_k() -> None:
    deltas = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "b": [1.0, 3.0, 2.0, 4.0, 6.0, 5.0],
                           "flat": [2.0] * 6}, index=[f"pool{i}" for i in range(6)])
    pairs = agreement(deltas, top_k=3).set_index(["cheap", "costly"])
    for name in ("spearman", "decision_accuracy"):
        assert pairs.loc[("a", "b"), f"{name}_p_adjusted"] == pytest.approx(pairs.loc[("a", "b"), f"{name}_p_value"])
        assert pairs[f"{name}"].isna().sum() == 2
    assert pairs["top3_overlap"].isna().tolist() == [False, True, True]
    few = agreement(deltas.iloc[:3, :2], top_k=3)  # three pools: each top 3 is all of them
    assert few["top3_overlap"].isna().tolist() == [True]
    title = figures.transfer_scatter_figure(deltas, pairs.reset_index()).axes[1].get_title()
    assert title == "n = 6 pools\nSpearman n/a\ndecision acc. n/a\nflat: every pool the same delta, no ranking"


def test_a_probe_of_one_pool_stops_before_training(tmp_path: Path, tracking_uri: str,
                                                   op_module: Callable[[str, str, str, str], str]) -> None:
    # 24 of 80 documents have a non-zero stat: the zeros hold both cuts, so only `high` is a pool
    importlib.import_module(op_module("transfer_doc_ops", "user_rare", "rare",
                                      "len(t) if t.startswith('zz') and len(t) > 12 else 0"))
    docs = [f"Document {i}: a clean sentence about topic {i}." if i % 2 else "zz qq " * (1 + i % 5) for i in range(80)]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"text": t} for t in docs])
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"A clean sentence about topic {i}."} for i in range(20)])
    spec = parse_spec(spec_dict(corpus, ops=[{"name": "user_rare"}], workspace=str(tmp_path / "ws"),
                                benchmarks=[{"name": "clean", "path": str(bench)}],
                                transfer={"models": [{"type": "ngram", "order": 1}, {"type": "ngram", "order": 2}],
                                          "seeds": [0, 1]}))
    with pytest.raises(PoolError, match=r"gives only 1 \(user_rare/high\)"):
        run_transfer(spec, progress=False)
    assert not mlflow.search_runs(search_all_experiments=True).shape[0]  # no cell, no parent run
