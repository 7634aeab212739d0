"""Training pools against the equal-size random pool: deltas, failures and resumable cells in MLflow."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from conftest import spec_dict, write_jsonl
from typer.testing import CliRunner

from mlsandbox import tracking
from mlsandbox.cli import app
from mlsandbox.errors import InvalidInputError, PoolError
from mlsandbox.executors.cell_result import CELL, FAILURE, CellStatus
from mlsandbox.executors.prepare import prepare
from mlsandbox.pools import FileOrigin
from mlsandbox.recipes import Condition, Recipe, save_recipe
from mlsandbox.spec import parse_spec
from mlsandbox.workflows.train import find_pools, run_evaluation, run_training


@pytest.fixture
def bench_file(tmp_path: Path) -> Path:
    rows = [{"text": f"A clean sentence about topic number {i}, written plainly."} for i in range(20)]
    return write_jsonl(tmp_path / "bench.jsonl", rows)


def _spec(small_corpus: Path, tmp_path: Path, bench_file: Path, **model: object):
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0, 1],
                    model={"type": "ngram", "order": 3, **model},
                    benchmarks=[{"name": "clean", "path": str(bench_file)},
                                {"name": "clean2", "path": str(bench_file), "max_docs": 10}])
    return parse_spec(raw)


def _children(parent_id: str) -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_id)
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")


def _cells_table(parent_id: str, tmp_path: Path) -> list[dict]:
    """The parent run's ``cells.json`` table, one dict per row."""
    path = tracking.download_artifacts(parent_id, "cells.json", tmp_path / "cells")
    payload = json.loads(path.read_text(encoding="utf-8"))
    return [dict(zip(payload["columns"], row)) for row in payload["data"]]


def test_a_pool_is_compared_with_random_over_seeds(small_corpus, tmp_path, bench_file, tracking_uri) -> None:
    spec = _spec(small_corpus, tmp_path, bench_file)
    result = run_training(spec, ["text_length_filter/low"], progress=False)
    (comparison,) = result.comparisons.items
    size = comparison.pool.size
    assert len(comparison.summary.deltas) == 2
    # the ngram model has no seed noise: the pool scores the same for both seeds, while each seed
    # draws its own random control
    pool_scores = [c.scores for c in comparison.cells]
    assert pool_scores[0] == pytest.approx(pool_scores[1])
    assert comparison.baselines[0].pool.digest != comparison.baselines[1].pool.digest
    parent = mlflow.get_run(result.parent_run_id)
    assert parent.data.metrics["delta_pct.text_length_filter.low"] == pytest.approx(comparison.summary.mean_pct)
    # one pool cell (the model does not depend on the seed, so seed 1 reuses it) and two controls
    assert parent.data.metrics["cells_run"] == 3 and parent.data.metrics["cells_reused"] == 1
    children = {r.info.run_name: r for r in _children(result.parent_run_id)}
    assert sorted(children) == [f"random-{size}/seed0", f"random-{size}/seed1", "text_length_filter/low/seed0"]
    cell = children["text_length_filter/low/seed0"]
    contexts = sorted(i.tags[0].value for i in cell.inputs.dataset_inputs)
    assert contexts == ["evaluation", "evaluation", "training"]
    assert {"score.clean", "bpb.clean", "score.clean2", "delta_pct"} <= set(cell.data.metrics)
    assert cell.data.metrics["score.clean"] == pytest.approx(1 / cell.data.metrics["bpb.clean"])
    corpus = [json.loads(line)["text"] for line in small_corpus.read_text(encoding="utf-8").splitlines()]
    texts = [corpus[i] for i in comparison.pool.rows]
    # the pool's text and the tokens the model trained on (a byte n-gram reads every byte once)
    assert cell.data.metrics["pool_bytes"] == sum(len(t.encode()) for t in texts) == cell.data.metrics["train.train_tokens"]
    assert cell.data.params["seed"] == "0" and cell.data.tags[tracking.POOL_DIGEST] == comparison.pool.digest
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(cell.info.run_id, "model")}
    assert "model/manifest.json" in artifacts
    rows = _cells_table(result.parent_run_id, tmp_path)
    assert [(r["pool"], r["seed"], r["status"]) for r in rows] == [
        (c.pool.name, c.seed, "FINISHED") for c in result.comparisons.cells]


