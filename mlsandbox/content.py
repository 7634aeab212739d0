"""The content behind a local path, as a digest; and the commit behind a cached hub model name.

A spec names some of its inputs by path: a ``command`` trainer's script, a local model folder, an
OP's model file. A cache keyed by the path alone takes an edited script or a model replaced in
place for the old one, so keys that admit such paths add :func:`content_digest` of them. It reads
the bytes, not the modification times: a fresh clone or a copy with new times keeps its keys.
Each digest is memoised under the stat of its files, so asking again costs a ``stat`` per file.

A Hugging Face hub name is content too: what it loads changes when the repository gets a new
commit. :func:`hub_commit` names the commit the local hub cache holds, without reading the weights
(the cache is addressed by commit already).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

#: Entries of a folder that are not its content: hidden ones (``.git``, a ``.mlsandbox``
#: workspace), byte-code caches and MLflow's local store.
_SKIPPED = frozenset({"__pycache__", "mlruns"})

_CHUNK = 1 << 20
_MEMO: dict[tuple[object, ...], str] = {}


def unknown_home(path: str) -> str | None:
    """Why ``path`` can name nothing where it starts with the ``~user`` of no user of this machine
    (``Path.expanduser`` raises on it, wherever it is read); else None."""
    if path.startswith("~") and os.path.expanduser(path) == path:
        return f"{path.split('/', 1)[0]} is the home folder of no user of this machine"
    return None


def local_path(value: str, files_only: bool = False) -> Path | None:
    """The absolute path ``value`` names (absolute, or relative to the working directory) when a
    file, or a folder unless ``files_only``, exists there; else None (a hub name, a word)."""
    if not value or "\0" in value or unknown_home(value):
        return None
    path = Path(value).expanduser()
    try:
        found = path.is_file() or (not files_only and path.is_dir())
    except OSError:
        return None
    return Path(os.path.abspath(path)) if found else None  # links kept: a venv's python must stay one


def content_digest(paths: Iterable[Path]) -> str:
    """sha256 over the bytes of each path's files, in order ('' for no paths). Where a path lies
    is not part of it: a project moved or cloned elsewhere keeps its digests."""
    digests = [_path_digest(path) for path in paths]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest() if digests else ""


def _path_digest(path: Path) -> str:
    files = _files(path) if path.is_dir() else [(path, "")]
    signature = tuple((name, *_stat(file)) for file, name in files)
    memo = (str(path), signature)
    if memo not in _MEMO:
        digest = hashlib.sha256()
        for file, name in files:
            digest.update(f"{name}\0{_bytes_digest(file)}\n".encode())
        _MEMO[memo] = digest.hexdigest()
    return _MEMO[memo]


def _files(folder: Path) -> list[tuple[Path, str]]:
    """The folder's files with their names relative to it, sorted; skipped entries left out."""
    found: list[tuple[Path, str]] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not _skipped(d)]
        for name in names:
            file = Path(root) / name
            if not _skipped(name) and file.is_file():  # a broken link is not content
                found.append((file, file.relative_to(folder).as_posix()))
    return sorted(found, key=lambda item: item[1])


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in _SKIPPED


def _stat(file: Path) -> tuple[int, int, int]:
    stat = file.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _bytes_digest(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hub_commit(name: str, revision: str | None = None) -> str | None:
    """The commit a Hugging Face hub model ``name`` (at ``revision``, else its main branch) has in
    the local hub cache: what loading that name offline gets. None for a local path, a string that
    is no repository id, or a model the cache does not hold."""
    if "/" not in name or local_path(name) is not None:
        return None
    snapshot = cached_snapshot(name, revision)
    return None if snapshot is None else snapshot.name


def cached_snapshot(name: str, revision: str | None = None) -> Path | None:
    """The folder the local Hugging Face cache holds for hub model ``name`` (at ``revision``): what
    loading that name offline reads. None where it holds none (or ``name`` is no repository id)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=name, revision=revision, local_files_only=True))
    except (ImportError, ValueError, OSError):  # no hub library, not a repository id, not cached
        return None
