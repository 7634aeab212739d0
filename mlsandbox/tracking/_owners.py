"""Who owns a run (host, pid, process start) and its heartbeat; ending runs whose owner is gone."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow.entities import Run, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException

from mlsandbox.files import machine, pid_exists
from mlsandbox.tracking._names import (
    END_REASON,
    HEARTBEAT,
    HEARTBEAT_S,
    OWNER_HOST,
    OWNER_PID,
    OWNER_PROCESS,
    OWNER_STARTED,
    SHARED,
    STALE_AFTER_S,
)

log = logging.getLogger(__name__)


#: The run ``mlflow run`` made for this command (``MLFLOW_RUN_ID``), owned from the command's first step.
CLAIMED: list[str] = []


def claim(run_id: str) -> None:
    """Name this process the owner of ``mlflow run``'s run, from the command's first step: owned only once
    the command's own run started (after the stats), a kill during the stats left it RUNNING for good."""
    if run_id not in CLAIMED:
        mlflow.MlflowClient().log_batch(run_id, tags=[RunTag(key, value) for key, value in owner_tags().items()])
        HEARTBEATS.add(run_id)
        CLAIMED.append(run_id)


def owner_tags() -> dict[str, str]:
    """The tags that name this process as a run's owner, and its first heartbeat."""
    me = _this_process()
    return {OWNER_HOST: me.host, OWNER_PID: str(me.pid), OWNER_STARTED: me.started, OWNER_PROCESS: me.token,
            HEARTBEAT: _iso(time.time())}


class _Process:
    """Who runs this code: host, pid, start time, and (Linux) an exact identity token."""

    def __init__(self) -> None:
        self.host = socket.gethostname()
        self.pid = os.getpid()
        ticks = _start_ticks(self.pid)
        boot = _boot_time()
        self.started = _iso(boot + ticks / _CLOCK_TICKS) if ticks is not None and boot is not None else ""
        self.machine = machine()
        self.token = f"{self.machine}/{ticks}" if self.machine and ticks is not None else ""


_ME: _Process | None = None


def _this_process() -> _Process:
    global _ME
    if _ME is None or _ME.pid != os.getpid():  # a forked child is another process
        _ME = _Process()
    return _ME


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") and "SC_CLK_TCK" in os.sysconf_names else 100


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux); None if it does not exist
    or this is not Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) is in parentheses and may hold spaces.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    try:
        return float(value) if value else default
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %g", name, value, default)
        return default


def heartbeat_interval() -> float:
    """Seconds between two heartbeats: ``MLSANDBOX_HEARTBEAT_S``, default :data:`HEARTBEAT_S`."""
    return max(0.1, _env_seconds("MLSANDBOX_HEARTBEAT_S", HEARTBEAT_S))


def stale_after() -> float:
    """Heartbeat age after which another machine's run counts as abandoned: ``MLSANDBOX_STALE_AFTER_S``,
    default :data:`STALE_AFTER_S`."""
    return _env_seconds("MLSANDBOX_STALE_AFTER_S", STALE_AFTER_S)


