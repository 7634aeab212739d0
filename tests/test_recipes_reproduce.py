"""Every refined candidate is its recipe: the exported recipe selects exactly the rows and repeats
trained, on data with heavy ties (300 documents, 200 of them the same text): the candidate
builders directly, then one quick workflow run (the n-gram proxy, one seed).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import spec_dict, write_jsonl

from mlsandbox import artifacts, tracking
from mlsandbox.errors import PoolError, RecipeError
from mlsandbox.executors.prepare import Prepared, prepare
from mlsandbox.pools import Pool, cut_splits
from mlsandbox.recipes import Recipe, load_recipe, read_data_juicer, save_data_juicer, save_recipe
from mlsandbox.spec import ExperimentSpec, parse_spec
from mlsandbox.stats import StatsTable
from mlsandbox.workflows.pool import degenerate_splits, single_op_pools
from mlsandbox.workflows.refine_candidates import (
    Candidate,
    duplication_candidates,
    pyramid_candidates,
    threshold_candidates,
)
from mlsandbox.workflows.train import find_pools
from mlsandbox.workflows.workflow import WorkflowResult, run_workflow

OPS = ["text_length_filter", "alphanumeric_filter", "special_characters_filter", "word_repetition_filter"]
SAME_TEXT = "The cat sat on the mat."


def _documents() -> list[dict]:
    """200 copies of one text, then 100 varied ones: every stat has a value held by two thirds."""
    rows = []
    for i in range(300):
        if i < 200:
            text = SAME_TEXT
        elif i % 3 == 0:
            text = "the cat sat on the mat " * (1 + i % 11)
        elif i % 3 == 1:
            text = f"Document {i}: a clean sentence about topic number {i}, written plainly" + "." * (i % 4)
        else:
            text = "!!!" * (i % 5 + 1) + f" ### {i} ###" + " word" * (i % 6)
        rows.append({"id": f"doc-{i:03d}", "text": text, "source": "test"})
    return rows


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> ExperimentSpec:
    root = tmp_path_factory.mktemp("ties")
    corpus = write_jsonl(root / "corpus.jsonl", _documents())
    bench = write_jsonl(root / "bench.jsonl",
                        [{"text": f"A clean sentence about topic number {i}, written plainly."} for i in range(20)])
    raw = spec_dict(corpus, workspace=str(root / "ws"), ops=[{"name": op} for op in OPS], seeds=[0],
                    model={"type": "ngram", "order": 2}, benchmarks=[{"name": "clean", "path": str(bench)}],
                    analyze={"stat_clusters": 2},
                    refine={"top_k": 2, "duplication": [1, 2], "min_pool_size": 2, "on_small_pool": "use"})
    return parse_spec(raw)


@pytest.fixture(scope="module")
def prepared(spec: ExperimentSpec) -> Prepared:
    return prepare(spec, progress=False)


@pytest.fixture
def workflow(spec: ExperimentSpec, tracking_uri: str) -> WorkflowResult:
    return run_workflow(spec, progress=False)


def _built(prepared: Prepared) -> list[Candidate]:
    """The refine candidates built directly from the top splits (no training)."""
    top = [p for p in single_op_pools(prepared) if p.name in ("alphanumeric_filter/high", "special_characters_filter/high")]
    return pyramid_candidates(prepared, top) + duplication_candidates(prepared, top) + threshold_candidates(prepared, top)


def _measured(candidates: list[Candidate]) -> list[Candidate]:
    return [c for c in candidates if c.pool is not None and not c.skip_reason]


# --- ties ------------------------------------------------------------------------------------


def test_a_tied_stat_is_never_presented_as_terciles(prepared: Prepared) -> None:
    pools = {p.name: p for p in single_op_pools(prepared) if p.op is not None}
    degenerate = dict(degenerate_splits(prepared))
    assert set(pools).isdisjoint(degenerate) and all(degenerate.values())
    # word_rep_ratio is 0 for 273 of 300 documents: low and mid would both be "0 to 0"
    assert degenerate["word_repetition_filter/low"].startswith("one tied value, word_rep_ratio = 0 (273 of 300")
    assert degenerate["word_repetition_filter/mid"].startswith("empty")
    assert "word_repetition_filter/high" in pools
    # the 200 copies of one text are one tied value of every stat: no usable split holds them
    same = set(range(200))
    for op in OPS:
        cuts = cut_splits(prepared.stats, op, prepared.spec.pools)
        holding = [c for c in cuts if same <= set(c.rows.tolist())]
        assert len(holding) == 1 and holding[0].name in degenerate and "one tied value" in degenerate[holding[0].name]
    for pool in pools.values():
        assert same.isdisjoint(pool.rows.tolist())
        values = prepared.stats.stat(pool.origin.stat)  # type: ignore[union-attr]
        lower, upper = pool.origin.lower, pool.origin.upper  # type: ignore[union-attr]
        keeps = np.ones(len(values), dtype=bool)
        keeps &= values >= (-np.inf if lower is None else lower)
        keeps &= values <= (np.inf if upper is None else upper)
        assert 0 < keeps.sum() < len(values)  # its condition cuts something


def test_a_threshold_recipe_that_keeps_every_sample_is_skipped_not_trained(prepared: Prepared) -> None:
    """Percentiles [0, 100] (or a huge k) select the whole dataset: its own random control, a delta of 0
    that would still join the step's Holm family."""
    import dataclasses

    refine = prepared.spec.refine.model_copy(update={"percentiles": (0.0, 100.0), "ksigma": 50.0})
    whole = dataclasses.replace(prepared, spec=prepared.spec.model_copy(update={"refine": refine}))
    top = [p for p in single_op_pools(whole) if p.name == "alphanumeric_filter/high"]
    candidates = threshold_candidates(whole, top)
    assert [c.kind for c in candidates] == ["ksigma", "percentile"]
    assert all(c.skip_reason == "keeps every sample: the data of its own random control" for c in candidates)
    assert not any(c.skip_reason for c in threshold_candidates(prepared, top))  # the spec's bounds select


