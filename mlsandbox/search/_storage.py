"""Where a study lives and how it draws: the Optuna storage, sampler and pruner, and the study itself.

The default storage is a journal file next to the MLflow store, so a study travels with its runs
without a database; any RDB URL (PostgreSQL for workers on many machines) works too, and its
password never reaches a log or a run.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import mlflow
import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection

from mlsandbox.errors import SpecError
from mlsandbox.spec import ExperimentSpec, SearchSpec

JOURNAL_FILE = "optuna.journal"

# A trial left RUNNING by a worker on another machine is failed once its heartbeat is this old.
HEARTBEAT_S = 30
GRACE_S = 120


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
    if storage and "://" in storage:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except SQLAlchemyError:
            # Workers started together race to create the schema; the loser finds it made.
            time.sleep(1.0)
            rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        return rdb, redact(storage)
    path = Path(storage).expanduser().resolve() if storage else default_storage_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path))), str(path)


def redact(url: str) -> str:
    """The storage URL with its password hidden: it is logged as a param and printed."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy parses: show the scheme only
        return url.split("://", 1)[0] + "://***"


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


def make_pruner(search: SearchSpec, seeds: int) -> optuna.pruners.BasePruner:
    """Pruning on the running delta after each seed (the steps a trial reports)."""
    if search.pruner == "none" or seeds < 2 or search.multi_objective:
        return optuna.pruners.NopPruner()
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if search.pruner == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=0)
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=seeds)


def open_study(
    study_name: str, storage: optuna.storages.BaseStorage, search: SearchSpec, seeds: int, worker: int = 0
) -> optuna.Study:
    """Create the study, or load it when it exists (its objectives must be the same)."""
    directions = [StudyDirection.MAXIMIZE] * len(search.objectives)
    study = optuna.create_study(study_name=study_name, storage=storage, directions=directions,
                                load_if_exists=True, pruner=make_pruner(search, seeds))
    if study.directions != directions:
        raise SpecError(f"study {study_name!r} has {len(study.directions)} objective(s) but search.objectives is "
                        f"{search.objectives}; use another --study name")
    # Different workers, and a resumed run, must not replay the same sampler draws.
    study.sampler = make_sampler(search, search.seed + 1_000_003 * worker + len(study.trials))
    return study
