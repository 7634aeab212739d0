"""MLflow conventions: experiments, parent/child runs, dataset inputs, lineage tags, metric names.

Everything the sandbox writes to MLflow goes through here, so that the names a user filters on
in the UI (``tags.mlsandbox.op = 'stopwords_filter'``) are the same in every workflow.

Run lifecycle: every run started through :func:`parent_run`, :func:`child_run` or
:func:`continue_run` records its owner (host, pid, process start time) and a heartbeat that a
timer refreshes while the run lasts. A run interrupted by SIGINT (or SIGTERM, which the command
line turns into :class:`~mlsandbox.errors.Terminated`) ends KILLED with the reason in
``mlsandbox.end_reason``. A run whose process died without ending it (``kill -9``, a crashed
machine) is ended KILLED by :func:`reconcile_stale_runs`, which every new parent run calls.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import PandasDataset, from_pandas
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.time import get_current_time_millis

from mlsandbox.data import TEXT, Dataset
from mlsandbox.errors import InvalidRunError, Terminated
from mlsandbox.pools import Pool
from mlsandbox.stats import StatsTable

if TYPE_CHECKING:  # annotations only: the models package need not load with the tracking conventions
    from mlsandbox.models import BenchmarkSet

TAG = "mlsandbox."
KIND = TAG + "kind"  # workflow | pool | cell | trial
DATASET_DIGEST = TAG + "dataset_digest"
POOL_DIGEST = TAG + "pool_digest"
OP = TAG + "op"
SPLIT = TAG + "split"
SEED = TAG + "seed"
PROJECT = TAG + "project"
ENTRY_POINT = TAG + "entry_point"

# The process that owns a run, and its last sign of life (see reconcile_stale_runs).
OWNER_HOST = TAG + "owner.host"
OWNER_PID = TAG + "owner.pid"
#: When the owning process started (ISO 8601, UTC), so that a reused pid is not taken for the owner.
OWNER_STARTED = TAG + "owner.started"
#: ``<boot id>/<pid namespace>/<start ticks>`` on Linux: the exact identity of the owning process.
OWNER_PROCESS = TAG + "owner.process"
#: ISO 8601 (UTC) time of the owner's last heartbeat.
HEARTBEAT = TAG + "heartbeat"
#: Why a run ended other than FINISHED: interrupted, terminated, failed, or found dead.
END_REASON = TAG + "end_reason"
#: On a reused cell: the run that reused it last.
REUSED_BY = TAG + "reused_by"
#: On a cell moved under the run that reused it: the run it was trained under.
TRAINED_UNDER = TAG + "trained_under"
PARENT_RUN_ID = MLFLOW_PARENT_RUN_ID

#: Seconds between two heartbeats of a run's owner (environment: ``MLSANDBOX_HEARTBEAT_S``).
HEARTBEAT_S = 60.0
#: A run owned by another machine is stale when its heartbeat is older than this
#: (environment: ``MLSANDBOX_STALE_AFTER_S``).
STALE_AFTER_S = 600.0

# MLflow caps a param value at 6000 characters; longer values (lists of OPs) are cut visibly.
_MAX_PARAM = 6000

log = logging.getLogger(__name__)


def use_experiment(name: str) -> str | None:
    """The experiment of this sandbox project, unless ``mlflow run`` or the environment chose one.

    None means: let MLflow take ``MLFLOW_EXPERIMENT_ID`` / ``MLFLOW_EXPERIMENT_NAME``.
    """
    if os.environ.get("MLFLOW_RUN_ID"):
        return mlflow.get_run(os.environ["MLFLOW_RUN_ID"]).info.experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_ID") or os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        return None
    return mlflow.set_experiment(name).experiment_id


@contextmanager
def parent_run(name: str, experiment_id: str | None, tags: Mapping[str, str]) -> Iterator[mlflow.ActiveRun]:
    """The run of one command; under ``mlflow run`` it is the project's own run.

    Before the command's work starts, runs of the experiment left RUNNING by dead processes are
    ended KILLED (:func:`reconcile_stale_runs`).
    """
    resumed = bool(os.environ.get("MLFLOW_RUN_ID"))
    tags = {**tags, **owner_tags()}
    with _owned(mlflow.start_run(run_name=name, experiment_id=experiment_id, tags=tags)) as run:
        if resumed:
            log_batch(run.info.run_id, tags=tags)  # not every MLflow version tags a resumed run
        _reconcile_quietly(run.info.experiment_id)
        yield run


@contextmanager
def child_run(name: str, tags: Mapping[str, str], parent_run_id: str | None = None) -> Iterator[mlflow.ActiveRun]:
    """A run nested in its parent (``mlflow.parentRunId``): ``parent_run_id``, which must be the
    active run, or else the active run.

    The child is the active run while it lasts, so that dataset inputs can be logged to it.
    """
    tags = {**tags, **owner_tags()}
    with _owned(mlflow.start_run(run_name=name, nested=True, parent_run_id=parent_run_id, tags=tags)) as run:
        yield run


@contextmanager
def continue_run(run_id: str, tags: Mapping[str, str] | None = None) -> Iterator[mlflow.ActiveRun]:
    """An earlier run made active again (RUNNING), owned by this process from now on.

    Use it instead of ``mlflow.start_run(run_id=...)``: without the new owner's tags the run
    would look abandoned to :func:`reconcile_stale_runs` as soon as its first owner is gone.
    Like :func:`parent_run`, it first ends the experiment's abandoned runs.
    """
    tags = {**(tags or {}), **owner_tags()}
    with _owned(mlflow.start_run(run_id=run_id)) as run:
        log_batch(run.info.run_id, tags=tags)
        _reconcile_quietly(run.info.experiment_id)
        yield run


def _reconcile_quietly(experiment_id: str) -> None:
    try:
        reconcile_stale_runs(experiment_id)
    except MlflowException as err:  # tidying up others' runs must not stop this one
        log.warning("could not look for abandoned runs: %s", err)


@contextmanager
def _owned(active: mlflow.ActiveRun) -> Iterator[mlflow.ActiveRun]:
    """The run while it lasts: kept alive by the heartbeat, ended with a reason when it does not finish.

    An interruption (SIGINT, or SIGTERM as :class:`Terminated`) ends the run KILLED; any other
    exception leaves MLflow's FAILED; both record why in ``mlsandbox.end_reason``.
    """
    run_id = active.info.run_id
    _HEARTBEAT.add(run_id)
    try:
        with active:
            try:
                yield active
            except KeyboardInterrupt as err:
                _end(run_id, RunStatus.KILLED, interruption_reason(err))
                raise
            except Exception as err:
                _tag_quietly(run_id, {END_REASON: f"failed: {type(err).__name__}: {err}"[:5000]})
                raise
    finally:
        _HEARTBEAT.discard(run_id)


def interruption_reason(err: BaseException) -> str:
    """``terminated by SIGTERM`` for :class:`Terminated`, ``interrupted by SIGINT (Ctrl-C)`` otherwise."""
    return str(err) if isinstance(err, Terminated) else "interrupted by SIGINT (Ctrl-C)"


def end_active_runs(reason: str, status: int = RunStatus.KILLED) -> list[str]:
    """End every run still active in this process (innermost first) with ``status`` and ``reason``.

    The command line calls it after an interruption, for runs started outside :func:`parent_run`
    and :func:`child_run`; those two end their own runs already.
    """
    ended: list[str] = []
    while (active := mlflow.active_run()) is not None and active.info.run_id not in ended:
        ended.append(active.info.run_id)  # a run the store failed to end stays active: stop there
        _end(active.info.run_id, status, reason)
    return ended


def _end(run_id: str, status: int, reason: str) -> None:
    """End the run with ``status`` and the reason tag; a tracking store that fails now is only logged."""
    _tag_quietly(run_id, {END_REASON: reason})
    active = mlflow.active_run()
    try:
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(RunStatus.to_string(status))
        else:
            mlflow.MlflowClient().set_terminated(run_id, RunStatus.to_string(status))
    except Exception as err:  # the run stays RUNNING; the next reconcile_stale_runs ends it
        log.warning("could not end run %s as %s: %s", run_id, RunStatus.to_string(status), err)


def _tag_quietly(run_id: str, tags: Mapping[str, str]) -> None:
    try:
        log_batch(run_id, tags=tags)
    except Exception as err:
        log.warning("could not tag run %s: %s", run_id, err)


# --- Owners and heartbeats ---------------------------------------------------------------------


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
        self.machine = _machine()
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


def _machine() -> str:
    """``<boot id>/<pid namespace>`` (Linux): processes that see the same pids; empty elsewhere."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


