"""External trainers and evaluators: argv or MLflow project, metrics read from a JSON file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import mlflow
import pytest
from conftest import spec_dict, write_jsonl
from pydantic import ValidationError

from mlsandbox.errors import EvaluationError, TrainingError
from mlsandbox.models import Benchmark, TrainingJob, evaluator_for, load_model, trainer_for
from mlsandbox.models._command_files import parse_metrics
from mlsandbox.models.command import CommandModel, substitute, tracking_environment
from mlsandbox.spec import CommandSpec, EvaluatorSpec, NgramSpec, parse_spec
from mlsandbox.workflows.train import run_training

PROJECT = Path(__file__).resolve().parents[1] / "projects" / "external-trainer"
PY = sys.executable


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "trainer.py"
    path.write_text("import json, sys, time\nargs = sys.argv[1:]\n" + body)
    return [PY, str(path)]


def run(tmp_path: Path, argv: list[str], **spec_kwargs) -> CommandModel:
    spec = CommandSpec(command=argv, **spec_kwargs)
    job = TrainingJob(
        texts=["one doc", "two doc"], output_dir=tmp_path / "out", seed=7,
        benchmarks=[Benchmark("toy", ["a benchmark doc"])],
    )
    model = trainer_for(spec).train(job)
    assert isinstance(model, CommandModel)
    return model


def test_success_reads_metrics_and_substitutes_placeholders(tmp_path: Path) -> None:
    argv = script(tmp_path, (
        "metrics, seed, pool = args[0], args[1], args[2]\n"
        "assert open(pool).read().count('text') == 2\n"
        "json.dump({'benchmarks': {'toy': {'bpb': 2.0}}, 'metrics': {'seed': int(seed),"
        " 'lr': float(args[4])}}, open(metrics, 'w'))\n"
    )) + ["{metrics_file}", "{seed}", "{pool_file}"]
    model = run(tmp_path, argv, params={"lr": 0.5})
    assert model.metrics == {"toy": {"bpb": 2.0, "score": 0.5}}
    assert model.info["seed"] == 7 and model.info["lr"] == 0.5
    assert model.info["argv"][-2:] == ["--lr", "0.5"]


def test_flat_metrics_format_is_accepted() -> None:
    assert parse_metrics({"a": 0.5, "b": {"bpb": 4.0}})[0] == {
        "a": {"score": 0.5}, "b": {"bpb": 4.0, "score": 0.25}
    }


@pytest.mark.parametrize("bad, message", [
    ({"toy": -1.0}, "positive"),
    ({"toy": "high"}, "finite number"),
    ({"toy": {"loss": 1.0}}, "needs a `score` or a `bpb`"),
    ([1, 2], "JSON object"),
    ({"toy": {"bpb": -2.0}}, "bpb must be positive"),
    ({"toy": {"bpb": 0.0}}, "bpb must be positive"),
    ({"toy": {"score": 0.5, "loss:train@1": 1.0}}, "not a metric name MLflow accepts"),
    ({"benchmarks": {"toy": 0.5}, "metrics": {"a//b": 1.0}}, "not a metric name MLflow accepts"),
    ({"benchmarks": {"toy": 0.5}, "metrics": {"m" * 300: 1.0}}, "is 300 characters long; a metric name may have at most 100"),
    ({"toy": {"score": 0.5, "m" * 101: 1.0}}, "is 101 characters long"),  # MLflow's 250 would be hit only when logged
    ({"benchmarks": {"toy": 0.5}, "metric": {"loss": 1.0}}, "unknown key 'metric' beside `benchmarks`"),
    ({"toy": {"score": 10**400}}, r"must be a finite number, got 10000000000000000000\.\.\. \(401 characters\)"),
])
def test_malformed_metrics_are_rejected(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_metrics(bad)


def test_non_zero_exit_gives_reason_and_log_tail(tmp_path: Path) -> None:
    argv = script(tmp_path, "print('\\n'.join(f'line {i}' for i in range(100)))\nsys.exit(3)\n")
    with pytest.raises(TrainingError) as err:
        run(tmp_path, argv)
    assert "exited with status 3 (line 99): " in err.value.reason  # why first: the command line after it is cut
    tail = err.value.log_tail.splitlines()
    assert len(tail) == 40 and tail[-1] == "line 99"


def test_a_failures_reason_quotes_the_logs_last_meaningful_line(tmp_path: Path) -> None:
    argv = script(tmp_path, "print('ValueError: no such column', flush=True)\nprint('    ^^^^~~~~\\n')\nsys.exit(1)\n")
    with pytest.raises(TrainingError) as err:
        run(tmp_path, argv)
    assert err.value.reason.startswith("command exited with status 1 (ValueError: no such column): ")


def test_timeout_kills_the_command(tmp_path: Path) -> None:
    argv = script(tmp_path, "print('started', flush=True)\ntime.sleep(30)\n")
    with pytest.raises(TrainingError) as err:
        run(tmp_path, argv, timeout_s=1)
    assert "timed out after 1 s" in err.value.reason
    assert "started" in err.value.log_tail


def test_an_interrupted_sandbox_takes_its_trainer_down_with_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    argv = script(tmp_path, f"import os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(30)\n")

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(2)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path, argv, timeout_s=60)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_missing_metrics_file(tmp_path: Path) -> None:
    argv = script(tmp_path, "print('trained but forgot metrics')\n")
    with pytest.raises(TrainingError) as err:
        run(tmp_path, argv)
    assert "wrote no metrics file" in err.value.reason
    assert "forgot metrics" in err.value.log_tail


def test_stale_metrics_from_an_earlier_run_do_not_count(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.json").write_text(json.dumps({"toy": 1.0}))
    with pytest.raises(TrainingError, match="wrote no metrics file"):
        run(tmp_path, script(tmp_path, "pass\n"))


def test_invalid_json_metrics(tmp_path: Path) -> None:
    argv = script(tmp_path, "open(args[0], 'w').write('{not json')\nprint('wrote it')\n") + ["{metrics_file}"]
    with pytest.raises(TrainingError) as err:
        run(tmp_path, argv)
    assert "not valid JSON" in err.value.reason
    assert "wrote it" in err.value.log_tail


@pytest.mark.parametrize("writes, says", [
    ("import os; os.makedirs(args[0])", "cannot be read: Is a directory"),
    ("open(args[0], 'w').write('[' * 100000 + ']' * 100000)", "nests its JSON too deeply to read"),
    ("open(args[0], 'w').write('{\"toy\": 1' + '0' * 5000 + '}')", "is not valid JSON: Exceeds the limit (4300 digits)"),
])
def test_a_metrics_file_that_cannot_be_read_fails_the_cell_not_the_command(tmp_path: Path, writes: str,
                                                                         says: str) -> None:
    argv = script(tmp_path, f"{writes}\nprint('wrote it')\n") + ["{metrics_file}"]
    with pytest.raises(TrainingError) as err:
        run(tmp_path, argv)
    assert says in err.value.reason and "wrote it" in err.value.log_tail


def test_missing_executable(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="could not start"):
        run(tmp_path, [str(tmp_path / "no-such-binary")])


def test_a_script_whose_interpreter_is_missing_says_so(tmp_path: Path) -> None:
    trainer = tmp_path / "train.sh"
    trainer.write_text("#!/no/such/interpreter\necho hi\n")
    trainer.chmod(0o755)
    with pytest.raises(TrainingError, match="the interpreter its #! line names was not found"):
        run(tmp_path, [str(trainer)])


def test_unknown_placeholders_pass_through() -> None:
    assert substitute(["{seed}", '{"a": 1}', "x{output_dir}y"], {"seed": "1", "output_dir": "o"}) == [
        "1", '{"a": 1}', "xoy"
    ]


def test_spec_needs_exactly_one_of_command_or_project() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        CommandSpec()
    with pytest.raises(ValidationError, match="exactly one"):
        CommandSpec(command=["x"], mlflow_project="p")
    with pytest.raises(ValidationError, match="relative path"):
        CommandSpec(command=["x"], metrics_file="/abs/metrics.json")
    with pytest.raises(ValidationError, match=r"would replace what the cell passes"):
        CommandSpec(command=["x"], params={"seed": 7, "lr": 0.1})
    with pytest.raises(ValidationError, match=r"a param is a string, a number or true/false") as many:
        CommandSpec(command=["x"], params={"lr": [0.1, 0.2]})
    assert many.value.error_count() == 1  # not one per branch of the union the list missed


@pytest.mark.parametrize("path", ["/tmp/victim.json", "../victim.json"])
def test_an_evaluators_metrics_file_stays_inside_its_folder(path: str) -> None:
    """It is removed before each run (a stale result must not pass): outside, it could be anyone's file."""
    with pytest.raises(ValidationError, match="relative path inside the output directory"):
        EvaluatorSpec(type="command", command=["x"], metrics_file=path)