def test_a_pool_file_or_the_run_that_logged_it_is_trained_as_a_file_pool(
    small_corpus, tmp_path, bench_file, tracking_uri
) -> None:
    spec = _spec(small_corpus, tmp_path, bench_file)
    pool_file = write_jsonl(tmp_path / "mine.jsonl", [{"id": f"doc-{i:03d}"} for i in range(0, 90, 3)])
    result = run_training(spec, pool_files=[pool_file], progress=False)
    (comparison,) = result.comparisons.items
    assert (comparison.pool.name, comparison.pool.size) == ("mine", 30)
    assert comparison.pool.origin == FileOrigin(str(pool_file))
    assert len(comparison.summary.deltas) == 2
    cell = mlflow.get_run(comparison.cells[0].run_id)
    assert (cell.data.params["split"], cell.data.tags[tracking.SPLIT]) == ("file", "file")
    # the built-in trainer reads no pool file: the cell records its pool by the samples' ids
    source = Path(json.loads(cell.inputs.dataset_inputs[0].dataset.source)["uri"])
    assert source.name == f"{comparison.pool.digest}.ids.jsonl"
    assert sorted(json.loads(line)["id"] for line in source.read_text().splitlines()) == [
        f"doc-{i:03d}" for i in range(0, 90, 3)]
    again = run_training(spec, pool_runs=[cell.info.run_id], progress=False)
    (same,) = again.comparisons.items
    assert (same.pool.digest, same.pool.name) == (comparison.pool.digest, "mine")  # named as it was, not by its file
    assert [c.run_id for c in same.cells] == [c.run_id for c in comparison.cells]


@pytest.mark.parametrize("records", [True, False], ids=["samples", "ids"])
def test_a_pool_run_whose_file_moved_is_found_by_its_digest(
    small_corpus, tmp_path, bench_file, tracking_uri, records: bool
) -> None:
    # an earlier version kept pool files in another folder of the workspace
    from mlsandbox.pools import materialize
    from mlsandbox.workflows.pool import single_op_pools

    spec = _spec(small_corpus, tmp_path, bench_file)
    prepared = prepare(spec, progress=False)
    pool = single_op_pools(prepared)[0]
    materialize(pool, prepared.dataset, prepared.pools_dir, records=records)
    with tracking.parent_run("pool", tracking.use_experiment(spec.name), {}) as run:
        tracking.log_pool_input(pool, prepared.dataset, prepared.stats, tmp_path / "old-layout" / f"{pool.digest}.jsonl",
                                context="pool", run_id=run.info.run_id)
    (found,) = find_pools(prepared, [], [], [run.info.run_id])
    assert found.digest == pool.digest


def test_a_recipe_that_keeps_every_sample_is_warned_about(small_corpus, tmp_path, bench_file, caplog) -> None:
    """Bounds beyond a stat's range select the whole dataset: a pool that is its own random control."""
    prepared = prepare(_spec(small_corpus, tmp_path, bench_file), progress=False)
    everything = Recipe(name="typo", conditions=[Condition(op="alphanumeric_filter", min=-5, max=7)])
    some = Recipe(name="some", conditions=[Condition(op="alphanumeric_filter", min=0.7)])
    nothing = Recipe(name="bare")  # no condition at all: the whole dataset too
    with caplog.at_level(logging.WARNING):
        find_pools(prepared, [], [], [], [everything, some, nothing])
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "recipe 'typo' keeps every sample of the dataset", "recipe 'bare' keeps every sample of the dataset"]


def test_a_pool_file_needs_no_usable_op_split(tmp_path) -> None:
    """Samples alike in every stat split no OP usefully, which matters only to pools named by OP."""
    data = write_jsonl(tmp_path / "alike.jsonl", [{"id": f"d{i:02d}", "text": f"sample {i:02d} of many"}
                                                   for i in range(40)])
    prepared = prepare(parse_spec(spec_dict(data, workspace=str(tmp_path / "ws"))), progress=False)
    pool_file = write_jsonl(tmp_path / "mine.jsonl", [{"id": f"d{i:02d}"} for i in range(0, 40, 2)])
    (pool,) = find_pools(prepared, [], [pool_file], [])
    assert (pool.name, pool.size) == ("mine", 20)
    with pytest.raises(PoolError, match="no OP gives a usable split"):
        find_pools(prepared, ["text_length_filter/low"], [], [])


