"""Files are published whole or not at all, and killed writers' leftovers are removed."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mlsandbox import files

WRITER = """\
import sys, time
from pathlib import Path
from mlsandbox.files import published
with published(Path(sys.argv[1])) as tmp, tmp.open("w") as f:
    f.write("half of a pool file\\n")
    f.flush()
    Path(sys.argv[2]).touch()
    time.sleep(120)  # killed here
    f.write("the other half\\n")
"""


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_published_file_appears_only_whole(tmp_path: Path) -> None:
    target = tmp_path / "pools" / "pool.jsonl"
    with files.published(target) as tmp:
        tmp.write_text("one\n")
        assert not target.exists()
    assert target.read_text() == "one\n"

    with pytest.raises(RuntimeError), files.published(target) as tmp:
        tmp.write_text("two, cut short")
        raise RuntimeError("the writer failed")
    assert target.read_text() == "one\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["pool.jsonl"]


def test_a_writer_killed_mid_write_leaves_no_file_and_its_leftover_goes_next_time(tmp_path: Path) -> None:
    target, started = tmp_path / "pools" / "pool.jsonl", tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(started)])
    deadline = time.time() + 60
    while not started.exists():
        assert proc.poll() is None and time.time() < deadline, "the writer never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (leftover,) = target.parent.iterdir()
    assert not target.exists() and leftover.name.startswith("pool.jsonl.tmp-")

    with files.published(target) as tmp:  # the next writer into that folder
        tmp.write_text("whole\n")
    assert [p.name for p in target.parent.iterdir()] == ["pool.jsonl"]


def test_only_the_leftovers_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / f"stats.parquet.tmp-{files._HERE}-{_dead_pid()}"
    live = tmp_path / f"other.parquet.tmp-{files._HERE}-{os.getppid()}"  # a writer still at work
    # a writer on another machine of a shared disk, or in another pid namespace under the same host name
    elsewhere = tmp_path / "third.parquet.tmp-0123456789ab-1"
    odd = tmp_path / f"fourth.parquet.tmp-{files._HERE}-{10 ** 30}"  # no such pid: a stray name
    journal = tmp_path / f".mlflow.db.built.tmp-{files._HERE}-{_dead_pid()}-journal"  # SQLite's, beside a store
    other_suffix = tmp_path / f"fifth.tmp-{files._HERE}-{_dead_pid()}-mine"  # not a temporary of ours
    for path in (dead, live, elsewhere, odd, journal, other_suffix):
        path.write_text("partial")
    files.sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name, other_suffix.name])


def test_a_leftover_of_an_earlier_process_with_this_pid_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "model"
    stale = tmp_path / f"model.tmp-{files._HERE}-{os.getpid()}"
    stale.mkdir()
    (stale / "half.bin").write_text("from before a restart")
    with files.published(target) as tmp:
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")
    assert sorted(p.name for p in target.iterdir()) == ["config.json"] and not stale.exists()


def test_a_directory_published_first_by_another_process_wins(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("first")
    with files.published(target) as tmp:
        tmp.mkdir()
        (tmp / "config.json").write_text("second")
    assert (target / "config.json").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_scratch_folders_of_killed_processes_are_removed_by_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(files, "_SWEPT", set())
    monkeypatch.setattr(files, "_SCRATCH_SWEPT", set())
    killed = [tmp_path / f"mlsandbox-{files._HERE}-{_dead_pid()}-{use}-abc123" for use in ("cell", "report")]
    killed.append(tmp_path / f"mlsandbox-cell-{files._HERE}-{_dead_pid()}-abc123")  # an earlier version's name
    running = tmp_path / f"mlsandbox-{files._HERE}-{os.getppid()}-cell-def456"
    other = tmp_path / "tmpq1w2e3r4"  # not ours
    files.sweep(tmp_path)  # a file written there first does not stop the scratch folders' own sweep
    for folder in (*killed, running, other):
        (folder / "work").mkdir(parents=True)
    with files.scratch_folder("probe") as folder:
        assert folder.parent == tmp_path and folder.is_dir() and f"-{os.getpid()}-probe-" in folder.name
        assert not any(k.exists() for k in killed) and running.exists() and other.exists()
    assert not folder.exists()


def test_a_scratch_folder_that_cannot_be_removed_does_not_replace_the_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's download threads still writing into it at a Ctrl-C: `Directory not empty` was raised instead."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def still_written(path: str, onerror: object = None, **kwargs: object) -> None:
        try:
            raise OSError(errno.ENOTEMPTY, "Directory not empty", path)
        except OSError:
            onerror(os.rmdir, path, sys.exc_info())  # type: ignore[operator]

    monkeypatch.setattr(tempfile._shutil, "rmtree", still_written)  # type: ignore[attr-defined]
    with pytest.raises(KeyboardInterrupt), files.scratch_folder("report"):
        raise KeyboardInterrupt


HOLDER = """\
import sys, time
from pathlib import Path
from mlsandbox.locks import exclusive
with exclusive(Path(sys.argv[1]), "work"):
    Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[3]))
"""


@pytest.mark.parametrize("ends", ["finishes", "is killed"])
def test_a_held_lock_is_waited_for_with_a_word_and_released_by_a_killed_holder(tmp_path: Path, caplog, ends: str) -> None:
    import logging

    from mlsandbox.locks import exclusive

    lock, ready = tmp_path / "locks" / "cell.lock", tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(ready), "1.5" if ends == "finishes" else "120"])
    while not ready.exists():
        assert holder.poll() is None, "the holder died"
        time.sleep(0.05)
    if ends == "is killed":
        killer = subprocess.Popen([sys.executable, "-c", f"import os, time; time.sleep(1); os.kill({holder.pid}, 9)"])
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="mlsandbox.progress"), exclusive(lock, "cell p/low seed 0") as told:
        waited = time.monotonic() - started
    holder.wait()
    if ends == "is killed":
        killer.wait()
    assert waited > 0.5 and f"which holds {lock}, to finish cell p/low seed 0" in caplog.text
    assert told  # the holder may have done the work meanwhile
    with exclusive(lock, "cell p/low seed 0") as told_again:
        assert not told_again  # nobody held it this time


def test_a_long_wait_for_a_lock_says_so_again_while_it_lasts(tmp_path: Path, caplog, monkeypatch) -> None:
    """The progress lines' promise (one at least every 30 s) holds while a command waits."""
    import logging

    from mlsandbox import locks

    monkeypatch.setattr(locks, "WAIT_LINE_S", 0.2)
    lock, ready = tmp_path / "locks" / "stats.lock", tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(ready), "1.5"])
    while not ready.exists():
        assert holder.poll() is None, "the holder died"
        time.sleep(0.05)
    with caplog.at_level(logging.INFO, logger="mlsandbox.progress"), locks.exclusive(lock, "the stats") as told:
        assert told
    holder.wait()
    again = [r.getMessage() for r in caplog.records if r.getMessage().startswith("still waiting (")]
    assert len(again) >= 3 and again[0].endswith(f"for another process, which holds {lock}, to finish the stats")
