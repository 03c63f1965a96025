"""Options and helpers shared by the sink commands (``warehouse write``, ``alerts publish``,
``webhooks dispatch``): the HTTP endpoints, and stopping on Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading

import typer

HTTP_PORT = typer.Option(
    None, "--http-port", help="Serve /health, /ready and /metrics on this port (default: none)."
)
HTTP_HOST = typer.Option("127.0.0.1", "--http-host", help="Address the endpoints listen on.")


def stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM, so loops end between batches."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