def test_training_a_degenerate_split_by_name_says_why_it_is_no_pool(prepared: Prepared) -> None:
    with pytest.raises(PoolError, match=r"pool 'word_repetition_filter/low' is left out of this project's pools: "
                                        r"one tied value, word_rep_ratio = 0"):
        find_pools(prepared, ["word_repetition_filter/low"], [], [])


def test_identical_texts_give_no_pool_and_say_why(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "same.jsonl", [{"id": f"d{i}", "text": SAME_TEXT} for i in range(300)])
    spec = parse_spec(spec_dict(corpus, workspace=str(tmp_path / "ws"), ops=[{"name": op} for op in OPS[:2]]))
    with pytest.raises(PoolError, match=r"every split is degenerate.*keeps every sample \(300: all share text_len"):
        single_op_pools(prepare(spec, progress=False))


# --- reproduction ----------------------------------------------------------------------------


def _check_saved_recipes_select_the_pools(candidates: list[Candidate], trained: dict[str, Pool], stats: StatsTable,
                                          tmp_path: Path) -> None:
    for cand in _measured(candidates):
        assert cand.pool is not None
        assert cand.pool.digest in trained, f"{cand.name} was not trained"
        pool = trained[cand.pool.digest]
        back = load_recipe(save_recipe(cand.recipe, tmp_path / "r.yaml"))
        assert back == cand.recipe
        selected = back.select(stats)
        assert selected.rows.tolist() == pool.rows.tolist(), cand.name
        assert selected.repeats.tolist() == pool.repeats.tolist(), cand.name
        assert cand.exact == (cand.recipe.ids is None)


