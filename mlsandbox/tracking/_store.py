"""The tracking store a command logs to: checked before any work starts, never shown with its password."""

from __future__ import annotations

import os

import mlflow

from mlsandbox.errors import InvalidInputError
from mlsandbox.secrets import Scrubber, redact, secrets_in


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
    used: an unknown scheme, a server that does not answer, a database that cannot be opened."""
    uri = mlflow.get_tracking_uri()
    hide_run_links(uri)
    try:
        mlflow.MlflowClient().search_experiments(max_results=1)
    except Exception as err:  # whatever the store's client raises, the store is unusable
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InvalidInputError(
            Scrubber(secrets_in(uri))(f"cannot use the tracking store {redact(uri)}: {reason[:500]}")) from None
