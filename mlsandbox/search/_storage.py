"""Where a study lives and how it draws: the Optuna storage, sampler and pruner, and the study itself.

The default storage is a journal file next to the MLflow store, so a study travels with its runs
without a database; any RDB URL (PostgreSQL for workers on many machines) works too, and its
password never reaches a log or a run. A storage that cannot be used (an unknown scheme, a
missing driver or folder, a refused connection) is an input error naming the storage, password
hidden.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import socket
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import mlflow
import optuna
from mlflow.exceptions import MlflowException
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection

from mlsandbox.credentials import Scrubber, redact, secrets_in
from mlsandbox.errors import SpecError, first_line
from mlsandbox.retry import retry_lost_race
from mlsandbox.search._locks import LOCKING_DIALECTS, database_lock, file_lock
from mlsandbox.search._names import DEFINITION_ATTR, PARENT_RUN_ATTR
from mlsandbox.search._space import SearchSpace, describe_space
from mlsandbox.spec import ExperimentSpec, SearchSpec
from mlsandbox.tracking import sqlite_file

log = logging.getLogger(__name__)

JOURNAL_FILE = "optuna.journal"
#: The start of a URL (a scheme of two or more characters, then a colon); a drive letter is not one.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")

# A trial left RUNNING by a worker on another machine is failed once its heartbeat is this old.
HEARTBEAT_S = 30
GRACE_S = 120
#: Study user attribute: the space its trials were drawn from (:func:`space_definition`), set by its first call.
SPACE_ATTR = "space"


@dataclass(frozen=True)
class Storage:
    """An opened Optuna storage, its printable name (password hidden) and how its workers take turns."""

    optuna: optuna.storages.BaseStorage
    name: str
    lock_file: Path | None = None  # a journal file or SQLite database: a lock file next to it

    def lock(self, study_name: str) -> AbstractContextManager[None]:
        """Held while a worker sets up the study, so that workers started together do it once."""
        return self._lock("study", study_name)

    def trial_lock(self, study_name: str) -> AbstractContextManager[None]:
        """Held by a worker from creating a trial until the trial records its owner (and while it looks
        for lost workers' trials): a RUNNING trial seen without an owner under it lost its worker in
        between. Not the setup's lock, which a worker holds while it reports (confirmations train)."""
        return self._lock("trials", study_name)

    @contextmanager
    def _lock(self, kind: str, study_name: str) -> Iterator[None]:
        """A lock file next to the storage's file (the study's has no suffix), else a database lock."""
        if self.lock_file is not None:
            suffix = "" if kind == "study" else f".{kind}"
            with file_lock(self.lock_file.with_name(self.lock_file.name + suffix)):
                yield
        elif isinstance(self.optuna, optuna.storages.RDBStorage):
            with database_lock(self.optuna.engine, f"optuna-{kind}:{study_name}"):
                yield
        else:
            yield

    @property
    def exclusive(self) -> bool:
        """Whether its locks exclude the study's other workers (a lock file; PostgreSQL's or MySQL's lock)."""
        if self.lock_file is not None:
            return True
        return (isinstance(self.optuna, optuna.storages.RDBStorage)
                and self.optuna.engine.dialect.name in LOCKING_DIALECTS)


def default_storage_path(spec: ExperimentSpec) -> Path:
    """The journal file next to the MLflow store (its folder for SQLite or file stores)."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent / JOURNAL_FILE
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file://").removeprefix("file:")).resolve() / JOURNAL_FILE
    if "://" not in uri:
        return Path(uri).resolve() / JOURNAL_FILE
    return spec.workspace_dir / JOURNAL_FILE  # a tracking server: keep the study with the workspace


def open_storage(storage: str | None, spec: ExperimentSpec) -> tuple[optuna.storages.BaseStorage, str]:
    """An Optuna storage and its printable name: a journal file (path or default) or an RDB URL.

    RDB storages record heartbeats, so trials of a worker that died on any machine are failed
    by the next worker; a journal file is for the processes of one machine.
    """
    opened = connect_storage(storage, spec)
    return opened.optuna, opened.name


def connect_storage(storage: str | None, spec: ExperimentSpec) -> Storage:
    """:func:`open_storage`, with the lock its workers share; a :class:`SpecError` if it cannot be used."""
    if storage and "://" in storage:
        return _rdb(storage)
    if storage and _SCHEME.match(storage):  # a URL typed with one slash: its password must not become a path
        raise SpecError(f"storage {storage.split(':', 1)[0]}:...: a URL needs '://' after its scheme "
                        "(postgresql+psycopg2://user@host/db, sqlite:///path/optuna.db); "
                        "a journal file whose name holds a colon: write it as ./NAME")
    path = Path(storage).expanduser().resolve() if storage else default_storage_path(spec)
    if path.is_dir():
        raise SpecError(f"storage {path} is a folder: give a journal file (e.g. {path / JOURNAL_FILE}) "
                        "or an RDB URL (postgresql+psycopg2://user@host/db, sqlite:///path/optuna.db)")
    if storage and not path.parent.is_dir():  # a mistyped path, as for a SQLite storage
        raise SpecError(f"storage {path}: the folder {path.parent} does not exist")
    if path.is_file() and _sqlite_header(path):  # read before Optuna could append a journal line to it
        if problem := _mlflow_store(path):
            raise SpecError(f"storage {problem}")
        raise SpecError(f"storage {path} is a SQLite database: give it as a URL, sqlite:///{path}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path))
    except OSError as err:
        raise SpecError(f"storage {path}: cannot write the journal file: {err.strerror or err}") from None
    if not path.is_file():
        raise SpecError(f"storage {path}: not a regular file; give a journal file or an RDB URL")
    try:
        _journal_lines(path)
        journal = optuna.storages.JournalStorage(backend)
        journal.get_all_studies()  # replays the whole file
    except (ValueError, AssertionError, KeyError, TypeError) as err:  # ValueError: undecodable JSON or text
        raise SpecError(f"storage {path}: not an Optuna journal file ({type(err).__name__}: "
                        f"{first_line(err)[:200]}); name another file") from None
    return Storage(journal, str(path), path)


def _journal_lines(path: Path) -> None:
    """Raise ValueError at a finished line that is not JSON, or an unfinished last line that does not
    start as one. Optuna takes an unfinished last line for a write in progress, so it would only fail
    once its own next line followed: after appending to a file that is no journal (any file without a
    newline)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith(b"\n"):
                if not line.lstrip().startswith(b"{"):
                    raise ValueError(f"line {number} is not JSON")
                continue
            try:
                json.loads(line)
            except ValueError:
                raise ValueError(f"line {number} is not JSON") from None


def _rdb(url: str) -> Storage:
    """An RDB storage, checked step by step so that each problem gets its own message."""
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = redact(url)
    scrub = Scrubber(secrets_in(url))

    def fail(problem: str) -> NoReturn:
        raise SpecError(scrub(f"storage {shown}: {problem}")) from None

    scheme = url.split("://", 1)[0]
    try:
        engine = sqlalchemy.create_engine(url)  # loads the dialect and its driver; connects to nothing
    except NoSuchModuleError:
        fail(f"unknown database type {scheme!r}; give an RDB URL (postgresql+psycopg2://user@host/db, "
             "mysql+pymysql://..., sqlite:///path/optuna.db) or the path of a journal file")
    except (ArgumentError, ValueError) as err:  # ValueError: e.g. a port that is not a number
        fail(f"not a database URL ({first_line(err)})")
    except ImportError as err:
        module = getattr(err, "name", None) or str(err)
        fail(f"the database driver {module!r} of {scheme!r} is not installed: pip install it, or, for "
             "PostgreSQL, use postgresql+psycopg2:// with pip install 'mlsandbox[postgres]'")
    db_file = sqlite_file(url)
    if db_file is not None:
        if db_file.is_dir():
            fail(f"{db_file} is a folder: name a database file in it, e.g. sqlite:///{db_file / 'optuna.db'}")
        if not db_file.parent.is_dir():
            fail(f"the folder {db_file.parent} does not exist")
        if db_file.is_file() and db_file.stat().st_size and not _sqlite_header(db_file):
            fail(f"{db_file} is not a SQLite database: name a new file, or an existing Optuna database")
        if db_file.is_file() and (problem := _mlflow_store(db_file)):
            fail(problem)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as err:
        reason = first_line(getattr(err, "orig", None) or err)
        hint = "; give the password in PGPASSWORD or ~/.pgpass" if "password" in reason.lower() else ""
        fail(f"cannot connect: {reason}{hint}")
    finally:
        engine.dispose()
    try:
        # A SQLite file: workers started together take turns, so that one creates the tables.
        with file_lock(db_file) if db_file is not None else nullcontext():
            rdb = _rdb_storage(url)
    except (SQLAlchemyError, RuntimeError) as err:  # e.g. no right to create tables, an older schema
        fail(f"cannot set up Optuna's tables: {first_line(err)}")
    return Storage(rdb, shown, db_file)


def _sqlite_header(path: Path) -> bool:
    """Whether the file starts as every SQLite database does (checked before a lock file goes beside it)."""
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def _mlflow_store(path: Path) -> str | None:
    """Why a SQLite database cannot hold a study, if it is an MLflow tracking store; else None."""
    if {"experiments", "runs"} <= _sqlite_tables(path):
        return (f"{path} is an MLflow tracking store: name a database of the study's own, "
                f"e.g. sqlite:///{path.with_name('optuna.db')}")
    return None


def _sqlite_tables(path: Path) -> set[str]:
    """The tables of a SQLite database, read only: Optuna would add its own to any database it is given
    (an MLflow store's included), then refuse it for the other schema's version table."""
    import sqlite3

    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return set()


def _rdb_storage(url: str) -> optuna.storages.RDBStorage:
    from sqlalchemy.exc import SQLAlchemyError

    def create() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # heartbeats: experimental since optuna 2.9, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)

    # Workers started together race to create the schema; the loser finds it made.
    return retry_lost_race(create, lambda err: isinstance(err, SQLAlchemyError), "creating Optuna's tables")


def make_sampler(search: SearchSpec, seed: int) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded (TPE with the constant liar, so parallel workers spread out)."""
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "gp":
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    if search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if importlib.util.find_spec("cmaes") is None:
        raise SpecError("search.sampler 'cmaes' needs the cmaes package: pip install cmaes")
    return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


def pruner_name(search: SearchSpec, seeds: int) -> str:
    """The pruner a study of ``seeds`` seeds per trial uses: ``none`` for one seed (nothing to report
    before the end) and for two objectives (Optuna does not prune those), else the spec's."""
    return "none" if seeds < 2 or search.multi_objective else search.pruner


def make_pruner(search: SearchSpec, seeds: int) -> optuna.pruners.BasePruner:
    """Pruning on the running delta after each seed (the steps a trial reports)."""
    name = pruner_name(search, seeds)
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "percentile":  # Optuna's percentile is the share kept: keep the top 75%, prune the bottom 25%
        return optuna.pruners.PercentilePruner(75.0, n_startup_trials=5, n_warmup_steps=0)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=seeds)


