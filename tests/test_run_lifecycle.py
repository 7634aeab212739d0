"""Runs end as what happened to them: interrupted or terminated runs KILLED with the reason, runs of
dead processes found and KILLED at the next start, reused cells linked to the run that reuses them."""

from __future__ import annotations

import collections
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import mlflow
import pytest
import typer
import yaml
from conftest import write_jsonl

from mlsandbox import tracking
from mlsandbox.cli import _errors as cli_errors
from mlsandbox.cli._errors import handles_errors
from mlsandbox.errors import Terminated
from mlsandbox.executors.cell_result import CELL
from mlsandbox.files import pid_exists


def _run(run_id: str) -> mlflow.entities.Run:
    return mlflow.MlflowClient().get_run(run_id)


def _experiment() -> str:
    return mlflow.set_experiment("lifecycle").experiment_id


def _orphan(tags: dict[str, str]) -> str:
    """A RUNNING run of the experiment ``lifecycle`` with the given owner tags."""
    return mlflow.MlflowClient().create_run(_experiment(), tags={tracking.KIND: "cell", **tags}).info.run_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_runs_of_dead_or_silent_owners_are_killed_and_live_ones_kept(tracking_uri: str) -> None:
    mine = tracking.owner_tags()
    ago = tracking._owners._iso(time.time() - 3600)
    alive = _orphan(mine)
    dead = _orphan({**mine, tracking.OWNER_PID: str(_dead_pid())})
    machine, _, ticks = mine[tracking.OWNER_PROCESS].rpartition("/")
    reused_pid = _orphan({**mine, tracking.OWNER_PROCESS: f"{machine}/{int(ticks) + 1}"})
    far_silent = _orphan({**mine, tracking.OWNER_HOST: "elsewhere", tracking.HEARTBEAT: ago})
    far_alive = _orphan({**mine, tracking.OWNER_HOST: "elsewhere"})
    foreign = _orphan({})
    experiment_id = _run(alive).info.experiment_id

    ended = tracking.reconcile_stale_runs(experiment_id, stale_after_s=600)

    assert sorted(ended) == sorted([dead, reused_pid, far_silent])
    for run_id in (alive, far_alive, foreign):
        assert _run(run_id).info.status == "RUNNING"
    reasons = {run_id: _run(run_id).data.tags[tracking.END_REASON] for run_id in ended}
    assert "no longer exists" in reasons[dead]
    assert "now belongs to another process" in reasons[reused_pid]
    assert "no heartbeat from owner" in reasons[far_silent] and "elsewhere" in reasons[far_silent]
    silent = _run(far_silent)
    assert silent.info.status == "KILLED"
    assert silent.info.end_time == silent.info.start_time  # its last sign of life, not the time it was found
    assert tracking.reconcile_stale_runs(experiment_id) == []  # once is enough


def test_a_new_parent_run_reconciles_its_experiment(tracking_uri: str) -> None:
    dead = _orphan({**tracking.owner_tags(), tracking.OWNER_PID: str(_dead_pid())})
    with tracking.parent_run("next", _run(dead).info.experiment_id, {tracking.KIND: "workflow"}) as run:
        tags = run.data.tags
        assert _run(dead).info.status == "KILLED"
    assert (tags[tracking.OWNER_PID], tags[tracking.OWNER_HOST]) == (str(os.getpid()), tracking.owner_tags()[
        tracking.OWNER_HOST])
    assert tags[tracking.OWNER_STARTED] and tags[tracking.HEARTBEAT]


def test_a_continued_run_is_owned_by_the_process_that_continues_it(tracking_uri: str) -> None:
    run_id = _orphan({**tracking.owner_tags(), tracking.OWNER_PID: str(_dead_pid())})
    mlflow.MlflowClient().set_terminated(run_id, "KILLED")
    with tracking.continue_run(run_id, {tracking.KIND: "search"}):
        run = _run(run_id)  # it reconciled its experiment, and is not abandoned itself
        assert (run.info.status, run.data.tags[tracking.OWNER_PID]) == ("RUNNING", str(os.getpid()))
    assert _run(run_id).info.status == "FINISHED"