def test_env_values_reach_the_command_and_are_written_out_nowhere(tmp_path: Path) -> None:
    argv = script(tmp_path, (
        "import os\nassert os.environ['DB_URL'] == 'postgresql://alice:S3cretPW@db/x', os.environ.get('DB_URL')\n"
        "json.dump({'toy': 0.25}, open(args[0], 'w'))\n"
    )) + ["{metrics_file}"]
    env = {"DB_URL": "postgresql://alice:S3cretPW@db/x"}
    model = run(tmp_path, argv, env=env)
    model.save(tmp_path / "saved")
    spec = CommandSpec(command=argv, env=env)
    assert "S3cretPW" not in (tmp_path / "saved" / "manifest.json").read_text()
    assert "S3cretPW" not in json.dumps(spec.model_dump(mode="json")) and "S3cretPW" not in repr(spec)
    # the value is part of the cell's identity, by its hash
    assert spec.digest() == CommandSpec(command=argv, env=env).digest()
    assert spec.digest() != CommandSpec(command=argv, env={"DB_URL": "postgresql://bob:other@db/x"}).digest()
    assert CommandSpec(command=argv).digest() != spec.digest()


def test_saved_command_model_keeps_its_metrics_and_what_the_command_wrote(tmp_path: Path) -> None:
    argv = script(tmp_path, (
        "import os\nos.makedirs('ckpt')\nopen('ckpt/step-1.bin', 'wb').write(b'weights')\nprint('step 1 done')\n"
        "json.dump({'toy': 0.25}, open(args[0], 'w'))\n"
    )) + ["{metrics_file}"]
    model = run(tmp_path, argv)
    model.save(tmp_path / "saved")
    output = tmp_path / "saved" / "output"
    assert (output / "ckpt" / "step-1.bin").read_bytes() == b"weights"
    assert "step 1 done" in (output / "train.log").read_text()
    assert not (output / "pool.jsonl").exists() and not (output / "benchmarks").exists()  # the cell's inputs
    loaded = load_model(tmp_path / "saved")
    assert loaded.metrics == {"toy": {"score": 0.25}}
    with pytest.raises(EvaluationError, match="no in-process bits-per-byte"):
        loaded.bits_per_byte(["x"])