_HEARTBEAT = _Heartbeat()


def heartbeat() -> None:
    """Record a sign of life on every run this process owns (at most every few seconds; a timer
    does it every :func:`heartbeat_interval` seconds anyway). Cells call it at their boundaries."""
    _HEARTBEAT.beat(min_interval=min(5.0, heartbeat_interval()))


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
    host, pid_text = tags.get(OWNER_HOST), tags.get(OWNER_PID, "")
    if not host or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    me = _this_process()
    owner = f"process {pid} on {host}"
    if host == me.host:
        # Another boot or pid namespace under the same host name (a container, a namesake machine)
        # cannot be inspected from here: the heartbeat decides, as for another host.
        machine, _, ticks = tags.get(OWNER_PROCESS, "").rpartition("/")
        if machine and machine == me.machine:
            current = _start_ticks(pid)
            if current is None:
                return f"owner {owner} no longer exists"
            if str(current) != ticks:
                return f"owner {owner} no longer exists (pid {pid} now belongs to another process)"
            return None
        if not machine and not me.machine:  # no process identity here: the pid alone decides
            return None if _pid_exists(pid) else f"owner {owner} no longer exists"
    last = _seconds(tags.get(HEARTBEAT))
    if last is None:
        last = (run.info.start_time or 0) / 1000
    if now - last > stale_after_s:
        return f"no heartbeat from owner {owner} for {now - last:.0f} s (limit {stale_after_s:.0f} s)"
    return None