def test_a_shared_run_lives_while_any_of_its_processes_beats_it(tracking_uri: str) -> None:
    # a study's run, continued by every worker: its owner tags name only the latest, who is gone
    gone = {**tracking.owner_tags(), tracking.OWNER_PID: str(_dead_pid()), tracking.SHARED: "true"}
    beaten = _orphan(gone)
    silent = _orphan({**gone, tracking.HEARTBEAT: tracking._owners._iso(time.time() - 3600)})
    ended = tracking.reconcile_stale_runs(_run(beaten).info.experiment_id, stale_after_s=600)
    assert ended == [silent] and _run(beaten).info.status == "RUNNING"
    assert "no heartbeat from owner" in _run(silent).data.tags[tracking.END_REASON]


def test_a_shared_run_that_another_process_ended_is_kept_running_and_finishes_clean(tracking_uri: str) -> None:
    client = mlflow.MlflowClient()
    run_id = _orphan(tracking.owner_tags())
    with tracking.continue_run(run_id, {tracking.KIND: "search", tracking.SHARED: "true"}):
        # another worker leaves (FINISHED), one crashes (its reason tagged), while this one works on
        client.set_tag(run_id, tracking.END_REASON, "failed: ValueError: another worker's")
        client.set_terminated(run_id, "FAILED")
        tracking.keep_running(run_id)
        run = _run(run_id)
        assert run.info.status == "RUNNING" and tracking.END_REASON not in run.data.tags
        client.set_tag(run_id, tracking.END_REASON, "failed: ValueError: another worker's")
    run = _run(run_id)
    assert run.info.status == "FINISHED" and tracking.END_REASON not in run.data.tags


@pytest.mark.parametrize("interrupt, reason", [
    (KeyboardInterrupt(), "interrupted by SIGINT (Ctrl-C)"),
    (Terminated(signal.SIGTERM), "terminated by SIGTERM"),
])
def test_an_interruption_ends_the_runs_killed_with_the_reason(
    tracking_uri: str, interrupt: KeyboardInterrupt, reason: str
) -> None:
    ids = []
    with pytest.raises(KeyboardInterrupt):
        with tracking.parent_run("workflow", _experiment(), {tracking.KIND: "workflow"}) as parent:
            ids.append(parent.info.run_id)
            with tracking.child_run("cell", {tracking.KIND: "cell"}) as child:
                ids.append(child.info.run_id)
                raise interrupt
    assert mlflow.active_run() is None
    for run_id in ids:
        run = _run(run_id)
        assert (run.info.status, run.data.tags[tracking.END_REASON]) == ("KILLED", reason)