def _definition_change(study: optuna.Study, study_name: str, definition: Mapping[str, str]) -> str:
    """Record the study's definition on its first call; what differs in a later call's ('' if nothing).

    A study with trials that an earlier version made has none recorded: what its MLflow run's params
    say of it is checked (:func:`_definition_of_earlier_version`), then this call's is recorded.
    """
    stored = study.user_attrs.get(DEFINITION_ATTR)
    first = not isinstance(stored, dict)
    recorded = dict(stored) if isinstance(stored, dict) else {
        **definition, **_definition_of_earlier_version(study, study_name, definition)}
    changed = [f"{key} {recorded.get(key, '(none)')} -> {definition.get(key, '(none)')}"
               for key in sorted(set(recorded) | set(definition)) if recorded.get(key) != definition.get(key)]
    if changed:
        return f"was measured with other settings ({'; '.join(changed)})"
    if first:
        study.set_user_attr(DEFINITION_ATTR, dict(definition))
    return ""


def space_definition(space: SearchSpace) -> dict[str, str]:
    """What a study's trials are drawn from: each parameter's OP, kind (bound, scale) and range, the
    repeat range, whether an OP may be left out (its ``.use`` parameter) and the OPs' params."""
    rows = {str(r["param"]): " ".join(filter(None, [r["op"], r["kind"], f"[{r['low']:.6g}, {r['high']:.6g}]"]))
            for r in describe_space(space)}
    return rows | {f"{s.op} params": json.dumps(s.params, sort_keys=True) for s in space.stats}


