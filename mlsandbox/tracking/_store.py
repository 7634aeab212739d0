"""The tracking store a command logs to: checked before any work starts, never shown with its password."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import mlflow

from mlsandbox.credentials import Scrubber, redact, secrets_in
from mlsandbox.errors import InvalidInputError, first_line
from mlsandbox.files import sweep, sync, temporary


def shown_tracking_uri() -> str:
    """The tracking URI as it may be printed: a password in it hidden."""
    return redact(mlflow.get_tracking_uri())


def hide_run_links(uri: str) -> None:
    """MLflow prints a link to every run it ends on a tracking server: with a password in the URI,
    that link would show it, so it is turned off (in this process and the processes it starts)."""
    if secrets_in(uri):
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"


def check_tracking_store() -> None:
    """Raise :class:`InvalidInputError` (one line, password hidden) when the tracking store cannot be
    used: an unknown scheme, a server that does not answer, a database that cannot be opened.
    A new SQLite store is created whole (:func:`create_sqlite_store`)."""
    uri = mlflow.get_tracking_uri()
    if uri in _USABLE:
        return
    hide_run_links(uri)
    sync_at_checkpoints()
    try:
        _check_answers(uri)
        create_sqlite_store(uri)
        mlflow.MlflowClient().search_experiments(max_results=1)
    except InvalidInputError:
        raise  # already says which store and why
    except Exception as err:  # whatever the store's client raises, the store is unusable
        reason = first_line(err)[:500]
        if sqlite_file(uri) is not None and "already exists" in reason:  # its tables half made (mlflow run, killed)
            reason += ("; it looks half-created (stopped while MLflow made its tables): if it holds no runs you need, "
                       "move it away and run again")
        raise InvalidInputError(
            Scrubber(secrets_in(uri))(f"cannot use the tracking store {redact(uri)}: {reason}")) from None
    _USABLE.add(uri)


def store_lost(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from) says that the tracking server stopped
    answering: MLflow's client gives up after its retries with a connection, timeout or retry error."""
    import requests

    lost = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError)
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, lost):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def give_up_on_store() -> None:
    """After a lost server, for the rest of this process: the clean-up's requests (an end reason, a
    run's end, a heartbeat) fail at once instead of each waiting out MLflow's minutes of retries;
    the next command, once the server answers, ends the runs left RUNNING."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "5"


def check_artifact_location(experiment_id: str) -> None:
    """Refuse, before any work, an experiment whose artifacts go to a local folder (a file or SQLite
    store's, a server's ``--default-artifact-root`` without artifact serving) that cannot be
    written: its runs would fail at their first artifact, after their work. Creates the folder, as
    MLflow's first artifact would. Checked once per store, experiment and process."""
    key = (mlflow.get_tracking_uri(), experiment_id)
    if key in _WRITABLE:
        return
    location = mlflow.get_experiment(experiment_id).artifact_location
    parts = urlsplit(location)
    if parts.scheme in ("", "file"):  # a proxied or object store: its server or client says what is wrong
        folder = Path(unquote(parts.path))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError as err:
            raise InvalidInputError(f"cannot write the artifacts of experiment {experiment_id} to {location}: "
                                    f"{err.strerror or err} (the store's or server's artifact root)") from None
    _WRITABLE.add(key)


_WRITABLE: set[tuple[str, str]] = set()


#: How long a tracking server's port is waited for (MLflow's client retries for minutes).
CONNECT_TIMEOUT_S = 10.0
#: The default port of each kind of store on a network: a server, or a database (any driver).
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


def _check_answers(uri: str) -> None:
    """Refuse at once a server or database URL whose host does not resolve or whose port nothing
    listens on: MLflow's client would retry such a store for minutes, logging each attempt, before
    the command could say so."""
    parts = urlsplit(uri)
    kind = parts.scheme.split("+", 1)[0]  # postgresql+psycopg2: any driver
    if kind not in _DEFAULT_PORTS or not parts.hostname or _over_a_local_socket(kind, parts.hostname, parts.query):
        return
    port = parts.port or _DEFAULT_PORTS[kind]
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ConnectionError(f"no server answers at {parts.hostname}:{port} ({err.strerror or err})") from None


