"""A throwaway MLflow store for a benchmark: the SQLite database and every run's artifacts in one folder."""

from __future__ import annotations

from pathlib import Path

import mlflow

from mlsandbox.errors import InvalidInputError
from mlsandbox.tracking import create_sqlite_store


def local_store(folder: Path | str, *experiments: str) -> str:
    """Use ``folder/mlflow.db`` as the tracking store (created as a command creates it) and return its URI.
    The folder may be relative (to the current folder) and new: it is resolved and created.

    The named experiments are created there with their artifacts in ``folder/artifacts``: a
    database store otherwise puts them in ``./mlruns`` under the current directory, outside the
    benchmark's folder, where they outlive it.
    """
    folder = Path(folder).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidInputError(f"cannot create the benchmark's folder {folder}: {err.strerror or err}") from None
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    create_sqlite_store(uri)
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    for name in experiments:
        if client.get_experiment_by_name(name) is None:
            client.create_experiment(name, artifact_location=(folder / "artifacts" / name).as_uri())
    return uri