def _check_data_juicer_keeps_the_condition_rows(candidates: list[Candidate], stats: StatsTable, tmp_path: Path) -> None:
    exported = 0
    for cand in _measured(candidates):
        if not cand.exact:  # an id list: Data-Juicer cannot express it, and says so
            with pytest.raises(RecipeError, match="id list"):
                save_data_juicer(cand.recipe, tmp_path / "dj.yaml")
            continue
        dj, _ = read_data_juicer(save_data_juicer(cand.recipe, tmp_path / "dj.yaml"))
        assert dj.sample_size is None  # the equal-size draw is no part of a full-scale run
        ours = cand.recipe.model_copy(update={"sample_size": None, "repeat": 1}).select(stats)
        theirs = dj.select(stats)
        assert theirs.rows.tolist() == ours.rows.tolist(), cand.name
        exported += 1
    assert exported > 0


def _check_no_condition_keeps_everything(candidates: list[Candidate], stats: StatsTable) -> None:
    for cand in candidates:
        for condition in cand.recipe.conditions:
            alone = Recipe(name="one", conditions=[condition]).select(stats)
            assert alone.unique_size < len(stats), f"{cand.name}: {condition.describe()} keeps every sample"


def test_each_built_candidate_is_the_selection_of_its_recipe(prepared: Prepared, tmp_path: Path) -> None:
    candidates = _built(prepared)
    assert {c.kind for c in _measured(candidates)} == {"pyramid", "duplication", "ksigma", "percentile"}
    assert any(not c.exact for c in candidates) and any(c.recipe.sample_size for c in candidates)
    trained = {c.pool.digest: c.pool for c in _measured(candidates) if c.pool is not None}
    _check_saved_recipes_select_the_pools(candidates, trained, prepared.stats, tmp_path)
    _check_data_juicer_keeps_the_condition_rows(candidates, prepared.stats, tmp_path)
    _check_no_condition_keeps_everything(candidates, prepared.stats)


def test_the_quick_workflow_trains_exactly_what_its_recipes_select(workflow: WorkflowResult, prepared: Prepared,
                                                                   tmp_path: Path) -> None:
    refined, stats = workflow.refined, prepared.stats
    assert refined is not None
    # refine trained its new candidates; the single-OP ones were trained by the probe (carried)
    trained = {item.pool.digest: item.pool for item in refined.comparisons.items + refined.comparisons.carried}
    assert {c.kind for c in _measured(refined.candidates)} >= {"pyramid", "duplication", "ksigma", "percentile"}
    _check_saved_recipes_select_the_pools(refined.candidates, trained, stats, tmp_path)
    _check_data_juicer_keeps_the_condition_rows(refined.candidates, stats, tmp_path)
    _check_no_condition_keeps_everything(refined.candidates, stats)
    # the exported best recipe selects the best pool; id lists are labelled and never the best
    best = refined.best
    assert best is not None and best.exact and best.pool is not None
    local = mlflow.artifacts.download_artifacts(run_id=workflow.run_id, artifact_path=artifacts.BEST_RECIPE,
                                                dst_path=str(tmp_path))
    exported = load_recipe(local)
    selected = exported.select(stats)
    assert (selected.rows.tolist(), selected.repeats.tolist()) == (best.pool.rows.tolist(), best.pool.repeats.tolist())
    assert exported.measured is not None and exported.measured.run_id == workflow.run_id
    assert (exported.measured.pool_digest, exported.measured.samples) == (best.pool.digest, best.pool.size)
    table = refined.table
    assert set(table.loc[table["recipe"] == "id list", "name"]) == {c.name for c in refined.candidates if not c.exact}
    # degenerate splits were never probed: the ranking lists them last, unranked, with the reason
    degenerate = dict(degenerate_splits(prepared))
    assert degenerate
    assert {c.pool.name for c in workflow.probe.comparisons.items}.isdisjoint(degenerate)
    ranking = workflow.probe.ranking.set_index("pool")
    for name, why in degenerate.items():
        assert ranking.loc[name, "note"] == f"degenerate: {why}" and pd.isna(ranking.loc[name, "rank"])