def test_finished_cells_are_reused_and_killed_ones_redone(small_corpus, tmp_path, bench_file, tracking_uri) -> None:
    spec = _spec(small_corpus, tmp_path, bench_file)
    first = run_training(spec, ["text_length_filter/low"], progress=False)
    # A cell killed half-way (kill -9) leaves its run RUNNING: simulate it by reopening a finished one,
    # owned by a process that is gone.
    control = f"random-{first.comparisons.items[0].pool.size}"
    killed = next(c for c in first.comparisons.cells if c.pool.name == control and c.seed == 1)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    client = mlflow.MlflowClient()
    client.update_run(killed.run_id, status="RUNNING")
    client.set_tag(killed.run_id, tracking.OWNER_PID, str(gone.pid))
    again = run_training(spec, ["text_length_filter/low"], progress=False)
    run = client.get_run(killed.run_id)
    assert run.info.status == "KILLED" and "no longer exists" in run.data.tags[tracking.END_REASON]
    reused = {(c.pool.name, c.seed): c.reused for c in again.comparisons.cells}
    assert reused == {(control, 0): True, (control, 1): False,
                      ("text_length_filter/low", 0): True, ("text_length_filter/low", 1): True}
    assert again.comparisons.items[0].summary.mean == pytest.approx(first.comparisons.items[0].summary.mean)
    redone = next(c for c in again.comparisons.cells if not c.reused)
    assert mlflow.get_run(redone.run_id).data.tags[CELL] == mlflow.get_run(killed.run_id).data.tags[CELL]


def test_a_crashing_trainer_marks_its_cells_failed_and_the_rest_go_on(
    small_corpus, tmp_path, bench_file, tracking_uri
) -> None:
    script = tmp_path / "crash.py"
    script.write_text("import sys\nprint('loading data...')\nsys.exit('out of memory')\n")
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0],
                    model={"type": "command", "command": [sys.executable, str(script)], "timeout_s": 60},
                    benchmarks=[{"name": "clean", "path": str(bench_file)}])
    result = run_training(parse_spec(raw), ["text_length_filter/low", "alphanumeric_filter/high"], progress=False)
    cells = result.comparisons.cells
    controls = {c.baselines[0].pool.digest for c in result.comparisons.items}
    assert len(cells) == 2 + len(controls)  # one cell per pool, one per control size (one seed)
    assert [c.status for c in cells] == [CellStatus.FAILED] * len(cells)
    assert [r["status"] for r in _cells_table(result.parent_run_id, tmp_path)] == ["FAILED"] * len(cells)
    counts = mlflow.get_run(result.parent_run_id).data.metrics
    assert (counts["cells_failed"], counts["cells_run"]) == (len(cells), len(cells))
    run = mlflow.get_run(cells[0].run_id)
    assert run.info.status == "FAILED"
    assert "exit" in run.data.tags[FAILURE].lower()
    assert run.data.params["pool"] == cells[0].pool.name and run.data.params["seed"] == "0"  # what it tried
    tail = tracking.download_artifacts(run.info.run_id, "failure_log_tail.txt", tmp_path / "tail")
    assert "loading data..." in tail.read_text(encoding="utf-8")
    assert all(c.summary is None for c in result.comparisons.items)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    cli = CliRunner().invoke(app, ["train", "-p", str(tmp_path / "proj"), "-q", "--pool", "text_length_filter/low",
                                   "--pool", "alphanumeric_filter/high"])
    assert cli.exit_code == 2, cli.output  # the user's trainer crashed: theirs to fix, as bad input is
    (line,) = cli.stderr.strip().splitlines()  # the table went to stdout; one line says what failed
    assert line.startswith("FAILED ") and " seed 0: command exited with status 1 (out of memory)" in line and line.endswith(
        f"(and {len(cells) - 1} more cells: each reason is in cells.json of the run)"), line
    # As a process, with the command's own logging: each failed cell is counted on the progress lines,
    # not logged as an error of its own, so the FAILED line is the one line besides progress.
    run = subprocess.run([sys.executable, "-m", "mlsandbox.cli", "train", "-p", str(tmp_path / "proj"), "-q", "--pool",
                          "text_length_filter/low"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri})
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("FAILED ") and " seed 0: command exited with status 1" in lines[-1], lines
    assert all(" mlsandbox.progress: " in line for line in lines[:-1]), lines
    assert "2 failed" in lines[-2], lines