def test_an_interruption_inside_a_store_write_leaves_no_lock_behind(tracking_uri: str) -> None:
    """A SIGTERM inside a SQLite write skips its rollback (an interruption is no Exception): the
    interrupted frame's open transaction kept the store's write lock, so ending the runs KILLED
    waited 20 s on it per write, failed, and left them RUNNING."""
    import sqlite3

    def interrupted_write() -> None:
        connection = sqlite3.connect(tracking_uri.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")  # the write lock, as a commit in progress holds it
        raise Terminated(signal.SIGTERM)

    ids, started = [], time.monotonic()
    with pytest.raises(Terminated):
        with tracking.parent_run("workflow", _experiment(), {tracking.KIND: "workflow"}) as parent:
            ids.append(parent.info.run_id)
            with tracking.child_run("cell", {tracking.KIND: "cell"}) as child:
                ids.append(child.info.run_id)
                interrupted_write()
    assert time.monotonic() - started < 15
    assert [_run(run_id).info.status for run_id in ids] == ["KILLED", "KILLED"]


class _SignalledWhileFinalised:
    """Sends this process ``signum`` from a finaliser, where Python swallows what the handler raises."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)
        for _ in range(10_000):  # the handler runs here, inside the finaliser
            pass


def test_a_sigterm_swallowed_by_a_finaliser_still_terminates_the_command() -> None:
    @handles_errors
    def command() -> str:
        _SignalledWhileFinalised(signal.SIGTERM)  # collected at once
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "ran on as if nothing had happened"

    with pytest.raises(typer.Exit) as exit_:
        command()
    assert exit_.value.exit_code == 128 + signal.SIGTERM


def test_a_terminated_interruption_crosses_processes_with_its_signal() -> None:
    import pickle

    received = pickle.loads(pickle.dumps(Terminated(signal.SIGTERM)))
    assert (received.signum, str(received)) == (signal.SIGTERM, "terminated by SIGTERM")


def test_ctrl_c_before_any_run_exits_130_even_where_the_tracking_modules_cannot_be_imported(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C in a command's first second lands in an import: the modules it cut short cannot be
    imported again, and the exit code alone must not need them (it was exit 1 and a traceback)."""
    monkeypatch.setitem(sys.modules, "mlsandbox.tracking", None)  # importing it raises ImportError

    @handles_errors
    def command() -> None:
        raise KeyboardInterrupt

    for mlflow_imported in (True, False):  # mlflow half imported too, or not yet
        if not mlflow_imported:
            monkeypatch.delitem(sys.modules, "mlflow")
        with pytest.raises(typer.Exit) as exit_:
            command()
        assert exit_.value.exit_code == 130
        assert capsys.readouterr().err == ("interrupted by SIGINT (Ctrl-C); finished work is kept and reused on the "
                                           "next run\n")


def test_ctrl_c_again_during_the_clean_up_exits_130_with_its_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Where a library replaced the command's SIGINT handler, a second Ctrl-C raises inside the clean-up:
    it escaped the handler, exit 130 and nothing said."""
    def second_ctrl_c(err: KeyboardInterrupt) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_errors, "_end_runs", second_ctrl_c)

    @handles_errors
    def command() -> None:
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as exit_:
        command()
    assert exit_.value.exit_code == 130
    assert capsys.readouterr().err == ("interrupted by SIGINT (Ctrl-C), and again during the clean-up: finished work "
                                       "is kept and reused on the next run, which ends the runs left RUNNING\n")


@pytest.fixture
def ctrl_c_interrupts() -> Iterator[None]:
    """Python's own Ctrl-C handling, as in a terminal: a test run in a shell script's background job
    (a CI step) starts with SIGINT ignored, which a command rightly keeps."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("first, second", [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT),
                                           (signal.SIGINT, signal.SIGTERM), (signal.SIGTERM, signal.SIGTERM)])
def test_a_second_interruption_while_the_runs_end_is_shielded_from(
        tracking_uri: str, first: int, second: int, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], ctrl_c_interrupts: None) -> None:
    """Ctrl-C again while a run was being ended KILLED escaped into MLflow's exit, which ended the
    run FAILED without its reason (and printed the tracebacks of the finalisers it landed in)."""
    from mlsandbox.tracking import _runs

    release = _runs.release_interrupted_work

    def pressed_again(err: BaseException) -> None:  # the user presses Ctrl-C again as the clean-up starts
        if not pressed:  # once (each run's clean-up releases)
            pressed.append(os.kill(os.getpid(), second))
            time.sleep(0.2)  # the handler runs here
        release(err)

    pressed: list[None] = []

    monkeypatch.setattr(_runs, "release_interrupted_work", pressed_again)
    ids = []

    @handles_errors
    def command() -> None:
        with tracking.parent_run("workflow", _experiment(), {tracking.KIND: "workflow"}) as parent:
            ids.append(parent.info.run_id)
            with tracking.child_run("cell", {tracking.KIND: "cell"}) as child:
                ids.append(child.info.run_id)
                os.kill(os.getpid(), first)
                time.sleep(5)

    with pytest.raises(typer.Exit) as exit_:
        command()
    reason = "interrupted by SIGINT (Ctrl-C)" if first == signal.SIGINT else "terminated by SIGTERM"
    assert exit_.value.exit_code == 128 + first
    assert [(_run(i).info.status, _run(i).data.tags.get(tracking.END_REASON)) for i in ids] == [("KILLED", reason)] * 2
    err = capsys.readouterr().err  # after MLflow's own lines
    said = f"{cli_errors.AGAIN_TO_STOP}\n" if second == signal.SIGINT else ""  # a second SIGTERM is ignored
    assert err.endswith(f"\n{said}{reason}; finished work is kept and reused on the next run\n")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # pytest's own handling is back


