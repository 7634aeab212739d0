"""What docs/workflow.md promises of a screened step, and of a step whose cells all failed.

Every logged table of a screened step carries the screen's delta of every pool (``screen_delta_pct``),
refine's recipes table included; a screen that leaves nothing open (its cells all failed) ends the
probe with an answer, not a crash; and refine after a probe that measured nothing says why in one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import mixed_document, spec_dict, write_jsonl
from typer.testing import CliRunner

from mlsandbox.cli import app
from mlsandbox.errors import PoolError
from mlsandbox.executors.comparison import family_size
from mlsandbox.executors.fidelity import DECIDE, SCREEN
from mlsandbox.models.ngram import NgramTrainer
from mlsandbox.spec import ExperimentSpec, parse_spec
from mlsandbox.workflows.refine import top_pools
from mlsandbox.workflows.workflow import WorkflowResult, run_workflow


@pytest.fixture(scope="module")
def screened_raw(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One OP in two splits, screened by a 1-gram on two seeds, decided by a 2-gram on two seeds."""
    root = tmp_path_factory.mktemp("screened")
    corpus = write_jsonl(root / "corpus.jsonl", [{"id": f"doc-{i:03d}", "text": mixed_document(i)} for i in range(60)])
    bench = write_jsonl(root / "bench.jsonl",
                        [{"text": f"A clean sentence about topic number {i}, written plainly."} for i in range(10)])
    return spec_dict(corpus, workspace=str(root / "ws"), seeds=[0, 1], ops=[{"name": "text_length_filter"}],
                     pools={"splits": ["low", "high"]}, model={"type": "ngram", "order": 2},
                     screen={"model": {"type": "ngram", "order": 1}, "seeds": [0, 1], "margin": 1},
                     benchmarks=[{"name": "clean", "path": str(bench)}],
                     refine={"top_k": 1, "duplication": [1], "min_pool_size": 3})


def test_refines_table_of_a_screened_step_has_the_screens_delta_of_every_pool(screened_raw: dict,
                                                                           module_store: str) -> None:
    result = run_workflow(parse_spec(screened_raw), progress=False)
    refined = result.refined
    assert refined is not None
    screen = {c.pool.digest: c.summary for c in
              result.probe.comparisons.screened + refined.comparisons.screened if c.summary is not None}
    table = refined.table
    assert "screen_delta_pct" in table
    measured = table[table["fidelity"].isin([DECIDE, SCREEN])]
    assert not measured.empty
    for row in measured.itertuples():  # carried ones: the probe's screen; each delta with its interval and Holm p
        summary = screen[row.pool_digest]
        assert row.screen_delta_pct == pytest.approx(summary.mean_pct)
        assert (row.screen_ci_low_pct, row.screen_ci_high_pct) == pytest.approx((summary.ci_low_pct, summary.ci_high_pct),
                                                                                nan_ok=True)
        assert row.screen_p_adjusted == pytest.approx(summary.p_adjusted, nan_ok=True)


def test_a_screened_steps_answer_names_its_holm_family_the_deciding_models_pools(screened_raw: dict,
                                                                                module_store: str) -> None:
    """The screen settles some pools in its own family: the answer's count is the deciding model's, and says so."""
    result = run_workflow(parse_spec(screened_raw), progress=False)
    answer, refined = result.answer, result.refined
    assert refined is not None and answer.name
    step = result.probe.comparisons if answer.family_step == "probe" else refined.comparisons
    assert answer.family == family_size(step.at(DECIDE))
    where = "the probe" if answer.family_step == "probe" else "refine"
    plural = "" if answer.family == 1 else "s"
    assert f"across the {answer.family} distinct pool{plural} the deciding model compared in {where})" in answer.text()


def test_the_printed_refine_table_of_a_screened_step_has_the_screens_delta(screened_raw: dict, module_store: str,
                                                                         tmp_path: Path) -> None:
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(screened_raw))
    printed = CliRunner().invoke(app, ["refine", "-p", str(tmp_path), "--quiet"])
    assert printed.exit_code == 0, printed.output
    header = printed.output.split("Refine: recipes")[1].splitlines()[1]
    assert "screen_delta_pct" in header and "screen_p_adjusted" in header and "seeds" in header


def test_a_screened_steps_cells_table_says_which_model_trained_each_cell(screened_raw: dict,
                                                                       module_store: str) -> None:
    """A screened (pool, seed) has two cells: without the column, only each run's model digest told them apart."""
    from mlsandbox.executors.compare import results_frame

    result = run_workflow(parse_spec(screened_raw), until="probe", progress=False)
    cells = results_frame(result.probe.comparisons.cells)
    assert set(cells["fidelity"]) == {DECIDE, SCREEN}
    assert not cells.duplicated(["pool", "seed", "fidelity"]).any()


@pytest.fixture(scope="module")
def failed_probe(screened_raw: dict, module_store: str) -> tuple[WorkflowResult, ExperimentSpec]:
    """The screened probe again, in an experiment of its own, with every cell failing."""
    spec = parse_spec(screened_raw | {"name": "every-cell-fails"})
    with pytest.MonkeyPatch.context() as patch:
        def out_of_memory(self: NgramTrainer, job: object) -> None:
            raise MemoryError

        patch.setattr(NgramTrainer, "train", out_of_memory)
        return run_workflow(spec, until="probe", progress=False), spec


def test_a_screen_whose_cells_all_failed_ends_the_probe_with_no_answer(
        failed_probe: tuple[WorkflowResult, ExperimentSpec]) -> None:
    result, _ = failed_probe
    assert result.probe.comparisons.screened and not result.probe.comparisons.at(DECIDE)  # nothing was left open
    assert result.answer.text().startswith("No single-OP pool was measured")


@pytest.mark.parametrize("on_small_pool", ["skip", "use"])
def test_refine_after_a_probe_that_measured_nothing_says_why(
        failed_probe: tuple[WorkflowResult, ExperimentSpec], on_small_pool: str) -> None:
    result, spec = failed_probe
    refine_spec = spec.refine.model_copy(update={"on_small_pool": on_small_pool})
    with pytest.raises(PoolError, match=r"no probe pool has a delta to refine: .* probe/cells\.json"):
        top_pools(result.probe, result.probe.pools_by_name(), refine_spec)


def test_the_reports_table_legend_says_raced_intervals_are_wider_and_names_the_screens_delta() -> None:
    from mlsandbox.workflows.report import _STATISTICS_NOTE

    assert "corrected for the race's looks" in _STATISTICS_NOTE and "screen_delta_pct" in _STATISTICS_NOTE


def test_each_ops_best_pool_is_chosen_among_the_deciding_models_deltas() -> None:
    """A screen's deltas are on another scale: its +9% must not beat the deciding model's +1%."""
    import pandas as pd

    from mlsandbox.workflows.analyze import _best_pool_per_op

    ranking = pd.DataFrame({"pool": ["a/low", "a/high", "b/low", "b/high"], "op": ["a", "a", "b", "b"],
                            "delta_pct": [1.0, 9.0, 0.5, -3.0], "fidelity": [DECIDE, SCREEN, SCREEN, SCREEN]})
    assert _best_pool_per_op(ranking) == {"a": ("a/low", 1.0)}  # b: settled by the screen, no best