def test_a_workflow_step_whose_every_cell_failed_exits_2_with_the_first_reason(small_corpus, tmp_path,
                                                                                  bench_file, tracking_uri) -> None:
    """Nothing was measured: as train's failed cells and a search's failed trials, not a success. A step
    with some cells finished goes on without the others (its tables count them); refine's reused probe
    cells are not its own measurements."""
    marker = tmp_path / "out-of-memory"
    script = tmp_path / "train.py"
    script.write_text(f"import json, os, sys\nif os.path.exists({str(marker)!r}):\n    sys.exit('out of memory')\n"
                      "json.dump({'clean': 0.5 + len(open(sys.argv[2]).read()) % 7 / 100}, open(sys.argv[1], 'w'))\n")
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0, 1], ops=[{"name": "text_length_filter"},
                    {"name": "words_num_filter"}], pools={"splits": ["low", "high"]},
                    model={"type": "command", "command": [sys.executable, str(script), "{metrics_file}", "{pool_file}"],
                           "timeout_s": 60},
                    benchmarks=[{"name": "clean", "path": str(bench_file)}], refine={"top_k": 2, "min_pool_size": 3})
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    runner = CliRunner()
    assert runner.invoke(app, ["probe", "-p", str(tmp_path / "proj"), "-q"]).exit_code == 0
    marker.touch()  # from now on every new cell fails; the probe's are reused
    cli = runner.invoke(app, ["refine", "-p", str(tmp_path / "proj"), "-q"])
    assert cli.exit_code == 2, cli.output
    (line,) = cli.stderr.strip().splitlines()
    assert re.fullmatch(r"FAILED: every one of the \d+ cells refine trained with the deciding model failed; the "
                        r"first, \S+ seed [01]: command exited with status 1 \(out of memory\): .* \(each reason is "
                        r"in cells\.json of the run\)", line), line
    raw["name"] = "fails-from-the-start"  # an experiment of its own: nothing to reuse
    (tmp_path / "proj" / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    cli = runner.invoke(app, ["probe", "-p", str(tmp_path / "proj"), "-q"])
    assert cli.exit_code == 2 and "cells the probe trained with the deciding model failed" in cli.stderr
    assert "No single-OP pool was measured" in cli.stdout  # the tables and the answer first, as ever
    counts = cli.stdout.strip().splitlines()[-1]  # with --quiet, the count line names the first failure too
    assert re.search(r" failed \(the first, \S+ seed [01]: command exited with status 1 \(out of memory\)", counts), counts


@pytest.mark.parametrize("reported, says", [
    ({"clean": 0.5, "bogus": 1000.0}, "name benchmarks the spec does not have: ['bogus']"),
    ({"other": 0.5}, "lack benchmarks ['clean']"),
    ({"clean": 1e308}, "benchmark 'clean': score 1e+308 is outside [1e-150, 1e+150]"),  # else an infinite delta, p = 1
    ({"clean": 5e-324}, "benchmark 'clean': score 5e-324 is outside [1e-150, 1e+150]"),
])
def test_metrics_for_other_benchmarks_than_the_specs_fail_the_cell(
    small_corpus, tmp_path, bench_file, tracking_uri, reported, says
) -> None:
    """A delta is over the spec's benchmarks exactly: an extra name would dilute it."""
    script = tmp_path / "train.py"
    script.write_text(f"import json, sys\njson.dump({reported!r}, open(sys.argv[1], 'w'))\n")
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0],
                    model={"type": "command", "command": [sys.executable, str(script), "{metrics_file}"]},
                    benchmarks=[{"name": "clean", "path": str(bench_file)}])
    result = run_training(parse_spec(raw), ["text_length_filter/low"], progress=False)
    assert [c.status for c in result.comparisons.cells] == [CellStatus.FAILED] * 2
    assert all(says in c.reason for c in result.comparisons.cells)