def external_argv(script: str) -> list[str]:
    return [PY, script, "--pool-file", "{pool_file}", "--output-dir",
            "{output_dir}", "--seed", "{seed}", "--metrics-file", "{metrics_file}",
            "--benchmarks-file", "{benchmarks_file}"]


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_external_trainer_template_trains_a_real_bigram_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.chdir(PROJECT.parents[1])  # the template's README names its script from the repository root
    argv = external_argv("projects/external-trainer/train.py" if where == "relative" else str(PROJECT / "train.py"))
    english = ["the quick brown fox jumps over the lazy dog " * 5] * 20
    job = TrainingJob(
        texts=english, output_dir=tmp_path / "out", seed=1,
        benchmarks=[Benchmark("similar", ["the lazy dog jumps over the fox"]),
                    Benchmark("different", ["ZXQV 9$#@ KLMN %^&* 0101"])],
    )
    model = trainer_for(CommandSpec(command=argv, params={"smoothing": 0.05})).train(job)
    assert model.metrics is not None
    assert model.metrics["similar"]["bpb"] < model.metrics["different"]["bpb"]
    assert model.metrics["similar"]["score"] == pytest.approx(1 / model.metrics["similar"]["bpb"])
    assert (tmp_path / "out" / "bigram.npy").exists()


def test_command_evaluator_runs_once_per_benchmark(tmp_path: Path) -> None:
    trainer_for(NgramSpec(order=2)).train(
        TrainingJob(texts=["abc abc"], output_dir=tmp_path)
    ).save(tmp_path / "model")
    evaluator = script(tmp_path, (
        "model_dir, bench, name, metrics = args\n"
        "assert json.load(open(model_dir + '/manifest.json'))['type'] == 'ngram'\n"
        "n = sum(1 for _ in open(bench))\n"
        "json.dump({'score': float(n), 'docs': n}, open(metrics, 'w'))\n"
    )) + ["{model_dir}", "{benchmark_file}", "{benchmark_name}", "{metrics_file}"]
    spec = EvaluatorSpec(type="command", command=evaluator)
    result = evaluator_for(spec).evaluate(
        tmp_path / "model", [Benchmark("one", ["x"]), Benchmark("three", ["x", "y", "z"])]
    )
    assert result == {"one": {"score": 1.0, "docs": 1.0}, "three": {"score": 3.0, "docs": 3.0}}


