"""Locks for workers started together: one creates the stores and the study's run, the others wait.

A search's setup (the MLflow store's schema, the study, its warm-start trials and its MLflow
parent run) is a read-then-write that two workers started at once would both do. It runs under
a lock that every worker of the study takes: a lock file next to a journal file or SQLite
database (the processes of one machine), or an advisory lock held in PostgreSQL or MySQL (workers
on many machines). A process that dies releases its lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import mlflow
from filelock import FileLock, Timeout
from mlflow.exceptions import MlflowException

from mlsandbox.errors import SpecError
from mlsandbox.retry import retry_lost_race
from mlsandbox.tracking import create_sqlite_store, sqlite_file

LOCK_SUFFIX = ".mlsandbox.lock"  # not ".lock": Optuna's journal file lock is named so
WAIT_S = 600.0


@contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """An exclusive lock of the file ``target`` among the processes of this machine."""
    path = target.with_name(target.name + LOCK_SUFFIX)
    try:
        with FileLock(str(path), timeout=WAIT_S):
            yield
    except Timeout:
        raise SpecError(f"waited {WAIT_S:.0f} s for the lock {path}: another search of the study holds it "
                        "(a lock is released when the process holding it exits; the file itself holds nothing)") from None


#: The databases whose sessions can hold a named lock (:func:`database_lock`).
LOCKING_DIALECTS = ("postgresql", "mysql", "mariadb")


@contextmanager
def database_lock(engine: object, name: str) -> Iterator[None]:
    """A lock named ``name`` held by a session of the database (PostgreSQL, MySQL), for any machine.

    Other databases have no such lock: the caller then goes on unlocked.
    """
    from sqlalchemy import text
    from sqlalchemy.engine import Engine

    dialect = engine.dialect.name if isinstance(engine, Engine) else ""
    if dialect not in LOCKING_DIALECTS:
        yield
        return
    assert isinstance(engine, Engine)
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    with engine.connect() as conn:
        if dialect == "postgresql":
            key = int.from_bytes(digest, "big", signed=True)
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            return
        lock_name = "mlsandbox-" + digest.hex()  # MySQL caps lock names at 64 characters
        got = conn.execute(text("SELECT GET_LOCK(:name, :wait)"), {"name": lock_name, "wait": int(WAIT_S)}).scalar()
        if got != 1:
            raise SpecError(f"waited {WAIT_S:.0f} s for the database lock of {name!r}: another search holds it")
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": lock_name})


def init_tracking_store() -> None:
    """Open the MLflow tracking store once, creating or upgrading its schema under a lock.

    MLflow creates a new database's tables on first use, and two processes doing so at once
    break each other (``duplicate column name``): a SQLite store is opened under a lock file,
    any other database store is retried once the other process is done.
    """
    uri = mlflow.get_tracking_uri()
    db_file = sqlite_file(uri)
    is_database = db_file is not None or uri.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "mysql", "mssql")
    if not is_database:
        return
    from sqlalchemy.exc import SQLAlchemyError

    # A missing folder is not locked: creating the store says what is wrong.
    with file_lock(db_file) if db_file is not None and db_file.parent.is_dir() else nullcontext():
        create_sqlite_store(uri)  # a new SQLite store: whole or not at all
        retry_lost_race(lambda: mlflow.MlflowClient().search_experiments(max_results=1),
                        lambda err: isinstance(err, (SQLAlchemyError, MlflowException)),
                        "opening the MLflow store")