@pytest.mark.parametrize("exit_code", [0, 3])
def test_a_commands_env_values_and_url_passwords_are_in_no_param_tag_artifact_or_log(
    small_corpus, tmp_path, bench_file, tracking_uri, exit_code, caplog
) -> None:
    """Whatever the trainer prints (its env, its argv), in its saved log, its failure or the cell's params."""
    script = tmp_path / "train.py"
    script.write_text("import json, os, sys\nassert os.environ['TOKEN'] == 'hf_S3cret'\n"
                      "print('env', os.environ['TOKEN'], 'argv', sys.argv)\n"
                      f"json.dump({{'clean': 0.5}}, open(sys.argv[-1], 'w'))\nsys.exit({exit_code})\n")
    model = {"type": "command", "env": {"TOKEN": "hf_S3cret"},
             "command": [sys.executable, str(script), "--db", "postgresql://u:ArgPassw0rd@127.0.0.1:1/db", "{metrics_file}"]}
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0], model=model,
                    benchmarks=[{"name": "clean", "path": str(bench_file)}])
    experiment = mlflow.create_experiment(raw["name"], artifact_location=(tmp_path / "artifacts").as_uri())
    result = run_training(parse_spec(raw), ["text_length_filter/low"], progress=False)
    assert [c.status for c in result.comparisons.cells] == [CellStatus.FINISHED if exit_code == 0 else CellStatus.FAILED] * 2
    runs = mlflow.search_runs([experiment], output_format="list")
    assert len(runs) == 3 and any("postgresql://u:***@127.0.0.1:1/db" in r.data.params.get("model.command", "") for r in runs)
    stored = [json.dumps([r.data.params, r.data.tags]).encode() for r in runs]
    stored += [f.read_bytes() for f in (tmp_path / "artifacts").rglob("*") if f.is_file()]
    stored.append(caplog.text.encode())
    assert len(stored) >= 10 and not [s for s in stored if b"hf_S3cret" in s or b"ArgPassw0rd" in s]
    if exit_code:
        assert "exited with status 3" in result.comparisons.cells[0].reason
    else:
        logs = list((tmp_path / "artifacts").rglob("train.log"))
        assert logs and "env *** argv" in logs[0].read_text()
    with pytest.raises(Exception) as refused:  # a check across the model's keys, whose input holds env
        parse_spec({**raw, "model": {**model, "params": {"seed": 1}}})
    assert "would replace what the cell passes" in str(refused.value) and "hf_S3cret" not in str(refused.value)
    with pytest.raises(Exception) as refused:  # a value of the wrong type is not echoed
        parse_spec({**raw, "model": {**model, "env": {"PIN": 98765432}}})
    assert "model.env.PIN" in str(refused.value) and "98765432" not in str(refused.value)


def test_a_command_trained_model_is_evaluated_only_by_a_command(small_corpus, tmp_path, bench_file,
                                                                 tracking_uri) -> None:
    script = tmp_path / "train.py"
    script.write_text("import json, sys\njson.dump({'clean': 0.5}, open(sys.argv[1], 'w'))\n")
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0],
                    model={"type": "command", "command": [sys.executable, str(script), "{metrics_file}"]},
                    benchmarks=[{"name": "clean", "path": str(bench_file)}])
    cell = run_training(parse_spec(raw), ["text_length_filter/low"], progress=False).comparisons.cells[0]
    runs = len(mlflow.search_runs(search_all_experiments=True))
    with pytest.raises(InvalidInputError, match="set evaluator.type: command"):
        run_evaluation(parse_spec(raw), cell.run_id)
    assert len(mlflow.search_runs(search_all_experiments=True)) == runs  # no run left FAILED behind