def test_a_sigterm_that_a_library_turned_into_a_plain_interrupt_still_reads_as_sigterm(tracking_uri: str) -> None:
    """Ray's wait raises a fresh KeyboardInterrupt for what our SIGTERM handler raised: the command
    exited 130 and its runs read "interrupted by SIGINT (Ctrl-C)"."""
    ids = []

    @handles_errors
    def command() -> None:
        with tracking.parent_run("workflow", _experiment(), {tracking.KIND: "workflow"}) as parent:
            ids.append(parent.info.run_id)
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except Terminated:
                raise KeyboardInterrupt from None  # as Ray's wait does

    with pytest.raises(typer.Exit) as exit_:
        command()
    assert exit_.value.exit_code == 128 + signal.SIGTERM
    run = _run(ids[0])
    assert (run.info.status, run.data.tags[tracking.END_REASON]) == ("KILLED", "terminated by SIGTERM")


def test_a_failure_ends_the_run_failed_with_the_reason(tracking_uri: str) -> None:
    with pytest.raises(ValueError):
        with tracking.parent_run("workflow", _experiment(), {tracking.KIND: "workflow"}) as parent:
            raise ValueError("boom")
    run = _run(parent.info.run_id)
    assert (run.info.status, run.data.tags[tracking.END_REASON]) == ("FAILED", "failed: ValueError: boom")