class _Heartbeat:
    """Refreshes the ``mlsandbox.heartbeat`` tag of the runs this process owns, from a daemon thread."""

    def __init__(self) -> None:
        self._runs: dict[str, str] = {}  # run id -> tracking URI
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last = 0.0

    def add(self, run_id: str) -> None:
        with self._lock:
            self._runs[run_id] = mlflow.get_tracking_uri()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="mlsandbox-heartbeat", daemon=True)
                self._thread.start()

    def discard(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def beat(self, min_interval: float = 0.0) -> None:
        if time.monotonic() - self._last < min_interval:
            return
        self._last = time.monotonic()
        with self._lock:
            runs = dict(self._runs)
        now = _iso(time.time())
        for run_id, uri in runs.items():
            try:
                mlflow.MlflowClient(uri).set_tag(run_id, HEARTBEAT, now)
            except Exception as err:  # a store that is down now is no reason to stop the work
                log.debug("heartbeat of run %s failed: %s", run_id, err)

    def _loop(self) -> None:
        last = time.monotonic()
        while True:
            interval = heartbeat_interval()
            time.sleep(min(1.0, interval))  # a changed interval applies within a second
            if time.monotonic() - last >= interval:
                last = time.monotonic()
                self.beat()


HEARTBEATS = _Heartbeat()


def heartbeat() -> None:
    """Record a sign of life on every run this process owns (at most every few seconds; a timer
    does it every :func:`heartbeat_interval` seconds anyway). Cells call it at their boundaries."""
    HEARTBEATS.beat(min_interval=min(5.0, heartbeat_interval()))


def reconcile_stale_runs(experiment_id: str, stale_after_s: float | None = None) -> list[str]:
    """End KILLED every run of the experiment left RUNNING by a process that no longer exists.

    A run's owner is read from its tags (:func:`owner_tags`). On this machine (same host name,
    boot and pid namespace), the owner is gone when its pid no longer exists or now belongs to a
    process that started at another time. On another machine, it is gone when the run's
    heartbeat is older than ``stale_after_s`` (default :func:`stale_after`, 10 minutes). After a
    reboot of this machine, the runs of before the reboot are gone. Runs without owner tags (not
    started by mlsandbox) are left alone.

    Each ended run gets the reason in ``mlsandbox.end_reason`` and its last heartbeat as end
    time. Safe to call from any number of processes at once. Returns the ids of the runs ended.
    """
    limit = stale_after() if stale_after_s is None else stale_after_s
    client = mlflow.MlflowClient()
    ended = []
    now = time.time()
    for run in _running_runs(client, experiment_id):
        reason = _why_abandoned(run, now, limit)
        if reason is None:
            continue
        last = _seconds(run.data.tags.get(HEARTBEAT))
        end_ms = max(run.info.start_time or 0, int(last * 1000) if last is not None else 0) or None
        try:
            client.set_tag(run.info.run_id, END_REASON, reason)
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED), end_time=end_ms)
        except MlflowException as err:  # deleted meanwhile, or a store that refuses: the next start retries
            log.warning("could not end abandoned run %s: %s", run.info.run_id, err)
            continue
        log.warning("run %s (%s) was left RUNNING: %s; marked KILLED", run.info.run_id, run.info.run_name, reason)
        ended.append(run.info.run_id)
    return ended


def _running_runs(client: mlflow.MlflowClient, experiment_id: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", ViewType.ACTIVE_ONLY,
                                  max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _why_abandoned(run: Run, now: float, stale_after_s: float) -> str | None:
    """Why the run's owner is gone, or None while it may be alive (or the run names no owner)."""
    tags = run.data.tags
    if not _names_owner(tags):
        return None
    here, gone = _inspect_owner(tags)
    if here and tags.get(SHARED) != "true":
        return gone
    last = _seconds(tags.get(HEARTBEAT))
    if last is None:
        last = (run.info.start_time or 0) / 1000
    if now - last > stale_after_s:
        return f"no heartbeat from owner {_owner(tags)} for {now - last:.0f} s (limit {stale_after_s:.0f} s)"
    return None


def owner_gone(tags: Mapping[str, str]) -> str | None:
    """Why the process that the owner tags (:func:`owner_tags`) name is gone, where this machine can
    tell; None while it lives, or when it runs elsewhere (another host, boot or pid namespace)."""
    return _inspect_owner(tags)[1] if _names_owner(tags) else None


def _names_owner(tags: Mapping[str, str]) -> bool:
    return bool(tags.get(OWNER_HOST)) and tags.get(OWNER_PID, "").isdigit()


def _owner(tags: Mapping[str, str]) -> str:
    return f"process {tags[OWNER_PID]} on {tags[OWNER_HOST]}"


def _inspect_owner(tags: Mapping[str, str]) -> tuple[bool, str | None]:
    """Whether this machine can inspect the owner process, and if so why it is gone (None: it lives).

    Another boot or pid namespace under the same host name (a container, a namesake machine)
    cannot be inspected from here: the heartbeat decides, as for another host.
    """
    pid, me, owner = int(tags[OWNER_PID]), _this_process(), _owner(tags)
    if tags[OWNER_HOST] != me.host:
        return False, None
    machine, _, ticks = tags.get(OWNER_PROCESS, "").rpartition("/")
    if machine and machine == me.machine:
        current = _start_ticks(pid)
        if current is None:
            return True, f"owner {owner} no longer exists"
        if str(current) != ticks:
            return True, f"owner {owner} no longer exists (pid {pid} now belongs to another process)"
        return True, None
    if not machine and not me.machine:  # no process identity here: the pid alone decides
        return True, None if pid_exists(pid) else f"owner {owner} no longer exists"
    return False, None