@pytest.mark.skipif(shutil.which("git") is None, reason="mlflow run needs git")
@pytest.mark.parametrize("stopped", [False, True])
def test_an_mlflow_project_trainers_own_run_is_the_cells_child_and_ends_with_it(
    small_corpus, tmp_path, bench_file, tracking_uri, stopped
) -> None:
    """`mlflow run` starts a run of its own: it is linked under the cell, and ended KILLED when the
    cell stops the trainer (its timeout here), rather than left RUNNING for good."""
    project = Path(shutil.copytree(Path(__file__).resolve().parents[1] / "projects" / "external-trainer",
                                   tmp_path / "trainer"))
    if stopped:
        train = project / "train.py"
        train.write_text(train.read_text().replace("    texts = read_texts(args.pool_file)\n",
                                                   "    import time; time.sleep(120)\n    texts = read_texts(args.pool_file)\n"))
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0],
                    model={"type": "command", "mlflow_project": str(project), "timeout_s": 20 if stopped else 300},
                    benchmarks=[{"name": "clean", "path": str(bench_file)}])
    result = run_training(parse_spec(raw), ["text_length_filter/low"], progress=False)
    expected = CellStatus.FAILED if stopped else CellStatus.FINISHED
    assert [c.status for c in result.comparisons.cells] == [expected] * 2
    client = mlflow.MlflowClient()
    for cell in result.comparisons.cells:
        experiment = client.get_run(cell.run_id).info.experiment_id
        (own,) = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{cell.run_id}'")
        assert own.info.run_name == f"trainer-{cell.run_id}"
        assert own.info.status == ("KILLED" if stopped else "FINISHED")


def test_evaluate_loads_a_logged_model_back(small_corpus, tmp_path, bench_file, tracking_uri) -> None:
    spec = _spec(small_corpus, tmp_path, bench_file)
    result = run_training(spec, ["text_length_filter/low"], progress=False)
    cell = result.comparisons.cells[-1]
    evaluation = run_evaluation(spec, cell.run_id)
    assert evaluation.metrics["clean"]["score"] == pytest.approx(cell.metrics["clean"]["score"])
    assert mlflow.get_run(evaluation.run_id).data.params["model_run"] == cell.run_id


def test_the_cli_reports_deltas_and_rejects_unknown_pools(small_corpus, tmp_path, bench_file, tracking_uri) -> None:
    import yaml

    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0, 1], model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench_file)}])
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    runner = CliRunner()
    ok = runner.invoke(app, ["train", "-p", str(tmp_path), "--pool", "alphanumeric_filter/high", "-q"])
    assert ok.exit_code == 0, ok.output
    assert "alphanumeric_filter/high" in ok.output and "delta_pct" in ok.output
    assert "p_adjusted: no correction: one pool" in ok.output  # never "adjusted" over a family of one
    two = runner.invoke(app, ["train", "-p", str(tmp_path), "--pool", "alphanumeric_filter/high",
                              "--pool", "alphanumeric_filter/low", "-q"])
    assert "p_adjusted: Holm-adjusted across the 2 distinct pools with a p-value among this command's 2 pools" in two.output
    # a pool measured before may have been chosen by that measurement, which no correction here counts
    assert "were measured before" not in ok.output
    assert "2 of the random controls were measured before and reused: if you chose these pools by results " in two.output
    fresh = runner.invoke(app, ["train", "-p", str(tmp_path), "--pool", "alphanumeric_filter/high", "--pool",
                                "alphanumeric_filter/low", "--seeds", "7,8", "-q"])  # two pools of one size: shared controls
    assert fresh.exit_code == 0 and "were measured before" not in fresh.output  # a seed-independent pool's cell, fresh controls
    assert "mean over seeds with its 95% interval" in ok.output
    one = runner.invoke(app, ["train", "-p", str(tmp_path), "--pool", "alphanumeric_filter/high", "--seeds", "0", "-q"])
    assert "mean over seeds (no interval or p-value: fewer than 2 seeds)" in one.output  # not "with its interval"
    bad = runner.invoke(app, ["train", "-p", str(tmp_path), "--pool", "nope/low"])
    assert bad.exit_code == 2 and "no pool 'nope/low'" in bad.output


def test_a_misspelt_pool_and_a_pool_run_without_a_store_are_refused_before_any_work(
        small_corpus, tmp_path, bench_file, tracking_uri) -> None:
    import yaml

    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0, 1], model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench_file)}])
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    runner = CliRunner()
    no_store = runner.invoke(app, ["train", "-p", str(tmp_path), "--pool-run", "0" * 32])
    assert no_store.exit_code == 2 and "does not exist" in no_store.output
    assert not (tmp_path / "mlflow.db").exists()  # the wrong folder gets no store of its own
    misspelt = runner.invoke(app, ["train", "-p", str(tmp_path), "--pool", "alphanumeric_filtr/high"])
    assert misspelt.exit_code == 2, misspelt.output
    assert "no pool 'alphanumeric_filtr/high' (did you mean 'alphanumeric_filter/high'?)" in misspelt.output
    for control in ("random", "random-40"):  # the controls are drawn per pool and seed, not trained by name
        refused = runner.invoke(app, ["train", "-p", str(tmp_path), "--pool", control])
        assert refused.exit_code == 2 and "a random pool is the control" in refused.output
    assert not list((tmp_path / "ws").rglob("*.parquet"))  # refused before the stats


