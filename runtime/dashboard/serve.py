"""Running the dashboard: a socket bound before the server starts (so the address, even
of port 0, is known and a busy port is a clear error), uvicorn serving on it, in the
foreground or in a background thread."""

from __future__ import annotations

import socket
import threading
from typing import Any

from nasforge.grammar.errors import NasforgeError

from .access import is_loopback

SHUTDOWN_SECONDS = 5  # for the requests under way when asked to stop, then they are cut


class DashboardError(NasforgeError):
    """The dashboard cannot start (a refused host, a busy port)."""


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse a host other than the loopback unless `allow_remote`."""
    if not is_loopback(host) and not allow_remote:
        raise DashboardError(
            f"--host {host} would serve the search to other machines; add --allow-remote "
            "to do so (the page then requires the token printed at start)"
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        raise DashboardError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)
    return sock


def url(sock: socket.socket, token: str | None = None) -> str:
    """The page's address on `sock` (with the token to open it, if any)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def server(app: Any) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
    )
    return uvicorn.Server(config)


def serve(app: Any, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl-C)."""
    server(app).run(sockets=[sock])


class Background:
    """The dashboard served from a thread of this process (tests, benchmarks)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = bind(host, port)
        self.url = url(self.sock)
        self._server = server(app)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self.sock.close()