def test_an_exit_of_the_process_mid_run_ends_it_killed_with_the_reason(tracking_uri: str) -> None:
    """Ray's workers turn SIGTERM (their driver gone) into SystemExit: a stop, not a failure."""
    with pytest.raises(SystemExit):
        with tracking.parent_run("workflow", _experiment(), {tracking.KIND: "workflow"}) as parent:
            raise SystemExit("The process receives a SIGTERM.")
    run = _run(parent.info.run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags[tracking.END_REASON] == "its process was stopped (The process receives a SIGTERM.)"


def test_a_failure_that_names_the_tracking_password_ends_the_run_and_the_command_without_it(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's request errors quote the URL, password included: neither the run's end reason nor
    the traceback the command prints may carry it."""
    secret = "Zq8SECRETpw77"
    experiment = _experiment()

    @handles_errors
    def command() -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # the store this test can reach
        with tracking.parent_run("workflow", experiment, {tracking.KIND: "workflow"}) as parent:
            ran.append(parent.info.run_id)
            raise RuntimeError(f"API request to http://alice:{secret}@127.0.0.1:5056/api failed") from OSError(secret)

    ran: list[str] = []
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{secret}@127.0.0.1:5056")  # what the command reads
    with pytest.raises(RuntimeError) as raised:
        command()
    assert secret not in str(raised.value) and raised.value.__cause__ is None
    assert "API request to http://alice:***@127.0.0.1:5056/api failed" in str(raised.value)
    reason = _run(ran[0]).data.tags[tracking.END_REASON]
    assert secret not in reason and "alice:***@" in reason


def _closed_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_tracking_server_lost_mid_command_ends_it_in_one_line_and_the_clean_up_fails_fast(
    tracking_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow retries each request for minutes: the run's end reason and its end, one after the
    other, once took a lost server's command some 14 minutes and ended in ten chained tracebacks."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # restored after the test, as is the timeout
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    gone = f"http://alice:Zq8SECRETpw77@127.0.0.1:{_closed_port()}"
    experiment = _experiment()

    @handles_errors
    def command() -> None:
        with tracking.parent_run("workflow", experiment, {tracking.KIND: "workflow"}) as parent:
            ran.append(parent.info.run_id)
            mlflow.MlflowClient(gone).get_run(parent.info.run_id)  # the server is down now

    ran: list[str] = []
    with pytest.raises(typer.Exit) as raised:
        command()
    assert raised.value.exit_code == 2
    printed = capsys.readouterr().err
    line = printed.strip().splitlines()[-1]
    assert line.startswith("error: the tracking server stopped answering (API request to http://alice:***@127.0.0.1:")
    assert "Max retries exceeded);" in line and line.endswith("run the same command again once it answers")
    assert "Traceback" not in printed and "Zq8SECRETpw77" not in printed
    assert (os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"], os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"]) == ("0", "5")
    assert tracking.store_lost(raised.value.__context__) and _run(ran[0]).info.status == "FAILED"


def test_an_error_that_is_not_a_lost_server_is_not_taken_for_one() -> None:
    assert not tracking.store_lost(mlflow.exceptions.MlflowException("RESOURCE_DOES_NOT_EXIST: run 'x' not found"))
    assert not tracking.store_lost(ValueError("boom"))


def test_the_heartbeat_of_a_running_run_moves_on(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSANDBOX_HEARTBEAT_S", "0.2")
    with tracking.parent_run("workflow", _experiment(), {tracking.KIND: "workflow"}) as parent:
        first = parent.data.tags[tracking.HEARTBEAT]
        deadline = time.time() + 5
        while _run(parent.info.run_id).data.tags[tracking.HEARTBEAT] == first and time.time() < deadline:
            time.sleep(0.1)
        assert _run(parent.info.run_id).data.tags[tracking.HEARTBEAT] > first


# --- A real `mlsandbox workflow --quick`, killed mid-cell ------------------------------------------------

TRAINER = """\
import json, os, sys, time
pool_file, benchmarks_file, metrics_file, state = sys.argv[1:5]
texts = [json.loads(line)["text"] for line in open(pool_file) if line.strip()]
count = os.path.join(state, "count")
n = int(open(count).read()) + 1 if os.path.exists(count) else 1
open(count, "w").write(str(n))
if n == int(os.environ.get("BLOCK_AT", "0")):  # the kill lands while this cell trains
    open(os.path.join(state, "blocked"), "w").write(str(os.getpid()))
    time.sleep(120)
size = sum(len(t) for t in texts) / len(texts)
alnum = sum(c.isalnum() for t in texts for c in t) / max(1, sum(len(t) for t in texts))
names = json.load(open(benchmarks_file))
json.dump({"benchmarks": {b: {"bpb": 6 + (i + 1) * alnum + size / 100 * (1 if i else -0.5)}
                          for i, b in enumerate(names)}}, open(metrics_file, "w"))
"""


@pytest.fixture
def killable_project(tmp_path: Path) -> Path:
    """A tiny project whose command trainer blocks on its BLOCK_AT-th call (the n-th cell trained)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "trainer.py").write_text(TRAINER)
    docs = [("the cat sat on the mat " * (1 + i % 7)) if i % 3 == 0 else
            f"Document {i}: a clean sentence about topic number {i}." if i % 3 == 1 else
            "!!!" * (i % 5 + 1) + f" ### {i} ###" for i in range(120)]
    write_jsonl(project / "corpus.jsonl", [{"id": f"doc-{i:03d}", "text": t} for i, t in enumerate(docs)])
    write_jsonl(project / "clean.jsonl", [{"text": f"A clean sentence about topic {i}."} for i in range(10)])
    write_jsonl(project / "cats.jsonl", [{"text": f"the cat sat on mat {i}"} for i in range(10)])
    spec = {
        "name": "killed", "dataset": {"path": "corpus.jsonl"}, "workspace": str(tmp_path / "ws"),
        "ops": [{"name": "text_length_filter"}, {"name": "alphanumeric_filter"}], "stats": {"workers": 1},
        "model": {"type": "command", "timeout_s": 300,
                  "command": [sys.executable, str(project / "trainer.py"), "{pool_file}", "{benchmarks_file}",
                              "{metrics_file}", str(tmp_path)]},
        "benchmarks": [{"name": "clean", "path": "clean.jsonl"}, {"name": "cats", "path": "cats.jsonl"}],
        "refine": {"top_k": 2, "duplication": [1, 2], "min_pool_size": 3},
        "quick": {"seeds": [0]},  # --quick keeps the command trainer
    }
    (project / "sandbox.yaml").write_text(yaml.safe_dump(spec))
    return project


def _workflow(project: Path, tracking_uri: str, block_at: int = 0) -> subprocess.Popen[str]:
    scratch = project.parent / "scratch"  # the cells' scratch folders, to see what a kill leaves
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "BLOCK_AT": str(block_at), "TMPDIR": str(scratch)}
    return subprocess.Popen([sys.executable, "-m", "mlsandbox.cli", "workflow", "--quick", "-q", "-p", str(project)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_mid_cell(proc: subprocess.Popen[str], state: Path, signum: int) -> tuple[int, str]:
    """Wait until a cell trains, send ``signum``; the exit code and output."""
    blocked = state / "blocked"
    deadline = time.time() + 120
    while not blocked.exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the workflow never reached the blocking cell:\n{proc.communicate()[0]}")
        time.sleep(0.1)
    proc.send_signal(signum)
    out = proc.communicate(timeout=60)[0]
    trainer = int(blocked.read_text())
    if signum == signal.SIGKILL:  # nothing ran in the sandbox: its trainer, in a session of its own, outlives it
        os.kill(trainer, signal.SIGKILL)
    else:  # the sandbox took its trainer down before it exited
        with pytest.raises(ProcessLookupError):
            os.kill(trainer, 0)
    blocked.unlink()
    return proc.returncode, out


def _experiment_runs() -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("killed")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def _finished_after_rerun(proc: subprocess.Popen[str]) -> tuple[list[mlflow.entities.Run], list[mlflow.entities.Run]]:
    """Wait for the re-run; check it finished, left nothing RUNNING and trained no cell twice.
    Every run of the experiment, and the finished cells."""
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    runs = _experiment_runs()
    assert [r.info.status for r in runs].count("RUNNING") == 0
    finished = [r for r in runs if r.info.status == "FINISHED" and CELL in r.data.tags]
    keys = collections.Counter(r.data.tags[CELL] for r in finished)
    assert keys and max(keys.values()) == 1  # no cell trained twice
    return runs, finished


@pytest.mark.slow
def test_a_workflow_killed_or_terminated_mid_cell_leaves_nothing_running(
    killable_project: Path, tmp_path: Path, tracking_uri: str
) -> None:
    # kill -9 while the 4th cell trains: nothing can run in the process; its runs stay RUNNING.
    code, out = _kill_mid_cell(_workflow(killable_project, tracking_uri, block_at=4), tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    (first,) = [r for r in _experiment_runs() if r.data.tags[tracking.KIND] == "workflow"]
    assert first.info.status == "RUNNING"
    assert len(list((tmp_path / "scratch").glob("mlsandbox-*-cell-*"))) == 1  # the killed cell's

    # The next start ends them KILLED; SIGTERM while its 3rd new cell trains ends its own runs KILLED.
    code, out = _kill_mid_cell(_workflow(killable_project, tracking_uri, block_at=7), tmp_path, signal.SIGTERM)
    assert code == 143, out
    assert "terminated by SIGTERM" in out and "Traceback" not in out
    runs = {r.info.run_id: r for r in _experiment_runs()}
    assert runs[first.info.run_id].info.status == "KILLED"
    assert "no longer exists" in runs[first.info.run_id].data.tags[tracking.END_REASON]
    killed = [r for r in runs.values() if r.info.status == "KILLED"]
    assert len(killed) == 4  # two workflow runs and the cell each was training
    assert collections.Counter(r.data.tags[tracking.END_REASON] for r in killed)["terminated by SIGTERM"] == 2
    assert not list((tmp_path / "scratch").glob("mlsandbox-*"))  # its own, and the killed cell's

    # A re-run finishes, trains only what is missing, and holds every cell.
    runs_now, finished = _finished_after_rerun(_workflow(killable_project, tracking_uri))
    (last,) = [r for r in runs_now if r.data.tags[tracking.KIND] == "workflow" and r.info.status == "FINISHED"]
    assert {r.data.tags[tracking.PARENT_RUN_ID] for r in finished} == {last.info.run_id}
    reused = [r for r in finished if tracking.TRAINED_UNDER in r.data.tags]  # moved from the killed runs
    assert len(reused) == 5 == last.data.metrics["probe.cells_reused"]


# --- A real `mlsandbox search`, killed mid-cell ---------------------------------------------------------


def _search(project: Path, tracking_uri: str, block_at: int = 0) -> subprocess.Popen[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "BLOCK_AT": str(block_at)}
    argv = [sys.executable, "-m", "mlsandbox.cli", "search", "--quick", "-q", "-p", str(project), "-n", "3",
            "--worker", "0", "--set", "search.min_pool_size=3", "--set", "search.warm_start.workflow=false"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_a_search_killed_or_terminated_mid_cell_leaves_nothing_running(
    killable_project: Path, tmp_path: Path, tracking_uri: str
) -> None:
    code, _ = _kill_mid_cell(_search(killable_project, tracking_uri, block_at=2), tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    code, out = _kill_mid_cell(_search(killable_project, tracking_uri, block_at=4), tmp_path, signal.SIGTERM)
    assert code == 143, out
    assert "Traceback" not in out

    runs, _ = _finished_after_rerun(_search(killable_project, tracking_uri))
    trials = [r for r in runs if r.data.tags.get(tracking.KIND) == "trial" and r.info.status == "FINISHED"]
    assert len(trials) == 3


def test_a_new_sqlite_store_is_put_in_place_only_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsandbox.tracking._store import create_sqlite_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    builds = mlflow.MlflowClient.search_experiments

    def killed(self: object, *args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt  # the process stops while MLflow builds the tables
    monkeypatch.setattr(mlflow.MlflowClient, "search_experiments", killed)
    with pytest.raises(KeyboardInterrupt):
        create_sqlite_store(uri)
    assert list(tmp_path.iterdir()) == []  # no half-built store where the next command looks
    monkeypatch.setattr(mlflow.MlflowClient, "search_experiments", builds)
    create_sqlite_store(uri)
    assert [p.name for p in tmp_path.iterdir()] == ["mlflow.db"]
    assert [e.name for e in mlflow.MlflowClient(tracking_uri=uri).search_experiments()] == ["Default"]
    with closing(sqlite3.connect(tmp_path / "mlflow.db")) as store:  # the mode every later connection gets
        assert store.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_stores_connections_sync_at_checkpoints_and_other_databases_keep_their_setting(
        tmp_path: Path, tracking_uri: str) -> None:
    """In write-ahead-log mode, SQLite's NORMAL sync loses no commit when a process is killed: the
    tracking store's connections use it; any other database keeps SQLite's default (FULL, 2)."""
    from sqlalchemy import create_engine, text

    tracking.check_tracking_store()
    other = tmp_path / "other.db"
    with closing(sqlite3.connect(other)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")

    def synchronous(path: Path) -> int:
        engine = create_engine(f"sqlite:///{path}")
        with engine.connect() as connection:
            return int(connection.execute(text("PRAGMA synchronous")).scalar_one())

    assert synchronous(tmp_path / "mlflow.db") == 1 and synchronous(other) == 2


def test_stats_workers_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = (
        "import logging, os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from multiprocessing import get_context\n"
        "from mlsandbox.stats._local import _init_worker\n"
        "context = get_context('spawn')\n"
        "pool = ProcessPoolExecutor(1, mp_context=context, initializer=_init_worker,\n"
        "                           initargs=(context.Queue(), logging.WARNING, os.getpid()))\n"
        "print(pool.submit(os.getpid).result(), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert pid_exists(worker)
        parent.kill()  # SIGKILL: the parent cannot stop its workers
        parent.wait()
        deadline = time.monotonic() + 20
        while pid_exists(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not pid_exists(worker)
    finally:
        parent.kill()


def test_a_continued_run_drops_the_reason_it_stopped_before(tracking_uri: str) -> None:
    run_id = _orphan({**tracking.owner_tags(), tracking.END_REASON: "terminated by SIGTERM"})
    mlflow.MlflowClient().set_terminated(run_id, "KILLED")
    with tracking.continue_run(run_id):
        assert tracking.END_REASON not in _run(run_id).data.tags
    assert _run(run_id).info.status == "FINISHED"


def test_a_cluster_process_reaches_the_store_as_the_driver_does(tracking_uri: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries, timeouts and credentials the user set for the MLflow client travel with the store."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")
    monkeypatch.setenv("UNRELATED", "x")
    environment = tracking.run_environment()
    assert environment["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2" and environment["MLFLOW_TRACKING_TOKEN"] == "tok"
    assert environment["MLFLOW_TRACKING_URI"] == tracking_uri and "UNRELATED" not in environment


def _workflow_run(name: str, tags: dict[str, str]) -> str:
    """A RUNNING `workflow` run of the experiment ``lifecycle`` with ``tags``."""
    return mlflow.MlflowClient().create_run(_experiment(), run_name=name, tags={
        tracking.KIND: "workflow", tracking.ENTRY_POINT: "workflow", tracking.PROJECT: "lifecycle", **tags}).info.run_id


def test_the_report_of_a_run_whose_process_was_killed_ends_it_and_is_logged(tracking_uri: str, tmp_path: Path) -> None:
    """kill -9 left the run RUNNING: it will never log its own report, so `report` ends it KILLED and logs it."""
    from typer.testing import CliRunner

    from mlsandbox.cli import app

    run_id = _workflow_run("workflow", {**tracking.owner_tags(), tracking.OWNER_PID: str(_dead_pid())})
    out = CliRunner().invoke(app, ["report", run_id, "--out", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    assert "not logged" not in out.output and "still RUNNING" not in out.output
    run = _run(run_id)
    assert run.info.status == "KILLED" and "no longer exists" in run.data.tags[tracking.END_REASON]
    assert "- status: KILLED (owner process" in (tmp_path / "r" / "report.md").read_text()
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "report")}
    assert {"report/report.md", "report/report.html"} <= logged


def test_a_report_killed_while_written_never_leaves_one_runs_files_beside_anothers(
    tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlsandbox.artifacts import RANKING_FIGURE
    from mlsandbox.workflows.report import build_report

    first, second = (_workflow_run(name, tracking.owner_tags()) for name in ("first", "second"))
    figure = tmp_path / "ranking.png"
    figure.write_bytes(b"\x89PNG first")
    mlflow.MlflowClient().log_artifact(first, str(figure), RANKING_FIGURE.rpartition("/")[0])
    for run_id in (first, second):
        mlflow.MlflowClient().set_terminated(run_id, "FINISHED")
    out = tmp_path / "out"
    build_report(first, out)
    assert (out / RANKING_FIGURE).exists()
    write_text = Path.write_text

    def killed_before_the_html(self: Path, data: str, **kwargs: str | None) -> int:
        if self.name.startswith("report.html"):
            raise KeyboardInterrupt
        return write_text(self, data, **kwargs)

    monkeypatch.setattr(Path, "write_text", killed_before_the_html)
    with pytest.raises(KeyboardInterrupt):
        build_report(second, out)
    monkeypatch.undo()
    left = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert not any(first.encode() in content for content in left.values()), sorted(left)
    assert set(left) <= {"report.md", "report.html"}  # the first run's figure is gone, no temporaries
    page, md = build_report(second, out)
    assert second in page.read_text() and second in md.read_text() and not (out / RANKING_FIGURE).exists()


def test_a_signal_after_the_command_is_done_leaves_its_exit_code() -> None:
    """Python's shutdown takes a second or two after the last line: a SIGTERM then (a scheduler's
    timeout) turned a finished, reported command into exit code 143. It now ends it at once, with
    the command's own exit code (0 here, 2 after bad input)."""
    script = ("import atexit, os, signal, sys, time\nfrom mlsandbox.cli import program\nsys.argv = ['mlsandbox'] + sys.argv[1:]\n"
              "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(30)))  # during the shutdown\n"
              "program()")
    for argv, code in ((["--version"], 0), (["stats", "-p", "/no/such/project"], 2)):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120)
        assert done.returncode == code, done.stderr
        assert time.monotonic() - started < 25  # not the 30 s the shutdown would have slept


def test_a_signal_ignored_when_the_command_starts_stays_ignored() -> None:
    """A background job of a shell script starts with SIGINT ignored (so a Ctrl-C aimed at the script
    spares it): the command installed its own handler and stopped there too."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        @handles_errors
        def command() -> object:
            return signal.getsignal(signal.SIGINT)

        assert command() is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_interruption_re_sent_after_a_finaliser_never_reaches_the_caller(ctrl_c_interrupts: None) -> None:
    """The re-sent signal of an interruption swallowed by a finaliser fired 0.1 s later, after a
    command that returned at once: a KeyboardInterrupt in its caller's code."""
    @handles_errors
    def command() -> str:
        _SignalledWhileFinalised(signal.SIGINT)  # collected at once
        return "done"

    assert command() == "done"
    time.sleep(0.5)  # where the stray signal landed