def _over_a_local_socket(kind: str, host: str, query: str) -> bool:
    """Whether a database URL may connect through a Unix socket, not a port: no host (checked by the
    caller), a socket named in the query (``?host=/run/postgresql``, ``?unix_socket=...``), or MySQL's
    ``localhost``, which its client library reads as the local socket."""
    named = [value for key, value in parse_qsl(query) if key in ("host", "unix_socket")]
    return any(value.startswith("/") for value in named) or (kind == "mysql" and host == "localhost")


#: Stores this process has opened: a command that looks up a run and then logs checks its store once.
_USABLE: set[str] = set()


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for other URLs and in-memory databases)."""
    if not url.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database
    except ArgumentError:
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def create_sqlite_store(uri: str) -> None:
    """Create a SQLite tracking store that does not exist yet, whole or not at all.

    MLflow builds a new database's tables one statement at a time: a process killed meanwhile
    would leave a file that no later command can open. So the tables are built in a file of their
    own, a copy of it (a file no open connection holds) is linked into place only if no other
    process has created the store meanwhile, and both files are removed: by this process, or, where
    it was killed outright, by the next one that creates the store in that folder.
    """
    path = sqlite_file(uri)
    if path is not None and path.is_dir():  # SQLite cannot open it: MLflow would retry for minutes
        raise InvalidInputError(f"cannot use the tracking store {uri}: {path} is a folder, not a SQLite file")
    if path is None or path.exists():
        return  # an existing store, or not a SQLite file
    if not path.parent.is_dir():  # a mistyped path: MLflow would create the folders and an empty store there
        raise InvalidInputError(f"cannot use the tracking store {uri}: no folder {path.parent} to hold a new "
                                "SQLite store")
    sweep(path.parent)  # the files of a creator killed outright (SIGKILL), ~1 MB each
    built, staged = (_new_file(path, step) for step in ("built", "staged"))
    try:
        # quoted: SQLAlchemy decodes the URL's path, so a folder named "a%20b" would become "a b"
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{quote(str(built))}").search_experiments(max_results=1)
        shutil.copyfile(built, staged)
        _use_write_ahead_log(staged)
        sync(staged)  # on disk before it has the store's name: a machine crash leaves no empty store
        try:
            os.link(staged, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        built.unlink(missing_ok=True)
        staged.unlink(missing_ok=True)


def _use_write_ahead_log(path: Path) -> None:
    """Put a new store in SQLite's write-ahead-log mode, which the file keeps for every later
    connection (MLflow's, the MLflow UI's): a commit then syncs one log instead of a rollback
    journal and the database, so each MLflow request takes about a third less time (a workflow
    makes five per cell), and readers no longer block the writer. Closing the last connection folds the
    log back into the file."""
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def sync_at_checkpoints() -> None:
    """From now on in this process, a connection to the SQLite tracking store, where that store is
    in write-ahead-log mode (:func:`create_sqlite_store` makes new ones so), syncs the log to disk
    at its checkpoints instead of at every commit (``PRAGMA synchronous=NORMAL``, the setting
    SQLite recommends with that mode). A cell makes about a dozen commits, each of which otherwise
    waits for the disk. A process that is killed loses nothing; a power cut may lose the last
    commits, never the database: the cells they recorded are trained again."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sync_at_checkpoints):
        event.listen(Engine, "connect", _sync_at_checkpoints)


def _sync_at_checkpoints(connection: object, _record: object) -> None:
    """SQLAlchemy's hook on every new database connection of any engine: only a connection to the
    tracking store this process logs to, in write-ahead-log mode, is changed."""
    if not isinstance(connection, sqlite3.Connection):
        return
    store = sqlite_file(mlflow.get_tracking_uri())
    opened = connection.execute("PRAGMA database_list").fetchone()  # the main database comes first
    if store is None or not opened or not opened[2] or Path(opened[2]).resolve() != store:
        return
    if connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        connection.execute("PRAGMA synchronous=NORMAL")


def _new_file(path: Path, step: str) -> Path:
    """A new empty file beside ``path``, hidden, named for this process so that the next command
    removes it if this one is killed before it does (:func:`mlsandbox.files.sweep`)."""
    name = temporary(path.with_name(f".{path.name}"), f".{step}")
    name.unlink(missing_ok=True)  # left by an earlier process that had this pid
    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    return name