def test_command_evaluator_failure_names_the_benchmark(tmp_path: Path) -> None:
    trainer_for(NgramSpec(order=2)).train(TrainingJob(texts=["abc"], output_dir=tmp_path)).save(tmp_path / "m")
    spec = EvaluatorSpec(type="command", command=script(tmp_path, "print('boom')\nsys.exit(1)\n"))
    with pytest.raises(EvaluationError) as err:
        evaluator_for(spec).evaluate(tmp_path / "m", [Benchmark("toy", ["x"])])
    assert "benchmark 'toy'" in err.value.reason and "boom" in err.value.log_tail


@pytest.mark.skipif(shutil.which("git") is None, reason="mlflow run needs git")
def test_external_trainer_runs_as_an_mlflow_project(tmp_path: Path, tracking_uri: str) -> None:
    job = TrainingJob(
        texts=["hello world " * 10] * 5, output_dir=tmp_path / "out", seed=0,
        benchmarks=[Benchmark("hello", ["hello world"])],
    )
    bpb = {}
    for smoothing in (0.2, 0.9):
        spec = CommandSpec(mlflow_project=str(PROJECT), params={"smoothing": smoothing}, timeout_s=300)
        model = trainer_for(spec).train(job)
        assert model.metrics is not None
        bpb[smoothing] = model.metrics["hello"]["bpb"]
    assert 0 < bpb[0.2] != bpb[0.9]  # the param reached the project's training
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert sorted(r.data.params["smoothing"] for r in runs) == ["0.2", "0.9"]  # each an MLflow project run
    assert {r.info.status for r in runs} == {"FINISHED"}


@pytest.mark.parametrize("uri, absolute", [
    ("sqlite:///rel/mlflow.db", "sqlite:///{cwd}/rel/mlflow.db"), ("./mlruns", "{cwd}/mlruns"),
    ("file:./mlruns", "file://{cwd}/mlruns"), ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
])
def test_a_command_gets_the_tracking_store_by_an_absolute_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, absolute: str
) -> None:
    """It runs in its output folder: a relative store would be another one there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking_environment() == {"MLFLOW_TRACKING_URI": absolute.format(cwd=tmp_path)}


def test_a_trainers_env_names_its_own_tracking_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    argv = script(tmp_path, (
        "import os\nprint(os.environ['MLFLOW_TRACKING_URI'])\n"
        "json.dump({'toy': 0.5}, open(args[0], 'w'))\n"
    )) + ["{metrics_file}"]
    run(tmp_path, argv)
    assert (tmp_path / "out" / "train.log").read_text().strip() == f"sqlite:///{tmp_path}/mlflow.db"
    run(tmp_path, argv, env={"MLFLOW_TRACKING_URI": "sqlite:////elsewhere/m.db"})
    assert (tmp_path / "out" / "train.log").read_text().strip() == "sqlite:////elsewhere/m.db"


@pytest.mark.skipif(shutil.which("git") is None, reason="mlflow run needs git")
def test_an_mlflow_project_trainer_works_with_the_default_tracking_store(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No MLFLOW_TRACKING_URI: the cell's `mlflow run` must start its run in the cell's store, not in
    a new ``mlflow.db`` of its output folder, which has no experiment of that id."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(None)
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"text": f"a clean sentence number {i}"} for i in range(10)])
    raw = spec_dict(small_corpus, workspace=str(tmp_path / "ws"), seeds=[0],
                    model={"type": "command", "mlflow_project": str(PROJECT), "timeout_s": 300},
                    benchmarks=[{"name": "clean", "path": str(bench)}])
    cells = run_training(parse_spec(raw), ["text_length_filter/low"], progress=False).comparisons.cells
    assert [(c.ok, c.reason) for c in cells] == [(True, "")] * 2


def test_a_metrics_file_in_a_subfolder_can_be_written_where_the_placeholder_says(tmp_path: Path) -> None:
    """`metrics_file` may name a path inside a folder of `{output_dir}`: the command opens it as given."""
    argv = script(tmp_path, "json.dump({'toy': 0.5}, open(args[0], 'w'))\n") + ["{metrics_file}"]
    model = run(tmp_path, argv, metrics_file="eval/metrics.json")
    assert model.metrics == {"toy": {"score": 0.5}}