def test_a_recipe_file_is_trained_as_the_pool_it_selects_on_fresh_seeds(
    small_corpus, tmp_path, bench_file, tracking_uri
) -> None:
    import yaml

    # a project that races its seeds (as image-caption does), and the same fresh seeds for its workflow's confirmation
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0, 1, 2], model={"type": "ngram", "order": 2},
                    benchmarks=[{"name": "clean", "path": str(bench_file)}], race={"min_seeds": 2, "max_seeds": 3},
                    confirm={"seeds": [100, 101, 102]})
    (tmp_path / "sandbox.yaml").write_text(yaml.safe_dump(raw))
    recipe = Recipe(name="clean-text", conditions=[Condition(op="alphanumeric_filter", min=0.7)])
    path = save_recipe(recipe, tmp_path / "best_recipe.yaml")
    runner = CliRunner()
    ok = runner.invoke(app, ["train", "-p", str(tmp_path), "--recipe", str(path), "--seeds", "100,101,102", "-q"])
    assert ok.exit_code == 0, ok.output
    (parent,) = mlflow.search_runs(search_all_experiments=True, filter_string="tags.mlsandbox.entry_point = 'train'",
                                   output_format="list")
    cells = _children(parent.info.run_id)
    selected = recipe.select(prepare(parse_spec(raw), progress=False).stats)
    assert {c.data.tags[tracking.POOL_DIGEST] for c in cells if c.data.params["pool"] == "clean-text"} == {selected.digest}
    assert sorted(int(c.data.params["seed"]) for c in cells if c.data.params["pool"] != "clean-text") == [100, 101, 102]
    assert "delta_pct.clean-text" in parent.data.metrics
    assert "with its 95% interval;" in ok.output  # fixed seeds: a plain interval
    assert "fidelity" not in ok.output  # one model decided every row: the column says nothing
    raced = runner.invoke(app, ["train", "-p", str(tmp_path), "--recipe", str(path), "-q"])  # the spec's race
    assert raced.exit_code == 0 and "corrected for the race's 2 looks, each held to 5%/2" in raced.output, raced.output
    missing = runner.invoke(app, ["train", "-p", str(tmp_path), "--recipe", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "no recipe file at" in missing.output and "Traceback" not in missing.output
    bad_seeds = runner.invoke(app, ["train", "-p", str(tmp_path), "--recipe", str(path), "--seeds", "1,two"])
    assert bad_seeds.exit_code == 2 and "comma-separated seeds" in bad_seeds.output
    # two recipes of one name would log to the same metric keys: refused, nothing trained
    other = save_recipe(Recipe(name="clean-text", conditions=[Condition(op="text_length_filter", min=30)]),
                        tmp_path / "other" / "best_recipe.yaml")
    twice = runner.invoke(app, ["train", "-p", str(tmp_path), "--recipe", str(path), "--recipe", str(other)])
    assert twice.exit_code == 2 and "two pools are named 'clean-text'" in twice.output
    # nor two names that MLflow's metric names would fold into one (the first pool's metrics were lost)
    hashed = save_recipe(Recipe(name="clean#text", conditions=[Condition(op="text_length_filter", min=30)]),
                         tmp_path / "hashed" / "best_recipe.yaml")
    percent = save_recipe(Recipe(name="clean%text", conditions=[Condition(op="text_length_filter", min=40)]),
                          tmp_path / "percent" / "best_recipe.yaml")
    folded = runner.invoke(app, ["train", "-p", str(tmp_path), "--recipe", str(hashed), "--recipe", str(percent)])
    assert folded.exit_code == 2 and "pools 'clean#text' and 'clean%text' would share the MLflow metric name " \
        "'clean_text'" in folded.output, folded.output
    # a recipe measured on this dataset that now selects another pool is refused before anything trains
    wider = Recipe(name="wider")  # every sample
    stats = prepare(parse_spec(raw), progress=False).stats
    stale = save_recipe(recipe.measured_as(wider.select(stats), stats, "run-1"), tmp_path / "stale" / "best_recipe.yaml")
    refused = runner.invoke(app, ["train", "-p", str(tmp_path), "--recipe", str(stale)])
    assert refused.exit_code == 2 and "when it was measured by run run-1, but now selects" in refused.output
    assert "Traceback" not in refused.output


def test_an_external_trainer_is_retrained_when_the_metadata_it_reads_changes(
    small_corpus, tmp_path, bench_file, tracking_uri
) -> None:
    # the digest of a dataset covers ids and texts (what the stats read); an external trainer reads
    # the pool file, metadata columns included, so an edited column must not reuse its cells
    script = tmp_path / "weighted.py"
    script.write_text(
        "import json, sys\n"
        "pool, metrics = sys.argv[1:3]\n"
        "rows = [json.loads(line) for line in open(pool)]\n"
        "weight = sum(r['weight'] for r in rows) / len(rows)\n"
        "json.dump({'clean': {'score': 1.0 + weight}}, open(metrics, 'w'))\n")
    rows = [json.loads(line) for line in small_corpus.read_text().splitlines()]
    data = write_jsonl(tmp_path / "weighted.jsonl", [{**r, "weight": 0.1} for r in rows])
    raw = spec_dict(data, workspace=str(tmp_path / "ws"), seeds=[0],
                    model={"type": "command", "command": [sys.executable, str(script), "{pool_file}", "{metrics_file}"]},
                    benchmarks=[{"name": "clean", "path": str(bench_file)}])
    first = run_training(parse_spec(raw), ["text_length_filter/low"], progress=False)
    assert first.comparisons.cells[0].metrics["clean"]["score"] == pytest.approx(1.1)
    again = run_training(parse_spec(raw), ["text_length_filter/low"], progress=False)
    assert all(c.reused for c in again.comparisons.cells)
    write_jsonl(data, [{**r, "weight": 0.3} for r in rows])  # same ids and texts: same dataset digest
    edited = run_training(parse_spec(raw), ["text_length_filter/low"], progress=False)
    assert not any(c.reused for c in edited.comparisons.cells)
    assert edited.comparisons.cells[0].metrics["clean"]["score"] == pytest.approx(1.3)


def test_a_fidelity_column_is_shown_only_where_rows_differ_in_it() -> None:
    """A skipped row (nothing trained: an empty fidelity) does not make one model's rows look mixed."""
    import pandas as pd

    from mlsandbox.executors.compare import without_constant

    one_model = pd.DataFrame({"name": ["a", "b", "c"], "fidelity": ["decide", "decide", ""]})
    assert list(without_constant(one_model, "fidelity").columns) == ["name"]
    screened = pd.DataFrame({"name": ["a", "b", "c"], "fidelity": ["decide", "screen", ""]})
    assert list(without_constant(screened, "fidelity").columns) == ["name", "fidelity"]


def test_a_numeric_column_of_undefined_values_stays_aligned_as_numbers() -> None:
    """One seed's p-values are all ``n/a``: the column is right-aligned as the other numbers are."""
    import pandas as pd

    from mlsandbox.executors.compare import table_markdown

    table = pd.DataFrame({"name": ["a", "bb"], "delta_pct": [1.5, -10.25], "p_value": [float("nan")] * 2,
                          "note": [None, None]})
    header, rule, *rows = table_markdown(table).splitlines()
    aligned = ["right" if cell.endswith(":") else "left" for cell in rule.split("|")[1:-1]]
    assert aligned == ["left", "right", "right", "left"]
    assert rows[0].split("|")[3].endswith(" n/a ") and rows[0].split("|")[3].startswith("  ")


def test_a_pipe_in_a_pool_name_does_not_end_its_markdown_cell() -> None:
    import pandas as pd

    from mlsandbox.executors.compare import table_markdown

    header, rule, row, undefined = table_markdown(pd.DataFrame({"pool": ["op/a|b", "op/c"],
                                                                 "delta_pct": [1.5, float("nan")]})).splitlines()
    assert row.replace("\\|", "").count("|") == rule.count("|") and "op/a\\|b" in row
    assert undefined.split("|")[2].strip() == "n/a"  # a degenerate split's row: n/a, not nan
