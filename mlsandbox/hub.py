"""Where a model name points, and whether the Hugging Face hub can be reached to fetch it.

A name that is neither a local folder nor in the local Hugging Face cache needs the hub; when the
hub cannot be reached, loading reads the cache only, so a model that is not there fails at once
(``transformers`` would retry for minutes, printing a warning per retry).
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlsandbox.content import unknown_home

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")


@functools.cache
def hub_unreachable() -> str | None:
    """Why the model hub cannot be reached (checked once per process: a connection to its endpoint),
    or None. Behind a proxy it is not checked (a direct connection may fail where the proxy works)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return None
    endpoint = urlsplit(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname or "", endpoint.port or 443), timeout=5).close()
    except OSError as err:
        return f"nothing answers at {endpoint.hostname} ({err.strerror or err})"
    return None


def hub_options(name_or_path: str) -> dict[str, Any]:
    """``from_pretrained`` options for ``name_or_path``: a hub name while the hub cannot be reached is
    read from the local cache only, so a model that is not there fails at once, not after minutes of
    retries that each print a warning."""
    offline = model_location(name_or_path) == "Hugging Face name" and hub_unreachable()
    return {"local_files_only": True} if offline else {}


def model_location(name_or_path: str) -> str:
    """What a model name names, in words for an error: an existing local directory, a path that names
    nothing (it can be no hub name: it starts with ``/``, ``.`` or ``~``), or a Hugging Face name."""
    if why := unknown_home(name_or_path):  # a path (no hub name starts with ~) that names nothing
        return f"no such folder {name_or_path}: {why}"
    path = Path(name_or_path).expanduser()
    if path.exists():
        return "local directory"
    if name_or_path.startswith("/"):
        return f"no such folder {path}"
    if name_or_path.startswith((".", "~")):
        return (f"no such folder {os.path.abspath(path)}: a relative model path is relative to the directory "
                f"mlsandbox runs in, {Path.cwd()}")
    return "Hugging Face name"


def where_it_looked(name_or_path: str) -> str:
    """:func:`model_location`, with why the hub cannot be reached for a hub name where it cannot: what
    an error loading the model says of where it looked."""
    where = model_location(name_or_path)
    if where == "Hugging Face name" and (offline := hub_unreachable()):
        return f"{where}; the hub cannot be reached: {offline}"
    return where