# --- Runs named by the user -----------------------------------------------------------------------


def find_run(run_id: str, expected: str) -> Run:
    """The run ``run_id``, or :class:`InvalidRunError` naming it and ``expected`` (what the command
    takes, e.g. "a workflow run") when the tracking store has no such run."""
    if not run_id.strip():
        raise InvalidRunError(f"a run id is required (got {run_id!r}); expected {expected}")
    try:
        return mlflow.MlflowClient().get_run(run_id)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise InvalidRunError(
                f"no run {run_id!r} in the tracking store {mlflow.get_tracking_uri()}; expected {expected}"
            ) from None
        raise


def describe_run(run: Run) -> str:
    """What kind of run this is, in words: ``a pool run``, ``a `train` run``, ``a cell``, ..."""
    tags = run.data.tags
    kind, entry = tags.get(KIND), tags.get(ENTRY_POINT)
    if kind == "workflow" and entry:
        return f"a `{entry}` run"
    if kind == "cell":
        return "a cell (training run)"
    if kind in ("pool", "trial", "search", "evaluation"):
        return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} run"
    return "a run not made by mlsandbox"


def experiment_of(run_id: str | None) -> str:
    """The experiment of the run ``run_id``, or of the active run when None."""
    if run_id is not None:
        return mlflow.get_run(run_id).info.experiment_id
    return _active_run(None).info.experiment_id


def _active_run(run_id: str | None) -> mlflow.ActiveRun:
    """The active run, checked to be ``run_id`` when one is named."""
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("no active MLflow run: start a parent run first")
    if run_id is not None and active.info.run_id != run_id:
        raise RuntimeError(f"run {run_id} is not the active MLflow run ({active.info.run_id})")
    return active


def metric_key(*parts: str) -> str:
    """A metric name from pool names: ``delta_pct.<op>.<split>``; characters MLflow rejects become ``_``."""
    name = ".".join(p.replace("/", ".").replace(" & ", "+") for p in parts)
    return re.sub(r"[^\w\-. :/]", "_", name)[:250]


def log_batch(
    run_id: str,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    step: int = 0,
) -> None:
    """Params, metrics and tags of a run in one request."""
    now = get_current_time_millis()
    mlflow.MlflowClient().log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, step) for k, v in (metrics or {}).items()],
        params=[Param(k, _param_value(v)) for k, v in (params or {}).items()],
        tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
    )


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."