def _space_change(study: optuna.Study, space: Mapping[str, str]) -> str:
    """Record the study's space on its first call (or on a study of an earlier version, which
    recorded none); how a later call's differs ('' if not): TPE would model two disjoint spaces."""
    stored = study.user_attrs.get(SPACE_ATTR)
    if not isinstance(stored, dict):
        study.set_user_attr(SPACE_ATTR, dict(space))
        return ""
    changed = [f"{key} {stored[key]} -> {space[key]}" for key in sorted(set(stored) & set(space))
               if stored[key] != space[key]]
    changed += [f"{key} (no longer searched)" for key in sorted(set(stored) - set(space))]
    changed += [f"{key} (new)" for key in sorted(set(space) - set(stored))]
    if not changed:
        return ""
    # the first few: a whole space's changes would make a line of thousands of characters
    shown = "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
    return f"searched another space ({shown})"


#: The definition's digests, which the study's run has held as params since before definitions were recorded.
_DIGESTS = ("dataset_digest", "model_digest", "evaluator_digest", "benchmarks_digest", "files_digest")


def _definition_of_earlier_version(study: optuna.Study, study_name: str, definition: Mapping[str, str]) -> dict[str, str]:
    """What the MLflow run of a study that has trials but no recorded definition says of its digests."""
    if not study.get_trials(deepcopy=False):
        return {}
    run_id = study.user_attrs.get(PARENT_RUN_ATTR)
    try:
        params = mlflow.MlflowClient().get_run(run_id).data.params if isinstance(run_id, str) else {}
    except MlflowException:  # a run of another tracking store
        params = {}
    known = {key: params[key] for key in _DIGESTS if key in params}
    unchecked = [key for key in definition if key not in known]
    if unchecked:
        log.warning("study %r was started by an earlier version, which recorded no definition: its %s cannot be "
                    "checked against this call's", study_name, ", ".join(unchecked))
    return known


