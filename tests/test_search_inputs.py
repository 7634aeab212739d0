"""What a search is asked for from Python: a total of no trials, and one study name in two storages."""

from __future__ import annotations

import mlflow
import pytest

from mlsandbox import tracking
from mlsandbox.errors import SpecError
from mlsandbox.search import STUDY, TRIAL, run_search
from mlsandbox.spec import parse_spec

SMALL = {"min_pool_size": 5, "n_trials": 4, "sampler": "random", "warm_start": {"workflow": False, "ksigma": False}}


def _runs(study: str, kind: str) -> list[mlflow.entities.Run]:
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string=f"tags.`{STUDY}` = '{study}' and tags.`{tracking.KIND}` = '{kind}'")


@pytest.mark.parametrize("n_trials", [0, -1])
def test_no_trials_asked_for_is_refused_not_taken_for_the_default(search_raw, tracking_uri, tmp_path,
                                                                  n_trials) -> None:
    """As the command line's --n-trials 0: else 0 would run the spec's 20 trials, and -1 none."""
    spec = parse_spec({**search_raw, "search": SMALL})
    with pytest.raises(SpecError, match=f"n_trials must be 1 or more, got {n_trials}"):
        run_search(spec, "none", str(tmp_path / "study.journal"), n_trials=n_trials, progress=False)
    assert not (tmp_path / "study.journal").exists()  # refused before anything was made


def test_a_new_study_of_a_name_used_in_another_storage_gets_its_own_run(search_raw, tracking_uri, tmp_path) -> None:
    """Two storages, two studies: the second must not log its trials to the first one's run."""
    spec = parse_spec({**search_raw, "search": SMALL})
    run_search(spec, "same", str(tmp_path / "a.journal"), n_trials=1, progress=False)
    run_search(spec, "same", f"sqlite:///{tmp_path / 'b.db'}", n_trials=1, progress=False)
    parents = {r.info.run_id for r in _runs("same", "search")}
    assert len(parents) == 2, "each study has its own parent run"
    by_parent: dict[str, list[str]] = {}
    for run in _runs("same", "trial"):
        by_parent.setdefault(run.data.tags["mlflow.parentRunId"], []).append(run.data.tags[TRIAL])
    assert sorted(by_parent) == sorted(parents) and all(t == ["0"] for t in by_parent.values())
    # Continuing either study still finds its own run.
    run_search(spec, "same", str(tmp_path / "a.journal"), n_trials=2, progress=False)
    assert {r.info.run_id for r in _runs("same", "search")} == parents
