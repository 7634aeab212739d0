"""The Ray cluster this process works with: cells, trials and stats on Ray all connect here."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import ModuleType

from mlsandbox.credentials import Scrubber, hide_url_passwords, secrets_in
from mlsandbox.errors import SpecError, first_line

#: How long an unanswered cluster address is waited for (Ray itself retries for minutes).
CONNECT_TIMEOUT_S = 10.0


def connect(address: str | None = None, purpose: str = "--executor ray") -> ModuleType:
    """Ray, connected to the cluster at ``address`` (else ``RAY_ADDRESS``, else a new local one).

    Connecting once per process: later calls reuse the connection whatever address they name.
    An address that nothing answers at is a :class:`SpecError` within :data:`CONNECT_TIMEOUT_S`.
    """
    try:
        import ray
    except ImportError:
        raise SpecError(f"{purpose} needs Ray: pip install 'mlsandbox[ray]'") from None
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        check_reachable(address, purpose)
        main = threading.current_thread() is threading.main_thread()
        on_sigterm = signal.getsignal(signal.SIGTERM) if main else None
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        except ConnectionError as err:
            reason = Scrubber(secrets_in(address))(first_line(err))  # Ray's text may quote the address
            raise SpecError(f"{purpose}: cannot connect to the Ray cluster at {_shown(address)}: {reason}"
                            f"{_AUTH_HINT}") from None
        finally:
            if on_sigterm is not None:  # ray.init installs its own, which exits at once with code 15
                signal.signal(signal.SIGTERM, on_sigterm)
    return ray


#: Its port answers but the cluster refuses us: Ray 2.59 and later start clusters with token authentication.
_AUTH_HINT = ("; a cluster started with token authentication (Ray's default since 2.59) needs RAY_AUTH_MODE=token "
              "and its token here (RAY_AUTH_TOKEN, or ~/.ray/auth_token): see docs/scaling.md")


def check_reachable(address: str | None, purpose: str) -> None:
    """Refuse at once a ``host:port`` (or ``ray://host:port``; default ``RAY_ADDRESS``) that no server
    answers at, or one that is not a Ray cluster; none, ``auto`` and ``local`` pass (Ray finds or
    starts the cluster)."""
    address = address or os.environ.get("RAY_ADDRESS")
    if not address or address in ("auto", "local"):
        return
    if "://" in address and not address.startswith("ray://"):  # the dashboard's http://host:8265, say: no cluster there
        raise SpecError(f"{purpose}: Ray address {_shown(address)!r} is not host:port or ray://host:port (an http:// "
                        "address is the dashboard's, for job submission)")
    host, _, port = address.removeprefix("ray://").rpartition("@")[2].rpartition(":")  # no user:password@
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(f"{purpose}: Ray address {_shown(address)!r} is not host:port (or ray://host:port, auto, local)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S) as conn:
            grpc = _answers_http2(conn)
    except OSError as err:
        raise SpecError(f"{purpose}: no Ray cluster answers at {_shown(address)} ({err.strerror or err}); start one with "
                        "`ray start --head`, or fix executor.address / RAY_ADDRESS") from None
    if not grpc:
        raise SpecError(f"{purpose}: the server at {_shown(address)} is not a Ray cluster (it does not speak gRPC); "
                        "give the head node's GCS port (6379 by default) or ray://host:10001")


#: The HTTP/2 client preface and an empty SETTINGS frame: what a gRPC client says first.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers_http2(conn: socket.socket) -> bool:
    """Whether the server answers an HTTP/2 preface with a SETTINGS frame, as Ray's gRPC servers do.

    Without this, ``ray.init`` at a port where another kind of server listens retries for minutes.
    A cluster behind TLS (``RAY_USE_TLS``) would need a handshake first, so it is taken on trust.
    """
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return True
    conn.sendall(_HTTP2_PREFACE)
    header = b""
    while len(header) < 9:  # a frame header: 3 bytes of length, then its type (4 = SETTINGS)
        chunk = conn.recv(9 - len(header))
        if not chunk:
            return False
        header += chunk
    return header[3] == 4


def cluster_cpus(ray: ModuleType) -> int:
    """The CPUs of the whole cluster (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def cluster_gpus(ray: ModuleType) -> int:
    return int(ray.cluster_resources().get("GPU", 0))


def check_fits(ray: ModuleType, num_cpus: float, num_gpus: float) -> None:
    """Refuse a task shape that no live node of the cluster can run: Ray would queue such tasks
    for good, without a word to a driver that does not show its logs."""
    nodes: list[dict[str, float]] = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= num_cpus and r.get("GPU", 0) >= num_gpus for r in nodes):
        return
    largest: dict[str, float] = max(nodes, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)), default={})
    raise SpecError(f"executor: each cell asks for {num_cpus:g} CPUs and {num_gpus:g} GPUs (executor.cpus_per_cell, "
                    f"executor.gpus_per_cell), and no node of the Ray cluster has them (the largest: "
                    f"{largest.get('CPU', 0):g} CPUs, {largest.get('GPU', 0):g} GPUs): ask for less, or add such a node")


def _shown(address: str | None) -> str:
    """The address as it may be printed: a password in it hidden, with a scheme (``ray://``) or without."""
    return hide_url_passwords(str(address))