def sampler_seed(search: SearchSpec, worker: int | None, trials: int) -> int:
    """The sampler seed of this call.

    With a worker index: ``search.seed``, offset by the index and by the trials already in the
    study, so the same command on the same study draws the same trials again. Without one:
    ``search.seed`` mixed with this host, process and clock, so that workers started together
    without ``--worker`` never draw the same trials.
    """
    if worker is None:
        entropy = f"{search.seed}:{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        return int.from_bytes(hashlib.blake2b(entropy.encode(), digest_size=4).digest(), "big")
    return (search.seed + 1_000_003 * worker + trials) % 2**32


def open_study(
    study_name: str, storage: optuna.storages.BaseStorage, search: SearchSpec, seeds: int,
    definition: Mapping[str, str], worker: int | None = 0, space: Mapping[str, str] | None = None,
) -> tuple[optuna.Study, int]:
    """Create the study, or load it when it exists (its objectives, its definition and its space
    (:func:`space_definition`) must be the same: a trial measured on other data or another model would
    compete unfairly, and one drawn from another space would mix params); the sampler seed."""
    directions = [StudyDirection.MAXIMIZE] * len(search.objectives)
    study = optuna.create_study(study_name=study_name, storage=storage, directions=directions,
                                load_if_exists=True, pruner=make_pruner(search, seeds))
    if study.directions != directions:
        raise SpecError(f"study {study_name!r} has {len(study.directions)} objective(s) but search.objectives is "
                        f"{search.objectives}; use another --study name")
    changes = [change for change in (_definition_change(study, study_name, definition),
                                     _space_change(study, space) if space is not None else "") if change]
    if changes:
        raise SpecError(f"study {study_name!r} {' and '.join(changes)}: its trials would not compare with this "
                        "call's; use another --study name to search anew")
    # Different workers, and a resumed run, must not replay the same sampler draws.
    seed = sampler_seed(search, worker, len(study.get_trials(deepcopy=False)))
    study.sampler = make_sampler(search, seed)
    return study, seed