def test_every_trained_candidates_recipe_is_logged_and_names_its_cells(workflow: WorkflowResult, prepared: Prepared,
                                                                      tmp_path: Path) -> None:
    """From the tracking store alone, each refine cell leads to the recipe that selects its pool."""
    refined = workflow.refined
    assert refined is not None
    client = mlflow.MlflowClient()
    local = Path(mlflow.artifacts.download_artifacts(run_id=workflow.run_id, dst_path=str(tmp_path),
                                                     artifact_path=artifacts.CANDIDATE_RECIPES))
    table = refined.table.set_index("name")
    for cand in refined.candidates:
        recipe_file = table.loc[cand.name, "recipe_file"]
        assert recipe_file == f"{artifacts.CANDIDATE_RECIPES}/{cand.recipe.digest()}.yaml"
        saved = load_recipe(local / Path(recipe_file).name)
        if cand.pool is None:
            continue
        assert saved.select(prepared.stats).digest == cand.pool.digest == table.loc[cand.name, "pool_digest"]
        assert saved.measured is not None and saved.measured.pool_digest == cand.pool.digest
    new_cells = [item for item in refined.comparisons.items if item.pool.origin.split == "recipe"]
    assert new_cells
    for item in new_cells:
        runs = client.search_runs([mlflow.get_run(workflow.run_id).info.experiment_id],
                                  f"tags.`{tracking.POOL_DIGEST}` = '{item.pool.digest}' and tags.`{tracking.KIND}` = 'cell'")
        assert runs
        digest = runs[0].data.tags[tracking.RECIPE_DIGEST]
        assert runs[0].data.params["recipe_digest"] == digest
        assert load_recipe(local / f"{digest}.yaml").select(prepared.stats).digest == item.pool.digest


def test_a_candidate_below_min_pool_size_is_skipped_or_used_as_the_spec_says(prepared: Prepared) -> None:
    """`on_small_pool: skip` (the default) never trains a pool below `refine.min_pool_size`; `use` trains it
    and says so; a pool of exactly the minimum is trained either way."""
    import dataclasses

    from mlsandbox.spec import RefineSpec
    from mlsandbox.workflows.refine import _skipped

    (cand,) = [c for c in _built(prepared) if c.level == 1 and c.pool is not None][:1]
    size = cand.unique_size
    for policy, minimum, skipped, note in (("skip", size + 1, True, ""), ("use", size + 1, False, " (used as is)"),
                                           ("skip", size, False, "")):
        fresh = dataclasses.replace(cand)
        assert _skipped(fresh, RefineSpec(min_pool_size=minimum, on_small_pool=policy)) is skipped
        assert fresh.skip_reason == (f"{size} samples < refine.min_pool_size={minimum}" if skipped else "")
        assert fresh.note == (f"{size} samples < refine.min_pool_size={minimum}{note}" if note else "")
    empty = dataclasses.replace(cand, pool=None, skip_reason="empty intersection")
    assert _skipped(empty, RefineSpec(on_small_pool="use")) and empty.skip_reason == "empty intersection"


def test_the_top_k_keeps_a_pool_of_exactly_min_pool_size() -> None:
    """`min_pool_size` is the smallest pool refine combines: one of that size is in, one sample less is out."""
    from types import SimpleNamespace

    import pandas as pd

    from mlsandbox.spec import RefineSpec
    from mlsandbox.workflows.refine import top_pools

    pools = {name: SimpleNamespace(name=name, unique_size=size) for name, size in (("a", 10), ("b", 9), ("c", 12))}
    probed = SimpleNamespace(best=lambda n: pd.DataFrame({"pool": ["a", "b", "c"]}))
    chosen = top_pools(probed, pools, RefineSpec(top_k=2, min_pool_size=10))  # type: ignore[arg-type]
    assert [p.name for p in chosen] == ["a", "c"]