def log_pool_input(
    pool: Pool, dataset: Dataset, stats: StatsTable, source: Path, context: str, run_id: str | None = None
) -> None:
    """Record the pool as an MLflow dataset input of the run (the active run), with its explicit digest.

    The logged frame holds each sample once with its repeat count and stats (the profile
    MLflow shows); the pool file is the source. MLflow's own pandas digest would hash only
    the first rows, so the pool digest is passed explicitly.
    """
    _log(_dataset(pool_frame(pool, dataset, stats), str(source), pool.name, pool.digest), context, run_id)


def log_source_input(dataset: Dataset, stats: StatsTable, run_id: str | None = None) -> None:
    """The source dataset as an input of the parent run (the active run; context ``source``)."""
    frame = stats.frame.copy()
    frame.insert(1, TEXT, dataset.table[TEXT].to_pandas())
    source: Any = dataset.uri
    if not dataset.files:  # a Hugging Face dataset by name
        from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

        source = HuggingFaceDatasetSource(path=dataset.source)
    _log(_dataset(frame, source, dataset.name, dataset.digest), "source", run_id)


# Every cell logs the same benchmark sets: build each MLflow dataset (schema, profile) once.
_BENCHMARK_DATASETS: dict[tuple[str, str, str], PandasDataset] = {}


def log_benchmark_inputs(benchmarks: BenchmarkSet, run_id: str | None = None) -> None:
    """Every benchmark of the set as an input of the run (the active run; context ``evaluation``)."""
    for bench in benchmarks.benchmarks:
        log_benchmark_input(bench.name, bench.texts, str(bench.path or bench.name), benchmarks.digests[bench.name],
                            run_id)


def log_benchmark_input(name: str, texts: list[str], source: str, digest: str, run_id: str | None = None) -> None:
    """A benchmark set as an input of the run (the active run; context ``evaluation``)."""
    key = (name, digest, source)
    if key not in _BENCHMARK_DATASETS:
        _BENCHMARK_DATASETS[key] = _dataset(pd.DataFrame({TEXT: texts}), source, name, digest)
    _log(_BENCHMARK_DATASETS[key], "evaluation", run_id)


def _dataset(frame: pd.DataFrame, source: Any, name: str, digest: str) -> PandasDataset:
    with warnings.catch_warnings():
        # Schema-inference hints about integer columns and source resolution are about model
        # signatures; a logged dataset has no missing values to encode.
        warnings.simplefilter("ignore", UserWarning)
        return from_pandas(frame, source=source, name=name, digest=digest)


def _log(dataset: PandasDataset, context: str, run_id: str | None) -> None:
    _active_run(run_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # MLflow's public API builds a dataset input only in the fluent call, which logs to the
        # active run (the client's log_inputs takes entities made by private methods).
        mlflow.log_input(dataset, context=context)


def pool_frame(pool: Pool, dataset: Dataset, stats: StatsTable) -> pd.DataFrame:
    frame = stats.frame.iloc[pool.rows].reset_index(drop=True)
    frame.insert(1, TEXT, dataset.table[TEXT].take(pool.rows).to_pandas())
    frame.insert(2, "repeat", pool.repeats)
    return frame


def pool_tags(pool: Pool, kind: str = "pool") -> dict[str, str]:
    tags = {KIND: kind, POOL_DIGEST: pool.digest, DATASET_DIGEST: pool.dataset_digest, SPLIT: pool.origin.split}
    if pool.op is not None:
        tags[OP] = pool.op
    return tags


def download_artifacts(run_id: str, artifact_path: str | None, dst: Path) -> Path:
    """A run's artifacts (or one path of them) in ``dst``, without MLflow's per-file progress bar."""
    previous = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)))
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = previous


_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def run_url(run: mlflow.ActiveRun) -> str:
    """Where to look: the UI address for a server, the store for a local database."""
    uri = mlflow.get_tracking_uri()
    info = run.info
    if uri.startswith("http"):
        return f"{uri.rstrip('/')}/#/experiments/{info.experiment_id}/runs/{info.run_id}"
    return f"run {info.run_id} in {uri} (view: mlflow ui --backend-store-uri {uri})"
